//! Users' stored grants: one refresh at a time per user, rotated refresh tokens saved before
//! use and never sent twice, refused grants removed, and no mix-up between users.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use gatehouse_oauth::{MemoryGrantStore, OAuthError, ReauthorizationReason, Subject};
use secrecy::ExposeSecret as _;

use super::server::{CLIENT_ID, TestServer};
use super::support::{
    FlakyStore, RESOURCE, client, code_grant, config, grant_key, seed_expired_grant, user,
    wait_until,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_callers_share_one_refresh() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(200));
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    let spent = seed_expired_grant(&store, &server, &alice);
    let oauth = client(config(&server, code_grant()), store.clone());
    let callers: Vec<_> = (0..100)
        .map(|_| {
            let oauth = oauth.clone();
            let alice = alice.clone();
            tokio::spawn(async move { oauth.access_token(Subject::User(&alice)).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap().unwrap());
    }
    let refreshes = server.token_requests("refresh_token");
    assert_eq!(refreshes.len(), 1);
    assert_eq!(refreshes[0].param("refresh_token"), Some(spent.as_str()));
    assert_eq!(refreshes[0].param("resource"), Some(RESOURCE));
    assert!(tokens.iter().all(|token| token.id() == tokens[0].id()));
    assert_eq!(
        server.owner_of(tokens[0].expose_secret()).as_deref(),
        Some("alice")
    );
    // The rotated refresh token was saved with the new access token.
    let stored = store.get(&grant_key(&alice)).unwrap();
    assert_eq!(
        stored.access_token.expose_secret(),
        tokens[0].expose_secret()
    );
    assert_ne!(stored.refresh_token.unwrap().expose_secret(), spent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotated_refresh_tokens_are_never_sent_twice() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(50));
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    seed_expired_grant(&store, &server, &alice);
    let oauth = client(config(&server, code_grant()), store.clone());
    let mut seen = Vec::new();
    for cycle in 0..5 {
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let oauth = oauth.clone();
                let alice = alice.clone();
                tokio::spawn(async move { oauth.access_token(Subject::User(&alice)).await })
            })
            .collect();
        let mut tokens = Vec::new();
        for caller in callers {
            tokens.push(caller.await.unwrap().unwrap());
        }
        assert!(
            tokens.iter().all(|token| token.id() == tokens[0].id()),
            "cycle {cycle}"
        );
        seen.push(tokens[0].id().clone());
        // The upstream refuses the token: the next cycle must refresh again.
        oauth.invalidate(Subject::User(&alice), &tokens[0]);
    }
    let refreshes = server.token_requests("refresh_token");
    assert_eq!(refreshes.len(), 5);
    let mut sent: Vec<&str> = refreshes
        .iter()
        .map(|request| request.param("refresh_token").unwrap())
        .collect();
    sent.sort_unstable();
    sent.dedup();
    assert_eq!(sent.len(), 5, "a refresh token was sent twice");
    assert_eq!(server.reused_refresh_tokens(), 0);
    seen.dedup();
    assert_eq!(seen.len(), 5);
}

#[tokio::test]
async fn a_refused_refresh_token_removes_the_grant_and_asks_for_authorization() {
    let server = TestServer::start().await;
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    let seeded = seed_expired_grant(&store, &server, &alice);
    let oauth = client(config(&server, code_grant()), store.clone());
    // Another party spends the refresh token first: the server now refuses it.
    reqwest::Client::new()
        .post(server.endpoint("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", seeded.as_str()),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    let error = oauth.access_token(Subject::User(&alice)).await.unwrap_err();
    match &error {
        OAuthError::AuthorizationRequired { user, reason, .. } => {
            assert_eq!(user, &alice);
            assert!(
                matches!(reason, ReauthorizationReason::RefreshRefused(response) if response.error == "invalid_grant")
            );
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        error.to_string(),
        format!(
            "upstream files: user alice must authorize access again (the authorization server \
             refused the refresh token (invalid_grant (refused)) and the grant was removed); \
             send them through the authorization flow, which starts at {}",
            server.endpoint("/authorize")
        )
    );
    assert!(store.get(&grant_key(&alice)).is_none());
    // Nothing is left to send: the next call asks for authorization without a request.
    let before = server.token_requests("refresh_token").len();
    let error = oauth.access_token(Subject::User(&alice)).await.unwrap_err();
    assert!(
        matches!(
            &error,
            OAuthError::AuthorizationRequired {
                reason: ReauthorizationReason::NoGrant,
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(server.token_requests("refresh_token").len(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_completes_and_is_saved_when_its_caller_goes_away() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(300));
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    let spent = seed_expired_grant(&store, &server, &alice);
    let oauth = client(config(&server, code_grant()), store.clone());
    let caller = {
        let oauth = oauth.clone();
        let alice = alice.clone();
        tokio::spawn(async move { oauth.access_token(Subject::User(&alice)).await })
    };
    wait_until("the refresh reaches the server", || {
        !server.token_requests("refresh_token").is_empty()
    })
    .await;
    caller.abort();
    wait_until("the rotated grant is saved", || {
        store
            .get(&grant_key(&alice))
            .and_then(|grant| grant.refresh_token)
            .is_some_and(|refresh| refresh.expose_secret() != spent)
    })
    .await;
    let token = oauth.access_token(Subject::User(&alice)).await.unwrap();
    assert_eq!(
        server.owner_of(token.expose_secret()).as_deref(),
        Some("alice")
    );
    assert_eq!(server.token_requests("refresh_token").len(), 1);
    assert_eq!(server.reused_refresh_tokens(), 0);
}

#[tokio::test]
async fn a_grant_that_could_not_be_saved_is_neither_handed_out_nor_lost() {
    let server = TestServer::start().await;
    let store = Arc::new(FlakyStore::default());
    let alice = user("alice");
    seed_expired_grant(&store.inner, &server, &alice);
    store.fail_saves.store(1, Ordering::SeqCst);
    let oauth = client(config(&server, code_grant()), store.clone());
    let error = oauth.access_token(Subject::User(&alice)).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "upstream files: the grant of user alice could not be saved: database is down"
    );
    // The store is back: the grant kept in memory is saved and used, without a second refresh
    // (its predecessor's refresh token is spent).
    let token = oauth.access_token(Subject::User(&alice)).await.unwrap();
    assert_eq!(server.token_requests("refresh_token").len(), 1);
    let stored = store.inner.get(&grant_key(&alice)).unwrap();
    assert_eq!(stored.access_token.expose_secret(), token.expose_secret());
    assert_eq!(server.reused_refresh_tokens(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_users_each_get_their_own_token() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(20));
    let store = Arc::new(MemoryGrantStore::new());
    let users: Vec<_> = (0..100)
        .map(|index| user(&format!("user{index}")))
        .collect();
    for each in &users {
        seed_expired_grant(&store, &server, each);
    }
    let oauth = client(config(&server, code_grant()), store.clone());
    let callers: Vec<_> = users
        .iter()
        .flat_map(|each| std::iter::repeat_n(each.clone(), 3))
        .map(|each| {
            let oauth = oauth.clone();
            tokio::spawn(async move {
                let token = oauth.access_token(Subject::User(&each)).await.unwrap();
                (each, token)
            })
        })
        .collect();
    for caller in callers {
        let (each, token) = caller.await.unwrap();
        assert_eq!(
            server.owner_of(token.expose_secret()).as_deref(),
            Some(each.as_str())
        );
    }
    assert_eq!(server.token_requests("refresh_token").len(), 100);
    assert_eq!(server.reused_refresh_tokens(), 0);
}

#[tokio::test]
async fn a_stored_grant_survives_a_restart() {
    let server = TestServer::start().await;
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    seed_expired_grant(&store, &server, &alice);
    let before = client(config(&server, code_grant()), store.clone())
        .access_token(Subject::User(&alice))
        .await
        .unwrap();
    // A new process with the same store uses the saved access token as it is.
    let after = client(config(&server, code_grant()), store.clone())
        .access_token(Subject::User(&alice))
        .await
        .unwrap();
    assert_eq!(after.id(), before.id());
    assert_eq!(server.token_requests("refresh_token").len(), 1);
}
