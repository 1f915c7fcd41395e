//! Pruning leaves a signed anchor so the rest of the chain verifies, and checkpoints exported
//! as JSON lines verify a log from outside it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions may panic: a panic is the failure report"
)]

mod common;

use common::{build_chain, call_receipt};
use gatehouse_audit::{
    CheckpointSigner, MemoryLog, NewReceipt, Outcome, Problem, PruneLimits, ReceiptKind,
    ReceiptLog, RetentionError, Timestamp, TrustedKeys, UnknownOutcome, VerifyOptions,
    export_checkpoints, prune_before, prune_through, read_checkpoint_lines, verify, verify_with,
};

fn fixture() -> (CheckpointSigner, TrustedKeys, MemoryLog) {
    let signer = CheckpointSigner::generate().unwrap();
    let keys = TrustedKeys::new([signer.public_key()]);
    let log = MemoryLog::from_state(build_chain(5_000, &signer));
    (signer, keys, log)
}

#[tokio::test]
async fn a_pruned_log_verifies_from_its_anchor() {
    let (signer, keys, log) = fixture();
    let summary = prune_through(&log, &signer, &keys, 2_503).await.unwrap();
    assert_eq!((summary.deleted, summary.anchor.seq), (2_503, 2_503));
    // The intent at 2503 is completed by 2504, which stays.
    assert!(summary.pruned_unknown_outcomes.is_empty());
    let report = verify(&log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(
        (report.anchor_seq, report.first_seq, report.receipts),
        (Some(2_503), Some(2_504), 2_497)
    );
}

#[tokio::test]
async fn deleting_past_the_anchor_is_caught() {
    let (signer, keys, log) = fixture();
    prune_through(&log, &signer, &keys, 2_000).await.unwrap();
    let mut state = log.snapshot().unwrap();
    state.receipts.drain(..100);
    let report = verify(&MemoryLog::from_state(state), &keys).await.unwrap();
    assert_eq!(
        report.first_problem(),
        Some(&Problem::MissingStart {
            expected: 2_001,
            found: 2_101
        })
    );
}

#[tokio::test]
async fn an_ordinary_checkpoint_is_not_an_anchor() {
    let (_signer, keys, log) = fixture();
    let mut state = log.snapshot().unwrap();
    state.receipts.drain(..1_000);
    let report = verify(&MemoryLog::from_state(state), &keys).await.unwrap();
    assert_eq!(
        report.first_problem(),
        Some(&Problem::MissingStart {
            expected: 1,
            found: 1_001
        })
    );
}

#[tokio::test]
async fn pruning_a_chain_that_does_not_verify_is_refused() {
    let (signer, keys, log) = fixture();
    let mut state = log.snapshot().unwrap();
    state.receipts[99].body.push(' ');
    let log = MemoryLog::from_state(state);
    let refused = prune_through(&log, &signer, &keys, 2_000).await;
    assert!(
        matches!(
            refused,
            Err(RetentionError::ChainDoesNotVerify {
                problem: Problem::Altered { seq: 100 }
            })
        ),
        "{refused:?}"
    );
    assert_eq!(
        log.receipts_range(1, 1).await.unwrap()[0].seq,
        1,
        "nothing was deleted"
    );
}

#[tokio::test]
async fn exported_checkpoints_verify_the_log_from_outside() {
    let (_signer, keys, log) = fixture();
    let mut exported = Vec::new();
    let written = export_checkpoints(&log, &mut exported).await.unwrap();
    assert_eq!(written, 5);
    let trusted = read_checkpoint_lines(std::str::from_utf8(&exported).unwrap()).unwrap();
    let options = VerifyOptions {
        trusted_checkpoints: trusted,
        ..VerifyOptions::default()
    };
    let report = verify_with(&log, &keys, &options).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.checkpoints_matched, 10);
}

#[tokio::test]
async fn receipts_export_as_json_lines_that_match_the_chain() {
    let (_signer, _keys, log) = fixture();
    let mut exported = Vec::new();
    let written = gatehouse_audit::export_receipts(&log, 4_990, &mut exported)
        .await
        .unwrap();
    assert_eq!(written, 11);
    let text = String::from_utf8(exported).unwrap();
    let stored = log.receipts_range(4_990, 100).await.unwrap();
    for (line, entry) in text.lines().zip(&stored) {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["prev_hash"], entry.prev_hash.as_str());
        assert_eq!(value["kind"], entry.kind.as_str());
        assert_eq!(
            gatehouse_audit::canonical::canonical_value(&value["receipt"]),
            entry.body
        );
    }
}

/// The time the fixture chain records entry `seq` at.
fn time_of(seq: i64) -> Timestamp {
    Timestamp::from_unix_millis(call_receipt(0).time.as_unix_millis() + seq)
}

/// Appends one entry of `kind` recorded at `time`; returns its seq.
async fn append(log: &MemoryLog, kind: ReceiptKind, time: Timestamp) -> i64 {
    let mut receipt = call_receipt(7);
    receipt.time = time;
    if matches!(kind, ReceiptKind::Completion { .. }) {
        receipt.outcome = Some(Outcome::Ok);
    }
    let entry = NewReceipt::new(kind, &receipt).unwrap();
    log.append_receipts(&[entry]).await.unwrap()[0].seq
}

fn limits(recorded_before: Timestamp, calls_running_since: Timestamp) -> PruneLimits {
    PruneLimits {
        recorded_before,
        calls_running_since,
    }
}

#[tokio::test]
async fn pruning_by_time_deletes_the_entries_recorded_before_the_cutoff() {
    let (signer, keys, log) = fixture();
    let outcome = prune_before(
        &log,
        &signer,
        &keys,
        limits(time_of(2_501), Timestamp::from_unix_millis(0)),
    )
    .await
    .unwrap();
    let pruned = outcome.pruned.unwrap();
    assert_eq!((pruned.anchor.seq, pruned.deleted), (2_500, 2_500));
    assert_eq!(outcome.held_back_by, None);
    let report = verify(&log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.first_seq, Some(2_501));
    let again = prune_before(
        &log,
        &signer,
        &keys,
        limits(time_of(2_501), Timestamp::from_unix_millis(0)),
    )
    .await
    .unwrap();
    assert_eq!((again.pruned, again.held_back_by), (None, None));
}

#[tokio::test]
async fn an_entry_recorded_late_keeps_everything_after_it() {
    let (signer, keys, log) = fixture();
    // Entry 5001 was recorded long before the ones around it (another writer's batch).
    let early = append(&log, ReceiptKind::Decision, time_of(100)).await;
    let outcome = prune_before(
        &log,
        &signer,
        &keys,
        limits(time_of(50), Timestamp::from_unix_millis(0)),
    )
    .await
    .unwrap();
    assert_eq!(outcome.pruned.unwrap().anchor.seq, 49);
    assert_eq!(early, 5_001);
    assert!(verify(&log, &keys).await.unwrap().is_intact());
}

#[tokio::test]
async fn a_call_that_may_still_be_running_holds_pruning_back_until_it_completes() {
    let (signer, keys, log) = fixture();
    let intent = append(&log, ReceiptKind::Intent, time_of(5_001)).await;
    append(&log, ReceiptKind::Decision, time_of(5_002)).await;
    let everything = time_of(10_000);
    let outcome = prune_before(&log, &signer, &keys, limits(everything, time_of(5_001)))
        .await
        .unwrap();
    assert_eq!(outcome.pruned.unwrap().anchor.seq, 5_000);
    assert_eq!(outcome.held_back_by, Some(intent));

    // Once it completes, everything may go; the log then continues from the anchor.
    let completion = append(
        &log,
        ReceiptKind::Completion { intent_seq: intent },
        time_of(5_003),
    )
    .await;
    let outcome = prune_before(&log, &signer, &keys, limits(everything, time_of(5_001)))
        .await
        .unwrap();
    let pruned = outcome.pruned.unwrap();
    assert_eq!((pruned.anchor.seq, pruned.deleted), (completion, 3));
    let report = verify(&log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!((report.receipts, report.anchor_seq), (0, Some(completion)));
    let next = append(&log, ReceiptKind::Decision, time_of(5_004)).await;
    assert_eq!(next, completion + 1);
    let report = verify(&log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(
        (report.anchor_seq, report.first_seq),
        (Some(completion), Some(next))
    );
}

#[tokio::test]
async fn a_call_lost_long_ago_is_pruned_and_reported_and_its_late_completion_still_verifies() {
    let (signer, keys, log) = fixture();
    let lost = append(&log, ReceiptKind::Intent, time_of(5_001)).await;
    append(&log, ReceiptKind::Decision, time_of(5_002)).await;
    let outcome = prune_before(&log, &signer, &keys, limits(time_of(5_002), time_of(6_000)))
        .await
        .unwrap();
    let pruned = outcome.pruned.unwrap();
    assert_eq!(pruned.anchor.seq, lost);
    assert_eq!(
        pruned.pruned_unknown_outcomes,
        vec![UnknownOutcome {
            intent_seq: lost,
            completion_seq: None
        }]
    );
    // The pruned intent may be completed once, and its completion stands alone.
    let completion = append(
        &log,
        ReceiptKind::Completion { intent_seq: lost },
        time_of(5_003),
    )
    .await;
    let twice = NewReceipt::new(
        ReceiptKind::Completion { intent_seq: lost },
        &call_receipt(8),
    )
    .unwrap();
    assert!(log.append_receipts(&[twice]).await.is_err());
    let report = verify(&log, &keys).await.unwrap();
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.head.map(|head| head.seq), Some(completion));
}
