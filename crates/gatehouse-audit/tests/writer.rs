//! The writer: batching, intent before effect, fail-closed and fail-open behaviour, nothing
//! dropped silently, and export.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions may panic: a panic is the failure report"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{FlakyLog, call_receipt, eventually};
use gatehouse_audit::{
    AuditError, AuditWriter, CheckpointSigner, Completion, ErrorSource, ExportSink, FailureMode,
    JsonLinesSink, MemoryLog, Outcome, Receipt, ReceiptKind, ReceiptLog, Recorded, SinkFuture,
    StoredReceipt, TrustedKeys, UnknownOutcome, WriterConfig, prune_through, verify,
};

fn config(mode: FailureMode) -> WriterConfig {
    WriterConfig {
        failure_mode: mode,
        retry_interval: Duration::from_millis(20),
        checkpoint_every: 100,
        ..WriterConfig::default()
    }
}

fn start<L: ReceiptLog>(
    log: &Arc<L>,
    mode: FailureMode,
) -> (AuditWriter, gatehouse_audit::WriterTask, TrustedKeys) {
    let signer = CheckpointSigner::generate().unwrap();
    let keys = TrustedKeys::new([signer.public_key()]);
    let (writer, task) = AuditWriter::spawn(Arc::clone(log), signer, config(mode), Vec::new());
    (writer, task, keys)
}

async fn gap_notices(log: &FlakyLog) -> Vec<gatehouse_audit::AuditGap> {
    let entries = log.inner.receipts_range(1, u32::MAX).await.unwrap();
    entries
        .iter()
        .filter_map(|entry| entry.receipt().unwrap().audit_gap)
        .collect()
}

fn ok() -> Completion {
    Completion {
        outcome: Outcome::Ok,
        error_source: None,
        latency: Duration::from_micros(900),
    }
}

#[tokio::test]
async fn concurrent_receipts_are_batched_chained_and_checkpointed() {
    let log = Arc::new(MemoryLog::new());
    let (writer, task, keys) = start(&log, FailureMode::FailClosed);
    let mut callers = Vec::new();
    for caller in 0..32_u64 {
        let writer = writer.clone();
        callers.push(tokio::spawn(async move {
            for call in 0..50 {
                let number = caller * 1_000 + call;
                if call % 2 == 0 {
                    let intent = writer.begin(call_receipt(number)).await.unwrap();
                    assert!(intent.seq().is_some());
                    intent.complete(ok()).await.unwrap();
                } else {
                    let recorded = writer
                        .record(&call_receipt(number))
                        .await
                        .unwrap()
                        .durable()
                        .await;
                    assert!(matches!(recorded, Ok(Recorded::Durable(_))));
                }
            }
        }));
    }
    for caller in callers {
        caller.await.unwrap();
    }
    let stats = writer.stats();
    drop(writer);
    task.join().await.unwrap();
    assert_eq!(stats.appended, 32 * 50 + 32 * 25);
    assert!(stats.batches < stats.appended, "{stats:?}");
    assert_eq!((stats.unrecorded, stats.failed_appends), (0, 0));
    let report = verify(log.as_ref(), &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.receipts, 2_400);
    assert_eq!(
        report.unsigned_tail, 0,
        "the writer signs its tail when it stops"
    );
    assert!(report.unknown_outcomes.is_empty());
}

#[tokio::test]
async fn an_intent_is_durable_before_begin_returns() {
    let log = Arc::new(MemoryLog::new());
    let (writer, _task, _keys) = start(&log, FailureMode::FailClosed);
    let intent = writer.begin(call_receipt(1)).await.unwrap();
    let stored = log.receipts_range(1, 10).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (stored[0].seq, stored[0].kind),
        (intent.seq().unwrap(), ReceiptKind::Intent)
    );
    let completion = intent
        .complete(ok())
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    let Recorded::Durable(head) = completion else {
        panic!("not durable")
    };
    let stored = log.receipts_range(head.seq, 1).await.unwrap();
    assert_eq!(stored[0].kind, ReceiptKind::Completion { intent_seq: 1 });
    assert_eq!(stored[0].index.outcome.as_deref(), Some("ok"));
}

#[tokio::test]
async fn intents_without_completion_verify_as_unknown() {
    let log = Arc::new(MemoryLog::new());
    let (writer, _task, keys) = start(&log, FailureMode::FailClosed);
    // A crash between intent and completion: the process never completes it.
    let crashed = writer.begin(call_receipt(1)).await.unwrap();
    let crashed_seq = crashed.seq().unwrap();
    std::mem::forget(crashed);
    // An error path that drops the intent: completed as unknown on drop.
    let dropped = writer.begin(call_receipt(2)).await.unwrap();
    let dropped_seq = dropped.seq().unwrap();
    drop(dropped);
    let completed = writer.begin(call_receipt(3)).await.unwrap();
    completed
        .complete(ok())
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    // The forgotten intent holds a writer handle, as a crashed process would have, so the task
    // never stops; wait for the dropped intent's completion instead of joining.
    eventually("the dropped intent's completion", || async {
        log.receipts_range(1, 100).await.unwrap().len() == 5
    })
    .await;

    let report = verify(log.as_ref(), &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    let completion_of_dropped = log
        .receipts_range(1, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|entry| {
            entry.kind
                == ReceiptKind::Completion {
                    intent_seq: dropped_seq,
                }
        })
        .unwrap();
    assert_eq!(
        report.unknown_outcomes,
        vec![
            UnknownOutcome {
                intent_seq: crashed_seq,
                completion_seq: None
            },
            UnknownOutcome {
                intent_seq: dropped_seq,
                completion_seq: Some(completion_of_dropped.seq)
            },
        ]
    );
    let receipt = completion_of_dropped.receipt().unwrap();
    assert_eq!(
        (receipt.outcome, receipt.error_source),
        (Some(Outcome::Unknown), Some(ErrorSource::Gateway))
    );
}

#[tokio::test]
async fn fail_closed_refuses_every_call_once_the_log_fails() {
    let log = Arc::new(FlakyLog::default());
    let (writer, _task, keys) = start(&log, FailureMode::FailClosed);
    for number in 0..20 {
        writer
            .begin(call_receipt(number))
            .await
            .unwrap()
            .complete(ok())
            .await
            .unwrap();
    }
    writer
        .record(&call_receipt(99))
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    let before = log.inner.chain_head().await.unwrap().unwrap().seq;

    log.fail(true);
    let first = writer.begin(call_receipt(100)).await;
    assert!(
        matches!(first, Err(AuditError::LogUnavailable { .. })),
        "{first:?}"
    );
    let mut succeeded_after_failure = 0;
    for number in 101..200 {
        // What the gateway does on every call: no intent, no upstream call.
        if writer.begin(call_receipt(number)).await.is_ok() {
            succeeded_after_failure += 1;
        }
        match writer.record(&call_receipt(number)).await {
            Err(AuditError::LogUnavailable { .. }) => {}
            Ok(pending) => {
                if pending.durable().await.is_ok() {
                    succeeded_after_failure += 1;
                }
            }
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(succeeded_after_failure, 0);
    assert_eq!(log.inner.chain_head().await.unwrap().unwrap().seq, before);
    let stats = writer.stats();
    assert!(!stats.healthy && stats.unrecorded >= 199, "{stats:?}");

    // The log comes back: calls go through again, and the gap is on the record first.
    log.fail(false);
    eventually("the writer to accept receipts again", || async {
        writer.record(&call_receipt(500)).await.is_ok()
    })
    .await;
    // Refusals racing the recovery may need a second notice; together they count them all.
    let gaps = gap_notices(&log).await;
    assert!(!gaps.is_empty());
    assert!(gaps.iter().all(|gap| gap.mode == FailureMode::FailClosed));
    assert!(
        gaps.iter().map(|gap| gap.unrecorded).sum::<u64>() >= 199,
        "{gaps:?}"
    );
    assert!(gaps[0].failed_appends >= 1, "{gaps:?}");
    let report = verify(log.as_ref(), &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

#[tokio::test]
async fn fail_open_lets_calls_through_and_records_the_gap() {
    let log = Arc::new(FlakyLog::default());
    let (writer, _task, keys) = start(&log, FailureMode::FailOpen);
    writer
        .record(&call_receipt(1))
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();

    log.fail(true);
    for number in 2..12 {
        let intent = writer.begin(call_receipt(number)).await.unwrap();
        assert_eq!(intent.seq(), None, "the call goes ahead unrecorded");
        intent.complete(ok()).await.unwrap();
    }
    let recorded = writer
        .record(&call_receipt(12))
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    assert_eq!(recorded, Recorded::NotRecorded);
    assert_eq!(writer.stats().unrecorded, 21);
    assert!(gap_notices(&log).await.is_empty());

    log.fail(false);
    eventually("the gap notice", || async {
        !gap_notices(&log).await.is_empty()
    })
    .await;
    let gaps = gap_notices(&log).await;
    assert_eq!(gaps[0].mode, FailureMode::FailOpen);
    assert_eq!(gaps[0].unrecorded, 21);
    assert!(gaps[0].since <= gaps[0].until);
    let report = verify(log.as_ref(), &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
}

/// A log whose appends wait until released, to fill the queue.
#[derive(Debug)]
struct StalledLog {
    inner: MemoryLog,
    release: tokio::sync::Semaphore,
}

impl Default for StalledLog {
    fn default() -> Self {
        Self {
            inner: MemoryLog::new(),
            release: tokio::sync::Semaphore::new(0),
        }
    }
}

impl ReceiptLog for StalledLog {
    async fn append_receipts(
        &self,
        receipts: &[gatehouse_audit::NewReceipt],
    ) -> Result<Vec<gatehouse_audit::ChainHead>, gatehouse_audit::LogError> {
        let _permit = self.release.acquire().await;
        self.inner.append_receipts(receipts).await
    }
    async fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<gatehouse_audit::StoredReceipt>, gatehouse_audit::LogError> {
        self.inner.receipts_range(from_seq, limit).await
    }
    async fn chain_head(
        &self,
    ) -> Result<Option<gatehouse_audit::ChainHead>, gatehouse_audit::LogError> {
        self.inner.chain_head().await
    }
    async fn add_checkpoint(
        &self,
        checkpoint: &gatehouse_audit::Checkpoint,
    ) -> Result<(), gatehouse_audit::LogError> {
        self.inner.add_checkpoint(checkpoint).await
    }
    async fn checkpoints(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<gatehouse_audit::Checkpoint>, gatehouse_audit::LogError> {
        self.inner.checkpoints(from_seq, limit).await
    }
    async fn prune_through(
        &self,
        anchor: &gatehouse_audit::Checkpoint,
    ) -> Result<u64, gatehouse_audit::LogError> {
        self.inner.prune_through(anchor).await
    }
}

#[tokio::test]
async fn a_full_queue_errors_when_closed_and_counts_when_open() {
    for mode in [FailureMode::FailClosed, FailureMode::FailOpen] {
        let log = Arc::new(StalledLog::default());
        let signer = CheckpointSigner::generate().unwrap();
        let config = WriterConfig {
            queue_capacity: 4,
            max_batch: 1,
            enqueue_timeout: Duration::from_millis(20),
            ..config(mode)
        };
        let (writer, task) = AuditWriter::spawn(Arc::clone(&log), signer, config, Vec::new());
        // One receipt is taken by the stalled append; four more fill the queue.
        let mut pending = vec![writer.record(&call_receipt(0)).await.unwrap()];
        eventually("the append to stall", || async {
            writer.queue_depth() == 0
        })
        .await;
        for number in 1..5 {
            pending.push(writer.record(&call_receipt(number)).await.unwrap());
        }
        assert_eq!(writer.queue_depth(), 4);
        let overflow = writer.record(&call_receipt(5)).await;
        match mode {
            FailureMode::FailClosed => assert!(
                matches!(overflow, Err(AuditError::QueueFull)),
                "{overflow:?}"
            ),
            FailureMode::FailOpen => {
                assert_eq!(
                    overflow.unwrap().durable().await.unwrap(),
                    Recorded::NotRecorded
                );
            }
        }
        assert_eq!(writer.stats().unrecorded, 1);
        log.release.add_permits(1_000);
        for receipt in pending {
            assert!(matches!(receipt.durable().await, Ok(Recorded::Durable(_))));
        }
        drop(writer);
        task.join().await.unwrap();
        // The five queued receipts and the notice of the one that was not written.
        let entries = log.inner.receipts_range(1, 100).await.unwrap();
        assert_eq!(entries.len(), 6, "{mode:?}");
        let gaps: Vec<_> = entries
            .iter()
            .filter_map(|entry| entry.receipt().unwrap().audit_gap)
            .collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].mode, gaps[0].unrecorded, gaps[0].failed_appends),
            (mode, 1, 0)
        );
    }
}

#[tokio::test]
async fn appended_receipts_are_exported_as_json_lines() {
    let directory = std::env::temp_dir().join(format!("gatehouse-audit-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let path = directory.join("receipts.jsonl");
    let _ = std::fs::remove_file(&path);
    let sink: Arc<dyn ExportSink> = Arc::new(JsonLinesSink::append_to_file(&path).await.unwrap());
    let log = Arc::new(MemoryLog::new());
    let signer = CheckpointSigner::generate().unwrap();
    let (writer, task) = AuditWriter::spawn(
        Arc::clone(&log),
        signer,
        config(FailureMode::FailClosed),
        vec![sink],
    );
    for number in 0..10 {
        writer
            .record(&call_receipt(number))
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
    }
    drop(writer);
    task.join().await.unwrap();
    eventually("ten exported lines", || async {
        std::fs::read_to_string(&path).is_ok_and(|text| text.lines().count() == 10)
    })
    .await;
    let text = std::fs::read_to_string(&path).unwrap();
    let stored = log.receipts_range(1, 100).await.unwrap();
    for (line, entry) in text.lines().zip(&stored) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["seq"], entry.seq);
        assert_eq!(value["hash"], entry.hash.as_str());
        let receipt: Receipt = serde_json::from_value(value["receipt"].clone()).unwrap();
        assert_eq!(receipt, entry.receipt().unwrap());
    }
    std::fs::remove_dir_all(&directory).unwrap();
}

#[tokio::test]
async fn pruning_under_a_running_writer_keeps_its_chain_and_its_calls() {
    let log = Arc::new(MemoryLog::new());
    let signer = CheckpointSigner::generate().unwrap();
    let pruner = CheckpointSigner::from_secret_json(&signer.to_secret_json()).unwrap();
    let keys = TrustedKeys::new([signer.public_key()]);
    let config = WriterConfig {
        checkpoint_interval: Duration::from_millis(200),
        ..config(FailureMode::FailClosed)
    };
    let (writer, task) = AuditWriter::spawn(Arc::clone(&log), signer, config, Vec::new());
    for number in 0..5 {
        writer
            .record(&call_receipt(number))
            .await
            .unwrap()
            .durable()
            .await
            .unwrap();
    }
    // A call is running while everything, its intent included, is pruned.
    let running = writer.begin(call_receipt(5)).await.unwrap();
    let head = log.chain_head().await.unwrap().unwrap();
    assert_eq!(running.seq(), Some(head.seq));
    prune_through(&*log, &pruner, &keys, head.seq)
        .await
        .unwrap();
    assert_eq!(log.chain_head().await.unwrap(), Some(head.clone()));
    // The writer's own head is gone: the anchor covers it, and no checkpoint fails.
    eventually("a checkpoint due after pruning", || async {
        writer.stats().checkpoints >= 1
    })
    .await;
    assert_eq!(writer.stats().checkpoint_failures, 0);
    // Its completion, and what follows, continue the chain from the anchor.
    running
        .complete(ok())
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    let next = writer
        .record(&call_receipt(7))
        .await
        .unwrap()
        .durable()
        .await
        .unwrap();
    assert_eq!(
        next,
        Recorded::Durable(log.chain_head().await.unwrap().unwrap())
    );
    drop(writer);
    task.join().await.unwrap();
    let report = verify(&*log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(
        (report.anchor_seq, report.first_seq, report.receipts),
        (Some(head.seq), Some(head.seq + 1), 2)
    );
    assert!(report.unknown_outcomes.is_empty());
}

/// A sink that never finishes a write.
struct StuckSink;

impl ExportSink for StuckSink {
    fn name(&self) -> &str {
        "stuck"
    }

    fn export<'a>(&'a self, _receipts: &'a [StoredReceipt]) -> SinkFuture<'a> {
        Box::pin(std::future::pending())
    }
}

/// A sink whose every write fails.
struct FailingSink;

impl ExportSink for FailingSink {
    fn name(&self) -> &str {
        "failing"
    }

    fn export<'a>(&'a self, _receipts: &'a [StoredReceipt]) -> SinkFuture<'a> {
        Box::pin(async { Err(std::io::Error::other("collector refused")) })
    }
}

/// A sink that keeps the sequence numbers it was given.
#[derive(Default)]
struct KeptSeqs(std::sync::Mutex<Vec<i64>>);

impl ExportSink for KeptSeqs {
    fn name(&self) -> &str {
        "kept"
    }

    fn export<'a>(&'a self, receipts: &'a [StoredReceipt]) -> SinkFuture<'a> {
        let mut kept = self.0.lock().unwrap();
        kept.extend(receipts.iter().map(|receipt| receipt.seq));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test]
async fn a_stuck_or_failing_sink_holds_up_neither_calls_nor_the_other_sinks() {
    let log = Arc::new(MemoryLog::new());
    let kept = Arc::new(KeptSeqs::default());
    let sinks: Vec<Arc<dyn ExportSink>> = vec![
        Arc::new(StuckSink),
        Arc::new(FailingSink),
        Arc::clone(&kept) as Arc<dyn ExportSink>,
    ];
    let config = WriterConfig {
        export_queue_capacity: 2,
        ..config(FailureMode::FailClosed)
    };
    let (writer, task) = AuditWriter::spawn(
        Arc::clone(&log),
        CheckpointSigner::generate().unwrap(),
        config,
        sinks,
    );
    for number in 0..10 {
        let recorded = tokio::time::timeout(Duration::from_secs(5), async {
            writer
                .record(&call_receipt(number))
                .await
                .unwrap()
                .durable()
                .await
        })
        .await
        .expect("a receipt waited for export");
        recorded.unwrap();
    }
    eventually(
        "every receipt reached the working sink, every failure counted",
        || async { kept.0.lock().unwrap().len() == 10 && writer.stats().export_failures == 10 },
    )
    .await;
    assert_eq!(*kept.0.lock().unwrap(), (1..=10).collect::<Vec<i64>>());
    let stats = writer.stats();
    // Each receipt went in its own batch. The stuck sink holds one batch in its write and two
    // in its queue (one more if the queue filled before its task took the first), and the
    // rest are left out of its export and counted.
    assert!((7..=8).contains(&stats.export_dropped), "{stats:?}");
    assert_eq!(stats.appended, 10, "{stats:?}");
    drop(writer);
    task.join().await.unwrap();
}
