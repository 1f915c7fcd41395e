//! Where entries are kept: the [`ReceiptLog`] trait. Its methods are those of
//! `gatehouse-store`'s receipt repository, so the store implements it by forwarding; the
//! [`crate::MemoryLog`] implements it for tests and benchmarks.

use std::error::Error;
use std::future::Future;

use crate::checkpoint::Checkpoint;
use crate::entry::{ChainHead, NewReceipt, StoredReceipt};

/// An append-only, hash-chained log of entries with its checkpoints.
///
/// Contract, which [`crate::verify`] relies on and an implementation must keep:
/// - `append_receipts` numbers entries from the current head's seq + 1 without gaps and links
///   and hashes them as [`crate::chain::seal`] does, atomically for the whole batch, under a
///   lock that serializes appends from every writer of the log. The head is the newest entry,
///   or, when pruning deleted every entry, the anchor. A completion must name a stored (or
///   earlier in the batch) intent that has no completion yet, or an intent before the first
///   stored entry, pruned while its call was running, whose completion is not stored.
/// - `add_checkpoint` keeps a checkpoint only when the entry it names is stored with exactly
///   that hash, and at most one checkpoint per seq.
/// - reads return entries and checkpoints ascending by seq.
/// - `prune_through` deletes entries and checkpoints up to the anchor's seq and keeps the
///   anchor, atomically, only when the entry at the anchor's seq has the anchor's hash.
pub trait ReceiptLog: Send + Sync + 'static {
    /// Appends `receipts` in order, all or none, and returns each one's place in the chain.
    fn append_receipts(
        &self,
        receipts: &[NewReceipt],
    ) -> impl Future<Output = Result<Vec<ChainHead>, LogError>> + Send;

    /// Up to `limit` entries from sequence number `from_seq` on, ascending.
    fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<StoredReceipt>, LogError>> + Send;

    /// The newest entry's place in the chain (the anchor's, when pruning deleted every entry),
    /// or `None` when nothing was ever appended.
    fn chain_head(&self) -> impl Future<Output = Result<Option<ChainHead>, LogError>> + Send;

    /// Stores a checkpoint; see the contract above.
    fn add_checkpoint(
        &self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), LogError>> + Send;

    /// Up to `limit` checkpoints from sequence number `from_seq` on, ascending.
    fn checkpoints(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<Checkpoint>, LogError>> + Send;

    /// Deletes entries and checkpoints with seq up to `anchor.seq` and stores `anchor`, in one
    /// transaction; returns how many entries were deleted.
    fn prune_through(
        &self,
        anchor: &Checkpoint,
    ) -> impl Future<Output = Result<u64, LogError>> + Send;
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A checkpoint or anchor names an entry that is not stored with that hash.
    #[error("checkpoint at receipt {seq} does not match the stored receipt")]
    CheckpointMismatch {
        /// The checkpoint's sequence number.
        seq: i64,
    },
    /// The entry already has a checkpoint (another writer made it).
    #[error("receipt {seq} already has a checkpoint")]
    CheckpointExists {
        /// The checkpoint's sequence number.
        seq: i64,
    },
    /// A completion names something that is not an open intent.
    #[error("receipt {intent_seq} is not an intent awaiting completion")]
    NotAnOpenIntent {
        /// The sequence number the completion named.
        intent_seq: i64,
    },
    /// The log's storage failed.
    #[error("{operation} failed: {source}")]
    Storage {
        /// What was being done, e.g. `appending receipts`.
        operation: &'static str,
        /// The storage error.
        #[source]
        source: Box<dyn Error + Send + Sync>,
    },
}

impl LogError {
    /// A storage failure while doing `operation`.
    pub fn storage(
        operation: &'static str,
        source: impl Into<Box<dyn Error + Send + Sync>>,
    ) -> Self {
        Self::Storage {
            operation,
            source: source.into(),
        }
    }
}
