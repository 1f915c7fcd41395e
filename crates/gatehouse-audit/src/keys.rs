//! Checkpoint signing keys (Ed25519). The caller generates a key once, keeps the secret form
//! with its other secrets, and gives the public form to whoever verifies. A key id names the
//! key in every checkpoint it signs; by default it is derived from the public key, so two keys
//! never share an id by accident.

use std::collections::HashMap;
use std::fmt;

use ed25519_dalek::{SigningKey, VerifyingKey};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a key could not be made, read or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("cannot read random bytes for a key: {0}")]
    Random(String),
    /// The key is shorter than required.
    #[error("the key is {found} bytes long; at least {expected} are required")]
    TooShort {
        /// The minimum length.
        expected: usize,
        /// The length given.
        found: usize,
    },
    /// The key text is not in the expected form.
    #[error("malformed key: {0}")]
    Malformed(&'static str),
}

const ALGORITHM: &str = "ed25519";

/// The secret key that signs checkpoints, with its id.
pub struct CheckpointSigner {
    key_id: String,
    key: SigningKey,
}

impl fmt::Debug for CheckpointSigner {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretKeyFile {
    algorithm: String,
    key_id: String,
    secret_key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyFile {
    algorithm: String,
    key_id: String,
    public_key: String,
}

impl CheckpointSigner {
    /// Makes a new key from the operating system's random source; its id is derived from its
    /// public key.
    pub fn generate() -> Result<Self, KeyError> {
        let mut seed = Zeroizing::new([0_u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|error| KeyError::Random(error.to_string()))?;
        let key = SigningKey::from_bytes(&seed);
        let key_id = derived_key_id(&key.verifying_key());
        Ok(Self { key_id, key })
    }

    /// The same key under another id, e.g. one that names where the key is kept.
    pub fn with_key_id(self, key_id: impl Into<String>) -> Self {
        Self {
            key_id: key_id.into(),
            key: self.key,
        }
    }

    /// The id written into every checkpoint this key signs.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The public half, for verifiers.
    pub fn public_key(&self) -> PublicKey {
        PublicKey {
            key_id: self.key_id.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The key as JSON (`algorithm`, `key_id`, `secret_key` in hex), for the caller's secret
    /// store.
    pub fn to_secret_json(&self) -> SecretString {
        let file = SecretKeyFile {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            secret_key: hex::encode(Zeroizing::new(self.key.to_bytes()).as_slice()),
        };
        let text = serde_json::to_string(&file).unwrap_or_default();
        // Wipe the intermediate copy of the secret; the returned text is wiped on drop.
        drop(Zeroizing::new(file.secret_key));
        SecretString::from(text)
    }

    /// Reads a key written by [`CheckpointSigner::to_secret_json`].
    pub fn from_secret_json(text: &SecretString) -> Result<Self, KeyError> {
        let file: SecretKeyFile = serde_json::from_str(text.expose_secret())
            .map_err(|_| KeyError::Malformed("not a gatehouse signing key file"))?;
        let secret_key = Zeroizing::new(file.secret_key);
        if file.algorithm != ALGORITHM {
            return Err(KeyError::Malformed("the signing key is not ed25519"));
        }
        let mut seed = Zeroizing::new([0_u8; 32]);
        hex::decode_to_slice(secret_key.as_str(), seed.as_mut())
            .map_err(|_| KeyError::Malformed("the secret key is not 32 bytes of hex"))?;
        Ok(Self {
            key_id: file.key_id,
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Vec<u8> {
        use ed25519_dalek::Signer;
        self.key.sign(message).to_bytes().to_vec()
    }
}

/// A public checkpoint key with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    key_id: String,
    key: VerifyingKey,
}

impl PublicKey {
    /// The id checkpoints name this key by.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The key as JSON (`algorithm`, `key_id`, `public_key` in hex).
    pub fn to_json(&self) -> String {
        let file = PublicKeyFile {
            algorithm: ALGORITHM.to_owned(),
            key_id: self.key_id.clone(),
            public_key: hex::encode(self.key.as_bytes()),
        };
        serde_json::to_string(&file).unwrap_or_default()
    }

    /// Reads a key written by [`PublicKey::to_json`].
    pub fn from_json(text: &str) -> Result<Self, KeyError> {
        let file: PublicKeyFile = serde_json::from_str(text)
            .map_err(|_| KeyError::Malformed("not a gatehouse public key file"))?;
        if file.algorithm != ALGORITHM {
            return Err(KeyError::Malformed("the public key is not ed25519"));
        }
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(&file.public_key, &mut bytes)
            .map_err(|_| KeyError::Malformed("the public key is not 32 bytes of hex"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| KeyError::Malformed("the public key is not a valid ed25519 point"))?;
        Ok(Self {
            key_id: file.key_id,
            key,
        })
    }

    pub(crate) fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }
}

/// The public keys a verifier accepts checkpoints from, by key id.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    keys: HashMap<String, PublicKey>,
}

impl TrustedKeys {
    /// Trusts these keys. A later key with the same id replaces an earlier one.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        Self {
            keys: keys
                .into_iter()
                .map(|key| (key.key_id.clone(), key))
                .collect(),
        }
    }

    /// The key with this id, if trusted.
    pub fn get(&self, key_id: &str) -> Option<&PublicKey> {
        self.keys.get(key_id)
    }
}

/// `ed25519-` and the first 16 hex digits of SHA-256 of the public key.
fn derived_key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let prefix = digest.get(..8).unwrap_or_default();
    format!("{ALGORITHM}-{}", hex::encode(prefix))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_ids_derive_from_the_public_key() {
        let signer = CheckpointSigner::generate().unwrap();
        assert!(signer.key_id().starts_with("ed25519-"));
        assert_eq!(signer.key_id().len(), "ed25519-".len() + 16);
        let again = CheckpointSigner::from_secret_json(&signer.to_secret_json()).unwrap();
        assert_eq!(again.public_key(), signer.public_key());
        let public = PublicKey::from_json(&signer.public_key().to_json()).unwrap();
        assert_eq!(public, signer.public_key());
        assert!(!format!("{signer:?}").contains("secret_key"));
        assert!(!signer.public_key().to_json().contains("secret"));
    }

    #[test]
    fn malformed_key_files_are_refused() {
        for text in [
            "{}",
            r#"{"algorithm":"rsa","key_id":"k","public_key":"00"}"#,
            r#"{"algorithm":"ed25519","key_id":"k","public_key":"zz"}"#,
        ] {
            assert!(PublicKey::from_json(text).is_err(), "{text}");
        }
        let wrong = SecretString::from(r#"{"algorithm":"ed25519","key_id":"k","secret_key":"00"}"#);
        assert!(CheckpointSigner::from_secret_json(&wrong).is_err());
    }
}
