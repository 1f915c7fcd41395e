//! Users: people known to the gateway by a unique name. Disabling keeps the row (and its
//! history) and is announced to every replica as a change event; removing deletes the user's
//! memberships, API keys and per-user secrets with it.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::changes::{ChangeKind, append_change};
use crate::error::{EntityKind, StoreError, StoreResult, database, is_unique_violation};
use crate::store::Store;
use crate::time::Timestamp;

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The unique name, e.g. `alice`; what policies, keys and receipts refer to.
    pub name: String,
    /// A human-readable name, e.g. `Alice Liddell`.
    pub display_name: String,
    /// When the user was added.
    pub created_at: Timestamp,
    /// When the user was disabled; `None` while enabled.
    pub disabled_at: Option<Timestamp>,
}

impl User {
    /// True when the user may not authenticate.
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

const USER_COLUMNS: &str = "name, display_name, created_at, disabled_at";

impl Store {
    /// Adds an enabled user.
    pub async fn add_user(&self, name: &str, display_name: &str) -> StoreResult<User> {
        let user = User {
            name: name.to_owned(),
            display_name: display_name.to_owned(),
            created_at: Timestamp::now(),
            disabled_at: None,
        };
        sqlx::query(
            "INSERT INTO users (name, display_name, created_at, disabled_at) VALUES ($1, $2, $3, NULL)",
        )
        .bind(name)
        .bind(display_name)
        .bind(user.created_at.as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::AlreadyExists {
                    kind: EntityKind::User,
                    name: name.to_owned(),
                }
            } else {
                database("adding a user")(error)
            }
        })?;
        Ok(user)
    }

    /// The user named `name`.
    pub async fn user(&self, name: &str) -> StoreResult<User> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1");
        let row = sqlx::query(&sql)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading a user"))?;
        match row {
            Some(row) => user_from_row(&row).map_err(database("reading a user")),
            None => Err(user_not_found(name)),
        }
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> StoreResult<Vec<User>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY name");
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(database("listing users"))?;
        rows.iter()
            .map(user_from_row)
            .collect::<Result<_, _>>()
            .map_err(database("listing users"))
    }

    /// Disables the user (keeping the first disabling time if already disabled) and announces
    /// [`ChangeKind::UserDisabled`] so every replica cuts the user's sessions.
    pub async fn disable_user(&self, name: &str) -> StoreResult<User> {
        self.set_user_disabled(name, Some(Timestamp::now()), ChangeKind::UserDisabled)
            .await
    }

    /// Enables a disabled user again and announces [`ChangeKind::UserEnabled`].
    pub async fn enable_user(&self, name: &str) -> StoreResult<User> {
        self.set_user_disabled(name, None, ChangeKind::UserEnabled)
            .await
    }

    /// Removes the user with their memberships, API keys and per-user secrets, and announces
    /// [`ChangeKind::UserRemoved`].
    pub async fn remove_user(&self, name: &str) -> StoreResult<()> {
        const OPERATION: &str = "removing a user";
        let mut transaction = self.begin_write(OPERATION).await?;
        let removed = sqlx::query("DELETE FROM users WHERE name = $1")
            .bind(name)
            .execute(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        if removed.rows_affected() == 0 {
            return Err(user_not_found(name));
        }
        append_change(&mut transaction, &ChangeKind::UserRemoved, name).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(())
    }

    async fn set_user_disabled(
        &self,
        name: &str,
        disabled_at: Option<Timestamp>,
        change: ChangeKind,
    ) -> StoreResult<User> {
        const OPERATION: &str = "disabling or enabling a user";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!(
            "UPDATE users SET disabled_at = CASE WHEN $2 IS NULL THEN NULL ELSE COALESCE(disabled_at, $2) END \
             WHERE name = $1 RETURNING {USER_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(name)
            .bind(disabled_at.map(Timestamp::as_unix_millis))
            .fetch_optional(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        let Some(row) = row else {
            return Err(user_not_found(name));
        };
        let user = user_from_row(&row).map_err(database(OPERATION))?;
        append_change(&mut transaction, &change, name).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(user)
    }
}

pub(crate) fn user_not_found(name: &str) -> StoreError {
    StoreError::NotFound {
        kind: EntityKind::User,
        name: name.to_owned(),
    }
}

fn user_from_row(row: &AnyRow) -> Result<User, sqlx::Error> {
    Ok(User {
        name: row.try_get("name")?,
        display_name: row.try_get("display_name")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        disabled_at: row
            .try_get::<Option<i64>, _>("disabled_at")?
            .map(Timestamp::from_unix_millis),
    })
}
