//! An upstream Streamable HTTP server. Each request is one POST whose answer is either a JSON
//! body or an SSE stream of messages tied to that request; both are fed to the link's request
//! table with the request's id as context. Legacy servers also get the session id header and a
//! GET stream for messages not tied to a request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;
use gatehouse_config::Template;
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::mux::Mux;
use crate::credentials::{AccessTokens, Credential, CredentialSource, render};
use crate::era::MODERN_VERSION;
use crate::jsonrpc::{self, code};

/// Largest response body or single SSE event accepted from an upstream.
const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The connection state of one HTTP upstream.
pub(crate) struct HttpWire {
    server: String,
    client: reqwest::Client,
    url: String,
    headers: HeaderMap,
    credentials: CredentialHeaders,
    session_id: RwLock<Option<String>>,
    protocol_version: RwLock<Option<String>>,
    in_flight: Mutex<HashMap<u64, AbortHandle>>,
    closed: tokio_util::sync::CancellationToken,
    /// Set when a legacy server forgot our session (HTTP 404): the link must start anew.
    session_lost: std::sync::atomic::AtomicBool,
}

impl HttpWire {
    /// Prepares the wire and starts the task that posts non-request messages.
    pub(crate) fn new(
        server: &str,
        client: reqwest::Client,
        url: &str,
        configured_headers: &BTreeMap<String, Template>,
        credentials: (
            Arc<dyn CredentialSource>,
            Option<String>,
            Option<Arc<secrecy::SecretString>>,
        ),
        mux: &Arc<Mux>,
        mut outbound: mpsc::UnboundedReceiver<Value>,
    ) -> Result<Arc<Self>, String> {
        let mut headers = HeaderMap::new();
        let mut templates = Vec::new();
        for (name, value) in configured_headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("header name `{name}` is not valid"))?;
            if value.has_secrets() {
                templates.push((name, value.clone()));
                continue;
            }
            let value = HeaderValue::from_str(value.as_written())
                .map_err(|_| format!("header `{name}` has a value that is not valid"))?;
            headers.insert(name, value);
        }
        let (source, user, subject_token) = credentials;
        let oauth = source.access_tokens(server);
        let wire = Arc::new(Self {
            server: server.to_owned(),
            client,
            url: url.to_owned(),
            headers,
            credentials: CredentialHeaders {
                templates,
                source,
                oauth,
                user,
                subject_token: std::sync::Mutex::new(subject_token),
            },
            session_id: RwLock::new(None),
            protocol_version: RwLock::new(None),
            in_flight: Mutex::new(HashMap::new()),
            closed: tokio_util::sync::CancellationToken::new(),
            session_lost: std::sync::atomic::AtomicBool::new(false),
        });
        let sender = Arc::clone(&wire);
        let mux_for_posts = Arc::clone(mux);
        tokio::spawn(async move {
            while let Some(message) = outbound.recv().await {
                let wire = Arc::clone(&sender);
                let mux = Arc::clone(&mux_for_posts);
                tokio::spawn(async move {
                    if let Err(error) = wire.post(&message, None, &mux, &[]).await {
                        tracing::debug!(server = %wire.server, %error, "message to upstream not delivered");
                    }
                });
            }
        });
        Ok(wire)
    }

    /// Records the negotiated version (and, for legacy servers, the session id header).
    pub(crate) fn set_protocol_version(&self, version: &str) {
        *self
            .protocol_version
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(version.to_owned());
    }

    fn session_id(&self) -> Option<String> {
        self.session_id
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sends a message that is not a request and waits until the server has taken it.
    pub(crate) async fn deliver(&self, message: &Value, mux: &Arc<Mux>) {
        if let Err(error) = self.post(message, None, mux, &[]).await {
            tracing::debug!(server = %self.server, %error, "message to upstream not delivered");
        }
    }

    /// Sends a request; its answer and related messages reach the mux in the background.
    pub(crate) fn send_request(
        self: &Arc<Self>,
        id: u64,
        message: Value,
        mux: &Arc<Mux>,
        extra_headers: Vec<(String, String)>,
    ) {
        let wire = Arc::clone(self);
        let mux = Arc::clone(mux);
        let task = tokio::spawn(async move {
            if let Err(error) = wire.post(&message, Some(id), &mux, &extra_headers).await {
                let reason = format!("server `{}` failed: {error}", wire.server);
                mux.dispatch(
                    jsonrpc::error(json!(id), code::UPSTREAM_ERROR, &reason, None),
                    Some(id),
                );
            }
            wire.in_flight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&id);
        });
        self.in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, task.abort_handle());
    }

    /// Abandons a request: closing its response stream is how a 2026-07-28 server learns of
    /// the cancellation.
    pub(crate) fn abandon(&self, id: u64) {
        let handle = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&id);
        if let Some(handle) = handle {
            handle.abort();
        }
    }

    /// Whether the server forgot our session.
    pub(crate) fn session_lost(&self) -> bool {
        self.session_lost.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Keeps the person's latest sign-in token (this link serves one person) for exchanges.
    pub(crate) fn offer_subject_token(&self, token: &Arc<secrecy::SecretString>) {
        *self
            .credentials
            .subject_token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::clone(token));
    }

    /// Stops background work.
    pub(crate) fn close(&self) {
        self.closed.cancel();
        let handles: Vec<AbortHandle> = self
            .in_flight
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain()
            .map(|(_, handle)| handle)
            .collect();
        for handle in handles {
            handle.abort();
        }
    }

    fn request_headers(&self, message: &Value, extra: &[(String, String)]) -> HeaderMap {
        let mut headers = self.headers.clone();
        for (name, value) in extra {
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                headers.insert(name, value);
            }
        }
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let recorded = self
            .protocol_version
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        // The era probe is itself a 2026-07-28 request and says so.
        let version = match jsonrpc::method(message) {
            Some("server/discover") => Some(MODERN_VERSION.to_owned()),
            _ => recorded,
        };
        if let Some(version) = &version
            && let Ok(value) = HeaderValue::from_str(version)
        {
            headers.insert("mcp-protocol-version", value);
        }
        if let Some(session) = self.session_id()
            && let Ok(value) = HeaderValue::from_str(&session)
        {
            headers.insert("mcp-session-id", value);
        }
        let modern = version.as_deref() == Some(MODERN_VERSION)
            || jsonrpc::method(message) == Some("server/discover");
        if modern && let Some(method) = jsonrpc::method(message) {
            if let Ok(value) = HeaderValue::from_str(method) {
                headers.insert("mcp-method", value);
            }
            let name = crate::headers::name_member(method)
                .and_then(|member| message.get("params")?.get(member)?.as_str());
            if let Some(name) = name
                && let Ok(value) = HeaderValue::from_str(&crate::headers::encode_value(name))
            {
                headers.insert("mcp-name", value);
            }
        }
        headers
    }

    /// Posts one message and feeds whatever comes back to the mux.
    async fn post(
        &self,
        message: &Value,
        related: Option<u64>,
        mux: &Arc<Mux>,
        extra_headers: &[(String, String)],
    ) -> Result<(), String> {
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            let mut headers = self.request_headers(message, extra_headers);
            let (credentials, token) = self.credentials.headers_with_token().await?;
            headers.extend(credentials);
            let response = self
                .client
                .post(&self.url)
                .headers(headers)
                .json(message)
                .send()
                .await
                .map_err(|error| format!("request failed: {}", without_url(&error)))?;
            // An access token refused as expired or revoked is replaced once; the request was
            // not processed, so sending it again is safe.
            match token {
                Some(token) if response.status() == http::StatusCode::UNAUTHORIZED => {
                    self.credentials.rejected(&token);
                    if attempts >= 2 {
                        return Err(
                            "the upstream refused the gateway's access token twice".to_owned()
                        );
                    }
                }
                _ => break response,
            }
        };
        let status = response.status();
        if status == http::StatusCode::NOT_FOUND && self.session_id().is_some() {
            // The server ended our session (restart, expiry); the next call starts a new one.
            self.session_lost
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if jsonrpc::method(message) == Some("initialize")
            && let Some(session) = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
        {
            *self
                .session_id
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(session.to_owned());
        }
        let content_type = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        if status == http::StatusCode::ACCEPTED {
            return Ok(());
        }
        if content_type.starts_with("text/event-stream") {
            let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
            while let Some(event) = events.next().await {
                let event = event.map_err(|error| format!("event stream broke: {error}"))?;
                let Some(data) = event.data else { continue };
                if data.len() > MAX_MESSAGE_BYTES {
                    return Err("an event exceeded the message size limit".to_owned());
                }
                if data.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&data) {
                    Ok(message) => mux.dispatch(message, related),
                    Err(_) => tracing::debug!(server = %self.server, "non-JSON event ignored"),
                }
            }
            return Ok(());
        }
        let body = read_limited(response).await?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(mut message) if message.get("jsonrpc").is_some() => {
                // A server that refuses a request before reading it (for instance a legacy
                // server answering the era probe with 400) sends its error with a null id; it
                // still answers this request, so it must not be left to time out.
                if let Some(id) = related
                    && message.get("error").is_some()
                    && message.get("id").is_none_or(Value::is_null)
                {
                    message["id"] = json!(id);
                }
                mux.dispatch(message, related);
                Ok(())
            }
            _ if status.is_success() => Ok(()),
            _ => Err(format!("answered HTTP {status}")),
        }
    }

    /// Keeps a GET stream open for a legacy session's messages that are not tied to a request.
    pub(crate) fn open_listen_stream(self: &Arc<Self>, mux: &Arc<Mux>) {
        let wire = Arc::clone(self);
        let mux = Arc::clone(mux);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(500);
            loop {
                let mut headers = wire.request_headers(&json!({}), &[]);
                match wire.credentials.headers().await {
                    Ok(credentials) => headers.extend(credentials),
                    Err(error) => {
                        tracing::info!(server = %wire.server, %error, "no event stream without credentials");
                        return;
                    }
                }
                headers.insert(
                    http::header::ACCEPT,
                    HeaderValue::from_static("text/event-stream"),
                );
                headers.remove(http::header::CONTENT_TYPE);
                let request = wire.client.get(&wire.url).headers(headers).send();
                let response = tokio::select! {
                    response = request => response,
                    () = wire.closed.cancelled() => return,
                };
                let Ok(response) = response else { return };
                if !response.status().is_success() {
                    // 405 means the server offers no such stream; that is allowed.
                    return;
                }
                let mut events = sse_stream::SseStream::from_bytes_stream(response.bytes_stream());
                loop {
                    let event = tokio::select! {
                        event = events.next() => event,
                        () = wire.closed.cancelled() => return,
                    };
                    let Some(Ok(event)) = event else { break };
                    if let Some(data) = event.data.filter(|d| !d.trim().is_empty())
                        && let Ok(message) = serde_json::from_str::<Value>(&data)
                    {
                        mux.dispatch(message, None);
                    }
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    () = wire.closed.cancelled() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        });
    }

    /// Ends a legacy session politely.
    pub(crate) async fn delete_session(&self) {
        if let Some(session) = self.session_id() {
            let mut headers = self.headers.clone();
            headers.extend(self.credentials.headers().await.unwrap_or_default());
            let _ = self
                .client
                .delete(&self.url)
                .headers(headers)
                .header("mcp-session-id", session)
                .timeout(Duration::from_secs(2))
                .send()
                .await;
        }
    }
}

/// Headers whose values are filled in from credentials on every request, so a rotated value
/// is used from the next request on.
struct CredentialHeaders {
    templates: Vec<(HeaderName, Template)>,
    source: Arc<dyn CredentialSource>,
    oauth: Option<Arc<dyn AccessTokens>>,
    user: Option<String>,
    /// The person's latest sign-in token, for servers whose tokens are exchanged from it.
    subject_token: std::sync::Mutex<Option<Arc<secrecy::SecretString>>>,
}

impl CredentialHeaders {
    async fn headers(&self) -> Result<HeaderMap, String> {
        Ok(self.headers_with_token().await?.0)
    }

    /// The headers, and the OAuth token among them (to report it if the upstream refuses it).
    async fn headers_with_token(&self) -> Result<(HeaderMap, Option<Arc<Credential>>), String> {
        let mut headers = HeaderMap::new();
        let mut token = None;
        if let Some(oauth) = &self.oauth {
            let subject_token = self
                .subject_token
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            let credential = oauth
                .token(self.user.as_deref(), subject_token.as_ref())
                .await
                .map_err(|error| error.message)?;
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", credential.value.expose_secret()))
                    .map_err(|_| "the access token is not a valid header value".to_owned())?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
            token = Some(credential);
        }
        for (name, template) in &self.templates {
            let rendered = render(template, self.source.as_ref(), self.user.as_deref())
                .await
                .map_err(|error| error.message)?;
            let mut value = HeaderValue::from_str(rendered.value.expose_secret()).map_err(|_| {
                format!("header `{name}` would not be a valid header value with its secrets filled in")
            })?;
            value.set_sensitive(true);
            headers.insert(name.clone(), value);
        }
        Ok((headers, token))
    }

    /// The upstream answered 401 to `token`.
    fn rejected(&self, token: &Credential) {
        if let Some(oauth) = &self.oauth {
            oauth.rejected(self.user.as_deref(), token);
        }
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|error| format!("body broke: {}", without_url(&error)))?;
        if body.len() + chunk.len() > MAX_MESSAGE_BYTES {
            return Err("the response exceeded the message size limit".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// An HTTP error without the URL, which may carry credentials in its query.
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "<upstream>");
    }
    text
}
