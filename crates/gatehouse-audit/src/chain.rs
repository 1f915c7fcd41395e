//! The hash chain. Each entry's hash covers the previous entry's hash and every column of the
//! entry, its canonical receipt body included, so changing a byte, deleting, inserting or
//! reordering an entry breaks the chain at that entry. The hash is computed by the log under its
//! append lock, because only there are the sequence number and the previous hash known for
//! certain when several writers (or replicas) append; [`seal`] does it for a log.
//!
//! Hash input, SHA-256: the domain tag `gatehouse-receipt-v1`, then each field in order as an
//! 8-byte big-endian length followed by its UTF-8 bytes, an absent field as the length
//! `u64::MAX` alone. Fields: prev_hash, seq, recorded_at (Unix ms), kind, intent_seq, user,
//! server, tool, decision, outcome, body; numbers in decimal. The result is lowercase hex.
//! This is byte for byte the encoding of `gatehouse-store`'s `receipt_hash`: the test vector
//! below pins it, and the store should pin the same one.

use std::io::Write as _;

use sha2::{Digest, Sha256};

use crate::entry::{ChainHead, NewReceipt, ReceiptIndex, ReceiptKind, StoredReceipt};
use crate::time::Timestamp;

/// The `prev_hash` of the first entry: 32 zero bytes in hex.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The hash of an entry with these columns following `prev_hash`.
pub fn receipt_hash(
    prev_hash: &str,
    seq: i64,
    recorded_at: Timestamp,
    kind: ReceiptKind,
    index: &ReceiptIndex,
    body: &str,
) -> String {
    let digest = digest(prev_hash, seq, recorded_at, kind, index, body);
    hex::encode(digest)
}

/// Whether `entry`'s stored hash is the hash of its columns. Allocation-free, for verifying
/// long chains.
pub(crate) fn hash_matches(entry: &StoredReceipt) -> bool {
    let digest = digest(
        &entry.prev_hash,
        entry.seq,
        entry.recorded_at,
        entry.kind,
        &entry.index,
        &entry.body,
    );
    let mut text = [0_u8; 64];
    hex::encode_to_slice(digest, &mut text).is_ok() && text.as_slice() == entry.hash.as_bytes()
}

fn digest(
    prev_hash: &str,
    seq: i64,
    recorded_at: Timestamp,
    kind: ReceiptKind,
    index: &ReceiptIndex,
    body: &str,
) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"gatehouse-receipt-v1");
    let mut field = |value: Option<&[u8]>| match value {
        Some(value) => {
            hasher.update((value.len() as u64).to_be_bytes());
            hasher.update(value);
        }
        None => hasher.update(u64::MAX.to_be_bytes()),
    };
    let mut seq_text = Decimal::default();
    let mut time_text = Decimal::default();
    let mut intent_text = Decimal::default();
    field(Some(prev_hash.as_bytes()));
    field(Some(seq_text.format(seq)));
    field(Some(time_text.format(recorded_at.as_unix_millis())));
    field(Some(kind.as_str().as_bytes()));
    field(kind.intent_seq().map(|intent| intent_text.format(intent)));
    field(index.user.as_deref().map(str::as_bytes));
    field(index.server.as_deref().map(str::as_bytes));
    field(index.tool.as_deref().map(str::as_bytes));
    field(Some(index.decision.as_bytes()));
    field(index.outcome.as_deref().map(str::as_bytes));
    field(Some(body.as_bytes()));
    hasher.finalize().into()
}

/// A stack buffer for an `i64` in decimal.
#[derive(Default)]
struct Decimal {
    buffer: [u8; 20],
}

impl Decimal {
    fn format(&mut self, number: i64) -> &[u8] {
        let mut cursor = std::io::Cursor::new(&mut self.buffer[..]);
        // Twenty bytes hold every i64, sign included, so the write cannot run out of room.
        let written = match write!(cursor, "{number}") {
            Ok(()) => usize::try_from(cursor.position()).unwrap_or(0),
            Err(_) => 0,
        };
        self.buffer.get(..written).unwrap_or_default()
    }
}

/// Places `receipts` in the chain after `head` (`None`: an empty log): numbers them from the
/// next sequence number and links and hashes each. A log calls this under its append lock.
pub fn seal(head: Option<&ChainHead>, receipts: &[NewReceipt]) -> Vec<StoredReceipt> {
    let (mut seq, mut prev_hash) = match head {
        Some(head) => (head.seq, head.hash.clone()),
        None => (0, GENESIS_HASH.to_owned()),
    };
    receipts
        .iter()
        .map(|receipt| {
            seq += 1;
            let hash = receipt_hash(
                &prev_hash,
                seq,
                receipt.recorded_at,
                receipt.kind,
                &receipt.index,
                &receipt.body,
            );
            StoredReceipt {
                seq,
                recorded_at: receipt.recorded_at,
                kind: receipt.kind,
                index: receipt.index.clone(),
                body: receipt.body.clone(),
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredReceipt {
        let index = ReceiptIndex {
            user: Some("alice".into()),
            server: Some("github".into()),
            tool: None,
            decision: "allow".into(),
            outcome: Some("ok".into()),
        };
        let kind = ReceiptKind::Completion { intent_seq: 41 };
        let mut entry = StoredReceipt {
            seq: 42,
            recorded_at: Timestamp::from_unix_millis(1_700_000_000_123),
            kind,
            index,
            body: r#"{"a":1}"#.into(),
            prev_hash: GENESIS_HASH.into(),
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    #[test]
    fn the_encoding_is_pinned_by_a_test_vector() {
        // Computed independently from the documented encoding (Python, hashlib).
        assert_eq!(
            sample().hash,
            "8fb252b793ea34cf766bfcd77deab3006b3eeea9269a3401e2590e8231cb0cef"
        );
    }

    #[test]
    fn the_fast_check_agrees_with_the_hash() {
        let mut entry = sample();
        assert!(hash_matches(&entry));
        entry.body.push(' ');
        assert!(!hash_matches(&entry));
    }

    #[test]
    fn negative_and_extreme_numbers_format_in_full() {
        for number in [0, -1, i64::MIN, i64::MAX] {
            assert_eq!(
                Decimal::default().format(number),
                number.to_string().as_bytes()
            );
        }
    }
}
