//! An authorization server for the tests, on 127.0.0.1 port 0: a token endpoint for every grant
//! the client uses, an authorization endpoint that a test drives like a browser, and a metadata
//! document. It records every request's parameters, refuses a refresh token used twice, checks
//! PKCE S256 and the client's authentication, and can echo the secrets it was sent in its
//! errors, as a hostile or careless server would.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::{Url, form_urlencoded};

pub const CLIENT_ID: &str = "gatehouse";
pub const CLIENT_SECRET: &str = "client-secret-canary";
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/oauth/callback";

/// One request the server received: its path and parameters (form body or query).
#[derive(Debug, Clone)]
pub struct Recorded {
    pub path: &'static str,
    pub params: HashMap<String, String>,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// What the server does, changed by tests.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `expires_in` of every token issued.
    pub expires_in: u64,
    /// How long a token request takes, so that concurrent callers overlap with it.
    pub token_delay: Duration,
    /// Refusals quote the tokens and secret they were sent.
    pub echo_secrets: bool,
    /// The `iss` put on authorization responses.
    pub iss: Option<String>,
    /// What the metadata document says the issuer is.
    pub claimed_issuer: Option<String>,
}

struct Code {
    user: String,
    challenge: String,
    redirect_uri: String,
}

#[derive(Default)]
struct Books {
    requests: Vec<Recorded>,
    /// Refresh token → (user, spent).
    refresh_tokens: HashMap<String, (String, bool)>,
    codes: HashMap<String, Code>,
    /// Access token → whose it is (a user, a subject token, or the client).
    owners: HashMap<String, String>,
}

struct ServerState {
    url: String,
    behaviour: Mutex<Behaviour>,
    books: Mutex<Books>,
    issued: AtomicUsize,
    reused_refresh_tokens: AtomicUsize,
}

/// The running server; stopped when dropped.
pub struct TestServer {
    pub url: String,
    state: Arc<ServerState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestServer {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(ServerState {
            url: url.clone(),
            behaviour: Mutex::new(Behaviour {
                expires_in: 3600,
                token_delay: Duration::ZERO,
                echo_secrets: false,
                iss: Some(url.clone()),
                claimed_issuer: None,
            }),
            books: Mutex::default(),
            issued: AtomicUsize::new(0),
            reused_refresh_tokens: AtomicUsize::new(0),
        });
        let router = Router::new()
            .route("/token", post(token))
            .route("/authorize", get(authorize))
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/fails", post(fails))
            .with_state(Arc::clone(&state));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Self { url, state, task }
    }

    pub fn endpoint(&self, path: &str) -> Url {
        Url::parse(&format!("{}{path}", self.url)).unwrap()
    }

    pub fn behave(&self, change: impl FnOnce(&mut Behaviour)) {
        change(&mut self.state.behaviour.lock().unwrap());
    }

    /// Every request to `path`, in order.
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        let books = self.state.books.lock().unwrap();
        books
            .requests
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    /// The token requests of one grant type.
    pub fn token_requests(&self, grant_type: &str) -> Vec<Recorded> {
        self.requests("/token")
            .into_iter()
            .filter(|request| request.param("grant_type") == Some(grant_type))
            .collect()
    }

    /// A refresh token the server will honour once, for `user`.
    pub fn issue_refresh_token(&self, user: &str) -> String {
        let refresh = format!("rt-canary-{user}-{}", self.next());
        let mut books = self.state.books.lock().unwrap();
        books
            .refresh_tokens
            .insert(refresh.clone(), (user.to_owned(), false));
        refresh
    }

    /// Whose an access token is, as the server issued it.
    pub fn owner_of(&self, access_token: &str) -> Option<String> {
        self.state
            .books
            .lock()
            .unwrap()
            .owners
            .get(access_token)
            .cloned()
    }

    pub fn reused_refresh_tokens(&self) -> usize {
        self.state.reused_refresh_tokens.load(Ordering::SeqCst)
    }

    fn next(&self) -> usize {
        self.state.issued.fetch_add(1, Ordering::SeqCst)
    }
}

fn record(state: &ServerState, path: &'static str, params: &HashMap<String, String>) {
    let mut books = state.books.lock().unwrap();
    books.requests.push(Recorded {
        path,
        params: params.clone(),
    });
}

fn parse(text: &str) -> HashMap<String, String> {
    form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

async fn token(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let params = parse(&body);
    record(&state, "/token", &params);
    let behaviour = state.behaviour.lock().unwrap().clone();
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
        .or_else(|| params.get("client_secret").cloned())
        .unwrap_or_default();
    let refuse = |error: &str, echoed: &str| {
        let description = if behaviour.echo_secrets {
            format!("refused {echoed} from client {CLIENT_ID} presenting {presented}")
        } else {
            "refused".to_owned()
        };
        let error = if behaviour.echo_secrets && error == "invalid_request" {
            echoed.to_owned()
        } else {
            error.to_owned()
        };
        (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response()
    };
    if let Err(problem) = check_client(&headers, &params) {
        return refuse("invalid_client", problem);
    }
    tokio::time::sleep(behaviour.token_delay).await;
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    let n = state.issued.fetch_add(1, Ordering::SeqCst);
    let (owner, refresh_user) = match param("grant_type").as_str() {
        "client_credentials" => (CLIENT_ID.to_owned(), None),
        "refresh_token" => {
            let presented = param("refresh_token");
            let mut books = state.books.lock().unwrap();
            match books.refresh_tokens.get_mut(&presented) {
                Some((_, true)) => {
                    state.reused_refresh_tokens.fetch_add(1, Ordering::SeqCst);
                    return refuse("invalid_grant", &presented);
                }
                Some((user, spent)) => {
                    *spent = true;
                    (user.clone(), Some(user.clone()))
                }
                None => return refuse("invalid_grant", &presented),
            }
        }
        "authorization_code" => {
            let presented = param("code");
            let Some(code) = state.books.lock().unwrap().codes.remove(&presented) else {
                return refuse("invalid_grant", &presented);
            };
            let verifier = param("code_verifier");
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
            if challenge != code.challenge || param("redirect_uri") != code.redirect_uri {
                return refuse("invalid_grant", &verifier);
            }
            (code.user.clone(), Some(code.user))
        }
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            let subject = param("subject_token");
            if subject.is_empty()
                || param("subject_token_type").is_empty()
                || subject.contains("revoked")
            {
                return refuse("invalid_request", &subject);
            }
            (subject, None)
        }
        _ => return refuse("unsupported_grant_type", ""),
    };
    let access = format!("at-canary-{owner}-{n}");
    let mut books = state.books.lock().unwrap();
    books.owners.insert(access.clone(), owner);
    let mut answer = json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": behaviour.expires_in,
    });
    if let Some(user) = refresh_user {
        let refresh = format!("rt-canary-{user}-{n}");
        books.refresh_tokens.insert(refresh.clone(), (user, false));
        answer["refresh_token"] = Value::String(refresh);
    }
    if params.contains_key("subject_token") {
        answer["issued_token_type"] = json!("urn:ietf:params:oauth:token-type:access_token");
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// HTTP Basic with the form-encoded id and secret, or the id (and secret) in the body.
fn check_client(headers: &HeaderMap, params: &HashMap<String, String>) -> Result<(), &'static str> {
    match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let encoded = value
                .to_str()
                .ok()
                .and_then(|value| value.strip_prefix("Basic "))
                .ok_or("a malformed Authorization header")?;
            let decoded = String::from_utf8(STANDARD.decode(encoded).map_err(|_| "bad base64")?)
                .map_err(|_| "bad utf-8")?;
            let (id, secret) = decoded.split_once(':').ok_or("no colon")?;
            let decode = |text: &str| -> String {
                form_urlencoded::parse(format!("v={text}").as_bytes())
                    .next()
                    .map(|(_, value)| value.into_owned())
                    .unwrap_or_default()
            };
            if decode(id) == CLIENT_ID && decode(secret) == CLIENT_SECRET {
                Ok(())
            } else {
                Err("wrong client credentials")
            }
        }
        None if params.get("client_id").map(String::as_str) != Some(CLIENT_ID) => {
            Err("no client authentication")
        }
        None => match params.get("client_secret") {
            Some(secret) if secret != CLIENT_SECRET => Err("wrong client credentials"),
            // A public client, or the right secret in the body.
            _ => Ok(()),
        },
    }
}

/// The browser's visit: the test adds `test_user` for the user who signs in. Answers with the
/// redirect to the client's callback, carrying a one-time code bound to the PKCE challenge.
async fn authorize(State(state): State<Arc<ServerState>>, RawQuery(query): RawQuery) -> Response {
    let params = parse(query.as_deref().unwrap_or_default());
    record(&state, "/authorize", &params);
    let param = |name: &str| params.get(name).cloned().unwrap_or_default();
    if param("response_type") != "code"
        || param("client_id") != CLIENT_ID
        || param("code_challenge_method") != "S256"
        || param("code_challenge").is_empty()
    {
        return StatusCode::BAD_REQUEST.into_response();
    }
    let code = format!(
        "code-canary-{}",
        state.issued.fetch_add(1, Ordering::SeqCst)
    );
    let redirect_uri = param("redirect_uri");
    state.books.lock().unwrap().codes.insert(
        code.clone(),
        Code {
            user: param("test_user"),
            challenge: param("code_challenge"),
            redirect_uri: redirect_uri.clone(),
        },
    );
    let mut location = Url::parse(&redirect_uri).unwrap();
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &param("state"));
    if let Some(iss) = &state.behaviour.lock().unwrap().iss {
        location.query_pairs_mut().append_pair("iss", iss);
    }
    Redirect::to(location.as_str()).into_response()
}

async fn metadata(State(state): State<Arc<ServerState>>) -> axum::Json<Value> {
    let claimed = state.behaviour.lock().unwrap().claimed_issuer.clone();
    axum::Json(json!({
        "issuer": claimed.unwrap_or_else(|| state.url.clone()),
        "authorization_endpoint": format!("{}/authorize", state.url),
        "token_endpoint": format!("{}/token", state.url),
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
    }))
}

/// A token endpoint that fails with a plain-text 500 quoting everything it was sent.
async fn fails(State(state): State<Arc<ServerState>>, body: String) -> Response {
    let params = parse(&body);
    record(&state, "/fails", &params);
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("internal error handling {body}"),
    )
        .into_response()
}
