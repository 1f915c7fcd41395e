//! The HTTP surface: `/mcp` (POST, GET, DELETE) and `/healthz`. Transport concerns only —
//! Host/Origin checks against DNS rebinding, the body limit, choosing a JSON or SSE answer —
//! before handing each message to the pipeline in `dispatch`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::{Stream, StreamExt};
use gatehouse_mcp::era::{self, LATEST_LEGACY_VERSION};
use gatehouse_mcp::jsonrpc::{self, Kind, code};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::Gateway;
use crate::audit::Trail;
use crate::dispatch::Call;
use crate::envelope::{self, Caller};
use crate::error::GatewayError;
use crate::identity::Who;
use crate::listen::ListenFilter;
use gatehouse_audit::{RefusalKind, Verdict};

/// Messages buffered per response stream before the sender waits.
const STREAM_BUFFER: usize = 64;

/// The gateway's routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    let limit = gateway.settings.max_body_bytes;
    Router::new()
        .route("/mcp", get(get_mcp).post(post_mcp).delete(delete_mcp))
        .route("/healthz", get(|| async { "ok" }))
        .route("/admin/servers", get(admin_servers))
        .route("/oauth/callback/{server}", get(oauth_callback))
        .route("/metrics", get(metrics))
        .route(
            "/.well-known/oauth-protected-resource",
            get(resource_metadata),
        )
        .route(
            "/.well-known/oauth-protected-resource/{*path}",
            get(resource_metadata),
        )
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&gateway),
            check_host_and_origin,
        ))
        .with_state(gateway)
}

/// Refuses requests whose Host or Origin is not this gateway's, so a web page cannot reach a
/// gateway on loopback through DNS rebinding. Every refusal is on the record (or counted).
async fn check_host_and_origin(
    State(gateway): State<Arc<Gateway>>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let refused = if !host_allowed(host, &gateway.settings.allowed_hosts) {
        tracing::info!(host, "request refused: Host is not this gateway");
        Some(format!(
            "Host `{host}` is not allowed; add it to gateway.allowed_hosts"
        ))
    } else {
        headers
            .get(header::ORIGIN)
            .map(|origin| origin.to_str().unwrap_or("invalid"))
            .filter(|origin| !origin_allowed(origin, &gateway.settings.allowed_origins))
            .map(|origin| {
                tracing::info!(origin, "request refused: Origin is not allowed");
                format!("Origin `{origin}` is not allowed; add it to gateway.allowed_origins")
            })
    };
    let Some(message) = refused else {
        return next.run(request).await;
    };
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from(([0, 0, 0, 0], 0)), |info| info.0);
    let trail = Trail::new(None, peer, "(rebinding)", None);
    // The refusal stands whether or not its receipt is written.
    let _ = gateway
        .audit
        .record_refusal(&trail, RefusalKind::Rebinding)
        .await;
    refusal(StatusCode::FORBIDDEN, &message)
}

fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = strip_port(host);
    matches!(name, "localhost" | "127.0.0.1" | "[::1]")
        || allowed
            .iter()
            .any(|a| a.eq_ignore_ascii_case(host) || a.eq_ignore_ascii_case(name))
}

fn origin_allowed(origin: &str, allowed: &[String]) -> bool {
    let loopback = ["http://", "https://"].iter().any(|scheme| {
        origin
            .strip_prefix(scheme)
            .is_some_and(|rest| matches!(strip_port(rest), "localhost" | "127.0.0.1" | "[::1]"))
    });
    loopback || allowed.iter().any(|a| a.eq_ignore_ascii_case(origin))
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, port)| {
        if port.bytes().all(|b| b.is_ascii_digit()) {
            name
        } else {
            host
        }
    })
}

fn refusal(status: StatusCode, message: &str) -> Response {
    let body = jsonrpc::error(Value::Null, code::INVALID_REQUEST, message, None);
    (status, axum::Json(body)).into_response()
}

fn error_response(error: &GatewayError, id: Value) -> Response {
    (error.status(), axum::Json(error.to_message(id))).into_response()
}

/// The first step of every MCP request: who is calling. A refused credential ends the request
/// here, before its body is read, with 401 (or 403 for missing scope, 503 when the store or the
/// identity provider cannot answer) and the challenge MCP clients start their sign-in from,
/// and leaves its receipt (or is counted, in a flood).
async fn identify(
    gateway: &Gateway,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Who, Response> {
    let refusal = match gateway.identity.who(headers, peer).await {
        Ok(who) => return Ok(who),
        Err(refusal) => refusal,
    };
    tracing::info!(%peer, reason = %refusal, "request refused: identity not accepted");
    let trail = Trail::new(None, peer, "(unauthenticated)", None);
    // The refusal stands whether or not its receipt is written.
    let _ = gateway
        .audit
        .record_refusal(&trail, RefusalKind::Authentication)
        .await;
    let body = jsonrpc::error(
        Value::Null,
        code::INVALID_REQUEST,
        refusal.client_message(),
        None,
    );
    let mut response = (refusal.status(), axum::Json(body)).into_response();
    if let Some(challenge) = gateway.identity.challenge(&refusal) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, challenge);
    }
    Err(response)
}

async fn post_mcp(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let who = match identify(&gateway, &headers, peer).await {
        Ok(who) => who,
        Err(refused) => return refused,
    };
    let message = match crate::strict_json::from_slice(&body) {
        Ok(message) => message,
        Err(error) => {
            return refuse(
                &gateway,
                &who,
                peer,
                "(unreadable)",
                GatewayError::Parse(error.to_string()),
                Value::Null,
            )
            .await;
        }
    };
    if message.is_array() {
        let error = GatewayError::InvalidRequest(
            "JSON-RPC batches are not supported; send one message per request".to_owned(),
        );
        return refuse(&gateway, &who, peer, "(batch)", error, Value::Null).await;
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = jsonrpc::method(&message).unwrap_or("(none)").to_owned();
    match jsonrpc::kind(&message) {
        Kind::Invalid => {
            let error = GatewayError::InvalidRequest(
                "the body is not a JSON-RPC 2.0 request, notification or response".to_owned(),
            );
            refuse(&gateway, &who, peer, &method, error, id).await
        }
        Kind::Response => match accept_client_response(&gateway, &headers, message, &who) {
            Ok(accepted) => accepted,
            Err(error) => refuse(&gateway, &who, peer, "(response)", error, Value::Null).await,
        },
        Kind::Notification => match envelope::classify(&headers, &message, &gateway.sessions, &who)
        {
            Ok(caller) => {
                gateway.handle_notification(&caller, &message).await;
                StatusCode::ACCEPTED.into_response()
            }
            Err(error) => refuse(&gateway, &who, peer, &method, error, Value::Null).await,
        },
        Kind::Request => match envelope::classify(&headers, &message, &gateway.sessions, &who) {
            Ok(caller) => answer_request(gateway, &headers, message, caller, who, peer).await,
            Err(error) => refuse(&gateway, &who, peer, &method, error, id).await,
        },
    }
}

/// Refuses a request before dispatch, with its receipt.
async fn refuse(
    gateway: &Gateway,
    who: &Who,
    peer: SocketAddr,
    method: &str,
    error: GatewayError,
    id: Value,
) -> Response {
    let trail = Trail::new(Some(who), peer, method, None);
    let _ = gateway
        .audit
        .record_decision(&trail, Verdict::Error, Some(&error))
        .await;
    error_response(&error, id)
}

/// Hands a client's answer to the server request it answers, in the caller's own session.
fn accept_client_response(
    gateway: &Gateway,
    headers: &HeaderMap,
    message: Value,
    who: &Who,
) -> Result<Response, GatewayError> {
    let session = owned_session(gateway, headers, who)?;
    if !session.resolve_client_request(message) {
        tracing::debug!(session = %session.id, "response to no pending request ignored");
    }
    Ok(StatusCode::ACCEPTED.into_response())
}

/// The legacy session a request names, if it belongs to the caller.
fn owned_session(
    gateway: &Gateway,
    headers: &HeaderMap,
    who: &Who,
) -> Result<Arc<crate::session::Session>, GatewayError> {
    let id = envelope::session_header(headers).ok_or(GatewayError::SessionRequired)?;
    let session = gateway
        .sessions
        .get(id)
        .ok_or(GatewayError::SessionNotFound)?;
    if session.owner.user() != who.user() || session.owner.credential() != who.credential() {
        return Err(GatewayError::SessionNotOwned);
    }
    Ok(session)
}

async fn answer_request(
    gateway: Arc<Gateway>,
    headers: &HeaderMap,
    message: Value,
    caller: Caller,
    who: Who,
    peer: SocketAddr,
) -> Response {
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = jsonrpc::method(&message).unwrap_or_default().to_owned();
    let caller = match caller {
        Caller::Handshake => {
            let requested = message
                .pointer("/params/protocolVersion")
                .and_then(Value::as_str);
            let version = requested
                .filter(|v| era::is_legacy_version(v))
                .unwrap_or(LATEST_LEGACY_VERSION);
            let capabilities = message
                .pointer("/params/capabilities")
                .cloned()
                .unwrap_or_else(|| serde_json::json!({}));
            Caller::Legacy(gateway.sessions.create(version, capabilities, who.clone()))
        }
        caller => caller,
    };
    if let Err(error) = gateway.preflight(&message, &caller, &who).await {
        return refuse(&gateway, &who, peer, &method, error, id).await;
    }
    let caller_session_id = caller.session().map(|session| session.id.clone());
    let session_header = (method == "initialize")
        .then(|| caller.session().map(|s| s.id.clone()))
        .flatten();
    let accepts_stream = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if method == "subscriptions/listen" && caller.is_modern() && accepts_stream {
        return listen_response(gateway, id, &message, &who);
    }
    let streams = accepts_stream
        && !matches!(
            method.as_str(),
            "initialize"
                | "server/discover"
                | "ping"
                | "logging/setLevel"
                | "tools/list"
                | "prompts/list"
                | "resources/list"
                | "resources/templates/list"
        );
    let cancel = match caller.session() {
        Some(session) => session.begin_call(&jsonrpc::id_key(&id)),
        None => CancellationToken::new(),
    };
    if !streams {
        let modern = caller.is_modern();
        let call = Call {
            id: id.clone(),
            message,
            caller,
            stream: None,
            cancel,
            trail: Trail::new(Some(&who), peer, &method, caller_session_id.clone()),
            who,
        };
        let response = gateway.handle_request(&call).await;
        if let Some(session) = call.caller.session() {
            session.end_call(&jsonrpc::id_key(&id));
        }
        return json_response(response, modern, session_header);
    }
    let modern = caller.is_modern();
    let (sender, mut receiver) = mpsc::channel(STREAM_BUFFER);
    let call = Call {
        id: id.clone(),
        message,
        caller,
        stream: Some(sender.clone()),
        cancel,
        trail: Trail::new(Some(&who), peer, &method, caller_session_id),
        who,
    };
    let task = tokio::spawn(async move {
        let response = gateway.handle_request(&call).await;
        if let Some(session) = call.caller.session() {
            session.end_call(&jsonrpc::id_key(&id));
        }
        drop(call);
        let _ = sender.send(response).await;
    });
    // In 2026-07-28 a closed response stream is the client's cancellation; in earlier versions
    // a disconnect is not, and the call runs to completion.
    let guard = modern.then(|| AbortOnDrop(task.abort_handle()));
    // The answer is plain JSON unless something must be streamed before it: only then is the
    // HTTP status committed to 200 and an SSE stream opened.
    let Some(first) = receiver.recv().await else {
        return refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the request ended without an answer",
        );
    };
    if jsonrpc::kind(&first) == Kind::Response {
        return json_response(first, modern, None);
    }
    let messages = futures::stream::once(async move { first }).chain(ReceiverStream::new(receiver));
    sse_response(messages, guard)
}

/// A JSON answer. For 2026-07-28 clients the HTTP status follows the error code, as the
/// transport requires (unknown method 404; header, capability and version errors 400).
fn json_response(response: Value, modern: bool, session_id: Option<String>) -> Response {
    let status = match jsonrpc::error_code(&response) {
        Some(code::AUDIT_UNAVAILABLE) => StatusCode::SERVICE_UNAVAILABLE,
        Some(code::METHOD_NOT_FOUND) if modern => StatusCode::NOT_FOUND,
        Some(
            code::HEADER_MISMATCH
            | code::MISSING_REQUIRED_CLIENT_CAPABILITY
            | code::UNSUPPORTED_PROTOCOL_VERSION
            | code::PARSE_ERROR
            | code::INVALID_REQUEST,
        ) if modern => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let mut http_response = (status, axum::Json(response)).into_response();
    if let Some(session_id) = session_id.and_then(|s| HeaderValue::from_str(&s).ok()) {
        http_response
            .headers_mut()
            .insert("mcp-session-id", session_id);
    }
    http_response
}

fn listen_response(gateway: Arc<Gateway>, id: Value, message: &Value, who: &Who) -> Response {
    let revoked = gateway.streams.register(who);
    let filter = ListenFilter::from_params(message.pointer("/params/notifications"));
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    let task = tokio::spawn(gateway.run_listen(id, filter, sender, revoked));
    sse_response(
        ReceiverStream::new(receiver),
        Some(AbortOnDrop(task.abort_handle())),
    )
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn sse_response(
    messages: impl Stream<Item = Value> + Send + 'static,
    guard: Option<AbortOnDrop>,
) -> Response {
    let events = messages.map(move |message| {
        // The guard lives as long as the body stream: dropping the body aborts the work.
        let _keep = &guard;
        Ok::<Event, Infallible>(Event::default().data(message.to_string()))
    });
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

async fn get_mcp(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let missing = "GET opens a legacy session stream and needs Mcp-Session-Id; 2026-07-28 clients use subscriptions/listen";
    let session = match session_request(&gateway, &headers, peer, missing).await {
        Ok(session) => session,
        Err(refused) => return refused,
    };
    let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
    session.attach_get_stream(sender.clone());
    let task = tokio::spawn(Arc::clone(&gateway).run_session_stream(session, sender));
    sse_response(
        ReceiverStream::new(receiver),
        Some(AbortOnDrop(task.abort_handle())),
    )
}

async fn delete_mcp(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let missing = "DELETE ends a legacy session and needs Mcp-Session-Id";
    match session_request(&gateway, &headers, peer, missing).await {
        Ok(session) => {
            gateway.sessions.remove(&session.id);
            StatusCode::OK.into_response()
        }
        Err(refused) => refused,
    }
}

/// The session a GET or DELETE is about: the caller is identified, the request must name a
/// session (405 otherwise, as these methods mean nothing without one), and it must be theirs.
async fn session_request(
    gateway: &Gateway,
    headers: &HeaderMap,
    peer: SocketAddr,
    missing: &str,
) -> Result<Arc<crate::session::Session>, Response> {
    let who = identify(gateway, headers, peer).await?;
    let trail = Trail::new(Some(&who), peer, "(session)", None);
    // Each refusal stands whether or not its receipt is written.
    if envelope::session_header(headers).is_none() {
        let _ = gateway
            .audit
            .record_refusal(&trail, RefusalKind::Invalid)
            .await;
        return Err(method_not_allowed(missing));
    }
    match owned_session(gateway, headers, &who) {
        Ok(session) => Ok(session),
        Err(error) => {
            let _ = gateway
                .audit
                .record_decision(&trail, Verdict::Error, Some(&error))
                .await;
            Err(error_response(&error, Value::Null))
        }
    }
}

/// RFC 9728 protected resource metadata, served without authentication so clients can start
/// the authorization flow.
async fn resource_metadata(State(gateway): State<Arc<Gateway>>) -> Response {
    match gateway.identity.resource_metadata() {
        Some((_, document)) => {
            ([(header::CONTENT_TYPE, "application/json")], document).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The state of every upstream, for `gatehouse server list`. Answered only to loopback
/// callers until operators authenticate.
/// Where an upstream's authorization server sends a person back after they signed in: the
/// gateway exchanges the code and keeps the grant; the person never sees a token.
async fn oauth_callback(
    State(gateway): State<Arc<Gateway>>,
    axum::extract::Path(server): axum::extract::Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let Some(client) = gateway.credentials.oauth_client(&server) else {
        return refusal(
            StatusCode::NOT_FOUND,
            &format!("server `{server}` does not sign people in with OAuth"),
        );
    };
    match client.complete(query.as_deref().unwrap_or_default()).await {
        Ok(user) => {
            tracing::info!(%server, %user, "person connected their account");
            (
                StatusCode::OK,
                format!("`{user}` is connected to server `{server}`. You can close this window and call the tool again.\n"),
            )
                .into_response()
        }
        Err(error) => {
            tracing::info!(%server, %error, "sign-in not completed");
            refusal(
                StatusCode::BAD_REQUEST,
                &format!("sign-in not completed: {error}"),
            )
        }
    }
}

async fn admin_servers(
    State(gateway): State<Arc<Gateway>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return refusal(
            StatusCode::FORBIDDEN,
            "the admin API answers only on loopback",
        );
    }
    let servers: Vec<Value> = gateway
        .hub
        .upstreams()
        .iter()
        .map(|upstream| {
            let status = upstream.status();
            let (state, reason) = match &status.state {
                gatehouse_mcp::upstream::Status::Stopped => ("stopped", None),
                gatehouse_mcp::upstream::Status::Starting => ("starting", None),
                gatehouse_mcp::upstream::Status::Running => ("running", None),
                gatehouse_mcp::upstream::Status::Failed { reason } => {
                    ("failed", Some(reason.clone()))
                }
            };
            serde_json::json!({
                "name": upstream.name().as_str(),
                "state": state,
                "reason": reason,
                "era": upstream.known_era().map(|era| era.version().to_owned()),
                "processes": status.processes,
                "pids": status.pids,
                "in_flight": status.in_flight,
                "idle_for_secs": status.idle_for.map(|d| d.as_secs()),
                "idle_deadline_secs": status.idle_deadline.map(|d| d.as_secs()),
            })
        })
        .collect();
    axum::Json(serde_json::json!({"servers": servers})).into_response()
}

/// Prometheus metrics: the audit writer (queue depth, appends, failures), sessions and each
/// upstream's processes and calls in flight. Answered only to loopback callers.
async fn metrics(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !peer.ip().is_loopback() {
        return refusal(StatusCode::FORBIDDEN, "metrics are served only on loopback");
    }
    use std::fmt::Write as _;
    let mut text = String::new();
    let mut gauge = |name: &str, help: &str, value: String| {
        let _ = writeln!(
            text,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    };
    // Where receipts are off there is no writer, and no audit series.
    if let Some(audit) = gateway.audit.stats() {
        let series = [
            (
                "gatehouse_audit_queue_depth",
                "Receipts waiting to be written.",
                u64::try_from(audit.queue_depth).unwrap_or(u64::MAX),
            ),
            (
                "gatehouse_audit_healthy",
                "1 while receipts are being written.",
                u64::from(audit.healthy),
            ),
            (
                "gatehouse_audit_appended_total",
                "Receipts written.",
                audit.appended,
            ),
            (
                "gatehouse_audit_failed_appends_total",
                "Batches that could not be written.",
                audit.failed_appends,
            ),
            (
                "gatehouse_audit_unrecorded_total",
                "Receipts not written (fail-open).",
                audit.unrecorded,
            ),
            (
                "gatehouse_audit_checkpoints_total",
                "Signed checkpoints written.",
                audit.checkpoints,
            ),
            (
                "gatehouse_audit_export_dropped_total",
                "Receipts left out of an export sink's copy because its queue was full.",
                audit.export_dropped,
            ),
            (
                "gatehouse_audit_export_failures_total",
                "Batches an export sink (file, stdout, OTLP) failed to write.",
                audit.export_failures,
            ),
        ];
        for (name, help, value) in series {
            gauge(name, help, value.to_string());
        }
    }
    gauge(
        "gatehouse_sessions",
        "Open legacy client sessions.",
        gateway.sessions.len().to_string(),
    );
    let _ = writeln!(
        text,
        "# HELP gatehouse_upstream_processes Running processes or connections per server.\n# TYPE gatehouse_upstream_processes gauge"
    );
    let statuses: Vec<_> = gateway
        .hub
        .upstreams()
        .iter()
        .map(|upstream| (upstream.name().to_string(), upstream.status()))
        .collect();
    for (server, status) in &statuses {
        let _ = writeln!(
            text,
            "gatehouse_upstream_processes{{server=\"{server}\"}} {}",
            status.processes
        );
    }
    let _ = writeln!(
        text,
        "# HELP gatehouse_upstream_in_flight Calls in flight per server.\n# TYPE gatehouse_upstream_in_flight gauge"
    );
    for (server, status) in &statuses {
        let _ = writeln!(
            text,
            "gatehouse_upstream_in_flight{{server=\"{server}\"}} {}",
            status.in_flight
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn method_not_allowed(message: &str) -> Response {
    let mut response = refusal(StatusCode::METHOD_NOT_ALLOWED, message);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

impl Gateway {
    async fn handle_notification(&self, caller: &Caller, message: &Value) {
        match jsonrpc::method(message).unwrap_or_default() {
            "notifications/cancelled" => {
                if let (Some(session), Some(request_id)) =
                    (caller.session(), message.pointer("/params/requestId"))
                {
                    session.cancel_call(&jsonrpc::id_key(request_id));
                }
            }
            "notifications/roots/list_changed" => {
                for upstream in self.hub.upstreams() {
                    upstream.notify(message.clone()).await;
                }
            }
            _ => {}
        }
    }
}
