//! Retention of receipts: with `[audit] retain_days`, the gateway prunes the receipts recorded
//! before the retention period when it starts and every hour after, and `gatehouse audit prune`
//! does the same on demand. Pruning verifies the chain first, deletes the oldest receipts and
//! leaves a signed anchor in one transaction (see `gatehouse_audit::prune_before`), so
//! `audit verify` still passes and deleting old receipts without an anchor is still caught.
//!
//! Pruning stops short of an intent whose call may still be running: one recorded less than
//! [`longest_call`] ago without a completion. Older open intents are calls lost to a crash;
//! they are pruned and named in the log.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_audit::{
    CheckpointSigner, LogError, PruneLimits, PruneOutcome, RetentionError, Timestamp, TrustedKeys,
    prune_before,
};
use gatehouse_config::GatewaySettings;
use gatehouse_store::Store;

use crate::Gateway;
use crate::audit_log::StoreLog;

/// How often the gateway prunes while it runs.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3_600);

/// The least time an intent without a completion is taken to belong to a call still running.
const LEAST_CALL_HORIZON: Duration = Duration::from_secs(86_400);

/// How long a call may run, as far as pruning is concerned: a day, or the call deadline when
/// that is longer. An intent without a completion that is younger may be a call in flight on
/// this or another replica.
pub fn longest_call(settings: &GatewaySettings) -> Duration {
    settings.call_timeout.max(LEAST_CALL_HORIZON)
}

/// Prunes the receipts recorded before `before` from `store`, signing the anchor with
/// `signer` (whose key must have signed the checkpoints, as the chain is verified first), but
/// none recorded with or after an intent younger than `longest_call` that has no completion.
pub async fn prune_receipts_before(
    store: &Store,
    signer: &CheckpointSigner,
    before: Timestamp,
    longest_call: Duration,
) -> Result<PruneOutcome, RetentionError> {
    let keys = TrustedKeys::new([signer.public_key()]);
    let limits = PruneLimits {
        recorded_before: before,
        calls_running_since: Timestamp::now().saturating_sub(longest_call),
    };
    prune_before(&StoreLog(store.clone()), signer, &keys, limits).await
}

/// Prunes receipts older than `keep` now and every [`PRUNE_EVERY`], until aborted.
pub(crate) async fn prune_periodically(gateway: Arc<Gateway>, keep: Duration) {
    let longest_call = longest_call(&gateway.settings);
    let Some(signer) = gateway.audit.anchor_signer() else {
        return;
    };
    let mut tick = tokio::time::interval(PRUNE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let before = Timestamp::now().saturating_sub(keep);
        let pruned = prune_receipts_before(&gateway.store, signer, before, longest_call).await;
        report(&pruned, before);
    }
}

fn report(pruned: &Result<PruneOutcome, RetentionError>, before: Timestamp) {
    let before_ms = before.as_unix_millis();
    match pruned {
        Ok(outcome) => {
            if let Some(summary) = &outcome.pruned {
                tracing::info!(
                    deleted = summary.deleted,
                    anchor_seq = summary.anchor.seq,
                    before_ms,
                    "pruned receipts past their retention; the chain now starts after the anchor"
                );
                if !summary.pruned_unknown_outcomes.is_empty() {
                    let intents: Vec<i64> = summary
                        .pruned_unknown_outcomes
                        .iter()
                        .map(|unknown| unknown.intent_seq)
                        .collect();
                    tracing::warn!(
                        ?intents,
                        "pruned calls whose outcome is unknown; verification no longer lists them"
                    );
                }
            }
            if let Some(intent_seq) = outcome.held_back_by {
                tracing::info!(
                    intent_seq,
                    "pruning stopped before the intent of a call that may still be running"
                );
            }
        }
        // Another replica pruned first: the anchor's receipt is gone.
        Err(RetentionError::Log(LogError::CheckpointMismatch { seq })) => {
            tracing::debug!(seq, "receipts were pruned meanwhile, by another replica");
        }
        Err(error) => tracing::error!(%error, "cannot prune receipts past their retention"),
    }
}
