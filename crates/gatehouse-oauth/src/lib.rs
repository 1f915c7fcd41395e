//! The gateway as an OAuth 2.1 client of its HTTP upstreams, so that upstream tokens live only
//! in the gateway: a client holds one gateway credential, and its own token is never passed
//! upstream (the MCP authorization specification forbids token passthrough).
//!
//! One [`OAuthClient`] per upstream, configured by a [`ClientConfig`], answers
//! [`OAuthClient::access_token`] for a [`Subject`]:
//!
//! - the gateway itself, with the client credentials grant;
//! - a user, from the grant their authorization code flow left in the [`GrantStore`]
//!   ([`OAuthClient::start_authorization`], [`OAuthClient::complete_authorization`]; PKCE S256,
//!   single-use `state`, RFC 9207 `iss` checked), refreshed when it expires;
//! - a user presenting their own token, exchanged for an upstream token (RFC 8693).
//!
//! Every authorization and token request carries the upstream's RFC 8707 `resource`, so tokens
//! are bound to one upstream. Tokens are cached until shortly before they expire, and
//! concurrent callers for one subject share a single token request: never two refreshes at once
//! for one user. With rotating refresh tokens the new grant is saved before its access token is
//! handed out, so the old refresh token is never sent again; a refresh refused with
//! `invalid_grant` removes the grant and tells the caller the user must authorize again.
//! Single flight is per process: replicas sharing a store each refresh on their own.
//!
//! Architecture invariants: this crate never touches the database (grants come and go through
//! the [`GrantStore`] trait the gateway implements), and no token, code, verifier or secret
//! ever appears in a `Debug` or `Display` output, an error or a log line: they are
//! [`secrecy::SecretString`]s, an [`AccessToken`] is named by its [`TokenId`], and text an
//! authorization server sends back is stripped of every secret the request carried.
//!
//! The token endpoint protocol is written here rather than taken from the `oauth2` crate: the
//! requests are a handful of form fields, while what this crate is for (`resource` on every
//! request, token exchange, single flight, saving rotated refresh tokens before use, the
//! redaction of server text) would all sit outside that crate's typed flow, and its generic
//! HTTP-client layer would duplicate the reqwest client the workspace already builds.

mod authorize;
mod client;
mod config;
mod discovery;
mod endpoint;
mod error;
mod pkce;
mod slots;
mod store;
mod token;

pub use authorize::{AuthorizationRequest, AuthorizationResponse};
pub use client::{OAuthClient, Subject};
pub use config::check_endpoint;
pub use config::{
    ACCESS_TOKEN_TYPE, AuthorizationServer, ClientAuthMethod, ClientConfig, ConfigError, Grant,
    ID_TOKEN_TYPE, JWT_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE, TokenExchange,
};
pub use discovery::DiscoveryError;
pub use error::{ErrorResponse, OAuthError, ReauthorizationReason};
pub use store::{
    GrantKey, GrantStore, GrantStoreError, MemoryGrantStore, StoreFuture, StoredGrant, UserId,
};
pub use token::{AccessToken, TokenId};
