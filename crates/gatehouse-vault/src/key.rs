//! The key that seals secrets. It never goes into the store: it comes from the environment
//! variable [`KEY_VARIABLE`] or from the key file [`KEY_FILE`] beside the configuration, which
//! `gatehouse init` creates readable by its owner only. Losing the key loses the secrets;
//! that is the point.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::VaultError;

/// The environment variable that holds the key (base64 of 32 bytes); it wins over the file.
pub const KEY_VARIABLE: &str = "GATEHOUSE_SECRETS_KEY";
/// The key file beside the configuration.
pub const KEY_FILE: &str = "secrets.key";

const KEY_BYTES: usize = 32;
const CHECK_LABEL: &[u8] = b"gatehouse secrets key check v1";

/// Where a key came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// The environment variable [`KEY_VARIABLE`].
    Environment,
    /// A key file.
    File(PathBuf),
    /// Made in memory (tests).
    Memory,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Environment => write!(formatter, "${KEY_VARIABLE}"),
            Self::File(path) => write!(formatter, "{}", path.display()),
            Self::Memory => formatter.write_str("a key made in memory"),
        }
    }
}

/// The 256-bit key that seals every secret; zeroed when dropped, never printed.
pub struct VaultKey {
    bytes: SecretBox<[u8; KEY_BYTES]>,
    origin: KeyOrigin,
}

impl fmt::Debug for VaultKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("VaultKey")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl VaultKey {
    /// A fresh random key held in memory.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = Box::new([0_u8; KEY_BYTES]);
        getrandom::fill(bytes.as_mut()).map_err(|error| VaultError::Random(error.to_string()))?;
        Ok(Self {
            bytes: SecretBox::new(bytes),
            origin: KeyOrigin::Memory,
        })
    }

    /// Writes a fresh key to `path` (created, readable by its owner only; an existing file is
    /// never replaced) and returns it.
    pub fn create_file(path: &Path) -> Result<Self, VaultError> {
        let key = Self::generate()?;
        let text = Zeroizing::new(format!("{}\n", STANDARD.encode(key.bytes.expose_secret())));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|error| VaultError::KeyFile {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        file.write_all(text.as_bytes())
            .map_err(|error| VaultError::KeyFile {
                path: path.to_owned(),
                reason: error.to_string(),
            })?;
        Ok(Self {
            origin: KeyOrigin::File(path.to_owned()),
            ..key
        })
    }

    /// The key from [`KEY_VARIABLE`] if it is set, else from [`KEY_FILE`] in `dir` if that
    /// exists; `None` when there is neither.
    pub fn load(dir: &Path) -> Result<Option<Self>, VaultError> {
        if let Some(text) = std::env::var_os(KEY_VARIABLE) {
            let text = Zeroizing::new(text.to_string_lossy().into_owned());
            return Self::decode(&text, KeyOrigin::Environment).map(Some);
        }
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::decode(&Zeroizing::new(text), KeyOrigin::File(path)).map(Some),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(VaultError::KeyFile {
                path,
                reason: error.to_string(),
            }),
        }
    }

    fn decode(text: &str, origin: KeyOrigin) -> Result<Self, VaultError> {
        let malformed = || VaultError::MalformedKey {
            origin: origin.clone(),
        };
        let decoded = Zeroizing::new(STANDARD.decode(text.trim()).map_err(|_| malformed())?);
        let bytes: [u8; KEY_BYTES] = decoded.as_slice().try_into().map_err(|_| malformed())?;
        Ok(Self {
            bytes: SecretBox::new(Box::new(bytes)),
            origin,
        })
    }

    /// Where the key came from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        self.bytes.expose_secret()
    }

    /// A value that tells keys apart without revealing them: stored once, it lets the vault
    /// refuse a different key instead of failing on every secret.
    pub(crate) fn check_value(&self) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(CHECK_LABEL);
        hex::encode(mac.finalize().into_bytes())
    }
}
