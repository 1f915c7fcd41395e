//! The authorization code grant end to end: PKCE S256 checked by the server, `state` single
//! use and bounded in time, `iss` checked, and discovery of the server's endpoints.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_oauth::{
    AuthorizationResponse, AuthorizationServer, MemoryGrantStore, OAuthClient, OAuthError, Subject,
};
use secrecy::ExposeSecret as _;

use super::server::{CLIENT_ID, REDIRECT_URI, TestServer};
use super::support::{
    RESOURCE, SCOPE, assert_no_secrets, authorize_in_browser, client, code_grant, config,
    grant_key, user,
};

#[tokio::test]
async fn a_user_authorizes_once_and_the_grant_is_stored() {
    let server = TestServer::start().await;
    let store = Arc::new(MemoryGrantStore::new());
    let oauth = client(config(&server, code_grant()), store.clone());
    let alice = user("alice");
    let request = oauth.start_authorization(&alice).unwrap();
    let params: HashMap<_, _> = request.url.query_pairs().into_owned().collect();
    let expected = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("scope", SCOPE),
        ("code_challenge_method", "S256"),
        ("resource", RESOURCE),
        ("state", request.state.as_str()),
    ];
    for (name, value) in expected {
        assert_eq!(params.get(name).map(String::as_str), Some(value), "{name}");
    }
    assert_eq!(params["code_challenge"].len(), 43);

    let response = authorize_in_browser(&request.url, "alice").await;
    assert_eq!(oauth.complete_authorization(response).await.unwrap(), alice);
    let exchange = &server.token_requests("authorization_code")[0];
    assert_eq!(exchange.param("resource"), Some(RESOURCE));
    assert_eq!(exchange.param("redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(exchange.param("code_verifier").map(str::len), Some(43));

    let stored = store.get(&grant_key(&alice)).unwrap();
    assert!(stored.refresh_token.is_some());
    // The token the exchange issued is used as it is, without another request.
    let token = oauth.access_token(Subject::User(&alice)).await.unwrap();
    assert_eq!(token.expose_secret(), stored.access_token.expose_secret());
    assert_eq!(
        server.owner_of(token.expose_secret()).as_deref(),
        Some("alice")
    );
    assert_eq!(server.requests("/token").len(), 1);
}

#[tokio::test]
async fn a_state_is_good_for_one_callback() {
    let server = TestServer::start().await;
    let oauth = client(
        config(&server, code_grant()),
        Arc::new(MemoryGrantStore::new()),
    );
    let request = oauth.start_authorization(&user("alice")).unwrap();
    let response = authorize_in_browser(&request.url, "alice").await;
    oauth
        .complete_authorization(response.clone())
        .await
        .unwrap();
    let error = oauth.complete_authorization(response).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::UnknownAuthorizationState { .. }),
        "{error}"
    );
    let forged = AuthorizationResponse::from_query("code=code-canary-forged&state=never-issued");
    let error = oauth.complete_authorization(forged).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::UnknownAuthorizationState { .. }),
        "{error}"
    );
    assert_no_secrets(&error, &[]);
    assert_eq!(server.token_requests("authorization_code").len(), 1);
}

#[tokio::test]
async fn a_late_callback_is_refused() {
    let server = TestServer::start().await;
    let mut expiring = config(&server, code_grant());
    expiring.authorization_ttl = Duration::ZERO;
    let oauth = client(expiring, Arc::new(MemoryGrantStore::new()));
    let request = oauth.start_authorization(&user("alice")).unwrap();
    let response = authorize_in_browser(&request.url, "alice").await;
    let error = oauth.complete_authorization(response).await.unwrap_err();
    assert!(
        matches!(error, OAuthError::ExpiredAuthorizationState { .. }),
        "{error}"
    );
    assert!(server.token_requests("authorization_code").is_empty());
}

#[tokio::test]
async fn a_code_is_useless_without_its_own_verifier() {
    let server = TestServer::start().await;
    let store = Arc::new(MemoryGrantStore::new());
    let oauth = client(config(&server, code_grant()), store.clone());
    let alice = user("alice");
    let mallory = oauth.start_authorization(&user("mallory")).unwrap();
    let victim = oauth.start_authorization(&alice).unwrap();
    // Mallory's code injected into Alice's callback: the server checks Alice's verifier
    // against the challenge Mallory's code was issued for.
    let mut injected = authorize_in_browser(&mallory.url, "mallory").await;
    injected.state = Some(victim.state.clone());
    let error = oauth.complete_authorization(injected).await.unwrap_err();
    match &error {
        OAuthError::TokenRefused { response, .. } => assert_eq!(response.error, "invalid_grant"),
        other => panic!("unexpected {other}"),
    }
    assert!(store.is_empty());
}

#[tokio::test]
async fn an_authorization_response_from_another_issuer_is_refused() {
    let server = TestServer::start().await;
    let mut checked = config(&server, code_grant());
    checked.server = checked.server.with_issuer(server.url.clone());
    checked.server.issuer_in_authorization_response = true;
    let oauth = client(checked, Arc::new(MemoryGrantStore::new()));
    let cases: [(Option<&str>, &str); 2] = [
        (Some("https://attacker.example"), "names another issuer"),
        (None, "lacks the iss parameter"),
    ];
    for (iss, expected) in cases {
        server.behave(|behaviour| behaviour.iss = iss.map(str::to_owned));
        let request = oauth.start_authorization(&user("alice")).unwrap();
        let response = authorize_in_browser(&request.url, "alice").await;
        let error = oauth.complete_authorization(response).await.unwrap_err();
        assert!(
            matches!(error, OAuthError::IssuerMismatch { .. }),
            "{error}"
        );
        assert!(error.to_string().contains(expected), "{error}");
    }
    assert!(server.token_requests("authorization_code").is_empty());
    // The right issuer passes.
    server.behave(|behaviour| behaviour.iss = Some(server.url.clone()));
    let request = oauth.start_authorization(&user("alice")).unwrap();
    let response = authorize_in_browser(&request.url, "alice").await;
    oauth.complete_authorization(response).await.unwrap();
}

#[tokio::test]
async fn a_denied_authorization_is_reported_without_a_token_request() {
    let server = TestServer::start().await;
    let oauth = client(
        config(&server, code_grant()),
        Arc::new(MemoryGrantStore::new()),
    );
    let request = oauth.start_authorization(&user("alice")).unwrap();
    let query = format!(
        "error=access_denied&error_description=the+user+said+no&state={}",
        request.state
    );
    let error = oauth
        .complete_authorization(AuthorizationResponse::from_query(&query))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "upstream files: authorization was not granted: access_denied (the user said no)"
    );
    assert!(server.requests("/token").is_empty());
}

#[tokio::test]
async fn discovery_reads_the_metadata_and_checks_its_issuer() {
    let server = TestServer::start().await;
    let discovered = AuthorizationServer::discover(&server.url).await.unwrap();
    assert_eq!(discovered.issuer.as_deref(), Some(server.url.as_str()));
    assert_eq!(discovered.token_endpoint, server.endpoint("/token"));
    assert_eq!(
        discovered.authorization_endpoint,
        Some(server.endpoint("/authorize"))
    );
    assert!(discovered.pkce_s256);
    assert!(discovered.issuer_in_authorization_response);

    let mut discovered_config = config(&server, code_grant());
    discovered_config.server = discovered;
    let oauth = OAuthClient::new(discovered_config, Arc::new(MemoryGrantStore::new())).unwrap();
    let request = oauth.start_authorization(&user("alice")).unwrap();
    let response = authorize_in_browser(&request.url, "alice").await;
    oauth.complete_authorization(response).await.unwrap();

    server.behave(|behaviour| behaviour.claimed_issuer = Some("https://attacker.example".into()));
    let error = AuthorizationServer::discover(&server.url)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("names issuer \"https://attacker.example\""),
        "{error}"
    );
}
