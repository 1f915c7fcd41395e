//! Tampering with a 100k-entry chain: every kind of change is reported at the exact first bad
//! seq. Each case goes through [`check`], which applies one [`Tamper`] to a copy of the shared
//! fixture and compares the first problem found.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers outside #[test] functions may panic: a panic is the failure report"
)]

mod common;

use std::sync::LazyLock;

use common::{BIG_CHAIN, CHECKPOINT_EVERY, OPEN_INTENTS, build_chain, rehash_from, sign};
use gatehouse_audit::{
    CheckpointSigner, MemoryLog, MemoryState, TrustedKeys, UnknownOutcome, VerifyOptions,
    verify_with,
};

struct Fixture {
    signer: CheckpointSigner,
    state: MemoryState,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let signer = CheckpointSigner::generate().unwrap();
    let state = build_chain(BIG_CHAIN, &signer);
    Fixture { signer, state }
});

/// One way of tampering with the log.
enum Tamper {
    Nothing,
    FlipBodyByte {
        seq: i64,
    },
    FlipHashByte {
        seq: i64,
    },
    Delete {
        seq: i64,
    },
    DeleteAndRenumber {
        seq: i64,
    },
    DeleteHead {
        count: i64,
    },
    InsertForged {
        seq: i64,
    },
    InsertAndRenumber {
        seq: i64,
    },
    SwapContents {
        first: i64,
        second: i64,
    },
    Truncate {
        keep: i64,
    },
    Rewrite {
        from: i64,
    },
    RewriteAndResign {
        from: i64,
        claim_real_key_id: bool,
    },
    /// Rewrite from `from` and delete the checkpoints that no longer match.
    RewriteAndDropCheckpoints {
        from: i64,
    },
    /// Cut the log back to an old checkpoint, which becomes the newest again.
    RollBackTo {
        seq: i64,
    },
    ForgeCheckpointHash {
        seq: i64,
    },
}

/// Which checkpoints kept outside the log the verifier is given.
enum Exported {
    None,
    /// Every checkpoint of the untouched log, as exported.
    All,
    /// Those, then an old one (with this seq) replayed at the end of the export.
    AllThenReplayed {
        seq: i64,
    },
}

fn index_of(seq: i64) -> usize {
    usize::try_from(seq - 1).unwrap()
}

fn apply(tamper: Tamper, state: &mut MemoryState) {
    let receipts = &mut state.receipts;
    match tamper {
        Tamper::Nothing => {}
        Tamper::FlipBodyByte { seq } => {
            let body = &mut receipts[index_of(seq)].body;
            *body = body.replacen("user", "usEr", 1);
        }
        Tamper::FlipHashByte { seq } => {
            let hash = &mut receipts[index_of(seq)].hash;
            let flipped = if hash.starts_with('0') { "1" } else { "0" };
            hash.replace_range(0..1, flipped);
        }
        Tamper::Delete { seq } => {
            receipts.remove(index_of(seq));
        }
        Tamper::DeleteAndRenumber { seq } => {
            receipts.remove(index_of(seq));
            for entry in &mut receipts[index_of(seq)..] {
                entry.seq -= 1;
            }
        }
        Tamper::DeleteHead { count } => {
            receipts.drain(..index_of(count + 1));
        }
        Tamper::InsertForged { seq } => {
            let forged = forged_after(&receipts[index_of(seq - 1)], seq);
            receipts.insert(index_of(seq), forged);
        }
        Tamper::InsertAndRenumber { seq } => {
            let forged = forged_after(&receipts[index_of(seq - 1)], seq);
            receipts.insert(index_of(seq), forged);
            for entry in &mut receipts[index_of(seq) + 1..] {
                entry.seq += 1;
            }
        }
        Tamper::SwapContents { first, second } => {
            let (first, second) = (index_of(first), index_of(second));
            let (first_seq, second_seq) = (receipts[first].seq, receipts[second].seq);
            receipts.swap(first, second);
            receipts[first].seq = first_seq;
            receipts[second].seq = second_seq;
        }
        Tamper::Truncate { keep } => receipts.truncate(index_of(keep + 1)),
        Tamper::Rewrite { from } => rewrite(receipts, from),
        Tamper::RewriteAndResign {
            from,
            claim_real_key_id,
        } => {
            rewrite(receipts, from);
            let mut attacker = CheckpointSigner::generate().unwrap();
            if claim_real_key_id {
                attacker = attacker.with_key_id(FIXTURE.signer.key_id());
            }
            for checkpoint in state.checkpoints.iter_mut().filter(|c| c.seq >= from) {
                *checkpoint = sign(&attacker, &state.receipts[index_of(checkpoint.seq)]);
            }
        }
        Tamper::RewriteAndDropCheckpoints { from } => {
            rewrite(receipts, from);
            state.checkpoints.retain(|checkpoint| checkpoint.seq < from);
        }
        Tamper::RollBackTo { seq } => {
            receipts.truncate(index_of(seq + 1));
            state.checkpoints.retain(|checkpoint| checkpoint.seq <= seq);
        }
        Tamper::ForgeCheckpointHash { seq } => {
            let position = state.checkpoints.iter().position(|c| c.seq == seq).unwrap();
            state.checkpoints[position].head_hash = receipts[index_of(seq - 1)].hash.clone();
        }
    }
}

/// A well-formed entry an attacker places after `previous`: linked and hashed correctly.
fn forged_after(
    previous: &gatehouse_audit::StoredReceipt,
    seq: i64,
) -> gatehouse_audit::StoredReceipt {
    let mut forged = previous.clone();
    forged.seq = seq;
    forged.kind = gatehouse_audit::ReceiptKind::Decision;
    forged.body = forged.body.replacen("req-", "forged-", 1);
    forged.prev_hash = previous.hash.clone();
    forged.hash = forged.computed_hash();
    forged
}

/// Changes the entry `from` and recomputes every hash after it.
fn rewrite(receipts: &mut [gatehouse_audit::StoredReceipt], from: i64) {
    let index = index_of(from);
    receipts[index].body = receipts[index].body.replacen("allow", "deny", 1);
    rehash_from(receipts, index);
}

/// Applies `tamper` to a copy of the fixture, verifies with the `exported` checkpoints, and
/// checks the first problem (its `Debug` form) and the first bad seq.
async fn check(tamper: Tamper, exported: Exported, first_bad_seq: i64, first_problem: &str) {
    let report = run(tamper, exported).await;
    let first = report.first_problem().expect("a problem should be found");
    assert_eq!(
        (report.first_bad_seq(), format!("{first:?}")),
        (Some(first_bad_seq), first_problem.to_owned()),
        "first problem: {first}"
    );
}

async fn run(tamper: Tamper, exported: Exported) -> gatehouse_audit::Report {
    let mut state = FIXTURE.state.clone();
    apply(tamper, &mut state);
    let mut options = VerifyOptions::default();
    match exported {
        Exported::None => {}
        Exported::All => options.trusted_checkpoints = FIXTURE.state.checkpoints.clone(),
        Exported::AllThenReplayed { seq } => {
            options.trusted_checkpoints = FIXTURE.state.checkpoints.clone();
            let old = FIXTURE
                .state
                .checkpoints
                .iter()
                .find(|c| c.seq == seq)
                .unwrap();
            options.trusted_checkpoints.push(old.clone());
        }
    }
    let keys = TrustedKeys::new([FIXTURE.signer.public_key()]);
    verify_with(&MemoryLog::from_state(state), &keys, &options)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_untouched_log_verifies_and_reports_its_open_intents() {
    let built = std::time::Instant::now();
    LazyLock::force(&FIXTURE);
    eprintln!("built the fixture in {:?}", built.elapsed());
    let started = std::time::Instant::now();
    let report = run(Tamper::Nothing, Exported::All).await;
    eprintln!(
        "verified {} receipts in {:?} (debug build)",
        report.receipts,
        started.elapsed()
    );
    assert!(report.is_intact(), "{:?}", report.problems);
    assert_eq!(report.receipts, 100_000);
    assert_eq!(report.checkpoints_matched, 2 * 100);
    assert_eq!(report.unsigned_tail, 0);
    let expected: Vec<_> = OPEN_INTENTS
        .iter()
        .map(|&intent_seq| UnknownOutcome {
            intent_seq,
            completion_seq: None,
        })
        .collect();
    assert_eq!(report.unknown_outcomes, expected);
}

#[tokio::test]
async fn a_changed_byte_in_a_body() {
    check(
        Tamper::FlipBodyByte { seq: 43_210 },
        Exported::None,
        43_210,
        "Altered { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn a_changed_byte_in_a_stored_hash() {
    check(
        Tamper::FlipHashByte { seq: 43_210 },
        Exported::None,
        43_210,
        "Altered { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_middle_record() {
    check(
        Tamper::Delete { seq: 43_210 },
        Exported::None,
        43_210,
        "OutOfSequence { expected: 43210, found: 43211 }",
    )
    .await;
}

#[tokio::test]
async fn a_deleted_middle_record_with_the_rest_renumbered() {
    check(
        Tamper::DeleteAndRenumber { seq: 43_210 },
        Exported::None,
        43_210,
        "BrokenLink { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn deleted_first_records_without_an_anchor() {
    check(
        Tamper::DeleteHead { count: 1_000 },
        Exported::None,
        1,
        "MissingStart { expected: 1, found: 1001 }",
    )
    .await;
}

#[tokio::test]
async fn an_inserted_record_with_a_repeated_seq() {
    check(
        Tamper::InsertForged { seq: 43_210 },
        Exported::None,
        43_210,
        "OutOfSequence { expected: 43211, found: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn an_inserted_record_with_the_rest_renumbered() {
    check(
        Tamper::InsertAndRenumber { seq: 43_210 },
        Exported::None,
        43_210,
        "Inserted { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn two_records_swapped() {
    check(
        Tamper::SwapContents {
            first: 43_210,
            second: 43_250,
        },
        Exported::None,
        43_210,
        "BrokenLink { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn two_neighbours_swapped() {
    check(
        Tamper::SwapContents {
            first: 43_210,
            second: 43_211,
        },
        Exported::None,
        43_210,
        "BrokenLink { seq: 43210 }",
    )
    .await;
}

#[tokio::test]
async fn a_truncated_tail() {
    check(
        Tamper::Truncate { keep: 99_500 },
        Exported::None,
        99_501,
        "CheckpointBeyondHead { seq: 100000, head: 99500, origin: Log }",
    )
    .await;
}

#[tokio::test]
async fn a_tail_truncated_across_many_checkpoints() {
    check(
        Tamper::Truncate { keep: 60_123 },
        Exported::None,
        60_124,
        "CheckpointBeyondHead { seq: 61000, head: 60123, origin: Log }",
    )
    .await;
}

#[tokio::test]
async fn a_chain_rewritten_with_recomputed_hashes() {
    check(
        Tamper::Rewrite { from: 43_210 },
        Exported::None,
        44_000,
        "CheckpointMismatch { seq: 44000, last_matched: Some(43000), origin: Log }",
    )
    .await;
}

#[tokio::test]
async fn a_rewritten_chain_resigned_with_another_key() {
    let report = run(
        Tamper::RewriteAndResign {
            from: 43_210,
            claim_real_key_id: false,
        },
        Exported::None,
    )
    .await;
    let first = report.first_problem().unwrap();
    assert_eq!(report.first_bad_seq(), Some(44_000));
    assert!(
        format!("{first:?}").starts_with("CheckpointInvalid { seq: 44000, error: UnknownKey"),
        "{first:?}"
    );
}

#[tokio::test]
async fn a_rewritten_chain_resigned_under_the_real_key_id() {
    check(
        Tamper::RewriteAndResign {
            from: 43_210,
            claim_real_key_id: true,
        },
        Exported::None,
        44_000,
        "CheckpointInvalid { seq: 44000, error: BadSignature { seq: 44000 }, origin: Log }",
    )
    .await;
}

#[tokio::test]
async fn a_rewritten_chain_without_its_checkpoints_against_the_export() {
    check(
        Tamper::RewriteAndDropCheckpoints { from: 43_210 },
        Exported::All,
        44_000,
        "CheckpointMismatch { seq: 44000, last_matched: Some(43000), origin: Trusted }",
    )
    .await;
}

#[tokio::test]
async fn an_old_checkpoint_replayed_as_the_newest_against_the_export() {
    // Without the export, a log cut back to a checkpoint looks whole; the export shows it.
    let alone = run(Tamper::RollBackTo { seq: 60_000 }, Exported::None).await;
    assert!(alone.is_intact());
    check(
        Tamper::RollBackTo { seq: 60_000 },
        Exported::All,
        60_001,
        "CheckpointBeyondHead { seq: 61000, head: 60000, origin: Trusted }",
    )
    .await;
}

#[tokio::test]
async fn an_old_checkpoint_replayed_into_the_export() {
    check(
        Tamper::Nothing,
        Exported::AllThenReplayed { seq: 30_000 },
        30_000,
        "CheckpointOutOfOrder { seq: 30000, previous: 100000, origin: Trusted }",
    )
    .await;
}

#[tokio::test]
async fn a_checkpoint_pointed_at_another_record() {
    check(
        Tamper::ForgeCheckpointHash { seq: 70_000 },
        Exported::None,
        70_000,
        "CheckpointInvalid { seq: 70000, error: BadSignature { seq: 70000 }, origin: Log }",
    )
    .await;
}

#[test]
fn the_fixture_is_checkpointed_as_documented() {
    assert_eq!(
        FIXTURE.state.checkpoints.len(),
        usize::try_from(BIG_CHAIN / CHECKPOINT_EVERY).unwrap()
    );
}
