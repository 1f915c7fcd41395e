//! The audit writer: a bounded queue in front of a background task that appends receipts to
//! the log in batches, signs checkpoints, and feeds the export sinks.
//!
//! Failure handling, by [`FailureMode`]:
//! - `fail_closed` (the default): once an append fails, [`AuditWriter::record`] and
//!   [`AuditWriter::begin`] return [`AuditError::LogUnavailable`] until the log accepts appends
//!   again, so the gateway refuses calls (503) and forwards nothing; receipts already queued
//!   resolve to that error too. A full queue makes `record` wait up to
//!   [`WriterConfig::enqueue_timeout`], then fail with [`AuditError::QueueFull`].
//! - `fail_open`: calls go ahead. A receipt that cannot be queued (full queue) or appended
//!   (failing log) resolves to [`Recorded::NotRecorded`] and is counted.
//!
//! Nothing is dropped silently: in both modes, every receipt not written is counted, logged,
//! and summed up in an [`crate::AuditGap`] notice that the writer appends as the first entry once
//! the log accepts appends again. While the log is failing the task probes it with that notice
//! every [`WriterConfig::retry_interval`].

mod handle;
mod status;
mod task;

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use handle::{Completion, Intent, PendingReceipt, Recorded};

use crate::canonical::CanonicalError;
use crate::keys::CheckpointSigner;
use crate::log::ReceiptLog;
use crate::sink::ExportSink;
use handle::Shared;
pub(crate) use status::Status;
use task::Task;

/// What the gateway does when receipts cannot be written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureMode {
    /// Refuse calls whose receipt cannot be written.
    #[default]
    FailClosed,
    /// Let calls through unrecorded, and record that this happened.
    FailOpen,
}

/// How the writer batches, waits and checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriterConfig {
    /// What happens when receipts cannot be written.
    pub failure_mode: FailureMode,
    /// How many receipts may wait in the queue.
    pub queue_capacity: usize,
    /// The most receipts appended in one batch.
    pub max_batch: usize,
    /// How long a batch waits for more receipts once it has one; zero appends whatever has
    /// queued up while the previous append ran, which batches well under load without adding
    /// latency when idle.
    pub max_batch_delay: Duration,
    /// An append that takes longer counts as failed.
    pub append_timeout: Duration,
    /// Under `fail_closed`, how long `record` waits for room in a full queue.
    pub enqueue_timeout: Duration,
    /// While the log is failing, how often it is probed.
    pub retry_interval: Duration,
    /// Sign a checkpoint after this many receipts...
    pub checkpoint_every: u64,
    /// ...or this long after the first receipt not yet covered by one.
    pub checkpoint_interval: Duration,
    /// How many appended batches may wait for each export sink before batches are dropped
    /// from its export (never from the log).
    pub export_queue_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            failure_mode: FailureMode::FailClosed,
            queue_capacity: 8_192,
            max_batch: 512,
            max_batch_delay: Duration::ZERO,
            append_timeout: Duration::from_secs(5),
            enqueue_timeout: Duration::from_secs(1),
            retry_interval: Duration::from_secs(1),
            checkpoint_every: 1_024,
            checkpoint_interval: Duration::from_secs(10),
            export_queue_capacity: 256,
        }
    }
}

/// Why a receipt was not accepted. The gateway answers 503 with a safe message for each.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The log refused or failed the append (fail-closed).
    #[error("the audit log is unavailable: {reason}")]
    LogUnavailable {
        /// The log's error, for the gateway's own log; not for clients.
        reason: String,
    },
    /// The queue stayed full for the whole enqueue timeout (fail-closed).
    #[error("the audit queue is full")]
    QueueFull,
    /// The writer task has stopped.
    #[error("the audit writer has stopped")]
    WriterStopped,
    /// The receipt could not be encoded.
    #[error(transparent)]
    Encoding(#[from] CanonicalError),
}

/// Counters of a writer, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Receipts waiting in the queue.
    pub queue_depth: usize,
    /// Whether the last append succeeded.
    pub healthy: bool,
    /// Receipts appended, notices included.
    pub appended: u64,
    /// Batches appended.
    pub batches: u64,
    /// Appends that failed or timed out.
    pub failed_appends: u64,
    /// Receipts not written: refused, dropped from a full queue, or in a failed batch.
    pub unrecorded: u64,
    /// Checkpoints signed and stored.
    pub checkpoints: u64,
    /// Checkpoints that could not be stored.
    pub checkpoint_failures: u64,
    /// Receipts left out of export because a sink's export queue was full, counted once per
    /// sink.
    pub export_dropped: u64,
    /// Export batches a sink failed to write.
    pub export_failures: u64,
}

/// The handle the gateway records receipts through. Cheap to clone; the background task stops
/// once every clone (and every open [`Intent`]) is dropped, after appending what is queued and
/// signing a last checkpoint.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    shared: Arc<Shared>,
}

/// The background task of a writer.
#[derive(Debug)]
pub struct WriterTask {
    join: tokio::task::JoinHandle<()>,
}

impl WriterTask {
    /// Waits until the task has appended everything queued and stopped, which happens once
    /// every [`AuditWriter`] clone is dropped.
    pub async fn join(self) -> Result<(), AuditError> {
        self.join.await.map_err(|_| AuditError::WriterStopped)
    }
}

impl AuditWriter {
    /// Starts a writer appending to `log`, signing checkpoints with `signer` and copying
    /// appended receipts to `sinks`. Must be called inside a Tokio runtime.
    pub fn spawn<L: ReceiptLog>(
        log: Arc<L>,
        signer: CheckpointSigner,
        config: WriterConfig,
        sinks: Vec<Arc<dyn ExportSink>>,
    ) -> (Self, WriterTask) {
        let (sender, jobs) = mpsc::channel(config.queue_capacity.max(1));
        let status = Arc::new(Status::new());
        let exports = crate::sink::spawn_exports(sinks, config.export_queue_capacity, &status);
        let task = Task::new(log, signer, config.clone(), Arc::clone(&status), exports);
        let join = tokio::spawn(task.run(jobs));
        let shared = Arc::new(Shared {
            sender,
            status,
            config,
        });
        (Self { shared }, WriterTask { join })
    }

    /// The number of receipts waiting in the queue.
    pub fn queue_depth(&self) -> usize {
        self.shared.queue_depth()
    }

    /// The writer's counters.
    pub fn stats(&self) -> WriterStats {
        self.shared.status.snapshot(self.queue_depth())
    }

    /// The failure mode in force.
    pub fn failure_mode(&self) -> FailureMode {
        self.shared.config.failure_mode
    }
}
