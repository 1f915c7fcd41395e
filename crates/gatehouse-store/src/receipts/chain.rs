//! The receipt hash chain. Each receipt's hash covers every stored column of the receipt and
//! the previous receipt's hash, so changing a byte, deleting, inserting or reordering a receipt
//! breaks the chain at that receipt. The hash is computed by the store, under the append lock,
//! because only there are the sequence number and the previous hash known for certain when
//! several writers (or replicas) append.
//!
//! Hash input, SHA-256: the domain tag `gatehouse-receipt-v1`, then each field in order as an
//! 8-byte big-endian length followed by its UTF-8 bytes, an absent field as the length
//! `u64::MAX` alone. Fields: prev_hash, seq, recorded_at (Unix ms), kind, intent_seq, user,
//! server, tool, decision, outcome, body; numbers in decimal. The result is lowercase hex.

use sha2::{Digest, Sha256};

use super::{ReceiptIndex, ReceiptKind, StoredReceipt};
use crate::time::Timestamp;

/// The `prev_hash` of the first receipt.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of a receipt with these columns following `prev_hash`.
pub fn receipt_hash(
    prev_hash: &str,
    seq: i64,
    recorded_at: Timestamp,
    kind: ReceiptKind,
    index: &ReceiptIndex,
    body: &str,
) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"gatehouse-receipt-v1");
    let mut field = |value: Option<&str>| match value {
        Some(value) => {
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value.as_bytes());
        }
        None => hasher.update(u64::MAX.to_be_bytes()),
    };
    field(Some(prev_hash));
    field(Some(&seq.to_string()));
    field(Some(&recorded_at.as_unix_millis().to_string()));
    field(Some(kind.as_str()));
    field(kind.intent_seq().map(|seq| seq.to_string()).as_deref());
    field(index.user.as_deref());
    field(index.server.as_deref());
    field(index.tool.as_deref());
    field(Some(&index.decision));
    field(index.outcome.as_deref());
    field(Some(body));
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Where a run of receipts stops being a valid chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    /// The receipt's sequence number does not follow the previous one.
    #[error("receipt {seq} follows receipt {previous}: a receipt is missing or out of order")]
    Gap {
        /// The sequence number found.
        seq: i64,
        /// The sequence number before it.
        previous: i64,
    },
    /// The receipt's `prev_hash` is not the previous receipt's hash.
    #[error(
        "receipt {seq} does not link to the receipt before it: a receipt before it was changed, inserted or deleted"
    )]
    BrokenLink {
        /// The receipt's sequence number.
        seq: i64,
    },
    /// The receipt's hash does not match its contents.
    #[error("receipt {seq} was changed after it was written: its hash does not match its contents")]
    Altered {
        /// The receipt's sequence number.
        seq: i64,
    },
}

impl StoredReceipt {
    /// The hash this receipt's columns should have.
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
}

/// Checks that `receipts` (ascending) form a chain continuing from `previous` (`None`: the
/// first receipt must have `prev_hash` [`GENESIS_HASH`] and no sequence check is made), and
/// returns the first break. Checkpoint signatures are the caller's to check.
pub fn verify_links(
    previous: Option<(i64, &str)>,
    receipts: &[StoredReceipt],
) -> Result<(), ChainBreak> {
    let mut previous = previous.map(|(seq, hash)| (seq, hash.to_owned()));
    for receipt in receipts {
        let expected_prev = match &previous {
            Some((previous_seq, previous_hash)) => {
                if receipt.seq != previous_seq + 1 {
                    return Err(ChainBreak::Gap {
                        seq: receipt.seq,
                        previous: *previous_seq,
                    });
                }
                previous_hash.as_str()
            }
            None => GENESIS_HASH,
        };
        if receipt.prev_hash != expected_prev {
            return Err(ChainBreak::BrokenLink { seq: receipt.seq });
        }
        if receipt.computed_hash() != receipt.hash {
            return Err(ChainBreak::Altered { seq: receipt.seq });
        }
        previous = Some((receipt.seq, receipt.hash.clone()));
    }
    Ok(())
}
