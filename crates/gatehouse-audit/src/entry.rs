//! Log entries: a receipt body with the columns a log keeps beside it. These mirror the
//! `receipts` table of `gatehouse-store` field for field, so a store can implement
//! [`crate::ReceiptLog`] by copying fields.

use crate::canonical::{CanonicalError, to_canonical_json};
use crate::chain::receipt_hash;
use crate::receipt::Receipt;
use crate::time::Timestamp;

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// A decision that is complete in itself: a denial, a refusal, a call that never reached
    /// an upstream.
    Decision,
    /// A call about to be sent upstream; completed later by a [`ReceiptKind::Completion`].
    Intent,
    /// The outcome of the intent with sequence number `intent_seq`.
    Completion {
        /// The intent this completes.
        intent_seq: i64,
    },
}

impl ReceiptKind {
    /// The stored name: `decision`, `intent` or `completion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::Intent => "intent",
            Self::Completion { .. } => "completion",
        }
    }

    /// The completed intent's sequence number, for a completion.
    pub fn intent_seq(self) -> Option<i64> {
        match self {
            Self::Completion { intent_seq } => Some(intent_seq),
            Self::Decision | Self::Intent => None,
        }
    }
}

/// The queryable fields of an entry, copied from its receipt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptIndex {
    /// The acting user, when authenticated.
    pub user: Option<String>,
    /// The upstream server, when routed.
    pub server: Option<String>,
    /// The tool, resource or prompt name, when there is one.
    pub tool: Option<String>,
    /// The decision: `allow`, `deny` or `error`.
    pub decision: String,
    /// The outcome, e.g. `ok`, `upstream_error`; `None` on an intent.
    pub outcome: Option<String>,
}

impl ReceiptIndex {
    /// The index columns of `receipt`.
    pub fn of(receipt: &Receipt) -> Self {
        Self {
            user: receipt
                .principal
                .as_ref()
                .map(|principal| principal.user.clone()),
            server: receipt.server.clone(),
            tool: receipt.target.as_ref().map(|target| target.name.clone()),
            decision: receipt.decision.verdict.as_str().to_owned(),
            outcome: receipt.outcome.map(|outcome| outcome.as_str().to_owned()),
        }
    }
}

/// An entry to append: everything but its place in the chain, which the log assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// When the decision was made.
    pub recorded_at: Timestamp,
    /// What it records.
    pub kind: ReceiptKind,
    /// The queryable fields.
    pub index: ReceiptIndex,
    /// The receipt as canonical JSON.
    pub body: String,
}

impl NewReceipt {
    /// The entry for `receipt`: its canonical body, its index, its time.
    pub fn new(kind: ReceiptKind, receipt: &Receipt) -> Result<Self, CanonicalError> {
        Ok(Self {
            recorded_at: receipt.time,
            kind,
            index: ReceiptIndex::of(receipt),
            body: to_canonical_json(receipt)?,
        })
    }
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// Its sequence number, from 1, without gaps.
    pub seq: i64,
    /// When the decision was made.
    pub recorded_at: Timestamp,
    /// What it records.
    pub kind: ReceiptKind,
    /// The queryable fields.
    pub index: ReceiptIndex,
    /// The receipt as canonical JSON.
    pub body: String,
    /// The previous entry's hash ([`crate::GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// This entry's hash, see [`crate::chain`].
    pub hash: String,
}

impl StoredReceipt {
    /// The hash this entry's columns should have.
    pub fn computed_hash(&self) -> String {
        receipt_hash(
            &self.prev_hash,
            self.seq,
            self.recorded_at,
            self.kind,
            &self.index,
            &self.body,
        )
    }

    /// The receipt in the body.
    pub fn receipt(&self) -> Result<Receipt, serde_json::Error> {
        serde_json::from_str(&self.body)
    }

    /// This entry's place in the chain.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.hash.clone(),
        }
    }

    /// The entry as one line of JSON for export: the columns, with the body embedded as a
    /// JSON object under `receipt`.
    pub fn to_json_line(&self) -> String {
        let mut line = String::with_capacity(self.body.len() + 320);
        line.push_str("{\"seq\":");
        line.push_str(&self.seq.to_string());
        line.push_str(",\"recorded_at\":");
        line.push_str(&self.recorded_at.as_unix_millis().to_string());
        line.push_str(",\"kind\":\"");
        line.push_str(self.kind.as_str());
        line.push('"');
        if let Some(intent_seq) = self.kind.intent_seq() {
            line.push_str(",\"intent_seq\":");
            line.push_str(&intent_seq.to_string());
        }
        // Hashes are lowercase hex and need no escaping; the body is canonical JSON already.
        line.push_str(",\"prev_hash\":\"");
        line.push_str(&self.prev_hash);
        line.push_str("\",\"hash\":\"");
        line.push_str(&self.hash);
        line.push_str("\",\"receipt\":");
        line.push_str(&self.body);
        line.push('}');
        line
    }
}

/// An entry's place in the chain: what a checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The entry's sequence number.
    pub seq: i64,
    /// The entry's hash.
    pub hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{Decision, Outcome, Principal, Verdict};

    #[test]
    fn an_entry_holds_the_canonical_body_and_its_index() {
        let mut receipt = Receipt::new("req-1", "tools/call", Decision::new(Verdict::Deny));
        receipt.time = Timestamp::from_unix_millis(1_000);
        receipt.principal = Some(Principal {
            user: "alice".into(),
            groups: vec!["ops".into()],
            credential_id: Some("key-1".into()),
        });
        receipt.outcome = Some(Outcome::ToolError);
        let entry = NewReceipt::new(ReceiptKind::Decision, &receipt).unwrap();
        assert_eq!(
            entry.body,
            concat!(
                r#"{"client":{},"decision":{"verdict":"deny"},"method":"tools/call","#,
                r#""outcome":"tool_error","principal":{"credential_id":"key-1","groups":["ops"],"#,
                r#""user":"alice"},"request_id":"req-1","time":1000}"#
            )
        );
        assert_eq!(entry.recorded_at, receipt.time);
        assert_eq!(entry.index.user.as_deref(), Some("alice"));
        assert_eq!(entry.index.decision, "deny");
        assert_eq!(entry.index.outcome.as_deref(), Some("tool_error"));
        let stored = crate::chain::seal(None, &[entry]);
        assert_eq!(stored[0].receipt().unwrap(), receipt);
        assert_eq!(stored[0].seq, 1);
        assert_eq!(stored[0].prev_hash, crate::GENESIS_HASH);
    }
}
