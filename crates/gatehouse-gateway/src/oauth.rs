//! The gateway as an OAuth client of its HTTP upstreams. Each server with an `oauth` table gets
//! its own client (`gatehouse-oauth`), with the RFC 8707 resource set to that server; the
//! tokens it obtains are filled into the `Authorization` header of every request to it, and
//! the caller's own token is never passed on. Per-person grants (authorization code) are kept
//! in the vault as that person's secret `oauth.SERVER`, sealed like any other; a person
//! without one is given the address to sign in at, and the authorization server sends them
//! back to `/oauth/callback/SERVER`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, UNIX_EPOCH};

use gatehouse_config::{OAuthGrant, OAuthSettings, ServerConfig};
use gatehouse_mcp::credentials::{
    AccessTokens, Credential, CredentialError, CredentialFuture, CredentialSource, Scrubber, render,
};
use gatehouse_oauth::{
    AccessToken, AuthorizationResponse, AuthorizationServer, ClientConfig, Grant, GrantKey,
    GrantStore, GrantStoreError, OAuthClient, OAuthError, StoreFuture, StoredGrant, Subject,
    UserId,
};
use gatehouse_store::{SecretRef, StoreError};
use gatehouse_vault::{Details, Vault, VaultError};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

/// One upstream's access tokens.
pub struct UpstreamOAuth {
    server: String,
    settings: OAuthSettings,
    callback_base: String,
    grants: Arc<dyn GrantStore>,
    /// The client; replaced when its client secret is rotated.
    client: RwLock<OAuthClient>,
    /// The credential ids its client secret was filled in from.
    secret_ids: Vec<String>,
    per_user: bool,
    /// Tokens come from exchanging the person's own sign-in token (RFC 8693).
    exchanges: bool,
    scrubber: Arc<Scrubber>,
    /// The token last handed out per person, to recognise it when the upstream refuses it.
    handed_out: Mutex<HashMap<Option<String>, AccessToken>>,
}

impl UpstreamOAuth {
    /// Builds the client of `server`: its client secret is filled in from `source` now, and its
    /// callback is `callback_base` + `/oauth/callback/SERVER` unless configured.
    pub async fn new(
        server: &ServerConfig,
        settings: &OAuthSettings,
        source: &dyn CredentialSource,
        grants: Arc<dyn GrantStore>,
        callback_base: &str,
    ) -> Result<Self, String> {
        let name = server.name.to_string();
        let (client, secret_ids) =
            build_client(&name, settings, source, Arc::clone(&grants), callback_base).await?;
        Ok(Self {
            server: name,
            settings: settings.clone(),
            callback_base: callback_base.to_owned(),
            grants,
            client: RwLock::new(client),
            secret_ids,
            per_user: settings.is_per_user(),
            exchanges: matches!(settings.grant, OAuthGrant::TokenExchange { .. }),
            scrubber: Arc::clone(source.scrubber()),
            handed_out: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the client secret comes from credential `id`.
    pub fn uses_secret(&self, id: &str) -> bool {
        self.secret_ids.iter().any(|used| used == id)
    }

    /// Builds the client again with the current client secret, after it was rotated: the next
    /// token request uses the new one. Tokens cached in memory are requested again (stored
    /// grants stay); a sign-in in progress must be started again.
    pub async fn reload_client_secret(&self, source: &dyn CredentialSource) -> Result<(), String> {
        let (client, _) = build_client(
            &self.server,
            &self.settings,
            source,
            Arc::clone(&self.grants),
            &self.callback_base,
        )
        .await?;
        *self.client.write().unwrap_or_else(PoisonError::into_inner) = client;
        tracing::info!(server = %self.server, "OAuth client secret rotated; new token requests use it");
        Ok(())
    }

    fn client(&self) -> OAuthClient {
        self.client
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    async fn fetch(
        &self,
        user: Option<&str>,
        subject_token: Option<&Arc<SecretString>>,
    ) -> Result<Arc<Credential>, CredentialError> {
        let token = if self.per_user {
            let Some(user) = user else {
                return Err(format!(
                    "server `{}` acts for each person with their own token, and this request has no signed-in person",
                    self.server
                )
                .into());
            };
            let user_id = UserId::new(user);
            let subject = match (self.exchanges, subject_token) {
                (false, _) => Subject::User(&user_id),
                (true, Some(subject_token)) => Subject::OnBehalfOf {
                    user: &user_id,
                    subject_token,
                },
                (true, None) => {
                    return Err(format!(
                        "server `{}` exchanges the token you signed in with for its own, and this request was not made with one (sign in through the identity provider rather than with an API key)",
                        self.server
                    )
                    .into());
                }
            };
            match self.client().access_token(subject).await {
                Ok(token) => token,
                Err(OAuthError::AuthorizationRequired { .. }) => {
                    return Err(self.sign_in_needed(&user_id));
                }
                Err(error) => return Err(error.to_string().into()),
            }
        } else {
            self.client()
                .access_token(Subject::Service)
                .await
                .map_err(|error| CredentialError::from(error.to_string()))?
        };
        let credential = Arc::new(Credential {
            id: match (self.per_user, user) {
                (true, Some(user)) => format!("oauth.{}@{user}", self.server),
                _ => format!("oauth.{}", self.server),
            },
            version: token_version(&token),
            value: SecretString::from(token.expose_secret().to_owned()),
        });
        self.scrubber.learn(&credential);
        self.handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.map(str::to_owned), token);
        Ok(credential)
    }

    /// The error a person without a grant gets: where to sign in.
    fn sign_in_needed(&self, user: &UserId) -> CredentialError {
        match self.client().start_authorization(user) {
            Ok(request) => CredentialError {
                message: format!(
                    "`{user}` has not connected their account to server `{}`: open {} in a browser, sign in, then call again",
                    self.server, request.url
                ),
                sign_in: Some(request.url.to_string()),
            },
            Err(error) => error.to_string().into(),
        }
    }

    /// Completes a sign-in from the callback's query string; returns who signed in.
    pub async fn complete(&self, query: &str) -> Result<String, String> {
        self.client()
            .complete_authorization(AuthorizationResponse::from_query(query))
            .await
            .map(|user| user.as_str().to_owned())
            .map_err(|error| error.to_string())
    }
}

/// The client of upstream `name` as `settings` say, with its client secret filled in from
/// `source`; also the credential ids the secret came from.
async fn build_client(
    name: &str,
    settings: &OAuthSettings,
    source: &dyn CredentialSource,
    grants: Arc<dyn GrantStore>,
    callback_base: &str,
) -> Result<(OAuthClient, Vec<String>), String> {
    let url = |key: &str, value: &str| {
        url::Url::parse(value).map_err(|error| format!("servers.{name}.oauth.{key}: {error}"))
    };
    let mut authorization_server = AuthorizationServer::new(url("token_url", &settings.token_url)?);
    if let Some(endpoint) = &settings.authorization_url {
        authorization_server =
            authorization_server.with_authorization_endpoint(url("authorization_url", endpoint)?);
    }
    if let Some(issuer) = &settings.issuer {
        authorization_server = authorization_server.with_issuer(issuer.clone());
    }
    let grant = match &settings.grant {
        OAuthGrant::ClientCredentials => Grant::ClientCredentials,
        OAuthGrant::AuthorizationCode => {
            let redirect = settings
                .redirect_uri
                .clone()
                .unwrap_or_else(|| format!("{callback_base}/oauth/callback/{name}"));
            Grant::AuthorizationCode {
                redirect_uri: url("redirect_uri", &redirect)?,
            }
        }
        OAuthGrant::TokenExchange {
            subject_token_type,
            audience,
        } => Grant::TokenExchange(gatehouse_oauth::TokenExchange {
            subject_token_type: subject_token_type.clone(),
            requested_token_type: None,
            audience: audience.clone(),
        }),
    };
    let mut config = ClientConfig::new(
        name.to_owned(),
        authorization_server,
        settings.client_id.clone(),
        url("resource", &settings.resource)?,
        grant,
    );
    config.scopes = settings.scopes.clone();
    let mut secret_ids = Vec::new();
    if let Some(secret) = &settings.client_secret {
        let rendered = render(secret, source, None)
            .await
            .map_err(|error| format!("servers.{name}.oauth.client_secret: {error}"))?;
        config.client_secret = Some(rendered.value);
        secret_ids = rendered.used.into_iter().map(|used| used.id).collect();
    }
    let client = OAuthClient::new(config, grants).map_err(|error| error.to_string())?;
    Ok((client, secret_ids))
}

/// A token's version for receipts: the leading 48 bits of its id (a hash prefix), so the
/// same token always has the same version and the value is never shown.
fn token_version(token: &AccessToken) -> i64 {
    let id = token.id().as_str();
    i64::from_str_radix(id.get(..12).unwrap_or(id), 16).unwrap_or_default()
}

impl AccessTokens for UpstreamOAuth {
    fn token<'a>(
        &'a self,
        user: Option<&'a str>,
        subject_token: Option<&'a Arc<SecretString>>,
    ) -> CredentialFuture<'a> {
        Box::pin(self.fetch(user, subject_token))
    }

    fn rejected(&self, user: Option<&str>, token: &Credential) {
        let handed_out = self
            .handed_out
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user.map(str::to_owned))
            .cloned();
        let Some(handed_out) = handed_out.filter(|known| token_version(known) == token.version)
        else {
            return;
        };
        let user_id = user.map(UserId::new);
        let subject = match (&user_id, self.per_user) {
            (Some(user), true) => Subject::User(user),
            _ => Subject::Service,
        };
        self.client().invalidate(subject, &handed_out);
    }
}

/// Per-person grants kept in the vault, sealed: the person's secret `oauth.SERVER`.
pub struct VaultGrants {
    vault: Arc<Vault>,
}

impl VaultGrants {
    /// Grants in `vault`.
    pub fn new(vault: Arc<Vault>) -> Arc<Self> {
        Arc::new(Self { vault })
    }
}

fn grant_name(key: &GrantKey) -> String {
    format!("oauth.{}", key.upstream)
}

fn store_error(error: VaultError) -> GrantStoreError {
    GrantStoreError::new(error)
}

impl GrantStore for VaultGrants {
    fn load<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, Option<StoredGrant>> {
        Box::pin(async move {
            let name = grant_name(key);
            let secret = SecretRef::of_user(&name, key.user.as_str());
            let opened = match self.vault.reveal(secret).await {
                Ok(opened) => opened,
                Err(VaultError::Store(StoreError::NotFound { .. })) => return Ok(None),
                Err(error) => return Err(store_error(error)),
            };
            let parsed: serde_json::Value = serde_json::from_str(opened.value.expose_secret())
                .map_err(|_| {
                    GrantStoreError::new(format!("the stored grant `{secret}` is not readable"))
                })?;
            let text = |member: &str| {
                parsed
                    .get(member)
                    .and_then(serde_json::Value::as_str)
                    .map(|text| SecretString::from(text.to_owned()))
            };
            let Some(access_token) = text("access_token") else {
                return Ok(None);
            };
            let expires = parsed
                .get("expires_at")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_default();
            Ok(Some(StoredGrant {
                access_token,
                expires_at: UNIX_EPOCH + Duration::from_secs(expires),
                refresh_token: text("refresh_token"),
                scope: parsed
                    .get("scope")
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_owned),
            }))
        })
    }

    fn save<'a>(&'a self, key: &'a GrantKey, grant: &'a StoredGrant) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = grant_name(key);
            let secret = SecretRef::of_user(&name, key.user.as_str());
            let expires = grant
                .expires_at
                .duration_since(UNIX_EPOCH)
                .map_or(0, |since| since.as_secs());
            let value = SecretString::from(
                json!({
                    "access_token": grant.access_token.expose_secret(),
                    "refresh_token": grant.refresh_token.as_ref().map(ExposeSecret::expose_secret),
                    "expires_at": expires,
                    "scope": grant.scope,
                })
                .to_string(),
            );
            match self.vault.rotate(secret, &value).await {
                Err(VaultError::Store(StoreError::NotFound { .. })) => {
                    let details = Details {
                        owner_team: None,
                        description: "OAuth grant, kept by the gateway",
                    };
                    self.vault
                        .add(secret, &value, details)
                        .await
                        .map(drop)
                        .map_err(store_error)
                }
                other => other.map(drop).map_err(store_error),
            }
        })
    }

    fn remove<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let name = grant_name(key);
            match self
                .vault
                .remove(SecretRef::of_user(&name, key.user.as_str()))
                .await
            {
                Ok(()) | Err(VaultError::Store(StoreError::NotFound { .. })) => Ok(()),
                Err(error) => Err(store_error(error)),
            }
        })
    }
}
