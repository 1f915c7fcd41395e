//! Checkpoints: signed statements of the chain head at a receipt. The caller signs; the store
//! keeps a checkpoint only when it names a stored receipt with exactly that hash.

use std::fmt;

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{EntityKind, StoreError, StoreResult, database, is_unique_violation};
use crate::store::Store;
use crate::time::Timestamp;

/// A signed chain head.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number of the receipt signed.
    pub seq: i64,
    /// That receipt's hash.
    pub head_hash: String,
    /// The signature (Ed25519) over the head, as the caller defines it.
    pub signature: Vec<u8>,
    /// Which signing key made it.
    pub key_id: String,
    /// When it was made.
    pub created_at: Timestamp,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Checkpoint")
            .field("seq", &self.seq)
            .field("head_hash", &self.head_hash)
            .field("signature_len", &self.signature.len())
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .finish()
    }
}

const CHECKPOINT_COLUMNS: &str = "seq, head_hash, signature, key_id, created_at";

/// Inserts `checkpoint` as it is, unchecked: for pruning, which checks the anchor itself.
pub(super) async fn insert_checkpoint(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    checkpoint: &Checkpoint,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO checkpoints (seq, head_hash, signature, key_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(checkpoint.seq)
    .bind(checkpoint.head_hash.as_str())
    .bind(checkpoint.signature.as_slice())
    .bind(checkpoint.key_id.as_str())
    .bind(checkpoint.created_at.as_unix_millis())
    .execute(&mut **transaction)
    .await?;
    Ok(())
}

impl Store {
    /// Stores a checkpoint. Fails with [`StoreError::CheckpointMismatch`] unless the receipt
    /// `seq` exists with hash `head_hash`, and with [`StoreError::AlreadyExists`] when that
    /// receipt already has a checkpoint.
    pub async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> StoreResult<()> {
        let added = sqlx::query(
            "INSERT INTO checkpoints (seq, head_hash, signature, key_id, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM receipts WHERE seq = $1 AND hash = $2)",
        )
        .bind(checkpoint.seq)
        .bind(checkpoint.head_hash.as_str())
        .bind(checkpoint.signature.as_slice())
        .bind(checkpoint.key_id.as_str())
        .bind(checkpoint.created_at.as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(|error| {
            if is_unique_violation(&error) {
                StoreError::AlreadyExists {
                    kind: EntityKind::Checkpoint,
                    name: checkpoint.seq.to_string(),
                }
            } else {
                database("adding a checkpoint")(error)
            }
        })?;
        if added.rows_affected() == 0 {
            return Err(StoreError::CheckpointMismatch {
                seq: checkpoint.seq,
            });
        }
        Ok(())
    }

    /// The checkpoint with the highest sequence number, if any.
    pub async fn latest_checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        let sql = format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY seq DESC LIMIT 1");
        let row = sqlx::query(&sql)
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading checkpoints"))?;
        row.as_ref()
            .map(checkpoint_from_row)
            .transpose()
            .map_err(database("reading checkpoints"))
    }

    /// Up to `limit` checkpoints from sequence number `from_seq` on, ascending.
    pub async fn checkpoints(&self, from_seq: i64, limit: u32) -> StoreResult<Vec<Checkpoint>> {
        let sql = format!(
            "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE seq >= $1 ORDER BY seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(from_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(database("reading checkpoints"))?;
        rows.iter()
            .map(checkpoint_from_row)
            .collect::<Result<_, _>>()
            .map_err(database("reading checkpoints"))
    }
}

fn checkpoint_from_row(row: &AnyRow) -> Result<Checkpoint, sqlx::Error> {
    Ok(Checkpoint {
        seq: row.try_get("seq")?,
        head_hash: row.try_get("head_hash")?,
        signature: row.try_get("signature")?,
        key_id: row.try_get("key_id")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
    })
}
