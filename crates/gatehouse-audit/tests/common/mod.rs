//! Shared test fixtures: receipts, pre-built chains, a log that can be made to fail, and a
//! bounded poll.

#![allow(
    dead_code,
    reason = "each test crate uses a different part of the fixtures"
)]

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use gatehouse_audit::{
    ChainHead, Checkpoint, CheckpointSigner, ClientInfo, CredentialUse, Decision, LogError,
    MemoryLog, MemoryState, NewReceipt, Outcome, Principal, Receipt, ReceiptKind, ReceiptLog,
    StoredReceipt, Target, TargetKind, Timestamp, Verdict, seal,
};

/// A realistic allowed tool call receipt.
pub fn call_receipt(number: u64) -> Receipt {
    let mut receipt = Receipt::new(
        format!("req-{number}"),
        "tools/call",
        Decision {
            verdict: Verdict::Allow,
            rule_ids: vec!["grant-engineers-read".to_owned()],
            policy_hash: Some("sha256:4f1c0a".to_owned()),
        },
    );
    receipt.time = Timestamp::from_unix_millis(1_767_225_600_000 + i64::try_from(number).unwrap());
    receipt.session_id = Some(format!("session-{}", number % 97));
    receipt.principal = Some(Principal {
        user: format!("user{}", number % 13),
        groups: vec!["engineers".to_owned()],
        credential_id: Some("key-7".to_owned()),
    });
    receipt.client = ClientInfo {
        name: Some("claude-code".to_owned()),
        address: Some("10.0.0.7:51234".parse().unwrap()),
    };
    receipt.server = Some("github".to_owned());
    receipt.target = Some(Target {
        kind: TargetKind::Tool,
        name: "github__search_issues".to_owned(),
    });
    receipt.credential = Some(CredentialUse {
        id: "github-service".to_owned(),
        version: 3,
    });
    receipt.tool_definition_hash = Some("sha256:9e2d".to_owned());
    receipt
}

/// How many entries the big fixture chain has, and how often it is checkpointed.
pub const BIG_CHAIN: i64 = 100_000;
pub const CHECKPOINT_EVERY: i64 = 1_000;

/// Intents in the big chain that never get a completion.
pub const OPEN_INTENTS: [i64; 2] = [50_003, 99_993];

/// A chain of `length` entries: mostly decisions, an intent at every seq ending in 3 completed
/// by the next entry (except [`OPEN_INTENTS`]), signed every [`CHECKPOINT_EVERY`] entries.
/// Bodies are made from one encoded template per kind, with the request id and time swapped
/// in, which keeps building 100k entries cheap in a debug build.
pub fn build_chain(length: i64, signer: &CheckpointSigner) -> MemoryState {
    let template = |kind: ReceiptKind| {
        let mut receipt = call_receipt(0);
        receipt.request_id = "req-TEMPLATE".to_owned();
        if matches!(kind, ReceiptKind::Completion { .. }) {
            receipt.outcome = Some(Outcome::Ok);
            receipt.latency_us = Some(1_250);
        }
        NewReceipt::new(kind, &receipt).unwrap()
    };
    let decision = template(ReceiptKind::Decision);
    let intent = template(ReceiptKind::Intent);
    let completion = template(ReceiptKind::Completion { intent_seq: 0 });
    let template_time = call_receipt(0).time.as_unix_millis();
    let mut entries = Vec::with_capacity(usize::try_from(length).unwrap());
    for seq in 1..=length {
        let mut entry = if seq % 10 == 3 {
            intent.clone()
        } else if seq % 10 == 4 && !OPEN_INTENTS.contains(&(seq - 1)) {
            let mut entry = completion.clone();
            entry.kind = ReceiptKind::Completion {
                intent_seq: seq - 1,
            };
            entry
        } else {
            decision.clone()
        };
        let time = template_time + seq;
        entry.recorded_at = Timestamp::from_unix_millis(time);
        entry.body = entry
            .body
            .replace("req-TEMPLATE", &format!("req-{seq}"))
            .replace(&template_time.to_string(), &time.to_string());
        entries.push(entry);
    }
    let receipts = seal(None, &entries);
    let checkpoints = receipts
        .iter()
        .filter(|entry| entry.seq % CHECKPOINT_EVERY == 0)
        .map(|entry| sign(signer, entry))
        .collect();
    MemoryState {
        receipts,
        checkpoints,
    }
}

pub fn sign(signer: &CheckpointSigner, entry: &StoredReceipt) -> Checkpoint {
    signer.sign_checkpoint(
        &ChainHead {
            seq: entry.seq,
            hash: entry.hash.clone(),
        },
        entry.recorded_at,
    )
}

/// Recomputes links and hashes from `index` on, as an attacker rewriting the chain would.
pub fn rehash_from(receipts: &mut [StoredReceipt], index: usize) {
    for position in index..receipts.len() {
        if position > 0 {
            receipts[position].prev_hash = receipts[position - 1].hash.clone();
        }
        receipts[position].hash = receipts[position].computed_hash();
    }
}

/// A [`MemoryLog`] whose appends (and checkpoints) fail while `failing` is set.
#[derive(Debug, Default)]
pub struct FlakyLog {
    pub inner: MemoryLog,
    pub failing: AtomicBool,
}

impl FlakyLog {
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), LogError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(LogError::storage("appending receipts", "disk full"))
        } else {
            Ok(())
        }
    }
}

impl ReceiptLog for FlakyLog {
    async fn append_receipts(&self, receipts: &[NewReceipt]) -> Result<Vec<ChainHead>, LogError> {
        self.check()?;
        self.inner.append_receipts(receipts).await
    }

    async fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> Result<Vec<StoredReceipt>, LogError> {
        self.inner.receipts_range(from_seq, limit).await
    }

    async fn chain_head(&self) -> Result<Option<ChainHead>, LogError> {
        self.inner.chain_head().await
    }

    async fn add_checkpoint(&self, checkpoint: &Checkpoint) -> Result<(), LogError> {
        self.check()?;
        self.inner.add_checkpoint(checkpoint).await
    }

    async fn checkpoints(&self, from_seq: i64, limit: u32) -> Result<Vec<Checkpoint>, LogError> {
        self.inner.checkpoints(from_seq, limit).await
    }

    async fn prune_through(&self, anchor: &Checkpoint) -> Result<u64, LogError> {
        self.check()?;
        self.inner.prune_through(anchor).await
    }
}

/// Polls `condition` until it holds, for at most five seconds.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
