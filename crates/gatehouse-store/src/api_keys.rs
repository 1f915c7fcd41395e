//! Gateway API keys. The store never sees key material: the caller computes a keyed digest
//! (HMAC-SHA256) of the secret part and stores that; it looks a key up by its public id and
//! compares digests itself, in constant time. Revocation is announced as a change event.

use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::changes::{ChangeKind, append_change};
use crate::error::{
    EntityKind, StoreError, StoreResult, database, is_foreign_key_violation, is_unique_violation,
};
use crate::store::Store;
use crate::time::Timestamp;
use crate::users::user_not_found;

/// A key to add. The id is public (e.g. `gh_7Q2x...`), chosen by the caller.
#[derive(Clone, Copy)]
pub struct NewApiKey<'a> {
    /// The public id, unique.
    pub id: &'a str,
    /// The owning user's name.
    pub user: &'a str,
    /// A label for people, e.g. `laptop`.
    pub name: &'a str,
    /// The keyed digest of the secret part, computed by the caller.
    pub digest: &'a [u8],
    /// When the key stops working; `None` for never.
    pub expires_at: Option<Timestamp>,
}

impl fmt::Debug for NewApiKey<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NewApiKey")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A key as stored, with its owner's state so that one lookup answers authentication.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The public id.
    pub id: String,
    /// The owning user's name.
    pub user: String,
    /// A label for people.
    pub name: String,
    /// The keyed digest of the secret part.
    pub digest: Vec<u8>,
    /// When the key was issued.
    pub created_at: Timestamp,
    /// When the key stops working; `None` for never.
    pub expires_at: Option<Timestamp>,
    /// When the key was last used, to within [`crate::LAST_USED_GRANULARITY`].
    pub last_used_at: Option<Timestamp>,
    /// When the key was revoked; `None` while not revoked.
    pub revoked_at: Option<Timestamp>,
    /// When the owner was disabled; `None` while the owner is enabled.
    pub owner_disabled_at: Option<Timestamp>,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ApiKey")
            .field("id", &self.id)
            .field("user", &self.user)
            .field("name", &self.name)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("last_used_at", &self.last_used_at)
            .field("revoked_at", &self.revoked_at)
            .field("owner_disabled_at", &self.owner_disabled_at)
            .finish_non_exhaustive()
    }
}

/// Whether a key may authenticate, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiKeyStatus {
    /// The key may authenticate (its digest still has to match).
    Active,
    /// The key was revoked.
    Revoked,
    /// The key's expiry has passed.
    Expired,
    /// The key's owner is disabled.
    OwnerDisabled,
}

impl ApiKey {
    /// The key's status at `now`. Revocation is reported before expiry before the owner.
    pub fn status(&self, now: Timestamp) -> ApiKeyStatus {
        if self.revoked_at.is_some() {
            ApiKeyStatus::Revoked
        } else if self.expires_at.is_some_and(|expires_at| expires_at <= now) {
            ApiKeyStatus::Expired
        } else if self.owner_disabled_at.is_some() {
            ApiKeyStatus::OwnerDisabled
        } else {
            ApiKeyStatus::Active
        }
    }
}

/// How many keys and secrets this process remembers writing `last_used_at` for.
const LAST_USED_MEMORY_LIMIT: usize = 10_000;

const KEY_SELECT: &str = "SELECT k.id, k.user_name, k.name, k.digest, k.created_at, k.expires_at, \
     k.last_used_at, k.revoked_at, u.disabled_at AS owner_disabled_at \
     FROM api_keys k JOIN users u ON u.name = k.user_name";

impl Store {
    /// Stores a new key for an existing user.
    pub async fn add_api_key(&self, key: NewApiKey<'_>) -> StoreResult<ApiKey> {
        let created_at = Timestamp::now();
        sqlx::query(
            "INSERT INTO api_keys (id, user_name, name, digest, created_at, expires_at, last_used_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL)",
        )
        .bind(key.id)
        .bind(key.user)
        .bind(key.name)
        .bind(key.digest)
        .bind(created_at.as_unix_millis())
        .bind(key.expires_at.map(Timestamp::as_unix_millis))
        .execute(self.pool())
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::AlreadyExists {
                    kind: EntityKind::ApiKey,
                    name: key.id.to_owned(),
                }
            } else if is_foreign_key_violation(&error) {
                user_not_found(key.user)
            } else {
                database("adding an API key")(error)
            }
        })?;
        self.api_key(key.id)
            .await?
            .ok_or_else(|| api_key_not_found(key.id))
    }

    /// The key with public id `id`, or `None`: the lookup on every authenticated request.
    pub async fn api_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let sql = format!("{KEY_SELECT} WHERE k.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(database("looking up an API key"))?;
        row.as_ref()
            .map(api_key_from_row)
            .transpose()
            .map_err(database("looking up an API key"))
    }

    /// Every key, or every key of one user, by owner and creation.
    pub async fn list_api_keys(&self, user: Option<&str>) -> StoreResult<Vec<ApiKey>> {
        let sql = format!(
            "{KEY_SELECT} WHERE ($1 IS NULL OR k.user_name = $1) ORDER BY k.user_name, k.created_at, k.id"
        );
        let rows = sqlx::query(&sql)
            .bind(user)
            .fetch_all(self.pool())
            .await
            .map_err(database("listing API keys"))?;
        rows.iter()
            .map(api_key_from_row)
            .collect::<Result<_, _>>()
            .map_err(database("listing API keys"))
    }

    /// Revokes a key (keeping the first revocation time) and announces
    /// [`ChangeKind::ApiKeyRevoked`] so every replica closes its sessions.
    pub async fn revoke_api_key(&self, id: &str) -> StoreResult<ApiKey> {
        const OPERATION: &str = "revoking an API key";
        let mut transaction = self.begin_write(OPERATION).await?;
        let revoked =
            sqlx::query("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1")
                .bind(id)
                .bind(Timestamp::now().as_unix_millis())
                .execute(&mut *transaction)
                .await
                .map_err(database(OPERATION))?;
        if revoked.rows_affected() == 0 {
            return Err(api_key_not_found(id));
        }
        append_change(&mut transaction, &ChangeKind::ApiKeyRevoked, id).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        self.api_key(id).await?.ok_or_else(|| api_key_not_found(id))
    }

    /// Revokes every unrevoked key of `user` in one transaction, announcing each, and returns
    /// their ids: the key half of offboarding.
    pub async fn revoke_user_api_keys(&self, user: &str) -> StoreResult<Vec<String>> {
        const OPERATION: &str = "revoking a user's API keys";
        let mut transaction = self.begin_write(OPERATION).await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL RETURNING id",
        )
        .bind(user)
        .bind(Timestamp::now().as_unix_millis())
        .fetch_all(&mut *transaction)
        .await
        .map_err(database(OPERATION))?;
        for id in &ids {
            append_change(&mut transaction, &ChangeKind::ApiKeyRevoked, id).await?;
        }
        transaction.commit().await.map_err(database(OPERATION))?;
        if ids.is_empty() {
            self.user(user).await?;
        } else {
            self.changes_committed();
        }
        let mut ids = ids;
        ids.sort();
        Ok(ids)
    }

    /// Notes that key `id` was used at `now`. Cheap on the hot path: this process writes at
    /// most once per [`crate::LAST_USED_GRANULARITY`] per key, and the database skips the
    /// write when another replica recorded a use within that time.
    pub async fn record_api_key_use(&self, id: &str, now: Timestamp) -> StoreResult<()> {
        if !self.last_used_write_due(format!("api_key:{id}"), now) {
            return Ok(());
        }
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(now.as_unix_millis())
        .bind(
            now.saturating_sub(crate::LAST_USED_GRANULARITY)
                .as_unix_millis(),
        )
        .execute(self.pool())
        .await
        .map_err(database("recording an API key's use"))?;
        Ok(())
    }

    /// True when this process has not written `last_used_at` for `key` within the granularity;
    /// records `now` as written when it returns true.
    pub(crate) fn last_used_write_due(&self, key: String, now: Timestamp) -> bool {
        let mut written = self
            .inner
            .last_used_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let due = written.get(&key).is_none_or(|&last| {
            now >= last.saturating_add(crate::LAST_USED_GRANULARITY) || now < last
        });
        if due {
            // Ids come from requests; bound the memory an attacker's made-up ids can take.
            // Forgetting only costs a write per key.
            if written.len() >= LAST_USED_MEMORY_LIMIT {
                written.clear();
            }
            written.insert(key, now);
        }
        due
    }
}

fn api_key_not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: EntityKind::ApiKey,
        name: id.to_owned(),
    }
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKey, sqlx::Error> {
    let optional_time = |column: &str| crate::time::optional_time(row, column);
    Ok(ApiKey {
        id: row.try_get("id")?,
        user: row.try_get("user_name")?,
        name: row.try_get("name")?,
        digest: row.try_get("digest")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        expires_at: optional_time("expires_at")?,
        last_used_at: optional_time("last_used_at")?,
        revoked_at: optional_time("revoked_at")?,
        owner_disabled_at: optional_time("owner_disabled_at")?,
    })
}
