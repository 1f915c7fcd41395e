//! Small named values about the store itself, e.g. a check value that lets the secrets layer
//! refuse to open the store with the wrong encryption key.

use crate::error::{StoreResult, database};
use crate::store::Store;
use crate::time::Timestamp;

impl Store {
    /// The value stored under `name`, if any.
    pub async fn meta(&self, name: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT value FROM store_meta WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading store metadata"))
    }

    /// Stores `value` under `name`, replacing any value.
    pub async fn put_meta(&self, name: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO store_meta (name, value, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(value)
        .bind(Timestamp::now().as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(database("writing store metadata"))?;
        Ok(())
    }

    /// Stores `value` under `name` unless a value is there, and returns the value that is
    /// stored afterwards: `value`, or the one that was there first.
    pub async fn put_meta_if_absent(&self, name: &str, value: &str) -> StoreResult<String> {
        sqlx::query(
            "INSERT INTO store_meta (name, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(Timestamp::now().as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(database("writing store metadata"))?;
        Ok(self.meta(name).await?.unwrap_or_else(|| value.to_owned()))
    }
}
