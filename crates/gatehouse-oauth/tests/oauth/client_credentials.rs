//! The gateway's own token: cached, shared, replaced before expiry and after a refusal.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_oauth::{ClientAuthMethod, Grant, MemoryGrantStore, OAuthError, Subject};

use super::server::{CLIENT_ID, CLIENT_SECRET, TestServer};
use super::support::{RESOURCE, SCOPE, client, config, user};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_token_request_serves_every_caller_until_near_expiry() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.token_delay = Duration::from_millis(100));
    let oauth = client(
        config(&server, Grant::ClientCredentials),
        Arc::new(MemoryGrantStore::new()),
    );
    // A cold start under load: every caller waits for the one request.
    let callers: Vec<_> = (0..50)
        .map(|_| {
            let oauth = oauth.clone();
            tokio::spawn(async move { oauth.access_token(Subject::Service).await.unwrap() })
        })
        .collect();
    let mut tokens = Vec::new();
    for caller in callers {
        tokens.push(caller.await.unwrap());
    }
    let first = &tokens[0];
    assert!(
        tokens
            .iter()
            .all(|token| token.expose_secret() == first.expose_secret())
    );
    for _ in 0..10 {
        let again = oauth.access_token(Subject::Service).await.unwrap();
        assert_eq!(again.id(), first.id());
    }
    let requests = server.token_requests("client_credentials");
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.param("resource"), Some(RESOURCE));
    assert_eq!(request.param("scope"), Some(SCOPE));
    // HTTP Basic: neither the id nor the secret is in the body.
    assert_eq!(request.param("client_id"), None);
    assert_eq!(request.param("client_secret"), None);
}

#[tokio::test]
async fn a_token_within_the_margin_of_its_expiry_is_replaced() {
    let server = TestServer::start().await;
    // 20 s of life is inside the 30 s margin: every call needs a new token.
    server.behave(|behaviour| behaviour.expires_in = 20);
    let oauth = client(
        config(&server, Grant::ClientCredentials),
        Arc::new(MemoryGrantStore::new()),
    );
    for _ in 0..3 {
        oauth.access_token(Subject::Service).await.unwrap();
    }
    assert_eq!(server.token_requests("client_credentials").len(), 3);
}

#[tokio::test]
async fn invalidate_drops_only_the_refused_token() {
    let server = TestServer::start().await;
    let oauth = client(
        config(&server, Grant::ClientCredentials),
        Arc::new(MemoryGrantStore::new()),
    );
    let refused = oauth.access_token(Subject::Service).await.unwrap();
    oauth.invalidate(Subject::Service, &refused);
    let replacement = oauth.access_token(Subject::Service).await.unwrap();
    assert_ne!(replacement.id(), refused.id());
    // A late report about the old token does not throw away the new one.
    oauth.invalidate(Subject::Service, &refused);
    let again = oauth.access_token(Subject::Service).await.unwrap();
    assert_eq!(again.id(), replacement.id());
    assert_eq!(server.token_requests("client_credentials").len(), 2);
}

#[tokio::test]
async fn client_secret_post_and_public_clients_identify_in_the_body() {
    let server = TestServer::start().await;
    let mut post = config(&server, Grant::ClientCredentials);
    post.client_auth = ClientAuthMethod::ClientSecretPost;
    client(post, Arc::new(MemoryGrantStore::new()))
        .access_token(Subject::Service)
        .await
        .unwrap();
    let mut public = config(&server, Grant::ClientCredentials);
    public.client_secret = None;
    client(public, Arc::new(MemoryGrantStore::new()))
        .access_token(Subject::Service)
        .await
        .unwrap();
    let requests = server.token_requests("client_credentials");
    assert_eq!(requests[0].param("client_id"), Some(CLIENT_ID));
    assert_eq!(requests[0].param("client_secret"), Some(CLIENT_SECRET));
    assert_eq!(requests[1].param("client_id"), Some(CLIENT_ID));
    assert_eq!(requests[1].param("client_secret"), None);
}

#[tokio::test]
async fn a_subject_the_grant_cannot_serve_is_refused_without_a_request() {
    let server = TestServer::start().await;
    let oauth = client(
        config(&server, Grant::ClientCredentials),
        Arc::new(MemoryGrantStore::new()),
    );
    let alice = user("alice");
    let error = oauth.access_token(Subject::User(&alice)).await.unwrap_err();
    assert!(matches!(error, OAuthError::WrongSubject { .. }), "{error}");
    assert_eq!(
        error.to_string(),
        "upstream files: its client credentials grant cannot issue a token for a user's stored grant"
    );
    let error = oauth.start_authorization(&alice).unwrap_err();
    assert!(
        matches!(error, OAuthError::NotAuthorizationCode { .. }),
        "{error}"
    );
    assert!(server.requests("/token").is_empty());
}
