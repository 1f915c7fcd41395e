//! Pruning leaves a signed anchor so the rest of the chain verifies, and checkpoints exported
//! as JSON lines verify a log from outside it.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions may panic: a panic is the failure report"
)]

mod common;

use common::build_chain;
use gatehouse_audit::{
    CheckpointSigner, MemoryLog, Problem, ReceiptLog, RetentionError, TrustedKeys, VerifyOptions,
    export_checkpoints, prune_through, read_checkpoint_lines, verify, verify_with,
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
