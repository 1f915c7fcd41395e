//! Verification: walks a log's chain from its start (genesis, or the signed anchor left by
//! pruning) to its head and reports every place where it is not what the writer wrote, first
//! bad sequence number first, and the calls whose outcome is unknown.
//!
//! What each kind of tampering looks like here:
//! - a changed byte in an entry: its hash no longer matches its columns ([`Problem::Altered`]);
//! - a deleted entry: a gap in the sequence ([`Problem::OutOfSequence`]), or, if the later
//!   entries were renumbered, a link to an entry never seen ([`Problem::BrokenLink`]);
//! - an inserted entry: a repeated sequence number, or, if renumbered, the next entry linking
//!   past it to the one before ([`Problem::Inserted`]);
//! - two entries swapped: each links to the wrong predecessor at the first of them;
//! - a truncated tail: a checkpoint names an entry that is gone ([`Problem::CheckpointBeyondHead`]);
//! - a chain rewritten with recomputed hashes: internally consistent, but the checkpoints signed
//!   before the rewrite no longer match ([`Problem::CheckpointMismatch`]), and new ones cannot
//!   be signed without the key ([`Problem::CheckpointInvalid`]);
//! - an old checkpoint replayed, i.e. a log rolled back to an older, validly signed state: found
//!   against checkpoints exported and kept elsewhere ([`VerifyOptions::trusted_checkpoints`]),
//!   which then lie beyond the head or do not match, and which must themselves go forwards
//!   ([`Problem::CheckpointOutOfOrder`]).
//!
//! Entries after the last checkpoint can be cut off without a trace except against an exported
//! checkpoint; [`Report::unsigned_tail`] says how many there are, and the writer keeps it short.

mod walk;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry::ChainHead;
use crate::keys::TrustedKeys;
use crate::log::{LogError, ReceiptLog};

/// How to verify.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Checkpoints kept outside the log (exported JSON lines), in the order they were exported.
    /// Each must verify, go forwards, and match the log unless pruned away.
    pub trusted_checkpoints: Vec<Checkpoint>,
    /// How many entries to read at a time.
    pub page_size: u32,
    /// At most this many chain problems are collected; the first are always kept.
    pub max_problems: usize,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self {
            trusted_checkpoints: Vec::new(),
            page_size: 10_000,
            max_problems: 1_000,
        }
    }
}

/// What verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// How many entries were read.
    pub receipts: u64,
    /// The first entry's seq.
    pub first_seq: Option<i64>,
    /// The last entry's place in the chain.
    pub head: Option<ChainHead>,
    /// The seq of the signed anchor the chain starts from, after pruning.
    pub anchor_seq: Option<i64>,
    /// How many checkpoints (from the log and trusted) verified and matched the chain.
    pub checkpoints_matched: u64,
    /// The highest seq with a matching checkpoint.
    pub last_matched_checkpoint: Option<i64>,
    /// How many entries follow the last matching checkpoint: these could be truncated without
    /// a trace unless a checkpoint was exported elsewhere.
    pub unsigned_tail: u64,
    /// Everything wrong, ascending by [`Problem::seq`]; empty when the log is intact.
    pub problems: Vec<Problem>,
    /// Intents whose outcome is unknown: never completed, or completed as `unknown`.
    pub unknown_outcomes: Vec<UnknownOutcome>,
}

impl Report {
    /// Whether no problem was found.
    pub fn is_intact(&self) -> bool {
        self.problems.is_empty()
    }

    /// The first problem, by sequence number.
    pub fn first_problem(&self) -> Option<&Problem> {
        self.problems.first()
    }

    /// The first bad sequence number.
    pub fn first_bad_seq(&self) -> Option<i64> {
        self.first_problem().map(Problem::seq)
    }
}

/// An intent whose outcome is unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownOutcome {
    /// The intent's seq.
    pub intent_seq: i64,
    /// The completion that recorded `unknown`, if any; `None` when there is no completion
    /// (the gateway stopped, or the call is still running).
    pub completion_seq: Option<i64>,
}

/// Where a checkpoint came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointSource {
    /// Read from the log.
    Log,
    /// Given in [`VerifyOptions::trusted_checkpoints`].
    Trusted,
}

/// One thing wrong with a log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The entry found is not the next one: entries are missing, repeated or out of order.
    #[error(
        "expected receipt {expected}, found receipt {found}: a receipt was deleted, inserted or moved"
    )]
    OutOfSequence {
        /// The seq that should have come next.
        expected: i64,
        /// The seq found.
        found: i64,
    },
    /// The chain starts after its beginning and no signed anchor says it may.
    #[error("receipts {expected} to {} are missing and no signed anchor covers them", found - 1)]
    MissingStart {
        /// The first seq that should be there.
        expected: i64,
        /// The first seq found.
        found: i64,
    },
    /// The entry does not link to the entry before it.
    #[error(
        "receipt {seq} does not link to the receipt before it: a receipt before it was changed, deleted or moved"
    )]
    BrokenLink {
        /// The entry's seq.
        seq: i64,
    },
    /// The entry links past its predecessor, which was therefore inserted.
    #[error("receipt {seq} was inserted: the receipt after it links to the one before it")]
    Inserted {
        /// The inserted entry's seq.
        seq: i64,
    },
    /// The entry's hash does not match its columns.
    #[error("receipt {seq} was changed after it was written: its hash does not match its contents")]
    Altered {
        /// The entry's seq.
        seq: i64,
    },
    /// A valid checkpoint signed a different hash for this entry: the chain was rewritten at or
    /// before it (after the last matching checkpoint).
    #[error("checkpoint at receipt {seq} does not match the chain: it was rewritten after receipt {}", last_matched.unwrap_or(0))]
    CheckpointMismatch {
        /// The checkpoint's seq.
        seq: i64,
        /// The last checkpoint before it that matched.
        last_matched: Option<i64>,
        /// Where the checkpoint came from.
        origin: CheckpointSource,
    },
    /// A checkpoint does not verify.
    #[error("{error}")]
    CheckpointInvalid {
        /// The checkpoint's seq.
        seq: i64,
        /// Why it does not verify.
        error: CheckpointError,
        /// Where the checkpoint came from.
        origin: CheckpointSource,
    },
    /// A checkpoint names an entry after the head: the tail was truncated.
    #[error(
        "checkpoint at receipt {seq} names a receipt after the last one ({head}): the log was truncated"
    )]
    CheckpointBeyondHead {
        /// The checkpoint's seq.
        seq: i64,
        /// The last seq in the log (or the anchor's, or 0, when it is empty).
        head: i64,
        /// Where the checkpoint came from.
        origin: CheckpointSource,
    },
    /// Checkpoints go backwards or repeat: an old checkpoint was replayed.
    #[error(
        "checkpoint at receipt {seq} follows one at receipt {previous}: an old checkpoint was replayed"
    )]
    CheckpointOutOfOrder {
        /// The checkpoint's seq.
        seq: i64,
        /// The seq of the checkpoint before it.
        previous: i64,
        /// Where the checkpoints came from.
        origin: CheckpointSource,
    },
    /// A completion names something that is not an open intent.
    #[error("receipt {seq} completes receipt {intent_seq}, which is not an open intent")]
    CompletionWithoutIntent {
        /// The completion's seq.
        seq: i64,
        /// The seq it names.
        intent_seq: i64,
    },
}

impl Problem {
    /// The first sequence number this problem is about.
    pub fn seq(&self) -> i64 {
        match self {
            Self::OutOfSequence { expected, found } => (*expected).min(*found),
            Self::MissingStart { expected, .. } => *expected,
            Self::CheckpointBeyondHead { head, .. } => head.saturating_add(1),
            Self::BrokenLink { seq }
            | Self::Inserted { seq }
            | Self::Altered { seq }
            | Self::CheckpointMismatch { seq, .. }
            | Self::CheckpointInvalid { seq, .. }
            | Self::CheckpointOutOfOrder { seq, .. }
            | Self::CompletionWithoutIntent { seq, .. } => *seq,
        }
    }
}

/// Verifies `log` against the checkpoint keys in `keys`.
pub async fn verify<L: ReceiptLog>(log: &L, keys: &TrustedKeys) -> Result<Report, LogError> {
    verify_with(log, keys, &VerifyOptions::default()).await
}

/// Verifies `log` against `keys` and, where given, checkpoints kept elsewhere.
pub async fn verify_with<L: ReceiptLog>(
    log: &L,
    keys: &TrustedKeys,
    options: &VerifyOptions,
) -> Result<Report, LogError> {
    let page_size = options.page_size.max(1);
    let mut log_checkpoints = Vec::new();
    let mut from_seq = i64::MIN;
    loop {
        let page = log.checkpoints(from_seq, page_size).await?;
        let Some(last) = page.last() else { break };
        from_seq = last.seq.saturating_add(1);
        let full = page.len() >= usize::try_from(page_size).unwrap_or(usize::MAX);
        log_checkpoints.extend(page);
        if !full {
            break;
        }
    }
    let mut walk = walk::Walk::new(
        keys,
        &log_checkpoints,
        &options.trusted_checkpoints,
        options.max_problems,
    );
    let mut from_seq = i64::MIN;
    loop {
        let page = log.receipts_range(from_seq, page_size).await?;
        let Some(last_seq) = page.iter().map(|entry| entry.seq).max() else {
            break;
        };
        for entry in &page {
            walk.visit(entry);
        }
        // A log that ignores `from_seq` must not make this loop forever.
        if last_seq < from_seq {
            break;
        }
        from_seq = last_seq.saturating_add(1);
        if page.len() < usize::try_from(page_size).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(walk.finish())
}
