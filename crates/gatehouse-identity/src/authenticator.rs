//! The one entry point: [`Authenticator::authenticate`].
//!
//! The methods are tried in this order, and the first that applies decides; a credential that
//! is presented and fails is never followed by a try of another method:
//!
//! 1. **Trusted header**, when configured and the request carries the user header. From a
//!    trusted proxy it is the identity (the proxy has already authenticated the user, and may
//!    forward its own bearer token beside it); from any other peer the request is refused,
//!    even if it also has a valid bearer, because a forged identity header is an attack.
//! 2. **Bearer API key**: `Authorization: Bearer gh_…`.
//! 3. **Bearer JWT**: any other `Authorization: Bearer` credential.
//! 4. Otherwise [`AuthError::MissingCredential`], answered with a challenge that starts the MCP
//!    authorization flow.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue};

use crate::api_key::{KeyLookup, verify_api_key};
use crate::bearer::{Bearer, bearer_credential};
use crate::error::AuthError;
use crate::jwt::TokenVerifier;
use crate::principal::{AuthMethod, Principal};
use crate::resource_metadata::{ProtectedResource, www_authenticate};
use crate::settings::AuthSettings;

/// Authenticates requests with one validated configuration. Build a new one on config reload;
/// the identity provider's keys are then fetched again on first use.
pub struct Authenticator<K> {
    settings: AuthSettings,
    verifier: Option<TokenVerifier>,
    keys: K,
}

/// The authenticator could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The HTTP client for fetching the identity provider's keys could not be built.
    #[error("cannot build the identity provider client: {0}")]
    HttpClient(#[from] reqwest::Error),
}

impl<K: KeyLookup> Authenticator<K> {
    /// Builds an authenticator over validated settings and the gateway's key store.
    pub fn new(settings: AuthSettings, keys: K) -> Result<Self, BuildError> {
        let verifier = match &settings.oidc {
            Some(oidc) => Some(TokenVerifier::new(oidc.clone())?),
            None => None,
        };
        Ok(Self {
            settings,
            verifier,
            keys,
        })
    }

    /// Proves who sent a request from its headers and the TCP peer address, trying the
    /// methods in the order documented on this module.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> Result<Principal, AuthError> {
        // Order matters: the identity header is looked at first so that a forged one is
        // refused whatever else the request carries.
        if let Some(trusted_header) = &self.settings.trusted_header
            && let Some(outcome) = trusted_header.identify(headers, peer)
        {
            return outcome;
        }
        match bearer_credential(headers)? {
            Some(Bearer::ApiKey(key)) => match &self.settings.api_keys {
                Some(api_keys) => verify_api_key(api_keys.pepper(), &self.keys, key).await,
                None => Err(AuthError::MethodNotEnabled(AuthMethod::ApiKey)),
            },
            Some(Bearer::Token(token)) => match &self.verifier {
                Some(verifier) => verifier.verify(token).await,
                None => Err(AuthError::MethodNotEnabled(AuthMethod::Jwt)),
            },
            None => Err(AuthError::MissingCredential),
        }
    }

    /// The `WWW-Authenticate` value to send with `error`'s status, if any (see
    /// [`AuthError::status`]): a Bearer challenge on 401 and 403, nothing on 503.
    pub fn www_authenticate(&self, error: &AuthError) -> Option<HeaderValue> {
        www_authenticate(self.settings.resource.as_ref(), error)
    }

    /// The protected resource metadata to serve, when `resource_url` is configured.
    pub fn protected_resource(&self) -> Option<&ProtectedResource> {
        self.settings.resource.as_ref()
    }

    /// The validated settings this authenticator runs with.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }
}
