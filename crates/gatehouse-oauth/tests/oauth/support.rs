//! The shared harness: clients configured against the test server, grants seeded in a store,
//! a browser's visit to the authorization endpoint, and the leak check every error goes
//! through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use gatehouse_oauth::{
    AuthorizationResponse, AuthorizationServer, ClientConfig, Grant, GrantKey, GrantStore,
    GrantStoreError, MemoryGrantStore, OAuthClient, OAuthError, StoreFuture, StoredGrant, UserId,
};
use secrecy::SecretString;
use url::Url;

use super::server::{CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, TestServer};

pub const UPSTREAM: &str = "files";
pub const RESOURCE: &str = "https://files.example.com/mcp";
pub const SCOPE: &str = "files:read";

/// Every secret the tests hand out or the server issues contains this.
pub const CANARY: &str = "canary";

pub fn user(name: &str) -> UserId {
    UserId::new(name)
}

pub fn grant_key(user: &UserId) -> GrantKey {
    GrantKey {
        upstream: UPSTREAM.into(),
        user: user.clone(),
    }
}

pub fn code_grant() -> Grant {
    Grant::AuthorizationCode {
        redirect_uri: Url::parse(REDIRECT_URI).unwrap(),
    }
}

/// A confidential client of `server` with `grant`.
pub fn config(server: &TestServer, grant: Grant) -> ClientConfig {
    let authorization_server = AuthorizationServer::new(server.endpoint("/token"))
        .with_authorization_endpoint(server.endpoint("/authorize"));
    let mut config = ClientConfig::new(
        UPSTREAM,
        authorization_server,
        CLIENT_ID,
        Url::parse(RESOURCE).unwrap(),
        grant,
    );
    config.client_secret = Some(SecretString::from(CLIENT_SECRET));
    config.scopes = vec![SCOPE.into()];
    config
}

pub fn client(config: ClientConfig, store: Arc<dyn GrantStore>) -> OAuthClient {
    OAuthClient::new(config, store).unwrap()
}

/// A grant whose access token has expired, with a refresh token the server honours once.
pub fn seed_expired_grant(store: &MemoryGrantStore, server: &TestServer, user: &UserId) -> String {
    let refresh = server.issue_refresh_token(user.as_str());
    store.insert(
        grant_key(user),
        StoredGrant {
            access_token: SecretString::from(format!("expired-canary-{user}")),
            expires_at: SystemTime::now() - Duration::from_secs(60),
            refresh_token: Some(SecretString::from(refresh.clone())),
            scope: Some(SCOPE.into()),
        },
    );
    refresh
}

/// The user's browser: follows the authorization URL as `user` and returns what the server
/// sent to the callback.
pub async fn authorize_in_browser(url: &Url, user: &str) -> AuthorizationResponse {
    let mut url = url.clone();
    url.query_pairs_mut().append_pair("test_user", user);
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::SEE_OTHER);
    let location = response.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap();
    let location = Url::parse(location).unwrap();
    assert!(location.as_str().starts_with(REDIRECT_URI), "{location}");
    AuthorizationResponse::from_query(location.query().unwrap_or_default())
}

/// Fails the test if the error's `Display` or `Debug` contains any secret; returns the
/// `Display` for further checks.
pub fn assert_no_secrets(error: &OAuthError, also: &[&str]) -> String {
    let display = error.to_string();
    let debug = format!("{error:?}");
    for text in [&display, &debug] {
        assert!(!text.contains(CANARY), "a secret leaked: {text}");
        for secret in also {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
    }
    display
}

/// Polls `condition` every 10 ms for at most 5 s.
pub async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A store whose next `fail_saves` saves fail.
#[derive(Default)]
pub struct FlakyStore {
    pub inner: MemoryGrantStore,
    pub fail_saves: AtomicUsize,
}

impl GrantStore for FlakyStore {
    fn load<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, Option<StoredGrant>> {
        self.inner.load(key)
    }

    fn save<'a>(&'a self, key: &'a GrantKey, grant: &'a StoredGrant) -> StoreFuture<'a, ()> {
        let failing = self
            .fail_saves
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if failing {
            Box::pin(async { Err(GrantStoreError::new("database is down")) })
        } else {
            self.inner.save(key, grant)
        }
    }

    fn remove<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, ()> {
        self.inner.remove(key)
    }
}
