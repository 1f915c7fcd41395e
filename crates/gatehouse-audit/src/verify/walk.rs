//! The chain walk behind [`super::verify`]: one pass over the entries in seq order, holding only
//! the two previous hashes, the checkpoints not yet reached and the open intents.

use std::collections::{BTreeMap, BTreeSet};

use super::{CheckpointSource, Problem, Report, UnknownOutcome};
use crate::chain::{GENESIS_HASH, hash_matches};
use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointPurpose};
use crate::entry::{ReceiptKind, StoredReceipt};
use crate::keys::TrustedKeys;
use crate::receipt::Outcome;

/// A verified checkpoint's claim about one entry.
struct Claim {
    head_hash: String,
    origin: CheckpointSource,
}

pub(super) struct Walk {
    /// Verified checkpoints not yet reached, by seq.
    claims: BTreeMap<i64, Vec<Claim>>,
    /// Verified anchors from the log: seq → head hash.
    anchors: BTreeMap<i64, String>,
    /// The seq the next entry should have; `None` before the first entry.
    expected_seq: Option<i64>,
    /// The previous entry's stored hash, which the next entry must link to.
    previous_hash: String,
    /// The hash before that, to recognise an entry that links past an inserted one.
    grandparent_hash: Option<String>,
    open_intents: BTreeSet<i64>,
    chain_problems: Vec<Problem>,
    checkpoint_problems: Vec<Problem>,
    max_problems: usize,
    report: Report,
}

impl Walk {
    pub(super) fn new(
        keys: &TrustedKeys,
        log_checkpoints: &[Checkpoint],
        trusted_checkpoints: &[Checkpoint],
        max_problems: usize,
    ) -> Self {
        let mut walk = Self {
            claims: BTreeMap::new(),
            anchors: BTreeMap::new(),
            expected_seq: None,
            previous_hash: String::new(),
            grandparent_hash: None,
            open_intents: BTreeSet::new(),
            chain_problems: Vec::new(),
            checkpoint_problems: Vec::new(),
            max_problems,
            report: Report::default(),
        };
        walk.admit(keys, log_checkpoints, CheckpointSource::Log);
        walk.admit(keys, trusted_checkpoints, CheckpointSource::Trusted);
        walk
    }

    /// Checks each checkpoint's order and signature and keeps the valid ones as claims.
    fn admit(&mut self, keys: &TrustedKeys, checkpoints: &[Checkpoint], source: CheckpointSource) {
        let mut previous: Option<i64> = None;
        for checkpoint in checkpoints {
            if let Some(previous) = previous.filter(|previous| checkpoint.seq <= *previous) {
                self.checkpoint_problems
                    .push(Problem::CheckpointOutOfOrder {
                        seq: checkpoint.seq,
                        previous,
                        origin: source,
                    });
                continue;
            }
            previous = Some(checkpoint.seq);
            // An anchor is a valid statement of the head at its seq too, so either domain is
            // accepted here; only an anchor can start the retained chain (see `start`).
            let verified = match checkpoint.verify(keys, CheckpointPurpose::Checkpoint) {
                Err(CheckpointError::BadSignature { .. }) => checkpoint
                    .verify(keys, CheckpointPurpose::Anchor)
                    .map(|()| CheckpointPurpose::Anchor),
                other => other.map(|()| CheckpointPurpose::Checkpoint),
            };
            match verified {
                Ok(purpose) => {
                    if purpose == CheckpointPurpose::Anchor && source == CheckpointSource::Log {
                        self.anchors
                            .insert(checkpoint.seq, checkpoint.head_hash.clone());
                    }
                    self.claims.entry(checkpoint.seq).or_default().push(Claim {
                        head_hash: checkpoint.head_hash.clone(),
                        origin: source,
                    });
                }
                Err(error) => self.checkpoint_problems.push(Problem::CheckpointInvalid {
                    seq: checkpoint.seq,
                    error,
                    origin: source,
                }),
            }
        }
    }

    pub(super) fn visit(&mut self, entry: &StoredReceipt) {
        self.report.receipts += 1;
        let problem = match self.expected_seq {
            None => self.start(entry),
            Some(expected) if entry.seq != expected => Some(Problem::OutOfSequence {
                expected,
                found: entry.seq,
            }),
            Some(_) if entry.prev_hash != self.previous_hash => {
                if self.grandparent_hash.as_deref() == Some(entry.prev_hash.as_str()) {
                    Some(Problem::Inserted { seq: entry.seq - 1 })
                } else {
                    Some(Problem::BrokenLink { seq: entry.seq })
                }
            }
            Some(_) => None,
        };
        let problem = problem
            .or_else(|| (!hash_matches(entry)).then_some(Problem::Altered { seq: entry.seq }));
        if let Some(problem) = problem {
            self.chain_problem(problem);
        }
        self.check_claims(entry);
        self.track_intent(entry);

        self.expected_seq = Some(entry.seq.saturating_add(1));
        let grandparent = std::mem::take(&mut self.previous_hash);
        self.grandparent_hash = Some(grandparent);
        self.previous_hash.clone_from(&entry.hash);
        self.report.first_seq.get_or_insert(entry.seq);
        self.report.head = Some(entry.head());
    }

    /// Checks where the chain starts: at genesis, or right after a signed anchor.
    fn start(&mut self, entry: &StoredReceipt) -> Option<Problem> {
        if entry.seq == 1 {
            return (entry.prev_hash != GENESIS_HASH)
                .then_some(Problem::BrokenLink { seq: entry.seq });
        }
        let anchor_seq = entry.seq - 1;
        if let Some(anchor_hash) = self.anchors.get(&anchor_seq) {
            self.report.anchor_seq = Some(anchor_seq);
            self.claims.remove(&anchor_seq);
            return (entry.prev_hash != *anchor_hash)
                .then_some(Problem::BrokenLink { seq: entry.seq });
        }
        let expected = self
            .anchors
            .range(..anchor_seq)
            .next_back()
            .map_or(1, |(seq, _)| seq + 1);
        Some(Problem::MissingStart {
            expected,
            found: entry.seq,
        })
    }

    fn check_claims(&mut self, entry: &StoredReceipt) {
        let Some(claims) = self.claims.remove(&entry.seq) else {
            return;
        };
        for claim in claims {
            if claim.head_hash == entry.hash {
                self.report.checkpoints_matched += 1;
                self.report.last_matched_checkpoint = Some(entry.seq);
            } else {
                self.checkpoint_problems.push(Problem::CheckpointMismatch {
                    seq: entry.seq,
                    last_matched: self.report.last_matched_checkpoint,
                    origin: claim.origin,
                });
            }
        }
    }

    fn track_intent(&mut self, entry: &StoredReceipt) {
        match entry.kind {
            ReceiptKind::Decision => {}
            ReceiptKind::Intent => {
                self.open_intents.insert(entry.seq);
            }
            ReceiptKind::Completion { intent_seq } => {
                let first_seq = self.report.first_seq.unwrap_or(entry.seq);
                // An intent before the first entry was pruned with its era; its completion
                // stands alone.
                let known = intent_seq < entry.seq
                    && (intent_seq < first_seq || self.open_intents.remove(&intent_seq));
                if !known {
                    self.chain_problem(Problem::CompletionWithoutIntent {
                        seq: entry.seq,
                        intent_seq,
                    });
                }
                if entry.index.outcome.as_deref() == Some(Outcome::Unknown.as_str()) {
                    self.report.unknown_outcomes.push(UnknownOutcome {
                        intent_seq,
                        completion_seq: Some(entry.seq),
                    });
                }
            }
        }
    }

    fn chain_problem(&mut self, problem: Problem) {
        if self.chain_problems.len() < self.max_problems {
            self.chain_problems.push(problem);
        }
    }

    pub(super) fn finish(mut self) -> Report {
        // Pruning through the newest entry leaves an empty log that starts, and ends, at its
        // last anchor.
        if self.expected_seq.is_none() {
            self.report.anchor_seq = self.anchors.keys().next_back().copied();
        }
        // Claims never reached name entries that are gone: past the head, the tail was cut.
        // Claims before the first entry were pruned with it, and claims inside a gap are
        // already reported as the gap.
        let head = self
            .report
            .head
            .as_ref()
            .map(|head| head.seq)
            .or(self.report.anchor_seq)
            .unwrap_or(0);
        for (seq, claims) in self.claims.range(head.saturating_add(1)..) {
            for claim in claims {
                self.checkpoint_problems
                    .push(Problem::CheckpointBeyondHead {
                        seq: *seq,
                        head,
                        origin: claim.origin,
                    });
            }
        }
        let signed_through = self
            .report
            .last_matched_checkpoint
            .or(self.report.anchor_seq)
            .unwrap_or(0);
        self.report.unsigned_tail = u64::try_from(head.saturating_sub(signed_through)).unwrap_or(0);
        for intent_seq in self.open_intents {
            self.report.unknown_outcomes.push(UnknownOutcome {
                intent_seq,
                completion_seq: None,
            });
        }
        self.report
            .unknown_outcomes
            .sort_by_key(|unknown| unknown.intent_seq);
        let mut problems = self.chain_problems;
        problems.extend(self.checkpoint_problems);
        // Stable: at the same seq, chain problems come before checkpoint problems.
        problems.sort_by_key(Problem::seq);
        self.report.problems = problems;
        self.report
    }
}
