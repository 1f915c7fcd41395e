//! The audit log kept in the store: the store already chains receipts with the same hash as
//! the audit crate, so this adapter only converts between the two crates' plain row types.

use gatehouse_audit::{
    ChainHead, Checkpoint, LogError, NewReceipt, ReceiptIndex, ReceiptKind, ReceiptLog,
    StoredReceipt, Timestamp,
};
use gatehouse_store::{Store, StoreError};

/// The store as an audit log.
#[derive(Clone)]
pub struct StoreLog(pub Store);

fn to_store_time(time: Timestamp) -> gatehouse_store::Timestamp {
    gatehouse_store::Timestamp::from_unix_millis(time.as_unix_millis())
}

fn from_store_time(time: gatehouse_store::Timestamp) -> Timestamp {
    Timestamp::from_unix_millis(time.as_unix_millis())
}

fn to_store_kind(kind: ReceiptKind) -> gatehouse_store::ReceiptKind {
    match kind {
        ReceiptKind::Decision => gatehouse_store::ReceiptKind::Decision,
        ReceiptKind::Intent => gatehouse_store::ReceiptKind::Intent,
        ReceiptKind::Completion { intent_seq } => {
            gatehouse_store::ReceiptKind::Completion { intent_seq }
        }
    }
}

fn from_store_kind(kind: gatehouse_store::ReceiptKind) -> ReceiptKind {
    match kind {
        gatehouse_store::ReceiptKind::Decision => ReceiptKind::Decision,
        gatehouse_store::ReceiptKind::Intent => ReceiptKind::Intent,
        gatehouse_store::ReceiptKind::Completion { intent_seq } => {
            ReceiptKind::Completion { intent_seq }
        }
    }
}

fn to_store_index(index: &ReceiptIndex) -> gatehouse_store::ReceiptIndex {
    gatehouse_store::ReceiptIndex {
        user: index.user.clone(),
        server: index.server.clone(),
        tool: index.tool.clone(),
        decision: index.decision.clone(),
        outcome: index.outcome.clone(),
    }
}

fn from_store_index(index: gatehouse_store::ReceiptIndex) -> ReceiptIndex {
    ReceiptIndex {
        user: index.user,
        server: index.server,
        tool: index.tool,
        decision: index.decision,
        outcome: index.outcome,
    }
}

fn from_store_receipt(stored: gatehouse_store::StoredReceipt) -> StoredReceipt {
    StoredReceipt {
        seq: stored.seq,
        recorded_at: from_store_time(stored.recorded_at),
        kind: from_store_kind(stored.kind),
        index: from_store_index(stored.index),
        body: stored.body,
        prev_hash: stored.prev_hash,
        hash: stored.hash,
    }
}

fn to_store_checkpoint(checkpoint: &Checkpoint) -> gatehouse_store::Checkpoint {
    gatehouse_store::Checkpoint {
        seq: checkpoint.seq,
        head_hash: checkpoint.head_hash.clone(),
        signature: checkpoint.signature.clone(),
        key_id: checkpoint.key_id.clone(),
        created_at: to_store_time(checkpoint.created_at),
    }
}

fn from_store_checkpoint(checkpoint: gatehouse_store::Checkpoint) -> Checkpoint {
    Checkpoint {
        seq: checkpoint.seq,
        head_hash: checkpoint.head_hash,
        signature: checkpoint.signature,
        key_id: checkpoint.key_id,
        created_at: from_store_time(checkpoint.created_at),
    }
}

fn storage(operation: &'static str) -> impl Fn(StoreError) -> LogError {
    move |error| LogError::storage(operation, error)
}

impl ReceiptLog for StoreLog {
    async fn append_receipts(&self, receipts: &[NewReceipt]) -> Result<Vec<ChainHead>, LogError> {
        let rows: Vec<gatehouse_store::NewReceipt> = receipts
            .iter()
            .map(|receipt| gatehouse_store::NewReceipt {
                recorded_at: to_store_time(receipt.recorded_at),
                kind: to_store_kind(receipt.kind),
                index: to_store_index(&receipt.index),
                body: receipt.body.clone(),
            })
            .collect();
        let heads = self
            .0
            .append_receipts(&rows)
            .await
            .map_err(|error| match error {
                StoreError::NotAnIntent { intent_seq }
                | StoreError::IntentAlreadyCompleted { intent_seq } => {
                    LogError::NotAnOpenIntent { intent_seq }
                }
                other => LogError::storage("appending receipts", other),
            })?;
        Ok(heads
            .into_iter()
            .map(|head| ChainHead {
                seq: head.seq,
                hash: head.hash,
            })
            .collect())
    }

    async fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>, LogError> {
        let rows = self
            .0
            .receipts_range(from_seq, limit)
            .await
            .map_err(storage("reading receipts"))?;
        Ok(rows.into_iter().map(from_store_receipt).collect())
    }

    async fn chain_head(&self) -> Result<Option<ChainHead>, LogError> {
        let head = self
            .0
            .chain_head()
            .await
            .map_err(storage("reading the chain head"))?;
        Ok(head.map(|head| ChainHead {
            seq: head.seq,
            hash: head.hash,
        }))
    }

    async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), LogError> {
        self.0
            .add_checkpoint(&to_store_checkpoint(checkpoint))
            .await
            .map_err(|error| match error {
                StoreError::AlreadyExists { .. } => LogError::CheckpointExists {
                    seq: checkpoint.seq,
                },
                StoreError::CheckpointMismatch { .. } => LogError::CheckpointMismatch {
                    seq: checkpoint.seq,
                },
                other => LogError::storage("adding a checkpoint", other),
            })
    }

    async fn checkpoints(&self, from_seq: i64, limit: u32) -> Result<Vec<Checkpoint>, LogError> {
        let rows = self
            .0
            .checkpoints(from_seq, limit)
            .await
            .map_err(storage("reading checkpoints"))?;
        Ok(rows.into_iter().map(from_store_checkpoint).collect())
    }

    async fn prune_through(&self, anchor: &Checkpoint) -> Result<u64, LogError> {
        self.0
            .prune_receipts(&to_store_checkpoint(anchor))
            .await
            .map_err(|error| match error {
                StoreError::CheckpointMismatch { .. } => {
                    LogError::CheckpointMismatch { seq: anchor.seq }
                }
                other => LogError::storage("pruning receipts", other),
            })
    }
}
