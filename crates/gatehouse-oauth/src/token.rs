//! The access token handed to the code that calls an upstream, and the id that names it in
//! logs and audit records without revealing it.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// An upstream access token. The value is reachable only through [`AccessToken::expose_secret`]
/// or [`AccessToken::bearer_header`]; `Debug` shows the [`TokenId`] and expiry only.
#[derive(Clone)]
pub struct AccessToken {
    value: SecretString,
    id: TokenId,
    expires_at: SystemTime,
    scope: Option<String>,
}

impl AccessToken {
    /// A token issued now or loaded from a stored grant.
    pub fn new(value: SecretString, expires_at: SystemTime, scope: Option<String>) -> Self {
        let id = TokenId::of(value.expose_secret());
        Self {
            value,
            id,
            expires_at,
            scope,
        }
    }

    /// The token itself, for the `Authorization` header of an upstream request and nothing else.
    pub fn expose_secret(&self) -> &str {
        self.value.expose_secret()
    }

    /// `Bearer <token>` as a header value marked sensitive, so HTTP libraries leave it out of
    /// their debug output.
    pub fn bearer_header(&self) -> Result<HeaderValue, reqwest::header::InvalidHeaderValue> {
        let mut value = HeaderValue::try_from(format!("Bearer {}", self.expose_secret()))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Names this token in logs and audit records.
    pub fn id(&self) -> &TokenId {
        &self.id
    }

    /// When the authorization server said the token stops being valid.
    pub fn expires_at(&self) -> SystemTime {
        self.expires_at
    }

    /// The scope the token was issued with, when the authorization server said.
    pub fn scope(&self) -> Option<&str> {
        self.scope.as_deref()
    }

    /// Whether the token is still good for `margin` after `now`: a token is replaced shortly
    /// before it expires, so that a request sent with it does not arrive after its expiry.
    pub(crate) fn is_usable(&self, now: SystemTime, margin: Duration) -> bool {
        now.checked_add(margin)
            .is_some_and(|deadline| deadline < self.expires_at)
    }
}

impl fmt::Debug for AccessToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AccessToken")
            .field("id", &self.id)
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// A stable name for a token: the first 64 bits of its SHA-256, in hex. Tokens carry far more
/// than 64 bits of entropy, so the prefix cannot be turned back into the token, while the same
/// token always gets the same id across restarts and replicas, which is what an audit trail
/// needs to correlate calls.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenId(String);

impl TokenId {
    /// The id of `token`.
    pub fn of(token: &str) -> Self {
        let digest = Sha256::digest(token.as_bytes());
        let hex = digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        Self(hex)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for TokenId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "TokenId({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_id_never_show_the_value() {
        let token = AccessToken::new(
            SecretString::from("canary-access-token-value"),
            SystemTime::UNIX_EPOCH,
            None,
        );
        let debug = format!("{token:?}");
        assert!(!debug.contains("canary"), "{debug}");
        assert_eq!(token.id().as_str().len(), 16);
        assert_eq!(token.id(), &TokenId::of("canary-access-token-value"));
        assert!(token.bearer_header().unwrap().is_sensitive());
    }

    #[test]
    fn usable_until_the_margin_before_expiry() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let token = AccessToken::new(SecretString::from("t"), now + Duration::from_secs(60), None);
        assert!(token.is_usable(now, Duration::from_secs(30)));
        assert!(!token.is_usable(now, Duration::from_secs(60)));
        assert!(!token.is_usable(now + Duration::from_secs(31), Duration::from_secs(30)));
    }
}
