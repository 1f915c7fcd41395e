//! Gateway API keys: `gh_<id>_<secret>`, where the id is public (it names the key in the
//! store, in receipts and in `key revoke`) and the secret is 256 bits from the operating
//! system's random number generator. The store keeps only
//! `HMAC-SHA256(pepper, id 0x00 secret)`: a copy of the database alone cannot be used to check
//! guesses, and a digest copied onto another key id does not verify. Key material lives in
//! [`secrecy`] types, so it is redacted from `Debug` and zeroized when dropped.

mod lookup;

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use rand::TryRngCore as _;
use rand::rngs::OsRng;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox, SecretString};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

pub(crate) use lookup::verify_api_key;
pub use lookup::{KeyLookup, KeyLookupError, NoApiKeys, StoredKey};

/// The prefix that marks a bearer credential as a gateway API key rather than a JWT.
pub const API_KEY_PREFIX: &str = "gh_";

const ID_BYTES: usize = 8;
const ID_CHARS: usize = ID_BYTES * 2;
const SECRET_BYTES: usize = 32;
/// Unpadded base64url of [`SECRET_BYTES`] bytes.
const SECRET_CHARS: usize = 43;
/// The shortest pepper accepted: as long as the HMAC-SHA256 output.
pub(crate) const MIN_PEPPER_BYTES: usize = 32;

/// The public id of an API key: 16 lowercase hexadecimal characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// The id as stored and displayed.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ApiKeyId {
    type Err = MalformedApiKey;

    /// Parses an id as the store or the CLI hands it over.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let well_formed = text.len() == ID_CHARS
            && text
                .bytes()
                .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
        if well_formed {
            Ok(Self(text.to_owned()))
        } else {
            Err(MalformedApiKey)
        }
    }
}

/// A string that is not a well-formed gateway API key or key id. It carries no part of the
/// input, so it can be logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed api key")]
pub struct MalformedApiKey;

/// The server-side secret mixed into every key digest. Its `Debug` output is redacted.
pub struct Pepper(SecretBox<[u8]>);

impl Pepper {
    /// Takes a pepper of at least 32 bytes (the bytes of the string as given).
    pub fn from_secret(secret: SecretString) -> Result<Self, PepperTooShort> {
        let bytes = secret.expose_secret().as_bytes();
        if bytes.len() < MIN_PEPPER_BYTES {
            return Err(PepperTooShort {
                length: bytes.len(),
            });
        }
        Ok(Self(SecretBox::new(Box::from(bytes))))
    }

    fn hmac(&self) -> Hmac<Sha256> {
        // HMAC takes keys of any length; the error branch cannot happen and maps to an empty
        // key only to satisfy the signature without a panic path.
        Hmac::<Sha256>::new_from_slice(self.0.expose_secret())
            .unwrap_or_else(|_| Hmac::<Sha256>::new(&Default::default()))
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper([REDACTED])")
    }
}

/// A pepper shorter than the 32 bytes required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pepper is {length} bytes; at least 32 are required")]
pub struct PepperTooShort {
    /// The length that was given.
    pub length: usize,
}

/// `HMAC-SHA256(pepper, id 0x00 secret)`: what the store keeps instead of the key.
///
/// It has no `PartialEq`, so the only way to compare two digests is [`KeyDigest::matches`],
/// which takes constant time:
///
/// ```compile_fail
/// # use gatehouse_identity::KeyDigest;
/// let a = KeyDigest::from_bytes([0; 32]);
/// let b = KeyDigest::from_bytes([0; 32]);
/// let _ = a == b;
/// ```
#[derive(Clone)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// Wraps 32 digest bytes read from the store.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses 64 hexadecimal characters read from the store.
    pub fn from_hex(text: &str) -> Option<Self> {
        if text.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (index, byte) in bytes.iter_mut().enumerate() {
            let pair = text.get(index * 2..index * 2 + 2)?;
            *byte = u8::from_str_radix(pair, 16).ok()?;
        }
        Some(Self(bytes))
    }

    /// The digest bytes, for the store.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hexadecimal, for the store.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Compares in constant time: how long it takes does not depend on how many leading bytes
    /// agree (AUTH-APIKEY).
    pub fn matches(&self, other: &KeyDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({})", self.to_hex())
    }
}

/// A freshly generated API key: show [`IssuedApiKey::key`] to the user once, store
/// [`IssuedApiKey::id`] and [`IssuedApiKey::digest`].
#[derive(Debug)]
pub struct IssuedApiKey {
    /// The public id.
    pub id: ApiKeyId,
    /// The whole key as the client presents it, `gh_<id>_<secret>`.
    pub key: SecretString,
    /// The digest to store.
    pub digest: KeyDigest,
}

impl IssuedApiKey {
    /// Generates a key with a random id and a 256-bit secret from the operating system.
    pub fn generate(pepper: &Pepper) -> Result<Self, KeyGenerationError> {
        let mut id_bytes = [0u8; ID_BYTES];
        let mut secret_bytes = Zeroizing::new([0u8; SECRET_BYTES]);
        OsRng
            .try_fill_bytes(&mut id_bytes)
            .and_then(|()| OsRng.try_fill_bytes(secret_bytes.as_mut()))
            .map_err(|error| KeyGenerationError(error.to_string()))?;
        let id = ApiKeyId(id_bytes.iter().map(|byte| format!("{byte:02x}")).collect());
        let secret = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret_bytes.as_ref()));
        let mut key = String::with_capacity(API_KEY_PREFIX.len() + ID_CHARS + 1 + SECRET_CHARS);
        key.push_str(API_KEY_PREFIX);
        key.push_str(id.as_str());
        key.push('_');
        key.push_str(&secret);
        let digest = digest(pepper, &id, &secret);
        Ok(Self {
            id,
            key: SecretString::from(key),
            digest,
        })
    }
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("random number generator failed: {0}")]
pub struct KeyGenerationError(String);

/// An API key as presented by a client, split into its parts.
pub(crate) struct PresentedApiKey {
    pub(crate) id: ApiKeyId,
    pub(crate) secret: SecretString,
}

impl PresentedApiKey {
    /// Splits `gh_<id>_<secret>`, checking the shape of both parts.
    pub(crate) fn parse(text: &str) -> Result<Self, MalformedApiKey> {
        let rest = text.strip_prefix(API_KEY_PREFIX).ok_or(MalformedApiKey)?;
        // The id is hexadecimal, so the first `_` ends it; the secret may itself contain `_`.
        let (id, secret) = rest.split_once('_').ok_or(MalformedApiKey)?;
        let id = id.parse::<ApiKeyId>()?;
        let secret_well_formed = secret.len() == SECRET_CHARS
            && secret
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_');
        if !secret_well_formed {
            return Err(MalformedApiKey);
        }
        Ok(Self {
            id,
            secret: SecretString::from(secret),
        })
    }

    pub(crate) fn digest(&self, pepper: &Pepper) -> KeyDigest {
        digest(pepper, &self.id, self.secret.expose_secret())
    }
}

fn digest(pepper: &Pepper, id: &ApiKeyId, secret: &str) -> KeyDigest {
    let mut mac = pepper.hmac();
    mac.update(id.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(secret.as_bytes());
    KeyDigest(mac.finalize().into_bytes().into())
}

#[cfg(test)]
mod tests;
