//! Upstream secrets, sealed by the caller. The store keeps ciphertext and nonce only; it never
//! sees a value or the key. A secret is a service credential or one user's own credential for
//! an upstream (the same name may exist in both scopes). Rotation is optimistic: the caller
//! names the version it read, so two concurrent rotations cannot silently overwrite each other.

use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::changes::{ChangeKind, append_change};
use crate::error::{
    EntityKind, StoreError, StoreResult, database, is_foreign_key_violation, is_unique_violation,
};
use crate::store::Store;
use crate::time::Timestamp;

/// Names one secret: a service credential, or a user's own credential of that name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SecretRef<'a> {
    /// The secret's name, e.g. `github`.
    pub name: &'a str,
    /// The user whose credential it is; `None` for the service credential.
    pub user: Option<&'a str>,
}

impl<'a> SecretRef<'a> {
    /// The service credential `name`.
    pub fn service(name: &'a str) -> Self {
        Self { name, user: None }
    }

    /// `user`'s own credential `name`.
    pub fn of_user(name: &'a str, user: &'a str) -> Self {
        Self {
            name,
            user: Some(user),
        }
    }
}

/// The credential id receipts name: `NAME` for a service credential, `NAME@USER` for a user's.
impl fmt::Display for SecretRef<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.user {
            None => formatter.write_str(self.name),
            Some(user) => write!(formatter, "{}@{user}", self.name),
        }
    }
}

/// A secret to add, already sealed by the caller.
#[derive(Clone, Copy)]
pub struct NewSecret<'a> {
    /// Which secret.
    pub secret: SecretRef<'a>,
    /// The team answerable for it, if any.
    pub owner_team: Option<&'a str>,
    /// What it is for.
    pub description: &'a str,
    /// The sealed value.
    pub ciphertext: &'a [u8],
    /// The nonce it was sealed with.
    pub nonce: &'a [u8],
}

impl fmt::Debug for NewSecret<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("NewSecret")
            .field("secret", &self.secret)
            .field("owner_team", &self.owner_team)
            .field("description", &self.description)
            .finish_non_exhaustive()
    }
}

/// What may be shown about a secret: everything but the sealed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretMetadata {
    /// The secret's name.
    pub name: String,
    /// The user whose credential it is; `None` for a service credential.
    pub user: Option<String>,
    /// The team answerable for it.
    pub owner_team: Option<String>,
    /// What it is for.
    pub description: String,
    /// 1 when added, one more at each rotation.
    pub version: i64,
    /// When it was added.
    pub created_at: Timestamp,
    /// When it was last rotated.
    pub rotated_at: Option<Timestamp>,
    /// When it was last used, to within [`crate::LAST_USED_GRANULARITY`].
    pub last_used_at: Option<Timestamp>,
}

impl SecretMetadata {
    /// The reference to this secret.
    pub fn secret_ref(&self) -> SecretRef<'_> {
        SecretRef {
            name: &self.name,
            user: self.user.as_deref(),
        }
    }
}

/// A secret with its sealed value, for the caller to open.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// Everything but the value.
    pub metadata: SecretMetadata,
    /// The sealed value.
    pub ciphertext: Vec<u8>,
    /// The nonce it was sealed with.
    pub nonce: Vec<u8>,
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SealedSecret")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

const METADATA_COLUMNS: &str =
    "name, user_name, owner_team, description, version, created_at, rotated_at, last_used_at";

/// Selects one secret by `$1` (name) and `$2` (user, NULL for the service credential).
const WHERE_SECRET: &str = "name = $1 AND user_name IS NOT DISTINCT FROM $2";

impl Store {
    /// Stores a new secret at version 1.
    pub async fn add_secret(&self, secret: NewSecret<'_>) -> StoreResult<SecretMetadata> {
        let sql = format!(
            "INSERT INTO secrets (name, user_name, owner_team, description, ciphertext, nonce, version, created_at, rotated_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 1, $7, NULL, NULL) RETURNING {METADATA_COLUMNS}"
        );
        let inserted = sqlx::query(&sql)
            .bind(secret.secret.name)
            .bind(secret.secret.user)
            .bind(secret.owner_team)
            .bind(secret.description)
            .bind(secret.ciphertext)
            .bind(secret.nonce)
            .bind(Timestamp::now().as_unix_millis())
            .fetch_one(self.pool())
            .await;
        match inserted {
            Ok(row) => metadata_from_row(&row).map_err(database("adding a secret")),
            Err(error) if is_unique_violation(&error) => Err(StoreError::AlreadyExists {
                kind: EntityKind::Secret,
                name: secret.secret.to_string(),
            }),
            Err(error) if is_foreign_key_violation(&error) => {
                if let Some(user) = secret.secret.user {
                    self.user(user).await?;
                }
                Err(StoreError::NotFound {
                    kind: EntityKind::Team,
                    name: secret.owner_team.unwrap_or_default().to_owned(),
                })
            }
            Err(error) => Err(database("adding a secret")(error)),
        }
    }

    /// The secret with its sealed value.
    pub async fn secret(&self, secret: SecretRef<'_>) -> StoreResult<SealedSecret> {
        let sql = format!(
            "SELECT {METADATA_COLUMNS}, ciphertext, nonce FROM secrets WHERE {WHERE_SECRET}"
        );
        let row = sqlx::query(&sql)
            .bind(secret.name)
            .bind(secret.user)
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading a secret"))?
            .ok_or_else(|| secret_not_found(secret))?;
        let sealed = || -> Result<SealedSecret, sqlx::Error> {
            Ok(SealedSecret {
                metadata: metadata_from_row(&row)?,
                ciphertext: row.try_get("ciphertext")?,
                nonce: row.try_get("nonce")?,
            })
        };
        sealed().map_err(database("reading a secret"))
    }

    /// Every secret's metadata, service credentials first, then by name and user. No value is
    /// read.
    pub async fn list_secrets(&self) -> StoreResult<Vec<SecretMetadata>> {
        let sql = format!(
            "SELECT {METADATA_COLUMNS} FROM secrets \
             ORDER BY CASE WHEN user_name IS NULL THEN 0 ELSE 1 END, name, user_name"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(database("listing secrets"))?;
        rows.iter()
            .map(metadata_from_row)
            .collect::<Result<_, _>>()
            .map_err(database("listing secrets"))
    }

    /// Replaces the sealed value of a secret that is at `expected_version`, making it
    /// `expected_version + 1`, and announces [`ChangeKind::SecretRotated`]. Fails with
    /// [`StoreError::SecretVersionConflict`] when someone rotated it meanwhile.
    pub async fn rotate_secret(
        &self,
        secret: SecretRef<'_>,
        expected_version: i64,
        ciphertext: &[u8],
        nonce: &[u8],
    ) -> StoreResult<SecretMetadata> {
        const OPERATION: &str = "rotating a secret";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!(
            "UPDATE secrets SET ciphertext = $3, nonce = $4, version = version + 1, rotated_at = $5 \
             WHERE {WHERE_SECRET} AND version = $6 RETURNING {METADATA_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(secret.name)
            .bind(secret.user)
            .bind(ciphertext)
            .bind(nonce)
            .bind(Timestamp::now().as_unix_millis())
            .bind(expected_version)
            .fetch_optional(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        let Some(row) = row else {
            drop(transaction);
            let current = self.secret(secret).await?;
            return Err(StoreError::SecretVersionConflict {
                secret: secret.to_string(),
                expected: expected_version,
                actual: current.metadata.version,
            });
        };
        let metadata = metadata_from_row(&row).map_err(database(OPERATION))?;
        append_change(
            &mut transaction,
            &ChangeKind::SecretRotated,
            &secret.to_string(),
        )
        .await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(metadata)
    }

    /// Gives a secret another owning team, or none.
    pub async fn set_secret_owner(
        &self,
        secret: SecretRef<'_>,
        owner_team: Option<&str>,
    ) -> StoreResult<SecretMetadata> {
        let sql = format!(
            "UPDATE secrets SET owner_team = $3 WHERE {WHERE_SECRET} RETURNING {METADATA_COLUMNS}"
        );
        let updated = sqlx::query(&sql)
            .bind(secret.name)
            .bind(secret.user)
            .bind(owner_team)
            .fetch_optional(self.pool())
            .await;
        match updated {
            Ok(Some(row)) => metadata_from_row(&row).map_err(database("changing a secret's owner")),
            Ok(None) => Err(secret_not_found(secret)),
            Err(error) if is_foreign_key_violation(&error) => Err(StoreError::NotFound {
                kind: EntityKind::Team,
                name: owner_team.unwrap_or_default().to_owned(),
            }),
            Err(error) => Err(database("changing a secret's owner")(error)),
        }
    }

    /// Removes a secret and announces [`ChangeKind::SecretRemoved`].
    pub async fn remove_secret(&self, secret: SecretRef<'_>) -> StoreResult<()> {
        const OPERATION: &str = "removing a secret";
        let mut transaction = self.begin_write(OPERATION).await?;
        let sql = format!("DELETE FROM secrets WHERE {WHERE_SECRET}");
        let removed = sqlx::query(&sql)
            .bind(secret.name)
            .bind(secret.user)
            .execute(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        if removed.rows_affected() == 0 {
            return Err(secret_not_found(secret));
        }
        append_change(
            &mut transaction,
            &ChangeKind::SecretRemoved,
            &secret.to_string(),
        )
        .await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(())
    }

    /// Notes that a secret was used at `now`; throttled like [`Store::record_api_key_use`].
    pub async fn record_secret_use(
        &self,
        secret: SecretRef<'_>,
        now: Timestamp,
    ) -> StoreResult<()> {
        if !self.last_used_write_due(format!("secret:{secret}"), now) {
            return Ok(());
        }
        let sql = format!(
            "UPDATE secrets SET last_used_at = $3 WHERE {WHERE_SECRET} AND (last_used_at IS NULL OR last_used_at < $4)"
        );
        sqlx::query(&sql)
            .bind(secret.name)
            .bind(secret.user)
            .bind(now.as_unix_millis())
            .bind(
                now.saturating_sub(crate::LAST_USED_GRANULARITY)
                    .as_unix_millis(),
            )
            .execute(self.pool())
            .await
            .map_err(database("recording a secret's use"))?;
        Ok(())
    }
}

fn secret_not_found(secret: SecretRef<'_>) -> StoreError {
    StoreError::NotFound {
        kind: EntityKind::Secret,
        name: secret.to_string(),
    }
}

fn metadata_from_row(row: &AnyRow) -> Result<SecretMetadata, sqlx::Error> {
    let optional_time = |column: &str| crate::time::optional_time(row, column);
    Ok(SecretMetadata {
        name: row.try_get("name")?,
        user: row.try_get("user_name")?,
        owner_team: row.try_get("owner_team")?,
        description: row.try_get("description")?,
        version: row.try_get("version")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        rotated_at: optional_time("rotated_at")?,
        last_used_at: optional_time("last_used_at")?,
    })
}
