//! The caller's side of the writer: queueing receipts, waiting for them to be durable, and
//! intents that must be completed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::status::Status;
use super::{AuditError, AuditWriter, FailureMode, WriterConfig};
use crate::entry::{ChainHead, NewReceipt, ReceiptKind};
use crate::receipt::{ErrorSource, Outcome, Receipt};
use crate::time::Timestamp;

/// A receipt for the task, with where to tell the caller how its append went.
pub(super) struct Job {
    pub(super) entry: NewReceipt,
    pub(super) reply: Option<oneshot::Sender<Result<Recorded, AuditError>>>,
}

#[derive(Debug)]
pub(super) struct Shared {
    pub(super) sender: mpsc::Sender<Job>,
    pub(super) status: Arc<Status>,
    pub(super) config: WriterConfig,
}

impl Shared {
    pub(super) fn queue_depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

/// How a receipt ended up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// Appended durably, at this place in the chain.
    Durable(ChainHead),
    /// Not written (fail-open only): counted, and summed up in the next audit-gap notice.
    NotRecorded,
}

/// A queued receipt. Dropping it is fine: the receipt is still appended.
#[derive(Debug)]
pub struct PendingReceipt {
    state: PendingState,
}

#[derive(Debug)]
enum PendingState {
    Queued {
        reply: oneshot::Receiver<Result<Recorded, AuditError>>,
        mode: FailureMode,
    },
    Settled(Recorded),
}

impl PendingReceipt {
    /// Waits until the receipt is durably appended (or, under fail-open, known not to be).
    pub async fn durable(self) -> Result<Recorded, AuditError> {
        match self.state {
            PendingState::Settled(recorded) => Ok(recorded),
            PendingState::Queued { reply, mode } => match reply.await {
                Ok(result) => result,
                Err(_) if mode == FailureMode::FailOpen => Ok(Recorded::NotRecorded),
                Err(_) => Err(AuditError::WriterStopped),
            },
        }
    }

    fn not_recorded() -> Self {
        Self {
            state: PendingState::Settled(Recorded::NotRecorded),
        }
    }
}

/// How an upstream call ended, for [`Intent::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The outcome.
    pub outcome: Outcome,
    /// Whose fault a failure was.
    pub error_source: Option<ErrorSource>,
    /// How long the request took in the gateway.
    pub latency: Duration,
}

/// A call about to reach an upstream, durably recorded (or, under fail-open, let through
/// unrecorded). Complete it with [`Intent::complete`]; an intent dropped without completion
/// (an error path, a disconnected client) is completed with outcome `unknown`, and one lost
/// to a crash verifies as `unknown`.
#[derive(Debug)]
#[must_use = "complete the intent with the call's outcome"]
pub struct Intent {
    writer: AuditWriter,
    receipt: Receipt,
    seq: Option<i64>,
    completed: bool,
}

impl Intent {
    /// The intent's seq, or `None` when it was not recorded (fail-open).
    pub fn seq(&self) -> Option<i64> {
        self.seq
    }

    /// Records how the call ended. The completion names the intent, so waiting for it to be
    /// durable is optional.
    pub async fn complete(mut self, completion: Completion) -> Result<PendingReceipt, AuditError> {
        self.completed = true;
        let entry = self.completion_entry(completion)?;
        self.writer.enqueue(entry).await
    }

    fn completion_entry(&self, completion: Completion) -> Result<NewReceipt, AuditError> {
        let mut receipt = self.receipt.clone();
        receipt.time = Timestamp::now();
        receipt.outcome = Some(completion.outcome);
        receipt.error_source = completion.error_source;
        receipt.set_latency(completion.latency);
        // An intent that was never written cannot be named; its completion stands alone.
        let kind = match self.seq {
            Some(intent_seq) => ReceiptKind::Completion { intent_seq },
            None => ReceiptKind::Decision,
        };
        Ok(NewReceipt::new(kind, &receipt)?)
    }
}

impl Drop for Intent {
    fn drop(&mut self) {
        if self.completed {
            return;
        }
        let completion = Completion {
            outcome: Outcome::Unknown,
            error_source: Some(ErrorSource::Gateway),
            latency: Duration::ZERO,
        };
        let queued = self.completion_entry(completion).ok().and_then(|entry| {
            let job = Job { entry, reply: None };
            self.writer.shared.sender.try_send(job).ok()
        });
        if queued.is_none() {
            tracing::error!(
                request_id = %self.receipt.request_id,
                intent_seq = ?self.seq,
                "cannot record the completion of a dropped intent; it will verify as unknown"
            );
            self.writer.shared.status.note_unrecorded(1);
        }
    }
}

impl AuditWriter {
    /// Queues a decision receipt: a denial, a refusal, or a call that never reaches an
    /// upstream. Fails under fail-closed when the log is failing or the queue stays full.
    pub async fn record(&self, receipt: &Receipt) -> Result<PendingReceipt, AuditError> {
        let entry = NewReceipt::new(ReceiptKind::Decision, receipt)?;
        self.enqueue(entry).await
    }

    /// Records the intent of a call and waits until it is durable, before the call may reach
    /// the upstream. Under fail-closed an error means: refuse the call, forward nothing.
    pub async fn begin(&self, receipt: Receipt) -> Result<Intent, AuditError> {
        let entry = NewReceipt::new(ReceiptKind::Intent, &receipt)?;
        let recorded = self.enqueue(entry).await?.durable().await?;
        let seq = match recorded {
            Recorded::Durable(head) => Some(head.seq),
            Recorded::NotRecorded => None,
        };
        Ok(Intent {
            writer: self.clone(),
            receipt,
            seq,
            completed: false,
        })
    }

    async fn enqueue(&self, entry: NewReceipt) -> Result<PendingReceipt, AuditError> {
        let shared = &self.shared;
        let mode = shared.config.failure_mode;
        if !shared.status.is_healthy() {
            return self.refuse(
                mode,
                AuditError::LogUnavailable {
                    reason: "appends are failing".to_owned(),
                },
            );
        }
        let (reply, receiver) = oneshot::channel();
        let job = Job {
            entry,
            reply: Some(reply),
        };
        let queued = match mode {
            FailureMode::FailClosed => shared
                .sender
                .send_timeout(job, shared.config.enqueue_timeout)
                .await
                .map_err(|error| match error {
                    mpsc::error::SendTimeoutError::Timeout(_) => AuditError::QueueFull,
                    mpsc::error::SendTimeoutError::Closed(_) => AuditError::WriterStopped,
                }),
            FailureMode::FailOpen => shared.sender.try_send(job).map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => AuditError::QueueFull,
                mpsc::error::TrySendError::Closed(_) => AuditError::WriterStopped,
            }),
        };
        match queued {
            Ok(()) => Ok(PendingReceipt {
                state: PendingState::Queued {
                    reply: receiver,
                    mode,
                },
            }),
            Err(error) => self.refuse(mode, error),
        }
    }

    /// A receipt that will not be written: an error under fail-closed, a counted pass under
    /// fail-open.
    fn refuse(&self, mode: FailureMode, error: AuditError) -> Result<PendingReceipt, AuditError> {
        self.shared.status.note_unrecorded(1);
        tracing::error!(%error, ?mode, "audit receipt not written");
        match mode {
            FailureMode::FailClosed => Err(error),
            FailureMode::FailOpen => Ok(PendingReceipt::not_recorded()),
        }
    }
}
