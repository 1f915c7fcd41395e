//! Who is calling. With `[auth]` configured every request must prove an identity (a gateway
//! API key, an OIDC token, or a trusted proxy header); without it the gateway serves anonymous
//! callers, which configuration validation allows only on a loopback address. API keys are
//! looked up in the store on every request, so a revocation applies to the very next one.

use std::time::{Duration, SystemTime};

use gatehouse_identity::{
    ApiKeyId, AuthError, AuthSettings, Authenticator, CredentialRef, KeyDigest, KeyLookup,
    KeyLookupError, Principal, StoredKey,
};
use gatehouse_store::{Store, StoreError};
use http::HeaderMap;

/// The caller of one request.
#[derive(Debug, Clone)]
pub enum Who {
    /// No `[auth]` is configured.
    Anonymous,
    /// A proven identity.
    Person(Principal),
}

impl Who {
    /// The user name, if known.
    pub fn user(&self) -> Option<&str> {
        match self {
            Who::Anonymous => None,
            Who::Person(principal) => Some(principal.user()),
        }
    }

    /// The credential used, as recorded in logs and receipts (never the secret itself).
    pub fn credential(&self) -> Option<String> {
        match self {
            Who::Anonymous => None,
            Who::Person(principal) => Some(principal.credential().to_string()),
        }
    }

    /// The token the caller signed in with (OIDC/JWT), for exchanges with upstream
    /// authorization servers.
    pub fn subject_token(&self) -> Option<std::sync::Arc<secrecy::SecretString>> {
        match self {
            Who::Anonymous => None,
            Who::Person(principal) => principal
                .subject_token()
                .map(|token| std::sync::Arc::clone(token.secret())),
        }
    }

    /// The API key id, when the caller used one.
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Who::Person(principal) => match principal.credential() {
                CredentialRef::ApiKey { key_id } => Some(key_id.as_str()),
                _ => None,
            },
            Who::Anonymous => None,
        }
    }
}

/// Why a request's identity was not accepted. `Display` is the detail for the log; clients get
/// [`Refusal::client_message`].
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The credential failed.
    #[error(transparent)]
    Auth(AuthError),
    /// The identity is valid but its user is disabled in the gateway.
    #[error("user `{0}` is disabled")]
    UserDisabled(String),
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> http::StatusCode {
        match self {
            Refusal::Auth(error) => error.status(),
            Refusal::UserDisabled(_) => http::StatusCode::UNAUTHORIZED,
        }
    }

    /// What the client is told: the same for every kind of bad credential.
    pub fn client_message(&self) -> &'static str {
        match self {
            Refusal::Auth(error) => error.client_message(),
            Refusal::UserDisabled(_) => AuthError::MissingCredential.client_message(),
        }
    }
}

/// API keys as the store keeps them.
pub struct StoreKeys {
    store: Store,
}

impl KeyLookup for StoreKeys {
    async fn find_key(&self, id: &ApiKeyId) -> Result<Option<StoredKey>, KeyLookupError> {
        let Some(key) = self
            .store
            .api_key(id.as_str())
            .await
            .map_err(KeyLookupError::new)?
        else {
            return Ok(None);
        };
        let Ok(digest) = <[u8; 32]>::try_from(key.digest.as_slice()) else {
            return Ok(None);
        };
        let memberships = self
            .store
            .memberships(&key.user)
            .await
            .map_err(KeyLookupError::new)?;
        Ok(Some(StoredKey {
            digest: KeyDigest::from_bytes(digest),
            user: key.user,
            groups: memberships.groups,
            teams: memberships.teams,
            expires: key.expires_at.map(|at| {
                SystemTime::UNIX_EPOCH
                    + Duration::from_millis(u64::try_from(at.as_unix_millis()).unwrap_or(0))
            }),
            revoked: key.revoked_at.is_some() || key.owner_disabled_at.is_some(),
        }))
    }
}

/// How the gateway authenticates.
pub enum Identity {
    /// Everyone is anonymous.
    Anonymous,
    /// Credentials are checked.
    Checked {
        /// The configured methods.
        authenticator: Box<Authenticator<StoreKeys>>,
        /// Users, for the disabled check of token and header identities.
        store: Store,
    },
}

/// Why the identity layer could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IdentitySetupError {
    /// The `[auth]` table is wrong.
    #[error("[auth] {0}")]
    Config(String),
    /// The HTTP client for the identity provider could not be built.
    #[error("[auth] {0}")]
    Build(String),
}

impl Identity {
    /// Builds the identity layer from the `[auth]` table, if any.
    pub fn from_config(
        auth: Option<&toml::Table>,
        store: &Store,
    ) -> Result<Self, IdentitySetupError> {
        let Some(table) = auth else {
            return Ok(Identity::Anonymous);
        };
        let settings = settings_from_table(table)?;
        let authenticator = Authenticator::new(
            settings,
            StoreKeys {
                store: store.clone(),
            },
        )
        .map_err(|error| IdentitySetupError::Build(error.to_string()))?;
        Ok(Identity::Checked {
            authenticator: Box::new(authenticator),
            store: store.clone(),
        })
    }

    /// Authenticates one request.
    pub async fn who(
        &self,
        headers: &HeaderMap,
        peer: std::net::SocketAddr,
    ) -> Result<Who, Refusal> {
        let Identity::Checked {
            authenticator,
            store,
        } = self
        else {
            return Ok(Who::Anonymous);
        };
        let principal = authenticator
            .authenticate(headers, peer)
            .await
            .map_err(Refusal::Auth)?;
        match principal.credential() {
            CredentialRef::ApiKey { key_id } => {
                // Keys of disabled users are already refused by the lookup; record the use
                // without holding up the request.
                let store = store.clone();
                let id = key_id.as_str().to_owned();
                tokio::spawn(async move {
                    let _ = store
                        .record_api_key_use(&id, gatehouse_store::Timestamp::now())
                        .await;
                });
            }
            _ => match store.user(principal.user()).await {
                // Identities from tokens need no local account, but a disabled one is refused.
                Ok(user) if user.is_disabled() => return Err(Refusal::UserDisabled(user.name)),
                Ok(_) | Err(StoreError::NotFound { .. }) => {}
                Err(error) => {
                    return Err(Refusal::Auth(AuthError::KeyStoreUnavailable(
                        KeyLookupError::new(error),
                    )));
                }
            },
        }
        Ok(Who::Person(principal))
    }

    /// The `WWW-Authenticate` header for a refusal.
    pub fn challenge(&self, refusal: &Refusal) -> Option<http::HeaderValue> {
        let Identity::Checked { authenticator, .. } = self else {
            return None;
        };
        match refusal {
            Refusal::Auth(error) => authenticator.www_authenticate(error),
            Refusal::UserDisabled(_) => {
                authenticator.www_authenticate(&AuthError::MissingCredential)
            }
        }
    }

    /// The protected resource metadata document and the path it is served at.
    pub fn resource_metadata(&self) -> Option<(String, String)> {
        match self {
            Identity::Checked { authenticator, .. } => {
                authenticator.protected_resource().map(|resource| {
                    (
                        resource.metadata_path().to_owned(),
                        resource.metadata_json(),
                    )
                })
            }
            Identity::Anonymous => None,
        }
    }
}

/// Checks an `[auth]` table and turns it into settings, naming every problem.
pub fn settings_from_table(table: &toml::Table) -> Result<AuthSettings, IdentitySetupError> {
    let raw: gatehouse_identity::config::RawAuth = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|error: toml::de::Error| IdentitySetupError::Config(error.message().to_owned()))?;
    AuthSettings::from_raw(&raw, &gatehouse_identity::ProcessSecrets)
        .map_err(|error| IdentitySetupError::Config(error.to_string()))
}
