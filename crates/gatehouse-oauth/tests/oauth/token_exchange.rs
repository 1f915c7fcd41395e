//! RFC 8693: a user's own token exchanged for an upstream token, cached per subject token.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_oauth::{
    ACCESS_TOKEN_TYPE, Grant, MemoryGrantStore, Subject, TOKEN_EXCHANGE_GRANT_TYPE, TokenExchange,
};
use secrecy::SecretString;

use super::server::TestServer;
use super::support::{RESOURCE, client, config, user};

fn exchange_grant() -> Grant {
    Grant::TokenExchange(TokenExchange {
        subject_token_type: ACCESS_TOKEN_TYPE.into(),
        requested_token_type: Some(ACCESS_TOKEN_TYPE.into()),
        audience: Some("files-api".into()),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_users_token_is_exchanged_once_per_subject_token() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(50));
    let oauth = client(
        config(&server, exchange_grant()),
        Arc::new(MemoryGrantStore::new()),
    );
    let alice = user("alice");
    let subject_token = SecretString::from("subject-canary-alice-1");
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let oauth = oauth.clone();
            let alice = alice.clone();
            let subject_token = subject_token.clone();
            tokio::spawn(async move {
                oauth
                    .access_token(Subject::OnBehalfOf {
                        user: &alice,
                        subject_token: &subject_token,
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap());
    }
    assert!(tokens.iter().all(|token| token.id() == tokens[0].id()));
    assert_eq!(
        server.owner_of(tokens[0].expose_secret()).as_deref(),
        Some("subject-canary-alice-1")
    );
    let requests = server.token_requests(TOKEN_EXCHANGE_GRANT_TYPE);
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    let expected = [
        ("subject_token", "subject-canary-alice-1"),
        ("subject_token_type", ACCESS_TOKEN_TYPE),
        ("requested_token_type", ACCESS_TOKEN_TYPE),
        ("audience", "files-api"),
        ("resource", RESOURCE),
    ];
    for (name, value) in expected {
        assert_eq!(request.param(name), Some(value), "{name}");
    }

    // A new subject token of the same user is exchanged anew; another user's never shares.
    let renewed = SecretString::from("subject-canary-alice-2");
    let token = oauth
        .access_token(Subject::OnBehalfOf {
            user: &alice,
            subject_token: &renewed,
        })
        .await
        .unwrap();
    assert_eq!(
        server.owner_of(token.expose_secret()).as_deref(),
        Some("subject-canary-alice-2")
    );
    let bob = user("bob");
    let bobs = SecretString::from("subject-canary-bob-1");
    let token = oauth
        .access_token(Subject::OnBehalfOf {
            user: &bob,
            subject_token: &bobs,
        })
        .await
        .unwrap();
    assert_eq!(
        server.owner_of(token.expose_secret()).as_deref(),
        Some("subject-canary-bob-1")
    );
    assert_eq!(server.token_requests(TOKEN_EXCHANGE_GRANT_TYPE).len(), 3);
}
