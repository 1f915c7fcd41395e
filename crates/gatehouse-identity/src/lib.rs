//! Who is calling, proven from one HTTP request's headers. [`Authenticator::authenticate`] is
//! the one entry point: it turns the request's headers and TCP peer address into a
//! [`Principal`] or an [`AuthError`], trying in order a trusted proxy's identity header, then
//! a gateway API key, then an OIDC/JWT bearer token (see [`authenticator`] for why that order).
//! The crate also builds the OAuth protected resource metadata (RFC 9728) and the
//! `WWW-Authenticate` challenges MCP clients use to start the authorization flow.
//!
//! Architecture invariants: this crate never touches the database (API key records come in
//! through the [`KeyLookup`] trait the gateway implements), never fetches a URL that came from
//! a token (only the configured issuer's discovery document and JWKS), and never puts key
//! material in an error, a log line or a `Debug` output. The only async step is fetching the
//! identity provider's keys; everything else is plain code over headers.

pub mod api_key;
pub mod authenticator;
mod bearer;
pub mod config;
mod error;
mod jwks;
mod jwt;
mod principal;
pub mod resource_metadata;
mod settings;
mod trusted_header;
mod url_rules;

pub use api_key::{
    API_KEY_PREFIX, ApiKeyId, IssuedApiKey, KeyDigest, KeyLookup, KeyLookupError, NoApiKeys,
    Pepper, StoredKey,
};
pub use authenticator::{Authenticator, BuildError};
pub use error::{AuthError, KeyRejection, TokenRejection};
pub use principal::{AuthMethod, CredentialRef, Principal, SubjectToken};
pub use resource_metadata::{ProtectedResource, ProtectedResourceMetadata};
pub use settings::{
    ApiKeySettings, AuthSettings, ConfigError, ConfigProblem, ProcessSecrets, SecretSource,
};
