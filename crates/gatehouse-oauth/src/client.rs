//! [`OAuthClient`]: access tokens for one upstream, by grant and subject.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use crate::authorize::{
    AuthorizationRequest, AuthorizationResponse, Pending, PendingAuthorizations, TakeError,
};
use crate::config::{
    ClientConfig, CodeFlow, ConfigError, Settings, TOKEN_EXCHANGE_GRANT_TYPE, ValidGrant,
};
use crate::endpoint::{IssuedToken, TokenForm, http_client, request_token};
use crate::error::{ErrorResponse, OAuthError, ReauthorizationReason};
use crate::pkce;
use crate::slots::{Fingerprint, Flight, Outcome, Slot, SlotState, Slots, SubjectKey};
use crate::store::{GrantKey, GrantStore, GrantStoreError, StoredGrant, UserId};
use crate::token::AccessToken;

/// How often a caller of a token exchange yields the slot to a request in flight for another
/// subject token of the same user before it makes its own request without sharing.
const MAX_JOINS: usize = 3;

/// Whose token is asked for. It must fit the configured [`crate::Grant`].
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// The gateway itself: the client credentials grant.
    Service,
    /// A user with a stored grant: the authorization code grant.
    User(&'a UserId),
    /// A user presenting their own token to exchange: the token exchange grant.
    OnBehalfOf {
        /// The user.
        user: &'a UserId,
        /// The user's token, sent as `subject_token`.
        subject_token: &'a SecretString,
    },
}

impl Subject<'_> {
    fn describe(&self) -> &'static str {
        match self {
            Subject::Service => "the gateway itself",
            Subject::User(_) => "a user's stored grant",
            Subject::OnBehalfOf { .. } => "a user's subject token",
        }
    }

    fn key(&self) -> SubjectKey {
        match self {
            Subject::Service => SubjectKey::Service,
            Subject::User(user) | Subject::OnBehalfOf { user, .. } => {
                SubjectKey::User((*user).clone())
            }
        }
    }
}

impl fmt::Debug for Subject<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Service => formatter.write_str("Service"),
            Subject::User(user) => formatter.debug_tuple("User").field(user).finish(),
            Subject::OnBehalfOf { user, .. } => formatter
                .debug_struct("OnBehalfOf")
                .field("user", user)
                .finish_non_exhaustive(),
        }
    }
}

/// What one token request is for, owned so that it can outlive the caller.
#[derive(Clone)]
enum Want {
    Service,
    User(UserId),
    Exchange {
        user: UserId,
        subject_token: SecretString,
        fingerprint: Fingerprint,
    },
}

impl Want {
    fn fingerprint(&self) -> Option<&Fingerprint> {
        match self {
            Want::Exchange { fingerprint, .. } => Some(fingerprint),
            Want::Service | Want::User(_) => None,
        }
    }
}

/// The OAuth client of one upstream: it obtains, caches, refreshes and stores the upstream's
/// access tokens. Cloning is cheap and clones share everything.
#[derive(Clone)]
pub struct OAuthClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: Settings,
    http: reqwest::Client,
    store: Arc<dyn GrantStore>,
    slots: Mutex<Slots>,
    pending: PendingAuthorizations,
}

impl OAuthClient {
    /// The client for `config`, keeping user grants in `store`.
    pub fn new(config: ClientConfig, store: Arc<dyn GrantStore>) -> Result<Self, ConfigError> {
        let upstream = config.upstream.clone();
        let settings = config.validate()?;
        let http = http_client().map_err(|error| ConfigError {
            upstream,
            problem: format!("the HTTP client could not be built: {error}"),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                http,
                store,
                slots: Mutex::default(),
                pending: PendingAuthorizations::default(),
            }),
        })
    }

    /// The upstream this client is for.
    pub fn upstream(&self) -> &str {
        &self.inner.settings.upstream
    }

    /// An access token for `subject`: the cached one while it is usable, otherwise one fresh
    /// from the authorization server. Concurrent callers for the same subject share a single
    /// token request, refresh included.
    pub async fn access_token(&self, subject: Subject<'_>) -> Result<AccessToken, OAuthError> {
        let want = self.inner.want(subject)?;
        let slot = self.inner.slot(&subject.key());
        for _ in 0..MAX_JOINS {
            let (outcome, own) = {
                let mut state = slot.state();
                let margin = self.inner.settings.refresh_margin;
                if let Some(token) = state.usable(want.fingerprint(), SystemTime::now(), margin) {
                    return Ok(token);
                }
                match state.flight() {
                    Some(flight) => (
                        flight.outcome.clone(),
                        flight.fingerprint.as_ref() == want.fingerprint(),
                    ),
                    None => (
                        Inner::start_flight(&self.inner, &slot, &mut state, want.clone()),
                        true,
                    ),
                }
            };
            let result = self.inner.outcome_of(outcome).await;
            if own {
                return result;
            }
            // The request in flight was for another subject token of the same user; its
            // token is not this caller's to use.
        }
        self.inner.fly(&slot, &want).await
    }

    /// Tells the client that an upstream refused `rejected` (HTTP 401): it is dropped from the
    /// cache, and from use if the store still holds it, so the next call gets a new token. A
    /// newer token already cached is kept, so a burst of refusals of one token causes one
    /// refresh.
    pub fn invalidate(&self, subject: Subject<'_>, rejected: &AccessToken) {
        let slot = self
            .inner
            .slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&subject.key());
        if let Some(slot) = slot {
            slot.state().reject(rejected.id());
            tracing::info!(
                upstream = %self.inner.settings.upstream,
                token = %rejected.id(),
                "upstream refused an access token; the next call gets a new one"
            );
        }
    }

    /// Starts the authorization code flow for `user`: the URL to send them to, with a fresh
    /// PKCE challenge (S256), `state` and `resource`. The verifier stays in memory, for one
    /// callback and until the configured time runs out.
    pub fn start_authorization(&self, user: &UserId) -> Result<AuthorizationRequest, OAuthError> {
        let inner = &self.inner;
        let flow = inner.code_flow("starting an authorization")?;
        let random = || {
            pkce::random_value().map_err(|error| inner.internal(format!("no randomness: {error}")))
        };
        let verifier = random()?;
        let state = random()?.expose_secret().to_owned();
        let challenge = pkce::s256_challenge(verifier.expose_secret());
        let settings = &inner.settings;
        let mut url = flow.authorization_endpoint.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("response_type", "code")
                .append_pair("client_id", &settings.client_id)
                .append_pair("redirect_uri", flow.redirect_uri.as_str());
            if let Some(scope) = &settings.scope {
                query.append_pair("scope", scope);
            }
            query
                .append_pair("state", &state)
                .append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("resource", &settings.resource);
        }
        let now = Instant::now();
        let expires_at = now.checked_add(settings.authorization_ttl).unwrap_or(now);
        let pending = Pending::new(user.clone(), verifier, now, expires_at);
        inner
            .pending
            .insert(state.clone(), pending, now)
            .map_err(|()| OAuthError::TooManyPendingAuthorizations {
                upstream: settings.upstream.clone(),
            })?;
        Ok(AuthorizationRequest { url, state })
    }

    /// Completes an authorization from its callback: checks `state` (known, unexpired, unused)
    /// and `iss`, exchanges the code with the PKCE verifier, and stores the grant. Returns the
    /// user who authorized.
    pub async fn complete_authorization(
        &self,
        response: AuthorizationResponse,
    ) -> Result<UserId, OAuthError> {
        let inner = &self.inner;
        let settings = &inner.settings;
        let flow = inner.code_flow("completing an authorization")?;
        let malformed = |missing| OAuthError::MalformedAuthorizationResponse {
            upstream: settings.upstream.clone(),
            missing,
        };
        let state = response
            .state
            .as_deref()
            .ok_or_else(|| malformed("state"))?;
        let pending = inner
            .pending
            .take(state, Instant::now())
            .map_err(|error| match error {
                TakeError::Unknown => OAuthError::UnknownAuthorizationState {
                    upstream: settings.upstream.clone(),
                },
                TakeError::Expired => OAuthError::ExpiredAuthorizationState {
                    upstream: settings.upstream.clone(),
                },
            })?;
        // RFC 9207 section 2.4: before anything in the response is acted on, error included.
        inner.check_issuer(response.iss.as_deref())?;
        if let Some(error) = &response.error {
            return Err(OAuthError::AuthorizationDenied {
                upstream: settings.upstream.clone(),
                response: ErrorResponse::cleaned(error, response.error_description.as_deref(), &[]),
            });
        }
        let code = response.code.as_ref().ok_or_else(|| malformed("code"))?;
        let form = TokenForm::new("authorization_code")
            .secret("code", code)
            .field("redirect_uri", flow.redirect_uri.as_str())
            .secret("code_verifier", &pending.verifier);
        let issued_at = SystemTime::now();
        let issued = request_token(&inner.http, settings, form).await?;
        let grant = stored_grant(issued, issued_at, None, None);
        let user = pending.user;
        let slot = inner.slot(&SubjectKey::User(user.clone()));
        let mut memory = slot.grant.lock().await;
        inner
            .store
            .save(&inner.grant_key(&user), &grant)
            .await
            .map_err(|source| inner.store_error(&user, "saved", source))?;
        memory.unsaved = None;
        let token = access_token_of(&grant);
        {
            let mut state = slot.state();
            state.remember(token.clone(), None);
            state.rejected = None;
        }
        tracing::info!(
            upstream = %settings.upstream,
            %user,
            token = %token.id(),
            refreshable = grant.refresh_token.is_some(),
            "user authorized upstream access"
        );
        Ok(user)
    }

    /// Forgets `user`'s grant, in the store and in memory (offboarding, or the user revoking
    /// the gateway's access).
    pub async fn forget(&self, user: &UserId) -> Result<(), OAuthError> {
        let inner = &self.inner;
        let slot = inner.slot(&SubjectKey::User(user.clone()));
        let mut memory = slot.grant.lock().await;
        memory.unsaved = None;
        slot.state().forget();
        inner
            .store
            .remove(&inner.grant_key(user))
            .await
            .map_err(|source| inner.store_error(user, "removed", source))
    }
}

impl fmt::Debug for OAuthClient {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("OAuthClient")
            .field("upstream", &self.inner.settings.upstream)
            .field("grant", &self.inner.grant_name())
            .finish_non_exhaustive()
    }
}

impl Inner {
    fn want(&self, subject: Subject<'_>) -> Result<Want, OAuthError> {
        match (&self.settings.grant, subject) {
            (ValidGrant::ClientCredentials, Subject::Service) => Ok(Want::Service),
            (ValidGrant::AuthorizationCode(_), Subject::User(user)) => Ok(Want::User(user.clone())),
            (
                ValidGrant::TokenExchange(_),
                Subject::OnBehalfOf {
                    user,
                    subject_token,
                },
            ) => Ok(Want::Exchange {
                user: user.clone(),
                subject_token: subject_token.clone(),
                fingerprint: Sha256::digest(subject_token.expose_secret().as_bytes()).into(),
            }),
            (_, subject) => Err(OAuthError::WrongSubject {
                upstream: self.settings.upstream.clone(),
                grant: self.grant_name(),
                subject: subject.describe(),
            }),
        }
    }

    fn slot(&self, key: &SubjectKey) -> Arc<Slot> {
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_create(key, SystemTime::now(), self.settings.refresh_margin)
    }

    /// Runs the token request for `want` as its own task, so that once a refresh is sent its
    /// answer is saved even if every caller waiting for it has gone away: a rotated refresh
    /// token that was issued but not saved would leave the user with a spent one.
    fn start_flight(
        inner: &Arc<Inner>,
        slot: &Arc<Slot>,
        state: &mut SlotState,
        want: Want,
    ) -> watch::Receiver<Option<Outcome>> {
        let (sender, receiver) = watch::channel(None);
        state.set_flight(Some(Flight {
            fingerprint: want.fingerprint().copied(),
            outcome: receiver.clone(),
        }));
        let inner = Arc::clone(inner);
        let slot = Arc::clone(slot);
        tokio::spawn(async move {
            let outcome = inner.fly(&slot, &want).await;
            {
                // The cache is filled before the waiters are woken, so that a caller arriving
                // in between finds the token instead of starting another request.
                let mut state = slot.state();
                if let Ok(token) = &outcome {
                    state.remember(token.clone(), want.fingerprint().copied());
                }
                state.set_flight(None);
            }
            // No one may be waiting any more; the outcome is then simply dropped.
            let _ = sender.send(Some(outcome));
        });
        receiver
    }

    async fn outcome_of(&self, mut outcome: watch::Receiver<Option<Outcome>>) -> Outcome {
        let shared = match outcome.wait_for(Option::is_some).await {
            Ok(shared) => shared.clone(),
            Err(_) => None,
        };
        shared.unwrap_or_else(|| {
            Err(self.internal("the token request ended without an answer".into()))
        })
    }

    /// One token request for `want`.
    async fn fly(&self, slot: &Slot, want: &Want) -> Outcome {
        match want {
            Want::Service => self.client_credentials().await,
            Want::User(user) => self.user_token(slot, user).await,
            Want::Exchange {
                user,
                subject_token,
                ..
            } => self.exchange(user, subject_token).await,
        }
    }

    async fn client_credentials(&self) -> Outcome {
        let form =
            TokenForm::new("client_credentials").optional("scope", self.settings.scope.as_deref());
        let issued_at = SystemTime::now();
        let issued = request_token(&self.http, &self.settings, form).await?;
        let token = AccessToken::new(
            issued.access_token.clone(),
            issued.expires_at(issued_at),
            issued.scope,
        );
        tracing::info!(
            upstream = %self.settings.upstream,
            grant = "client_credentials",
            token = %token.id(),
            "upstream access token issued"
        );
        Ok(token)
    }

    /// RFC 8693. A refresh token in the answer is not kept: the user's next call brings a
    /// subject token to exchange again.
    async fn exchange(&self, user: &UserId, subject_token: &SecretString) -> Outcome {
        let ValidGrant::TokenExchange(exchange) = &self.settings.grant else {
            return Err(self.internal("token exchange asked of another grant".into()));
        };
        let form = TokenForm::new(TOKEN_EXCHANGE_GRANT_TYPE)
            .secret("subject_token", subject_token)
            .field("subject_token_type", &exchange.subject_token_type)
            .optional(
                "requested_token_type",
                exchange.requested_token_type.as_deref(),
            )
            .optional("audience", exchange.audience.as_deref())
            .optional("scope", self.settings.scope.as_deref());
        let issued_at = SystemTime::now();
        let issued = request_token(&self.http, &self.settings, form).await?;
        let token = AccessToken::new(
            issued.access_token.clone(),
            issued.expires_at(issued_at),
            issued.scope,
        );
        tracing::info!(
            upstream = %self.settings.upstream,
            grant = "token_exchange",
            %user,
            token = %token.id(),
            "upstream access token issued"
        );
        Ok(token)
    }

    /// The user's stored access token while it is usable, otherwise a refreshed one. A grant
    /// changed by the refresh is saved before its access token is returned; a refused refresh
    /// token removes the grant.
    async fn user_token(&self, slot: &Slot, user: &UserId) -> Outcome {
        let key = self.grant_key(user);
        let mut memory = slot.grant.lock().await;
        let rejected = slot.state().rejected.clone();
        let (mut grant, mut unsaved) = match memory.unsaved.take() {
            Some(grant) => (grant, true),
            None => match self.store.load(&key).await {
                Ok(Some(grant)) => (grant, false),
                Ok(None) => return Err(self.reauthorize(user, ReauthorizationReason::NoGrant)),
                Err(source) => return Err(self.store_error(user, "loaded", source)),
            },
        };
        let stored = access_token_of(&grant);
        let usable = stored.is_usable(SystemTime::now(), self.settings.refresh_margin)
            && rejected.as_ref() != Some(stored.id());
        let token = if usable {
            stored
        } else {
            let Some(refresh_token) = grant.refresh_token.clone() else {
                return Err(
                    self.reauthorize(user, ReauthorizationReason::ExpiredWithoutRefreshToken)
                );
            };
            let form = TokenForm::new("refresh_token").secret("refresh_token", &refresh_token);
            let issued_at = SystemTime::now();
            match request_token(&self.http, &self.settings, form).await {
                Ok(issued) => {
                    grant = stored_grant(issued, issued_at, Some(refresh_token), grant.scope);
                    unsaved = true;
                    let token = access_token_of(&grant);
                    tracing::info!(
                        upstream = %self.settings.upstream,
                        grant = "refresh_token",
                        %user,
                        token = %token.id(),
                        "upstream access token refreshed"
                    );
                    token
                }
                Err(OAuthError::TokenRefused { response, .. })
                    if response.error == "invalid_grant" =>
                {
                    // The refresh token is revoked, expired or already spent: it will never
                    // work again, so the grant goes and the user authorizes anew.
                    if let Err(error) = self.store.remove(&key).await {
                        tracing::warn!(
                            upstream = %self.settings.upstream,
                            %user,
                            %error,
                            "a refused grant could not be removed from the store"
                        );
                    }
                    return Err(
                        self.reauthorize(user, ReauthorizationReason::RefreshRefused(response))
                    );
                }
                Err(error) => {
                    if unsaved {
                        memory.unsaved = Some(grant);
                    }
                    return Err(error);
                }
            }
        };
        // Saved before the token is returned: the store's refresh token is spent once the
        // server rotated it, so the new one must not exist only in memory while in use.
        if unsaved && let Err(source) = self.store.save(&key, &grant).await {
            memory.unsaved = Some(grant);
            return Err(self.store_error(user, "saved", source));
        }
        Ok(token)
    }

    /// RFC 9207 section 2.4, as the MCP authorization specification applies it.
    fn check_issuer(&self, iss: Option<&str>) -> Result<(), OAuthError> {
        let Some(expected) = &self.settings.issuer else {
            return Ok(());
        };
        let problem = match iss {
            // Simple string comparison, no normalization.
            Some(iss) if iss == expected => return Ok(()),
            Some(_) => "names another issuer",
            None if self.settings.issuer_in_authorization_response => {
                "lacks the iss parameter the authorization server always sends"
            }
            None => return Ok(()),
        };
        Err(OAuthError::IssuerMismatch {
            upstream: self.settings.upstream.clone(),
            expected: expected.clone(),
            problem,
        })
    }

    fn code_flow(&self, operation: &'static str) -> Result<&CodeFlow, OAuthError> {
        match &self.settings.grant {
            ValidGrant::AuthorizationCode(flow) => Ok(flow),
            _ => Err(OAuthError::NotAuthorizationCode {
                upstream: self.settings.upstream.clone(),
                operation,
                grant: self.grant_name(),
            }),
        }
    }

    fn grant_name(&self) -> &'static str {
        match &self.settings.grant {
            ValidGrant::ClientCredentials => "client credentials",
            ValidGrant::AuthorizationCode(_) => "authorization code",
            ValidGrant::TokenExchange(_) => "token exchange",
        }
    }

    fn grant_key(&self, user: &UserId) -> GrantKey {
        GrantKey {
            upstream: self.settings.upstream.clone(),
            user: user.clone(),
        }
    }

    fn reauthorize(&self, user: &UserId, reason: ReauthorizationReason) -> OAuthError {
        let authorization_endpoint = match &self.settings.grant {
            ValidGrant::AuthorizationCode(flow) => flow.authorization_endpoint.to_string(),
            _ => String::new(),
        };
        OAuthError::AuthorizationRequired {
            upstream: self.settings.upstream.clone(),
            user: user.clone(),
            reason,
            authorization_endpoint,
        }
    }

    fn store_error(
        &self,
        user: &UserId,
        action: &'static str,
        source: GrantStoreError,
    ) -> OAuthError {
        OAuthError::GrantStore {
            upstream: self.settings.upstream.clone(),
            user: user.clone(),
            action,
            source,
        }
    }

    fn internal(&self, detail: String) -> OAuthError {
        OAuthError::Internal {
            upstream: self.settings.upstream.clone(),
            detail,
        }
    }
}

/// The grant a token response leaves. Without rotation the server keeps the previous refresh
/// token valid, so it is kept when no new one came; likewise the previous scope.
fn stored_grant(
    issued: IssuedToken,
    issued_at: SystemTime,
    previous_refresh_token: Option<SecretString>,
    previous_scope: Option<String>,
) -> StoredGrant {
    StoredGrant {
        expires_at: issued.expires_at(issued_at),
        access_token: issued.access_token,
        refresh_token: issued.refresh_token.or(previous_refresh_token),
        scope: issued.scope.or(previous_scope),
    }
}

fn access_token_of(grant: &StoredGrant) -> AccessToken {
    AccessToken::new(
        grant.access_token.clone(),
        grant.expires_at,
        grant.scope.clone(),
    )
}
