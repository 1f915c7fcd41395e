//! The authenticated caller and the reference to the credential that proved it.

use std::fmt;
use std::net::IpAddr;

use crate::api_key::ApiKeyId;

/// An authenticated caller. Only [`crate::Authenticator::authenticate`] makes one, so code
/// that takes a `Principal` cannot be reached by a request that was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    user: String,
    groups: Vec<String>,
    teams: Vec<String>,
    credential: CredentialRef,
    subject_token: Option<SubjectToken>,
}

/// The verified bearer token a caller signed in with, kept so that the gateway can exchange it
/// for an upstream token (RFC 8693). It is sent only to an authorization server, never to an
/// upstream.
#[derive(Clone)]
pub struct SubjectToken(std::sync::Arc<secrecy::SecretString>);

impl SubjectToken {
    /// The token.
    pub fn secret(&self) -> &std::sync::Arc<secrecy::SecretString> {
        &self.0
    }
}

impl PartialEq for SubjectToken {
    fn eq(&self, other: &Self) -> bool {
        use secrecy::ExposeSecret as _;
        self.0.expose_secret() == other.0.expose_secret()
    }
}

impl Eq for SubjectToken {}

impl fmt::Debug for SubjectToken {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("SubjectToken([redacted])")
    }
}

impl Principal {
    /// The user name: the API key's owner, the configured token claim, or the proxy's header.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The user's groups, sorted and without duplicates.
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    /// The user's teams, sorted and without duplicates.
    pub fn teams(&self) -> &[String] {
        &self.teams
    }

    /// Which credential proved the identity, by reference only (for receipts and revocation).
    pub fn credential(&self) -> &CredentialRef {
        &self.credential
    }

    /// The signed-in token, for a caller who presented one (OIDC/JWT).
    pub fn subject_token(&self) -> Option<&SubjectToken> {
        self.subject_token.as_ref()
    }

    /// The same principal, keeping the token it was proven with.
    pub(crate) fn with_subject_token(mut self, token: &str) -> Self {
        self.subject_token = Some(SubjectToken(std::sync::Arc::new(
            secrecy::SecretString::from(token.to_owned()),
        )));
        self
    }

    /// How the identity was proven; derived from the credential so the two cannot disagree.
    pub fn method(&self) -> AuthMethod {
        self.credential.method()
    }

    /// Builds a principal without authenticating anything, for other crates' tests only.
    #[cfg(feature = "test-support")]
    pub fn for_tests(user: &str, groups: &[&str], teams: &[&str]) -> Self {
        let owned = |items: &[&str]| items.iter().map(|item| (*item).to_owned()).collect();
        Self::new(
            user.to_owned(),
            owned(groups),
            owned(teams),
            CredentialRef::TrustedHeader {
                proxy: IpAddr::from([127, 0, 0, 1]),
            },
        )
    }

    pub(crate) fn new(
        user: String,
        groups: Vec<String>,
        teams: Vec<String>,
        credential: CredentialRef,
    ) -> Self {
        Self {
            user,
            groups: sorted_unique(groups),
            teams: sorted_unique(teams),
            credential,
            subject_token: None,
        }
    }
}

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A gateway-issued API key in `Authorization: Bearer`.
    ApiKey,
    /// An OIDC/JWT access token in `Authorization: Bearer`.
    Jwt,
    /// An identity header set by a trusted SSO proxy.
    TrustedHeader,
}

impl AuthMethod {
    /// A stable lowercase name for logs and receipts.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::ApiKey => "api_key",
            AuthMethod::Jwt => "jwt",
            AuthMethod::TrustedHeader => "trusted_header",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The credential that proved an identity, by reference: a key id or a token's subject and
/// id, never a secret or a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialRef {
    /// A gateway API key, by its public id.
    ApiKey {
        /// The key's public id, the handle for `key revoke` and last-use tracking.
        key_id: ApiKeyId,
    },
    /// A bearer token from the configured issuer.
    Jwt {
        /// The token's `iss`.
        issuer: String,
        /// The token's `sub`.
        subject: String,
        /// The token's `jti`, when it has one.
        token_id: Option<String>,
    },
    /// An identity header from a trusted proxy.
    TrustedHeader {
        /// The proxy's address, as seen on the TCP connection.
        proxy: IpAddr,
    },
}

impl CredentialRef {
    /// How this credential proves an identity.
    pub fn method(&self) -> AuthMethod {
        match self {
            CredentialRef::ApiKey { .. } => AuthMethod::ApiKey,
            CredentialRef::Jwt { .. } => AuthMethod::Jwt,
            CredentialRef::TrustedHeader { .. } => AuthMethod::TrustedHeader,
        }
    }
}

impl fmt::Display for CredentialRef {
    /// `api_key:ID`, `jwt:SUBJECT` (with `#JTI` when present) or `trusted_header:PROXY`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialRef::ApiKey { key_id } => write!(f, "api_key:{key_id}"),
            CredentialRef::Jwt {
                subject, token_id, ..
            } => match token_id {
                Some(token_id) => write!(f, "jwt:{subject}#{token_id}"),
                None => write!(f, "jwt:{subject}"),
            },
            CredentialRef::TrustedHeader { proxy } => write!(f, "trusted_header:{proxy}"),
        }
    }
}

fn sorted_unique(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}
