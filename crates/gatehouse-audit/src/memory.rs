//! An in-memory [`ReceiptLog`], for tests and benchmarks. It keeps the trait's contract like a
//! database would, and can be taken apart and rebuilt so tests can tamper with it; reads
//! then behave like a database's, ascending by seq whatever the stored order.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard};

use crate::chain::seal;
use crate::checkpoint::Checkpoint;
use crate::entry::{ChainHead, NewReceipt, ReceiptKind, StoredReceipt};
use crate::log::{LogError, ReceiptLog};

/// A log kept in memory.
#[derive(Debug, Default)]
pub struct MemoryLog {
    state: Mutex<MemoryState>,
}

/// The raw contents of a [`MemoryLog`]: entries and checkpoints, in stored order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryState {
    /// The entries, ascending by seq in an untouched log.
    pub receipts: Vec<StoredReceipt>,
    /// The checkpoints, ascending by seq in an untouched log.
    pub checkpoints: Vec<Checkpoint>,
}

impl MemoryLog {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// A log holding exactly `state`, unchecked: for tests that tamper with a log.
    pub fn from_state(state: MemoryState) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }

    /// A copy of the log's contents.
    pub fn snapshot(&self) -> Result<MemoryState, LogError> {
        Ok(self.lock("reading the log")?.clone())
    }

    fn lock(&self, operation: &'static str) -> Result<MutexGuard<'_, MemoryState>, LogError> {
        self.state
            .lock()
            .map_err(|_| LogError::storage(operation, "the in-memory log's lock is poisoned"))
    }

    fn append_now(&self, receipts: &[NewReceipt]) -> Result<Vec<ChainHead>, LogError> {
        let mut state = self.lock("appending receipts")?;
        let head = head_of(&state);
        check_completions(&state.receipts, head.as_ref(), receipts)?;
        let sealed = seal(head.as_ref(), receipts);
        let heads = sealed.iter().map(StoredReceipt::head).collect();
        state.receipts.extend(sealed);
        Ok(heads)
    }

    fn add_checkpoint_now(&self, checkpoint: &Checkpoint) -> Result<(), LogError> {
        let mut state = self.lock("adding a checkpoint")?;
        if !holds(&state.receipts, checkpoint) {
            return Err(LogError::CheckpointMismatch {
                seq: checkpoint.seq,
            });
        }
        let position = state
            .checkpoints
            .partition_point(|stored| stored.seq < checkpoint.seq);
        if state
            .checkpoints
            .get(position)
            .is_some_and(|stored| stored.seq == checkpoint.seq)
        {
            return Err(LogError::CheckpointExists {
                seq: checkpoint.seq,
            });
        }
        state.checkpoints.insert(position, checkpoint.clone());
        Ok(())
    }

    fn prune_now(&self, anchor: &Checkpoint) -> Result<u64, LogError> {
        let mut state = self.lock("pruning receipts")?;
        if !holds(&state.receipts, anchor) {
            return Err(LogError::CheckpointMismatch { seq: anchor.seq });
        }
        let before = state.receipts.len();
        state.receipts.retain(|receipt| receipt.seq > anchor.seq);
        state.checkpoints.retain(|stored| stored.seq > anchor.seq);
        state.checkpoints.insert(0, anchor.clone());
        Ok(u64::try_from(before - state.receipts.len()).unwrap_or(u64::MAX))
    }
}

/// The newest entry's place in the chain or, when pruning deleted every entry, the anchor's:
/// no checkpoint can follow the last entry, so the last checkpoint is then the anchor.
fn head_of(state: &MemoryState) -> Option<ChainHead> {
    state
        .receipts
        .last()
        .map(StoredReceipt::head)
        .or_else(|| state.checkpoints.last().map(Checkpoint::head))
}

/// Whether `receipts` (ascending) hold the entry a checkpoint names, with its hash.
fn holds(receipts: &[StoredReceipt], checkpoint: &Checkpoint) -> bool {
    let position = receipts.partition_point(|receipt| receipt.seq < checkpoint.seq);
    receipts.get(position).is_some_and(|receipt| {
        receipt.seq == checkpoint.seq && receipt.hash == checkpoint.head_hash
    })
}

/// Checks every completion in `batch` names an open intent, stored or earlier in the batch.
fn check_completions(
    stored: &[StoredReceipt],
    head: Option<&ChainHead>,
    batch: &[NewReceipt],
) -> Result<(), LogError> {
    let head_seq = head.map_or(0, |head| head.seq);
    let mut batch_intents = HashSet::new();
    let mut completed = HashSet::new();
    for (offset, receipt) in (1..).zip(batch) {
        match receipt.kind {
            ReceiptKind::Intent => {
                batch_intents.insert(head_seq + offset);
            }
            ReceiptKind::Decision => {}
            ReceiptKind::Completion { intent_seq } => {
                let open = completed.insert(intent_seq)
                    && if intent_seq > head_seq {
                        batch_intents.contains(&intent_seq)
                    } else {
                        is_open_intent(stored, intent_seq)
                    };
                if !open {
                    return Err(LogError::NotAnOpenIntent { intent_seq });
                }
            }
        }
    }
    Ok(())
}

fn is_open_intent(stored: &[StoredReceipt], intent_seq: i64) -> bool {
    let first_seq = stored.first().map_or(i64::MAX, |receipt| receipt.seq);
    if (1..first_seq).contains(&intent_seq) {
        // Pruned while its call ran: open unless its completion is stored.
        return !stored
            .iter()
            .any(|receipt| receipt.kind.intent_seq() == Some(intent_seq));
    }
    let position = stored.partition_point(|receipt| receipt.seq < intent_seq);
    let is_intent = stored
        .get(position)
        .is_some_and(|receipt| receipt.seq == intent_seq && receipt.kind == ReceiptKind::Intent);
    // Completions follow their intent, so only the entries after it need searching.
    is_intent
        && !stored
            .get(position..)
            .unwrap_or_default()
            .iter()
            .any(|receipt| receipt.kind.intent_seq() == Some(intent_seq))
}

/// Up to `limit` of `items` with seq from `from_seq` on, ascending by seq, as a database's
/// `WHERE seq >= $1 ORDER BY seq LIMIT $2` returns them, even from a tampered, unordered log.
fn ascending_from<T: Clone>(
    items: &[T],
    seq_of: impl Fn(&T) -> i64,
    from_seq: i64,
    limit: u32,
) -> Vec<T> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.is_sorted_by_key(&seq_of) {
        let start = items.partition_point(|item| seq_of(item) < from_seq);
        return items
            .get(start..)
            .unwrap_or_default()
            .iter()
            .take(limit)
            .cloned()
            .collect();
    }
    let mut selected: Vec<&T> = items
        .iter()
        .filter(|item| seq_of(item) >= from_seq)
        .collect();
    selected.sort_by_key(|item| seq_of(item));
    selected.into_iter().take(limit).cloned().collect()
}

impl ReceiptLog for MemoryLog {
    async fn append_receipts(&self, receipts: &[NewReceipt]) -> Result<Vec<ChainHead>, LogError> {
        self.append_now(receipts)
    }

    async fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>, LogError> {
        let state = self.lock("reading receipts")?;
        Ok(ascending_from(
            &state.receipts,
            |receipt| receipt.seq,
            from_seq,
            limit,
        ))
    }

    async fn chain_head(&self) -> Result<Option<ChainHead>, LogError> {
        let state = self.lock("reading the chain head")?;
        Ok(head_of(&state))
    }

    async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), LogError> {
        self.add_checkpoint_now(checkpoint)
    }

    async fn checkpoints(&self, from_seq: i64, limit: u32) -> Result<Vec<Checkpoint>, LogError> {
        let state = self.lock("reading checkpoints")?;
        Ok(ascending_from(
            &state.checkpoints,
            |checkpoint| checkpoint.seq,
            from_seq,
            limit,
        ))
    }

    async fn prune_through(&self, anchor: &Checkpoint) -> Result<u64, LogError> {
        self.prune_now(anchor)
    }
}
