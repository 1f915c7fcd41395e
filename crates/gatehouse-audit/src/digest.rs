//! Keyed digests of arguments and redacted values. A digest is HMAC-SHA256 under the audit key,
//! written `hmac-sha256:<hex>`: an auditor who knows a plain text (and may use the audit key)
//! can reproduce its digest with [`AuditKey::digest_text`] and search receipts for it, while
//! the receipts themselves never hold the plain text and cannot be brute-forced without the key.
//!
//! What is digested: a JSON string is digested as its text (so `digest_text("alice@example.com")`
//! reproduces the redaction of that string); any other value, including a whole arguments
//! object, as its canonical JSON (see [`crate::canonical`]).

use std::collections::BTreeSet;
use std::fmt;

use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

use crate::canonical::canonical_value;
use crate::keys::KeyError;

/// The prefix of every digest.
pub const DIGEST_PREFIX: &str = "hmac-sha256:";

/// The shortest audit key accepted, in bytes.
pub const MIN_AUDIT_KEY_BYTES: usize = 32;

/// The secret key of argument digests. It must outlive every receipt whose digests should stay
/// reproducible, so the caller keeps it with the gateway's other secrets.
#[derive(Clone)]
pub struct AuditKey {
    /// The HMAC state after absorbing the key; cloning it is cheaper than re-keying per digest.
    mac: Hmac<Sha256>,
    /// The key itself, kept only to export it again.
    secret_hex: SecretString,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("AuditKey(redacted)")
    }
}

impl AuditKey {
    /// Makes a new random key of [`MIN_AUDIT_KEY_BYTES`] bytes from the operating system.
    pub fn generate() -> Result<Self, KeyError> {
        let mut bytes = [0_u8; MIN_AUDIT_KEY_BYTES];
        getrandom::fill(&mut bytes).map_err(|error| KeyError::Random(error.to_string()))?;
        Self::from_bytes(&bytes)
    }

    /// Uses `bytes` as the key; fails when shorter than [`MIN_AUDIT_KEY_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() < MIN_AUDIT_KEY_BYTES {
            return Err(KeyError::TooShort {
                expected: MIN_AUDIT_KEY_BYTES,
                found: bytes.len(),
            });
        }
        let mac = Hmac::<Sha256>::new_from_slice(bytes)
            .map_err(|_| KeyError::Malformed("the HMAC key has an invalid length"))?;
        Ok(Self {
            mac,
            secret_hex: SecretString::from(hex::encode(bytes)),
        })
    }

    /// Reads a key written by [`AuditKey::to_hex`].
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let bytes = secrecy::zeroize::Zeroizing::new(
            hex::decode(text.trim())
                .map_err(|_| KeyError::Malformed("the audit key is not hex"))?,
        );
        Self::from_bytes(&bytes)
    }

    /// The key as lowercase hex, for the caller's secret store.
    pub fn to_hex(&self) -> SecretString {
        self.secret_hex.clone()
    }

    /// The digest of a known plain text: what a redacted string value or a search reproduces.
    pub fn digest_text(&self, plain: &str) -> ArgumentDigest {
        self.digest_bytes(plain.as_bytes())
    }

    /// The digest of a JSON value: a string as its text, anything else as its canonical JSON.
    pub fn digest_value(&self, value: &Value) -> ArgumentDigest {
        match value {
            Value::String(text) => self.digest_text(text),
            other => self.digest_bytes(canonical_value(other).as_bytes()),
        }
    }

    /// `arguments` with every field named in `rule` (at any depth) replaced by its digest.
    pub fn redact(&self, arguments: &Value, rule: &RedactionRule) -> Value {
        match arguments {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(name, value)| {
                        let redacted = if rule.covers(name) {
                            Value::String(self.digest_value(value).0)
                        } else {
                            self.redact(value, rule)
                        };
                        (name.clone(), redacted)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|item| self.redact(item, rule)).collect())
            }
            other => other.clone(),
        }
    }

    fn digest_bytes(&self, bytes: &[u8]) -> ArgumentDigest {
        let mut mac = self.mac.clone();
        mac.update(bytes);
        let tag = mac.finalize().into_bytes();
        ArgumentDigest(format!("{DIGEST_PREFIX}{}", hex::encode(tag)))
    }

    /// Exposes the hex key to this crate's tests.
    #[cfg(test)]
    fn secret_for_tests(&self) -> &str {
        use secrecy::ExposeSecret as _;
        self.secret_hex.expose_secret()
    }
}

/// A keyed digest, `hmac-sha256:<64 hex digits>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ArgumentDigest(String);

impl ArgumentDigest {
    /// The digest as written in receipts.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ArgumentDigest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl TryFrom<String> for ArgumentDigest {
    type Error = KeyError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let well_formed = text.strip_prefix(DIGEST_PREFIX).is_some_and(|hex| {
            hex.len() == 64
                && hex
                    .bytes()
                    .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
        });
        if well_formed {
            Ok(Self(text))
        } else {
            Err(KeyError::Malformed(
                "a digest must be hmac-sha256: and 64 lowercase hex digits",
            ))
        }
    }
}

impl From<ArgumentDigest> for String {
    fn from(digest: ArgumentDigest) -> Self {
        digest.0
    }
}

/// Which argument fields are replaced by their digest in a receipt's redacted arguments.
/// Names match at any depth, ignoring ASCII case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedactionRule {
    fields: BTreeSet<String>,
}

impl RedactionRule {
    /// A rule covering the named fields.
    pub fn fields<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self {
            fields: names
                .into_iter()
                .map(|name| name.as_ref().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether the field `name` is redacted.
    pub fn covers(&self, name: &str) -> bool {
        self.fields.contains(&name.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key() -> AuditKey {
        AuditKey::from_bytes(&[7_u8; 32]).unwrap()
    }

    #[test]
    fn digest_matches_the_published_hmac_test_vector() {
        // RFC 4231 test case 2 uses a 4-byte key, below our minimum; test case 6 uses a
        // 131-byte key of 0xaa, which is long enough.
        let key = AuditKey::from_bytes(&[0xaa_u8; 131]).unwrap();
        assert_eq!(
            key.digest_text("Test Using Larger Than Block-Size Key - Hash Key First")
                .as_str(),
            "hmac-sha256:60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn redaction_is_reproducible_from_the_plain_text_and_hides_it() {
        let key = key();
        let arguments = json!({"query": "select 1", "auth": {"Password": "hunter2"}, "list": [{"email": "a@b.c"}]});
        let redacted = key.redact(&arguments, &RedactionRule::fields(["password", "email"]));
        let text = redacted.to_string();
        assert!(!text.contains("hunter2") && !text.contains("a@b.c"));
        assert_eq!(
            redacted["auth"]["Password"],
            json!(key.digest_text("hunter2").as_str())
        );
        assert_eq!(
            redacted["list"][0]["email"],
            json!(key.digest_text("a@b.c").as_str())
        );
        assert_eq!(redacted["query"], json!("select 1"));
    }

    #[test]
    fn whole_arguments_digest_ignores_key_order() {
        let key = key();
        let first: Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let second: Value = serde_json::from_str(r#"{ "b": [1, 2], "a": 1 }"#).unwrap();
        assert_eq!(key.digest_value(&first), key.digest_value(&second));
        assert_eq!(
            key.digest_value(&first),
            key.digest_text(r#"{"a":1,"b":[1,2]}"#)
        );
    }

    #[test]
    fn keys_round_trip_through_hex_and_short_keys_are_refused() {
        let key = AuditKey::generate().unwrap();
        let again = AuditKey::from_hex(key.secret_for_tests()).unwrap();
        assert_eq!(key.digest_text("x"), again.digest_text("x"));
        assert!(AuditKey::from_bytes(&[1_u8; 16]).is_err());
        assert!(format!("{key:?}").contains("redacted"));
    }
}
