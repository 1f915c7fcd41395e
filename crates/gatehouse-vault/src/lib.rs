//! Upstream secrets sealed at rest. The store holds ciphertext and nonce only; the key lives
//! apart from it ([`VaultKey`]: a key file beside the configuration or an environment
//! variable). Each value is sealed with XChaCha20-Poly1305 under a fresh random nonce, with the
//! credential id and version as associated data, so a row copied onto another secret, or an
//! old version put back after a rotation, fails to open instead of being used.
//!
//! The vault refuses to open a store whose secrets were sealed with another key (a check value
//! kept in the store's metadata tells keys apart without revealing them). Values are held as
//! [`SecretString`]: zeroed when dropped, redacted in `Debug`, never serialized.

mod key;

use std::fmt;
use std::path::PathBuf;

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use gatehouse_store::{NewSecret, SecretMetadata, SecretRef, Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

pub use key::{KEY_FILE, KEY_VARIABLE, KeyOrigin, VaultKey};

/// The store metadata entry holding the key's check value.
const KEY_CHECK: &str = "secrets.key_check";
/// Shortest value accepted: anything shorter could not be told apart from ordinary text when
/// it is scrubbed from results.
pub const MIN_VALUE_CHARS: usize = 8;
/// Longest value accepted.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
const NONCE_BYTES: usize = 24;

/// Why a vault operation failed. No variant carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The store's secrets were sealed with another key.
    #[error(
        "the secrets key from {origin} is not the key this store's secrets were sealed with; use the original key file or set ${KEY_VARIABLE} to the original key (secrets cannot be recovered without it)"
    )]
    WrongKey {
        /// Where the offered key came from.
        origin: KeyOrigin,
    },
    /// The key text is not a base64 key of 32 bytes.
    #[error("the secrets key from {origin} is not 32 bytes of base64; restore the original key")]
    MalformedKey {
        /// Where it came from.
        origin: KeyOrigin,
    },
    /// The key file could not be read or written.
    #[error("secrets key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A sealed value did not open: it was altered, moved from another secret or version, or
    /// sealed under another key.
    #[error(
        "secret `{id}` version {version} does not open with this key: it was altered in the store or sealed with another key; set it again with `gatehouse secret rotate`"
    )]
    Tampered {
        /// The credential id.
        id: String,
        /// Its version.
        version: i64,
    },
    /// A value is unusable as a secret.
    #[error("{0}")]
    BadValue(String),
    /// The operating system gave no randomness.
    #[error("no randomness from the operating system: {0}")]
    Random(String),
    /// The store failed, or the secret does not exist (the store's error names it).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An opened secret: its metadata and its value.
pub struct Revealed {
    /// Everything but the value.
    pub metadata: SecretMetadata,
    /// The value.
    pub value: SecretString,
}

impl fmt::Debug for Revealed {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Revealed")
            .field("metadata", &self.metadata)
            .finish_non_exhaustive()
    }
}

/// What describes a new secret besides its value.
#[derive(Debug, Clone, Copy, Default)]
pub struct Details<'a> {
    /// The team answerable for it.
    pub owner_team: Option<&'a str>,
    /// What it is for.
    pub description: &'a str,
}

/// The secrets in a store, opened with the key.
pub struct Vault {
    store: Store,
    key: VaultKey,
}

impl fmt::Debug for Vault {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Vault")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the secrets of `store` with `key`. The first key used with a store is remembered
    /// (by a check value, not the key); any other key is refused with
    /// [`VaultError::WrongKey`].
    pub async fn open(store: Store, key: VaultKey) -> Result<Self, VaultError> {
        let check = key.check_value();
        let recorded = store.put_meta_if_absent(KEY_CHECK, &check).await?;
        if !constant_time_equal(recorded.as_bytes(), check.as_bytes()) {
            return Err(VaultError::WrongKey {
                origin: key.origin().clone(),
            });
        }
        Ok(Self { store, key })
    }

    /// Whether secrets were ever sealed in `store` (so a key must be found, not made).
    pub async fn has_sealed(store: &Store) -> Result<bool, VaultError> {
        Ok(store.meta(KEY_CHECK).await?.is_some())
    }

    /// Stores a new secret; fails when one of that name (and owner) exists, pointing at
    /// `secret rotate`.
    pub async fn add(
        &self,
        secret: SecretRef<'_>,
        value: &SecretString,
        details: Details<'_>,
    ) -> Result<SecretMetadata, VaultError> {
        check_value(value)?;
        let (ciphertext, nonce) = self.seal(secret, 1, value)?;
        let metadata = self
            .store
            .add_secret(NewSecret {
                secret,
                owner_team: details.owner_team,
                description: details.description,
                ciphertext: &ciphertext,
                nonce: &nonce,
            })
            .await?;
        Ok(metadata)
    }

    /// Replaces a secret's value, making a new version. Concurrent rotations cannot overwrite
    /// each other: the one that read an older version fails and can be repeated.
    pub async fn rotate(
        &self,
        secret: SecretRef<'_>,
        value: &SecretString,
    ) -> Result<SecretMetadata, VaultError> {
        check_value(value)?;
        let current = self.store.secret(secret).await?;
        let version = current.metadata.version;
        let (ciphertext, nonce) = self.seal(secret, version + 1, value)?;
        Ok(self
            .store
            .rotate_secret(secret, version, &ciphertext, &nonce)
            .await?)
    }

    /// Deletes a secret.
    pub async fn remove(&self, secret: SecretRef<'_>) -> Result<(), VaultError> {
        Ok(self.store.remove_secret(secret).await?)
    }

    /// Opens a secret's current value.
    pub async fn reveal(&self, secret: SecretRef<'_>) -> Result<Revealed, VaultError> {
        let sealed = self.store.secret(secret).await?;
        let id = secret.to_string();
        let version = sealed.metadata.version;
        let nonce: [u8; NONCE_BYTES] =
            sealed
                .nonce
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::Tampered {
                    id: id.clone(),
                    version,
                })?;
        let associated = associated_data(&id, version);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed.ciphertext,
                        aad: associated.as_bytes(),
                    },
                )
                .map_err(|_| VaultError::Tampered {
                    id: id.clone(),
                    version,
                })?,
        );
        let text = String::from_utf8(plain.to_vec()).map_err(|error| {
            // The bytes are the secret: drop them zeroed, keep only the fact.
            drop(Zeroizing::new(error.into_bytes()));
            VaultError::Tampered {
                id: id.clone(),
                version,
            }
        })?;
        Ok(Revealed {
            metadata: sealed.metadata,
            value: SecretString::from(text),
        })
    }

    /// Notes that a secret was used now, for `secret list`.
    pub async fn record_use(&self, secret: SecretRef<'_>) -> Result<(), VaultError> {
        Ok(self
            .store
            .record_secret_use(secret, gatehouse_store::Timestamp::now())
            .await?)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.key.bytes().into())
    }

    fn seal(
        &self,
        secret: SecretRef<'_>,
        version: i64,
        value: &SecretString,
    ) -> Result<(Vec<u8>, Vec<u8>), VaultError> {
        let mut nonce = [0_u8; NONCE_BYTES];
        getrandom::fill(&mut nonce).map_err(|error| VaultError::Random(error.to_string()))?;
        let associated = associated_data(&secret.to_string(), version);
        let ciphertext = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: value.expose_secret().as_bytes(),
                    aad: associated.as_bytes(),
                },
            )
            .map_err(|_| VaultError::BadValue("the value could not be sealed".to_owned()))?;
        Ok((ciphertext, nonce.to_vec()))
    }
}

/// Binds a sealed value to its credential and version.
fn associated_data(id: &str, version: i64) -> String {
    format!("gatehouse secret v1\0{id}\0{version}")
}

fn check_value(value: &SecretString) -> Result<(), VaultError> {
    let text = value.expose_secret();
    if text.chars().count() < MIN_VALUE_CHARS {
        return Err(VaultError::BadValue(format!(
            "the value is shorter than {MIN_VALUE_CHARS} characters; a value that short could not be told apart from ordinary text when it is scrubbed from results"
        )));
    }
    if text.len() > MAX_VALUE_BYTES {
        return Err(VaultError::BadValue(format!(
            "the value is longer than {MAX_VALUE_BYTES} bytes"
        )));
    }
    if text.contains(['\0', '\r', '\n']) {
        return Err(VaultError::BadValue(
            "the value contains a line break or NUL, which no environment variable or header can carry; remove the trailing newline or use --file with a one-line file".to_owned(),
        ));
    }
    Ok(())
}

fn constant_time_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests;
