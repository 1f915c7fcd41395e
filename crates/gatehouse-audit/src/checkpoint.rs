//! Checkpoints: signed statements "the chain's entry `seq` has hash `head_hash`". A verifier
//! holding the public key detects a chain rewritten with recomputed hashes (the signed hash no
//! longer matches) and a truncated tail (the signed entry is gone). An *anchor* is a checkpoint
//! made when old entries are pruned: it is signed under a different domain, so only the key
//! holder can declare where the retained chain may start, and an ordinary checkpoint cannot be
//! passed off as one.
//!
//! Signed message, Ed25519: the domain tag (`gatehouse-checkpoint-v1` or `gatehouse-anchor-v1`),
//! then key id, seq, head hash and creation time (Unix ms), each as an 8-byte big-endian length
//! followed by its UTF-8 bytes, numbers in decimal.

use std::fmt;

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::entry::ChainHead;
use crate::keys::{CheckpointSigner, TrustedKeys};
use crate::time::Timestamp;

/// A signed chain head. The fields mirror `gatehouse-store`'s `checkpoints` table.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number of the entry signed.
    pub seq: i64,
    /// That entry's hash.
    pub head_hash: String,
    /// The Ed25519 signature (64 bytes) over the signed message.
    pub signature: Vec<u8>,
    /// Which signing key made it.
    pub key_id: String,
    /// When it was made.
    pub created_at: Timestamp,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Checkpoint")
            .field("seq", &self.seq)
            .field("head_hash", &self.head_hash)
            .field("key_id", &self.key_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// What a checkpoint was signed as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointPurpose {
    /// A periodic statement of the chain head.
    Checkpoint,
    /// The start of the retained chain after pruning.
    Anchor,
}

impl CheckpointPurpose {
    fn domain(self) -> &'static [u8] {
        match self {
            Self::Checkpoint => b"gatehouse-checkpoint-v1",
            Self::Anchor => b"gatehouse-anchor-v1",
        }
    }
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint names a key the verifier does not trust.
    #[error("checkpoint at receipt {seq} is signed by unknown key {key_id:?}")]
    UnknownKey {
        /// The checkpoint's sequence number.
        seq: i64,
        /// The key id it names.
        key_id: String,
    },
    /// The signature does not verify under the named key.
    #[error("checkpoint at receipt {seq} has an invalid signature")]
    BadSignature {
        /// The checkpoint's sequence number.
        seq: i64,
    },
    /// A line of exported checkpoints could not be read.
    #[error("malformed checkpoint line: {0}")]
    Malformed(String),
}

impl CheckpointSigner {
    /// Signs `head` as a periodic checkpoint.
    pub fn sign_checkpoint(&self, head: &ChainHead, created_at: Timestamp) -> Checkpoint {
        self.sign_as(CheckpointPurpose::Checkpoint, head, created_at)
    }

    /// Signs `head` as the anchor that retained entries after pruning start from.
    pub fn sign_anchor(&self, head: &ChainHead, created_at: Timestamp) -> Checkpoint {
        self.sign_as(CheckpointPurpose::Anchor, head, created_at)
    }

    fn sign_as(
        &self,
        purpose: CheckpointPurpose,
        head: &ChainHead,
        created_at: Timestamp,
    ) -> Checkpoint {
        let message = signed_message(purpose, self.key_id(), head.seq, &head.hash, created_at);
        Checkpoint {
            seq: head.seq,
            head_hash: head.hash.clone(),
            signature: self.sign(&message),
            key_id: self.key_id().to_owned(),
            created_at,
        }
    }
}

impl Checkpoint {
    /// Checks the signature as `purpose` under the named key among `keys`.
    pub fn verify(
        &self,
        keys: &TrustedKeys,
        purpose: CheckpointPurpose,
    ) -> Result<(), CheckpointError> {
        let key = keys
            .get(&self.key_id)
            .ok_or_else(|| CheckpointError::UnknownKey {
                seq: self.seq,
                key_id: self.key_id.clone(),
            })?;
        let bad = || CheckpointError::BadSignature { seq: self.seq };
        let signature = Signature::from_slice(&self.signature).map_err(|_| bad())?;
        let message = signed_message(
            purpose,
            &self.key_id,
            self.seq,
            &self.head_hash,
            self.created_at,
        );
        key.verifying_key()
            .verify_strict(&message, &signature)
            .map_err(|_| bad())
    }

    /// The checkpoint as one line of JSON, the signature in hex.
    pub fn to_json_line(&self) -> String {
        let line = CheckpointLine {
            seq: self.seq,
            head_hash: self.head_hash.clone(),
            signature: hex::encode(&self.signature),
            key_id: self.key_id.clone(),
            created_at: self.created_at,
        };
        serde_json::to_string(&line).unwrap_or_default()
    }

    /// Reads a line written by [`Checkpoint::to_json_line`].
    pub fn from_json_line(line: &str) -> Result<Self, CheckpointError> {
        let line: CheckpointLine = serde_json::from_str(line)
            .map_err(|error| CheckpointError::Malformed(error.to_string()))?;
        let signature = hex::decode(&line.signature)
            .map_err(|_| CheckpointError::Malformed("the signature is not hex".to_owned()))?;
        Ok(Self {
            seq: line.seq,
            head_hash: line.head_hash,
            signature,
            key_id: line.key_id,
            created_at: line.created_at,
        })
    }

    /// This checkpoint's place in the chain.
    pub fn head(&self) -> ChainHead {
        ChainHead {
            seq: self.seq,
            hash: self.head_hash.clone(),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointLine {
    seq: i64,
    head_hash: String,
    signature: String,
    key_id: String,
    created_at: Timestamp,
}

fn signed_message(
    purpose: CheckpointPurpose,
    key_id: &str,
    seq: i64,
    head_hash: &str,
    created_at: Timestamp,
) -> Vec<u8> {
    let mut message = Vec::with_capacity(160);
    message.extend_from_slice(purpose.domain());
    for field in [
        key_id,
        &seq.to_string(),
        head_hash,
        &created_at.as_unix_millis().to_string(),
    ] {
        message.extend_from_slice(&(field.len() as u64).to_be_bytes());
        message.extend_from_slice(field.as_bytes());
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> ChainHead {
        ChainHead {
            seq: 7,
            hash: "ab".repeat(32),
        }
    }

    #[test]
    fn a_checkpoint_verifies_only_as_what_it_was_signed_as() {
        let signer = CheckpointSigner::generate().unwrap();
        let keys = TrustedKeys::new([signer.public_key()]);
        let checkpoint = signer.sign_checkpoint(&head(), Timestamp::from_unix_millis(5));
        assert_eq!(
            checkpoint.verify(&keys, CheckpointPurpose::Checkpoint),
            Ok(())
        );
        assert_eq!(
            checkpoint.verify(&keys, CheckpointPurpose::Anchor),
            Err(CheckpointError::BadSignature { seq: 7 })
        );
        let anchor = signer.sign_anchor(&head(), Timestamp::from_unix_millis(5));
        assert_eq!(anchor.verify(&keys, CheckpointPurpose::Anchor), Ok(()));
    }

    #[test]
    fn every_signed_field_is_covered_and_unknown_keys_are_named() {
        let signer = CheckpointSigner::generate().unwrap();
        let keys = TrustedKeys::new([signer.public_key()]);
        let checkpoint = signer.sign_checkpoint(&head(), Timestamp::from_unix_millis(5));
        let mut moved = checkpoint.clone();
        moved.seq = 8;
        let mut rehashed = checkpoint.clone();
        rehashed.head_hash = "cd".repeat(32);
        let mut retimed = checkpoint.clone();
        retimed.created_at = Timestamp::from_unix_millis(6);
        for changed in [moved, rehashed, retimed] {
            assert!(matches!(
                changed.verify(&keys, CheckpointPurpose::Checkpoint),
                Err(CheckpointError::BadSignature { .. })
            ));
        }
        let stranger = CheckpointSigner::generate().unwrap();
        assert!(matches!(
            checkpoint.verify(
                &TrustedKeys::new([stranger.public_key()]),
                CheckpointPurpose::Checkpoint
            ),
            Err(CheckpointError::UnknownKey { seq: 7, .. })
        ));
    }

    #[test]
    fn json_lines_round_trip() {
        let signer = CheckpointSigner::generate().unwrap();
        let checkpoint = signer.sign_checkpoint(&head(), Timestamp::from_unix_millis(5));
        let line = checkpoint.to_json_line();
        assert!(!line.contains('\n'));
        assert_eq!(Checkpoint::from_json_line(&line).unwrap(), checkpoint);
        assert!(Checkpoint::from_json_line("{\"seq\":1}").is_err());
    }
}
