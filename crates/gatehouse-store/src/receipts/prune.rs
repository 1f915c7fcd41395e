//! Pruning: old receipts are deleted oldest first, in one transaction with the signed anchor
//! that the retained chain then starts from. The caller verifies and signs; the store checks
//! that the anchor names a stored receipt with exactly that hash.

use super::Checkpoint;
use super::checkpoints::insert_checkpoint;
use crate::error::{StoreError, StoreResult, database};
use crate::store::{Store, take_append_lock};

impl Store {
    /// Deletes every receipt and checkpoint with a sequence number up to `anchor.seq` and
    /// stores `anchor`, in one transaction under the append lock; returns how many receipts
    /// were deleted. Fails with [`StoreError::CheckpointMismatch`], deleting nothing, unless
    /// the receipt `anchor.seq` is stored with hash `anchor.head_hash`.
    pub async fn prune_receipts(&self, anchor: &Checkpoint) -> StoreResult<u64> {
        const OPERATION: &str = "pruning receipts";
        let mut transaction = self.begin_write(OPERATION).await?;
        take_append_lock(&mut transaction, "receipts", OPERATION).await?;
        let named: Option<(i64,)> =
            sqlx::query_as("SELECT seq FROM receipts WHERE seq = $1 AND hash = $2")
                .bind(anchor.seq)
                .bind(anchor.head_hash.as_str())
                .fetch_optional(&mut *transaction)
                .await
                .map_err(database(OPERATION))?;
        if named.is_none() {
            return Err(StoreError::CheckpointMismatch { seq: anchor.seq });
        }
        sqlx::query("DELETE FROM checkpoints WHERE seq <= $1")
            .bind(anchor.seq)
            .execute(&mut *transaction)
            .await
            .map_err(database(OPERATION))?;
        let deleted = sqlx::query("DELETE FROM receipts WHERE seq <= $1")
            .bind(anchor.seq)
            .execute(&mut *transaction)
            .await
            .map_err(database(OPERATION))?
            .rows_affected();
        insert_checkpoint(&mut transaction, anchor)
            .await
            .map_err(database(OPERATION))?;
        transaction.commit().await.map_err(database(OPERATION))?;
        Ok(deleted)
    }
}
