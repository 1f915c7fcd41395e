//! One closed error type for every way authentication fails, with one mapping to a status code
//! and a client-safe message. `Display` is the detailed reason, for logs and receipts only.

use std::net::IpAddr;

use http::StatusCode;

use crate::api_key::{ApiKeyId, KeyLookupError};
use crate::principal::AuthMethod;

/// Why a request could not be authenticated. `Display` gives the precise reason for the log;
/// clients get [`AuthError::client_message`], which is the same for every rejected credential.
/// Neither ever contains key material or a token.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The request carried no credential at all.
    #[error("no credential presented")]
    MissingCredential,
    /// The credential could not be parsed; the text names what, never the value.
    #[error("malformed credential: {0}")]
    MalformedCredential(&'static str),
    /// The credential is of a kind this gateway is not configured to accept.
    #[error("{0} credentials are not enabled")]
    MethodNotEnabled(AuthMethod),
    /// A well-formed API key that does not authenticate.
    #[error("api key {key_id} rejected: {reason}")]
    ApiKeyRejected {
        /// The public id of the presented key.
        key_id: ApiKeyId,
        /// Why it was rejected.
        reason: KeyRejection,
    },
    /// A bearer token that does not authenticate.
    #[error("bearer token rejected: {0}")]
    TokenRejected(TokenRejection),
    /// An identity header arrived from an address that is not a trusted proxy.
    #[error("identity header {header} from untrusted peer {peer}")]
    UntrustedHeaderSource {
        /// The header's name.
        header: String,
        /// The TCP peer that sent it.
        peer: IpAddr,
    },
    /// A valid token without the scopes this gateway requires (answered with 403 and a
    /// step-up challenge).
    #[error("token lacks required scopes: {}", missing.join(" "))]
    InsufficientScope {
        /// The required scopes the token does not have.
        missing: Vec<String>,
    },
    /// The store could not look up an API key.
    #[error("api key store unavailable: {0}")]
    KeyStoreUnavailable(KeyLookupError),
    /// The identity provider's signing keys could not be fetched and none are cached.
    #[error("identity provider keys unavailable: {0}")]
    IdentityProviderUnavailable(String),
}

impl AuthError {
    /// The HTTP status for this error: 401, 403 for missing scopes, 503 when a dependency of
    /// authentication is down.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::MissingCredential
            | AuthError::MalformedCredential(_)
            | AuthError::MethodNotEnabled(_)
            | AuthError::ApiKeyRejected { .. }
            | AuthError::TokenRejected(_)
            | AuthError::UntrustedHeaderSource { .. } => StatusCode::UNAUTHORIZED,
            AuthError::InsufficientScope { .. } => StatusCode::FORBIDDEN,
            AuthError::KeyStoreUnavailable(_) | AuthError::IdentityProviderUnavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// What the client is told. Every rejected credential gets the same text, so a client
    /// cannot tell an unknown key from a revoked or expired one.
    pub fn client_message(&self) -> &'static str {
        match self {
            AuthError::MissingCredential => "authentication required",
            AuthError::MalformedCredential(_)
            | AuthError::MethodNotEnabled(_)
            | AuthError::ApiKeyRejected { .. }
            | AuthError::TokenRejected(_)
            | AuthError::UntrustedHeaderSource { .. } => "invalid credential",
            AuthError::InsufficientScope { .. } => "insufficient scope",
            AuthError::KeyStoreUnavailable(_) | AuthError::IdentityProviderUnavailable(_) => {
                "authentication temporarily unavailable"
            }
        }
    }
}

/// Why a well-formed API key was rejected. Logged, never shown to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyRejection {
    /// No key has this id.
    #[error("unknown key")]
    UnknownKey,
    /// The id exists but the secret does not match its digest.
    #[error("secret does not match")]
    SecretMismatch,
    /// The key was revoked or its owner disabled.
    #[error("revoked")]
    Revoked,
    /// The key is past its expiry.
    #[error("expired")]
    Expired,
}

/// Why a bearer token was rejected. Logged, never shown to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// The header is not valid JSON or names an algorithm that is not supported (`none`
    /// included).
    #[error("malformed or unsupported token header")]
    MalformedHeader,
    /// The header lists critical extensions, none of which are understood.
    #[error("critical header extensions are not supported")]
    CriticalHeader,
    /// The header's algorithm is not in the configured allowlist.
    #[error("algorithm {0} is not allowed")]
    DisallowedAlgorithm(String),
    /// The header has no `kid`.
    #[error("token has no key id")]
    MissingKeyId,
    /// No key in the issuer's JWKS has the token's `kid`.
    #[error("unknown key id")]
    UnknownKeyId,
    /// The token's algorithm does not fit the key its `kid` names (key confusion).
    #[error("algorithm {0} does not match the key")]
    AlgorithmMismatchesKey(String),
    /// The signature does not verify.
    #[error("invalid signature")]
    InvalidSignature,
    /// The token is not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// `exp` is in the past.
    #[error("expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("not yet valid")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` does not name this gateway.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(String),
    /// A claim has the wrong JSON type (`"exp": "never"`).
    #[error("claim {0} has the wrong type")]
    WrongClaimType(String),
    /// The user claim is `email` but the token says the address is not verified.
    #[error("email address is not verified")]
    UnverifiedEmail,
}
