//! The writer's background task: takes receipts off the queue in batches, appends them, answers
//! each caller, signs checkpoints, hands appended receipts to export, and, after receipts could
//! not be written, appends the audit-gap notice that records it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::handle::{Job, Recorded};
use super::status::Status;
use super::{AuditError, WriterConfig};
use crate::entry::{ChainHead, NewReceipt, ReceiptKind, StoredReceipt};
use crate::keys::CheckpointSigner;
use crate::log::{LogError, ReceiptLog};
use crate::receipt::{AuditGap, Decision, ErrorSource, Receipt, Verdict};
use crate::sink::ExportQueue;
use crate::time::Timestamp;

/// Appends that have failed since the log last accepted one.
struct Outage {
    since: Timestamp,
    failed_appends: u64,
}

pub(super) struct Task<L> {
    log: Arc<L>,
    signer: CheckpointSigner,
    config: WriterConfig,
    status: Arc<Status>,
    exports: Option<ExportQueue>,
    last_head: Option<ChainHead>,
    since_checkpoint: u64,
    first_unsigned_at: Option<Instant>,
    outage: Option<Outage>,
    /// How many unwritten receipts the notices appended so far account for.
    noted_unrecorded: u64,
}

impl<L: ReceiptLog> Task<L> {
    pub(super) fn new(
        log: Arc<L>,
        signer: CheckpointSigner,
        config: WriterConfig,
        status: Arc<Status>,
        exports: Option<ExportQueue>,
    ) -> Self {
        Self {
            log,
            signer,
            config,
            status,
            exports,
            last_head: None,
            since_checkpoint: 0,
            first_unsigned_at: None,
            outage: None,
            noted_unrecorded: 0,
        }
    }

    pub(super) async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        loop {
            let next = match self.next_wake() {
                None => jobs.recv().await,
                Some(wait) => match tokio::time::timeout(wait, jobs.recv()).await {
                    Ok(next) => next,
                    Err(_) => {
                        self.on_tick().await;
                        continue;
                    }
                },
            };
            let Some(first) = next else { break };
            let batch = self.collect(first, &mut jobs).await;
            self.write(batch).await;
        }
        // Every handle is gone and the queue is drained: leave the tail signed.
        if self.notice_due() {
            self.append_notice().await;
        }
        self.checkpoint(true).await;
    }

    /// How long to wait for the next receipt before there is other work.
    fn next_wake(&self) -> Option<Duration> {
        if self.notice_due() {
            return Some(self.config.retry_interval);
        }
        self.first_unsigned_at.map(|first| {
            self.config
                .checkpoint_interval
                .saturating_sub(first.elapsed())
        })
    }

    async fn on_tick(&mut self) {
        if self.notice_due() {
            self.append_notice().await;
        }
        self.checkpoint(false).await;
    }

    /// `first` and whatever else is queued, up to a batch, waiting up to the batch delay.
    async fn collect(&self, first: Job, jobs: &mut mpsc::Receiver<Job>) -> Vec<Job> {
        let max_batch = self.config.max_batch.max(1);
        let mut batch = Vec::with_capacity(max_batch.min(jobs.len() + 1));
        batch.push(first);
        let deadline = tokio::time::Instant::now() + self.config.max_batch_delay;
        while batch.len() < max_batch {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(mpsc::error::TryRecvError::Empty) if !self.config.max_batch_delay.is_zero() => {
                    match tokio::time::timeout_at(deadline, jobs.recv()).await {
                        Ok(Some(job)) => batch.push(job),
                        Ok(None) | Err(_) => break,
                    }
                }
                Err(_) => break,
            }
        }
        batch
    }

    async fn write(&mut self, batch: Vec<Job>) {
        // The gap notice goes first: it is also the probe that tells whether the log is back.
        if self.notice_due() && !self.append_notice().await {
            self.fail(batch, "appends are failing", false);
            return;
        }
        let (entries, replies): (Vec<NewReceipt>, Vec<_>) =
            batch.into_iter().map(|job| (job.entry, job.reply)).unzip();
        match self.append(&entries).await {
            Ok(heads) => {
                for (reply, head) in replies.into_iter().zip(&heads) {
                    if let Some(reply) = reply {
                        // The caller may have stopped waiting; the receipt is appended anyway.
                        let _ = reply.send(Ok(Recorded::Durable(head.clone())));
                    }
                }
                self.appended(&entries, heads);
                if self.since_checkpoint >= self.config.checkpoint_every {
                    self.checkpoint(true).await;
                }
            }
            Err(error) => {
                let reason = error.to_string();
                let jobs = entries
                    .into_iter()
                    .zip(replies)
                    .map(|(entry, reply)| Job { entry, reply })
                    .collect();
                self.fail(jobs, &reason, true);
            }
        }
    }

    /// Appends with the configured timeout, checking the log answered for every entry.
    async fn append(&self, entries: &[NewReceipt]) -> Result<Vec<ChainHead>, LogError> {
        let appended = tokio::time::timeout(
            self.config.append_timeout,
            self.log.append_receipts(entries),
        )
        .await
        .map_err(|elapsed| LogError::storage("appending receipts", elapsed))??;
        if appended.len() != entries.len() {
            return Err(LogError::storage(
                "appending receipts",
                format!(
                    "the log placed {} of {} receipts",
                    appended.len(),
                    entries.len()
                ),
            ));
        }
        Ok(appended)
    }

    /// Bookkeeping after a successful append.
    fn appended(&mut self, entries: &[NewReceipt], heads: Vec<ChainHead>) {
        self.status.healthy.store(true, Ordering::Release);
        let count = u64::try_from(entries.len()).unwrap_or(u64::MAX);
        self.status.appended.fetch_add(count, Ordering::AcqRel);
        self.status.batches.fetch_add(1, Ordering::AcqRel);
        self.since_checkpoint += count;
        self.first_unsigned_at.get_or_insert_with(Instant::now);
        if let Some(exports) = &self.exports {
            exports.send(stored(self.last_head.as_ref(), entries, &heads));
        }
        self.last_head = heads.last().cloned();
    }

    /// Answers every caller in `batch` that its receipt was not written; `attempted` tells
    /// whether this batch's own append failed (rather than the probe before it).
    fn fail(&mut self, batch: Vec<Job>, reason: &str, attempted: bool) {
        self.status.healthy.store(false, Ordering::Release);
        let outage = self.outage.get_or_insert_with(|| Outage {
            since: Timestamp::now(),
            failed_appends: 0,
        });
        if attempted {
            outage.failed_appends += 1;
            self.status.failed_appends.fetch_add(1, Ordering::AcqRel);
        }
        let count = u64::try_from(batch.len()).unwrap_or(u64::MAX);
        self.status.note_unrecorded(count);
        tracing::error!(reason, receipts = count, mode = ?self.config.failure_mode, "audit append failed");
        for job in batch {
            if let Some(reply) = job.reply {
                let answer = match self.config.failure_mode {
                    super::FailureMode::FailClosed => Err(AuditError::LogUnavailable {
                        reason: reason.to_owned(),
                    }),
                    super::FailureMode::FailOpen => Ok(Recorded::NotRecorded),
                };
                let _ = reply.send(answer);
            }
        }
    }

    fn notice_due(&self) -> bool {
        self.outage.is_some()
            || self.status.unrecorded.load(Ordering::Acquire) > self.noted_unrecorded
    }

    /// Appends the audit-gap notice; returns whether the log accepted it.
    async fn append_notice(&mut self) -> bool {
        let unrecorded_total = self.status.unrecorded.load(Ordering::Acquire);
        let first_unrecorded = self
            .status
            .first_unrecorded_at
            .lock()
            .ok()
            .and_then(|first| *first);
        let now = Timestamp::now();
        let gap = AuditGap {
            mode: self.config.failure_mode,
            since: self
                .outage
                .as_ref()
                .map(|outage| outage.since)
                .into_iter()
                .chain(first_unrecorded)
                .min()
                .unwrap_or(now),
            until: now,
            failed_appends: self
                .outage
                .as_ref()
                .map_or(0, |outage| outage.failed_appends),
            unrecorded: unrecorded_total.saturating_sub(self.noted_unrecorded),
        };
        let mut receipt = Receipt::new("", "gatehouse/audit-gap", Decision::new(Verdict::Error));
        receipt.time = now;
        receipt.error_source = Some(ErrorSource::Gateway);
        receipt.audit_gap = Some(gap);
        let entry = match NewReceipt::new(ReceiptKind::Decision, &receipt) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::error!(%error, "cannot encode the audit-gap notice");
                return false;
            }
        };
        let entries = [entry];
        match self.append(&entries).await {
            Ok(heads) => {
                tracing::warn!(
                    unrecorded = receipt.audit_gap.as_ref().map_or(0, |gap| gap.unrecorded),
                    "audit log accepts appends again; gap recorded"
                );
                self.outage = None;
                self.noted_unrecorded = unrecorded_total;
                if let Ok(mut first) = self.status.first_unrecorded_at.lock() {
                    *first = None;
                }
                self.appended(&entries, heads);
                true
            }
            Err(error) => {
                self.status.failed_appends.fetch_add(1, Ordering::AcqRel);
                if let Some(outage) = &mut self.outage {
                    outage.failed_appends += 1;
                }
                tracing::error!(%error, "audit log still failing");
                false
            }
        }
    }

    /// Signs and stores a checkpoint of the last head when one is due (or `force`d and there
    /// is anything unsigned).
    async fn checkpoint(&mut self, force: bool) {
        let due = force
            || self
                .first_unsigned_at
                .is_some_and(|first| first.elapsed() >= self.config.checkpoint_interval);
        let Some(head) = self
            .last_head
            .clone()
            .filter(|_| due && self.since_checkpoint > 0)
        else {
            return;
        };
        let checkpoint = self.signer.sign_checkpoint(&head, Timestamp::now());
        let added = tokio::time::timeout(
            self.config.append_timeout,
            self.log.add_checkpoint(&checkpoint),
        )
        .await;
        let covered = match added {
            // Another writer of the same log signed this head first; it is covered either way.
            Ok(Ok(()) | Err(LogError::CheckpointExists { .. })) => true,
            Ok(Err(error @ LogError::CheckpointMismatch { .. })) => {
                self.pruned_under_anchor(&head).await || {
                    self.checkpoint_failed(&error.to_string());
                    false
                }
            }
            Ok(Err(error)) => {
                self.checkpoint_failed(&error.to_string());
                false
            }
            Err(elapsed) => {
                self.checkpoint_failed(&elapsed.to_string());
                false
            }
        };
        if covered {
            self.status.checkpoints.fetch_add(1, Ordering::AcqRel);
            self.since_checkpoint = 0;
            self.first_unsigned_at = None;
        }
    }

    /// Whether `head` is gone because the log was pruned through it: a signed anchor at or
    /// after it then covers it, and there is nothing left for a checkpoint to name.
    async fn pruned_under_anchor(&self, head: &ChainHead) -> bool {
        let later = tokio::time::timeout(
            self.config.append_timeout,
            self.log.checkpoints(head.seq, 1),
        )
        .await;
        matches!(later, Ok(Ok(checkpoints)) if !checkpoints.is_empty())
    }

    fn checkpoint_failed(&self, reason: &str) {
        self.status
            .checkpoint_failures
            .fetch_add(1, Ordering::AcqRel);
        tracing::warn!(reason, "cannot store an audit checkpoint; will retry");
    }
}

/// The appended entries as stored, for export. The first entry's `prev_hash` is known only
/// when this writer appended the entry before it; otherwise it is empty.
fn stored(
    previous: Option<&ChainHead>,
    entries: &[NewReceipt],
    heads: &[ChainHead],
) -> Vec<StoredReceipt> {
    let mut prev_hash = match (previous, heads.first()) {
        (Some(previous), Some(first)) if previous.seq + 1 == first.seq => previous.hash.clone(),
        _ => String::new(),
    };
    entries
        .iter()
        .zip(heads)
        .map(|(entry, head)| StoredReceipt {
            seq: head.seq,
            recorded_at: entry.recorded_at,
            kind: entry.kind,
            index: entry.index.clone(),
            body: entry.body.clone(),
            prev_hash: std::mem::replace(&mut prev_hash, head.hash.clone()),
            hash: head.hash.clone(),
        })
        .collect()
}
