//! Export: copies of appended receipts for the observability stack, and whole-log exports for
//! the CLI. Export is not the audit of record, the log is: a slow or failing sink never holds
//! up or fails a call, nor another sink. Each sink has a bounded queue of appended batches and
//! a task of its own; when its queue is full a batch is left out of that sink's export and
//! counted (`export_dropped`, once per sink that left it out), and a failed write is counted
//! (`export_failures`) and logged. Lines are [`StoredReceipt::to_json_line`]; in live export
//! the first entry of a batch has an empty `prev_hash` when another writer appended the entry
//! before it.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{Mutex, mpsc};

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::entry::StoredReceipt;
use crate::log::{LogError, ReceiptLog};
use crate::writer::Status;

/// The future an [`ExportSink`] returns.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// A destination for appended receipts.
pub trait ExportSink: Send + Sync + 'static {
    /// A short name for logs, e.g. `stdout` or a file path.
    fn name(&self) -> &str;

    /// Writes `receipts` (ascending, appended) to the destination.
    fn export<'a>(&'a self, receipts: &'a [StoredReceipt]) -> SinkFuture<'a>;
}

/// Receipts as JSON lines, to a file, stdout, or any writer.
pub struct JsonLinesSink {
    name: String,
    out: Mutex<BufWriter<Box<dyn AsyncWrite + Send + Unpin>>>,
}

impl JsonLinesSink {
    /// Appends to the file at `path`, creating it if needed.
    pub async fn append_to_file(path: &Path) -> io::Result<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        Ok(Self::new(path.display().to_string(), file))
    }

    /// Writes to the process's standard output.
    pub fn stdout() -> Self {
        Self::new("stdout", tokio::io::stdout())
    }

    /// Writes to `writer`, named `name` in logs.
    pub fn new(name: impl Into<String>, writer: impl AsyncWrite + Send + Unpin + 'static) -> Self {
        Self {
            name: name.into(),
            out: Mutex::new(BufWriter::new(Box::new(writer))),
        }
    }
}

impl ExportSink for JsonLinesSink {
    fn name(&self) -> &str {
        &self.name
    }

    fn export<'a>(&'a self, receipts: &'a [StoredReceipt]) -> SinkFuture<'a> {
        Box::pin(async move {
            let mut out = self.out.lock().await;
            for receipt in receipts {
                let mut line = receipt.to_json_line();
                line.push('\n');
                out.write_all(line.as_bytes()).await?;
            }
            out.flush().await
        })
    }
}

/// The writer's side of the export queues, one per sink.
#[derive(Debug)]
pub(crate) struct ExportQueue {
    senders: Vec<(String, mpsc::Sender<Arc<[StoredReceipt]>>)>,
    status: Arc<Status>,
}

impl ExportQueue {
    /// Queues an appended batch for every sink; a sink whose queue is full leaves the batch
    /// out, and it is counted as dropped.
    pub(crate) fn send(&self, receipts: Vec<StoredReceipt>) {
        let count = u64::try_from(receipts.len()).unwrap_or(u64::MAX);
        let batch: Arc<[StoredReceipt]> = receipts.into();
        for (sink, sender) in &self.senders {
            if sender.try_send(Arc::clone(&batch)).is_err() {
                self.status
                    .export_dropped
                    .fetch_add(count, Ordering::AcqRel);
                tracing::warn!(
                    sink = sink.as_str(),
                    receipts = count,
                    "export queue full; receipts left out of export"
                );
            }
        }
    }
}

/// Starts one export task per sink, or nothing when there are no sinks.
pub(crate) fn spawn_exports(
    sinks: Vec<Arc<dyn ExportSink>>,
    capacity: usize,
    status: &Arc<Status>,
) -> Option<ExportQueue> {
    if sinks.is_empty() {
        return None;
    }
    let mut senders = Vec::with_capacity(sinks.len());
    for sink in sinks {
        let (sender, mut batches) = mpsc::channel::<Arc<[StoredReceipt]>>(capacity.max(1));
        senders.push((sink.name().to_owned(), sender));
        let task_status = Arc::clone(status);
        tokio::spawn(async move {
            while let Some(batch) = batches.recv().await {
                if let Err(error) = sink.export(&batch).await {
                    task_status.export_failures.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(sink = sink.name(), %error, "audit export failed");
                }
            }
        });
    }
    Some(ExportQueue {
        senders,
        status: Arc::clone(status),
    })
}

/// Why an export from the log failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Writing the output failed.
    #[error("cannot write the export: {0}")]
    Io(#[from] io::Error),
}

/// Writes the log's entries from `from_seq` on to `out` as JSON lines; returns how many.
pub async fn export_receipts<L, W>(log: &L, from_seq: i64, out: &mut W) -> Result<u64, ExportError>
where
    L: ReceiptLog,
    W: AsyncWrite + Unpin,
{
    const PAGE: u32 = 1_000;
    let mut from_seq = from_seq;
    let mut written = 0;
    loop {
        let page = log.receipts_range(from_seq, PAGE).await?;
        for receipt in &page {
            let mut line = receipt.to_json_line();
            line.push('\n');
            out.write_all(line.as_bytes()).await?;
            written += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize && last.seq >= from_seq => {
                from_seq = last.seq.saturating_add(1);
            }
            _ => break,
        }
    }
    out.flush().await?;
    Ok(written)
}

/// Writes the log's checkpoints to `out` as JSON lines, for keeping elsewhere; returns how many.
pub async fn export_checkpoints<L, W>(log: &L, out: &mut W) -> Result<u64, ExportError>
where
    L: ReceiptLog,
    W: AsyncWrite + Unpin,
{
    const PAGE: u32 = 1_000;
    let mut from_seq = i64::MIN;
    let mut written = 0;
    loop {
        let page = log.checkpoints(from_seq, PAGE).await?;
        for checkpoint in &page {
            let mut line = checkpoint.to_json_line();
            line.push('\n');
            out.write_all(line.as_bytes()).await?;
            written += 1;
        }
        match page.last() {
            Some(last) if page.len() == PAGE as usize && last.seq >= from_seq => {
                from_seq = last.seq.saturating_add(1);
            }
            _ => break,
        }
    }
    out.flush().await?;
    Ok(written)
}

/// Reads exported checkpoint lines, in order, skipping blank lines.
pub fn read_checkpoint_lines(text: &str) -> Result<Vec<Checkpoint>, CheckpointError> {
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(Checkpoint::from_json_line)
        .collect()
}
