//! Retention: deleting old entries without losing verifiability. Pruning through a seq signs
//! an *anchor* for that entry and has the log delete everything up to it in one transaction;
//! the retained chain then verifies from the anchor instead of from genesis. Only the holder of
//! the signing key can make an anchor, so someone who deletes the head of the log without one
//! is still caught ([`crate::Problem::MissingStart`]).

use crate::checkpoint::Checkpoint;
use crate::keys::{CheckpointSigner, TrustedKeys};
use crate::log::{LogError, ReceiptLog};
use crate::time::Timestamp;
use crate::verify::{Problem, UnknownOutcome, verify};

/// What pruning did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneSummary {
    /// The anchor the retained chain now starts from.
    pub anchor: Checkpoint,
    /// How many entries were deleted.
    pub deleted: u64,
    /// Calls with an unknown outcome among the deleted entries, which later verifications
    /// will no longer report.
    pub pruned_unknown_outcomes: Vec<UnknownOutcome>,
}

/// Why pruning was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// Reading or pruning the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// There is no entry with that seq.
    #[error("there is no receipt {seq} to prune through")]
    NoSuchReceipt {
        /// The seq asked for.
        seq: i64,
    },
    /// The part of the chain to be pruned does not verify; pruning it would destroy the
    /// evidence.
    #[error("refusing to prune: {problem}")]
    ChainDoesNotVerify {
        /// The first problem at or before the pruning point.
        problem: Problem,
    },
}

/// Deletes every entry up to and including `through_seq`, leaving a signed anchor. The log is
/// verified first (against `keys`, which must include `signer`'s public key), and nothing is
/// deleted when the chain up to the entry after `through_seq` does not verify.
pub async fn prune_through<L: ReceiptLog>(
    log: &L,
    signer: &CheckpointSigner,
    keys: &TrustedKeys,
    through_seq: i64,
) -> Result<PruneSummary, RetentionError> {
    let report = verify(log, keys).await?;
    if let Some(problem) = report
        .first_problem()
        .filter(|problem| problem.seq() <= through_seq.saturating_add(1))
    {
        return Err(RetentionError::ChainDoesNotVerify {
            problem: problem.clone(),
        });
    }
    let entry = log
        .receipts_range(through_seq, 1)
        .await?
        .into_iter()
        .next()
        .filter(|entry| entry.seq == through_seq)
        .ok_or(RetentionError::NoSuchReceipt { seq: through_seq })?;
    let anchor = signer.sign_anchor(&entry.head(), Timestamp::now());
    let deleted = log.prune_through(&anchor).await?;
    let pruned_unknown_outcomes = report
        .unknown_outcomes
        .into_iter()
        .filter(|unknown| unknown.intent_seq <= through_seq)
        .collect();
    Ok(PruneSummary {
        anchor,
        deleted,
        pruned_unknown_outcomes,
    })
}
