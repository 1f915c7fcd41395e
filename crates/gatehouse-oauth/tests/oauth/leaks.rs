//! LEAK-CANARY for the OAuth client: a server that quotes back every token, code, verifier and
//! secret it was sent, and one that fails with the whole request in a plain-text body. No
//! error's `Display` or `Debug`, and no `Debug` of the client's types, contains any of them.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use gatehouse_oauth::{
    ACCESS_TOKEN_TYPE, AuthorizationServer, ClientAuthMethod, Grant, MemoryGrantStore, OAuthError,
    Subject, TokenExchange,
};
use secrecy::SecretString;

use super::server::{CLIENT_ID, TestServer};
use super::support::{
    CANARY, assert_no_secrets, authorize_in_browser, client, code_grant, config, grant_key,
    seed_expired_grant, user,
};

#[tokio::test]
async fn no_error_shows_a_secret_even_when_the_server_quotes_them() {
    let server = TestServer::start().await;
    server.behave(|behaviour| behaviour.echo_secrets = true);
    let store = Arc::new(MemoryGrantStore::new());
    let mut errors: Vec<OAuthError> = Vec::new();

    // A wrong client secret, in the Basic header and in the body.
    let wrong = "wrong-secret-canary";
    let basic = STANDARD.encode(format!("{CLIENT_ID}:{wrong}"));
    for method in [
        ClientAuthMethod::ClientSecretBasic,
        ClientAuthMethod::ClientSecretPost,
    ] {
        let mut wrong_secret = config(&server, Grant::ClientCredentials);
        wrong_secret.client_secret = Some(SecretString::from(wrong));
        wrong_secret.client_auth = method;
        let error = client(wrong_secret, store.clone())
            .access_token(Subject::Service)
            .await
            .unwrap_err();
        assert!(error.to_string().contains("invalid_client"), "{error}");
        assert!(error.to_string().contains("[redacted]"), "{error}");
        errors.push(error);
    }

    // A spent refresh token.
    let alice = user("alice");
    let seeded = seed_expired_grant(&store, &server, &alice);
    reqwest::Client::new()
        .post(server.endpoint("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", seeded.as_str()),
            ("client_id", CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    let users = client(config(&server, code_grant()), store.clone());
    let error = users.access_token(Subject::User(&alice)).await.unwrap_err();
    assert!(error.to_string().contains("[redacted]"), "{error}");
    assert!(store.get(&grant_key(&alice)).is_none());
    errors.push(error);

    // A code sent with another authorization's verifier: the server quotes the verifier.
    let mallory = users.start_authorization(&user("mallory")).unwrap();
    let victim = users.start_authorization(&alice).unwrap();
    let mut injected = authorize_in_browser(&mallory.url, "mallory").await;
    injected.state = Some(victim.state.clone());
    let error = users.complete_authorization(injected).await.unwrap_err();
    assert!(error.to_string().contains("[redacted]"), "{error}");
    errors.push(error);

    // A subject token the server puts in its error code.
    let exchange = client(
        config(
            &server,
            Grant::TokenExchange(TokenExchange {
                subject_token_type: ACCESS_TOKEN_TYPE.into(),
                requested_token_type: None,
                audience: None,
            }),
        ),
        store.clone(),
    );
    let revoked = SecretString::from("subject-canary-revoked");
    let error = exchange
        .access_token(Subject::OnBehalfOf {
            user: &alice,
            subject_token: &revoked,
        })
        .await
        .unwrap_err();
    assert!(error.to_string().contains("unrecognized_error"), "{error}");
    errors.push(error);

    // A plain-text 500 quoting the whole request body.
    let mut failing = config(&server, Grant::ClientCredentials);
    failing.server = AuthorizationServer::new(server.endpoint("/fails"));
    failing.client_auth = ClientAuthMethod::ClientSecretPost;
    let error = client(failing, store.clone())
        .access_token(Subject::Service)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::TokenEndpointStatus { status: 500, .. }),
        "{error}"
    );
    assert_eq!(server.requests("/fails").len(), 1);
    errors.push(error);

    // A token endpoint no one listens on.
    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let mut unreachable = config(&server, Grant::ClientCredentials);
    unreachable.server =
        AuthorizationServer::new(url::Url::parse(&format!("http://{closed}/token")).unwrap());
    let error = client(unreachable, store.clone())
        .access_token(Subject::Service)
        .await
        .unwrap_err();
    assert!(
        matches!(error, OAuthError::TokenEndpointUnreachable { .. }),
        "{error}"
    );
    errors.push(error);

    for error in &errors {
        assert_no_secrets(error, &[&basic]);
    }
}

#[tokio::test]
async fn debug_output_of_the_clients_types_shows_no_secret() {
    let server = TestServer::start().await;
    let store = Arc::new(MemoryGrantStore::new());
    let alice = user("alice");
    seed_expired_grant(&store, &server, &alice);
    let oauth = client(config(&server, code_grant()), store.clone());
    let token = oauth.access_token(Subject::User(&alice)).await.unwrap();
    let request = oauth.start_authorization(&alice).unwrap();
    let response = authorize_in_browser(&request.url, "alice").await;
    let outputs = [
        format!("{token:?}"),
        format!("{oauth:?}"),
        format!("{:?}", config(&server, code_grant())),
        format!("{:?}", store.get(&grant_key(&alice)).unwrap()),
        format!("{store:?}"),
        format!("{response:?}"),
        format!(
            "{:?}",
            Subject::OnBehalfOf {
                user: &alice,
                subject_token: &SecretString::from("subject-canary"),
            }
        ),
    ];
    for output in outputs {
        assert!(!output.contains(CANARY), "{output}");
    }
    assert!(format!("{token:?}").contains(token.id().as_str()));
}
