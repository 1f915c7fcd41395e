//! Retention: deleting old entries without losing verifiability. Pruning through a seq signs
//! an *anchor* for that entry and has the log delete everything up to it in one transaction;
//! the retained chain then verifies from the anchor instead of from genesis. Only the holder of
//! the signing key can make an anchor, so someone who deletes the head of the log without one
//! is still caught ([`crate::Problem::MissingStart`]).
//!
//! [`prune_before`] picks the pruning point from a time: the longest run of entries from the
//! first that were all recorded before the cutoff (entries are not strictly in time order when
//! several writers append), cut short before an intent whose completion is not written and
//! whose call may still be running. An older intent without a completion is a call lost to a
//! crash; it is pruned and reported. Should its completion arrive after all, the log accepts it
//! as the completion of a pruned intent, and it verifies on its own.

use std::collections::BTreeSet;

use crate::checkpoint::Checkpoint;
use crate::keys::{CheckpointSigner, TrustedKeys};
use crate::log::{LogError, ReceiptLog};
use crate::time::Timestamp;
use crate::verify::{Problem, Report, UnknownOutcome, verify};

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

/// Which entries [`prune_before`] may delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PruneLimits {
    /// Only entries recorded before this time are deleted.
    pub recorded_before: Timestamp,
    /// An intent without a completion recorded at or after this time may belong to a call that
    /// is still running: pruning stops before it.
    pub calls_running_since: Timestamp,
}

/// What [`prune_before`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PruneOutcome {
    /// What was pruned; `None` when no entry could be.
    pub pruned: Option<PruneSummary>,
    /// The intent of a call that may still be running, before which pruning stopped short of
    /// the cutoff.
    pub held_back_by: Option<i64>,
}

/// Deletes the entries recorded before `limits.recorded_before`, leaving a signed anchor, but
/// never an intent of a call that may still be running, nor anything after it. The log is
/// verified first, as by [`prune_through`].
pub async fn prune_before<L: ReceiptLog>(
    log: &L,
    signer: &CheckpointSigner,
    keys: &TrustedKeys,
    limits: PruneLimits,
) -> Result<PruneOutcome, RetentionError> {
    let report = verify(log, keys).await?;
    let open_intents: BTreeSet<i64> = report
        .unknown_outcomes
        .iter()
        .filter(|unknown| unknown.completion_seq.is_none())
        .map(|unknown| unknown.intent_seq)
        .collect();
    let (through_seq, held_back_by) = prune_point(log, &open_intents, limits).await?;
    let pruned = match through_seq {
        Some(through_seq) => Some(prune_verified(log, signer, report, through_seq).await?),
        None => None,
    };
    Ok(PruneOutcome {
        pruned,
        held_back_by,
    })
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
    prune_verified(log, signer, report, through_seq).await
}

/// The last entry [`prune_before`] may delete, and the open intent that stopped it short of
/// the cutoff, if one did. Reads only the entries to be deleted, and the one after them.
async fn prune_point<L: ReceiptLog>(
    log: &L,
    open_intents: &BTreeSet<i64>,
    limits: PruneLimits,
) -> Result<(Option<i64>, Option<i64>), LogError> {
    const PAGE: u32 = 1_000;
    let mut through_seq = None;
    let mut from_seq = i64::MIN;
    loop {
        let page = log.receipts_range(from_seq, PAGE).await?;
        for entry in &page {
            if entry.recorded_at >= limits.recorded_before {
                return Ok((through_seq, None));
            }
            if open_intents.contains(&entry.seq) && entry.recorded_at >= limits.calls_running_since
            {
                return Ok((through_seq, Some(entry.seq)));
            }
            through_seq = Some(entry.seq);
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize && last.seq >= from_seq => {
                from_seq = last.seq.saturating_add(1);
            }
            _ => return Ok((through_seq, None)),
        }
    }
}

/// Prunes through `through_seq` once `report`, a verification of `log`, shows the part to be
/// deleted intact.
async fn prune_verified<L: ReceiptLog>(
    log: &L,
    signer: &CheckpointSigner,
    report: Report,
    through_seq: i64,
) -> Result<PruneSummary, RetentionError> {
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
