//! Measures verification of a 100k-entry chain and the writer's throughput over the in-memory
//! log. Run with `cargo run --release -p gatehouse-audit --example audit_bench`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_audit::{
    AuditKey, AuditWriter, CheckpointSigner, Completion, Decision, MemoryLog, MemoryState,
    NewReceipt, Outcome, Principal, Receipt, ReceiptKind, Target, TargetKind, TrustedKeys, Verdict,
    WriterConfig, seal, verify,
};

const CHAIN: u64 = 100_000;
const CALLERS: u64 = 64;
const CALLS_PER_CALLER: u64 = 2_000;

fn receipt(number: u64, key: &AuditKey) -> Receipt {
    let mut receipt = Receipt::new(
        format!("req-{number}"),
        "tools/call",
        Decision {
            verdict: Verdict::Allow,
            rule_ids: vec!["grant-engineers-read".to_owned()],
            policy_hash: Some("sha256:4f1c0a".to_owned()),
        },
    );
    receipt.principal = Some(Principal {
        user: format!("user{}", number % 13),
        groups: vec!["engineers".to_owned()],
        credential_id: Some("key-7".to_owned()),
    });
    receipt.server = Some("github".to_owned());
    receipt.target = Some(Target {
        kind: TargetKind::Tool,
        name: "github__search_issues".to_owned(),
    });
    let arguments = serde_json::json!({"query": format!("is:open label:bug {number}")});
    receipt.arguments_digest = Some(key.digest_value(&arguments));
    receipt
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = AuditKey::generate()?;
    let signer = CheckpointSigner::generate()?;
    let keys = TrustedKeys::new([signer.public_key()]);

    let started = Instant::now();
    let entries = (1..=CHAIN)
        .map(|number| NewReceipt::new(ReceiptKind::Decision, &receipt(number, &key)))
        .collect::<Result<Vec<_>, _>>()?;
    let receipts = seal(None, &entries);
    let checkpoints = receipts
        .iter()
        .filter(|entry| entry.seq % 1_024 == 0)
        .map(|entry| signer.sign_checkpoint(&entry.head(), entry.recorded_at))
        .collect();
    let bytes: usize = receipts.iter().map(|entry| entry.body.len()).sum();
    println!(
        "built {CHAIN} receipts ({} bytes of body on average) in {:?}",
        bytes / receipts.len().max(1),
        started.elapsed()
    );
    let log = MemoryLog::from_state(MemoryState {
        receipts,
        checkpoints,
    });
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let report = verify(&log, &keys).await?;
        best = best.min(started.elapsed());
        assert!(report.is_intact(), "{:?}", report.problems);
    }
    println!("verified {CHAIN} receipts and their checkpoints in {best:?} (best of 3)");

    for (label, intents) in [("decisions", false), ("intent + completion pairs", true)] {
        let log = Arc::new(MemoryLog::new());
        let signer = CheckpointSigner::generate()?;
        let (writer, task) = AuditWriter::spawn(
            Arc::clone(&log),
            signer,
            WriterConfig::default(),
            Vec::new(),
        );
        let started = Instant::now();
        let mut callers = Vec::new();
        for caller in 0..CALLERS {
            let writer = writer.clone();
            let key = key.clone();
            callers.push(tokio::spawn(async move {
                for call in 0..CALLS_PER_CALLER {
                    let receipt = receipt(caller * CALLS_PER_CALLER + call, &key);
                    if intents {
                        let intent = writer.begin(receipt).await?;
                        let completion = Completion {
                            outcome: Outcome::Ok,
                            error_source: None,
                            latency: Duration::from_micros(800),
                        };
                        intent.complete(completion).await?.durable().await?;
                    } else {
                        writer.record(&receipt).await?.durable().await?;
                    }
                }
                Ok::<(), gatehouse_audit::AuditError>(())
            }));
        }
        for caller in callers {
            caller.await??;
        }
        let elapsed = started.elapsed();
        let stats = writer.stats();
        drop(writer);
        task.join().await?;
        println!(
            "writer, {label}: {} receipts from {CALLERS} concurrent callers, each waiting until \
             durable, in {elapsed:?}: {:.0} receipts/s, {:.1} receipts per batch",
            stats.appended,
            stats.appended as f64 / elapsed.as_secs_f64(),
            stats.appended as f64 / stats.batches.max(1) as f64
        );
    }
    Ok(())
}
