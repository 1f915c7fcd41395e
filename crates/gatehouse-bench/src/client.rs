//! A small MCP Streamable HTTP client made for load.
//!
//! One simulated client owns one HTTP/1.1 connection, kept alive between requests and opened
//! again after a transport error; requests are written over `hyper`'s connection API, without
//! a pool in between. Both protocol eras are spoken:
//!
//! - 2025-11-25: `initialize` (the reply's `Mcp-Session-Id` is kept), then
//!   `notifications/initialized`, then every request carries the session id and
//!   `MCP-Protocol-Version: 2025-11-25`.
//! - 2026-07-28: no handshake; every request carries the protocol version and the client
//!   capabilities in `params._meta`, and the headers `MCP-Protocol-Version`, `Mcp-Method` and,
//!   for `tools/call`, `Mcp-Name`.
//!
//! Replies are accepted as `application/json` or as a `text/event-stream` that carries the
//! response among any notifications; the whole body is read, so the connection stays reusable.

use std::net::{SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderName, HeaderValue};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpStream;

/// The protocol version of the session-based era.
pub const LEGACY_VERSION: &str = "2025-11-25";
/// The protocol version of the stateless era.
pub const MODERN_VERSION: &str = "2026-07-28";

const SESSION_ID: HeaderName = HeaderName::from_static("mcp-session-id");
const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
const MCP_METHOD: HeaderName = HeaderName::from_static("mcp-method");
const MCP_NAME: HeaderName = HeaderName::from_static("mcp-name");
const JSON: HeaderValue = HeaderValue::from_static("application/json");
const JSON_OR_STREAM: HeaderValue = HeaderValue::from_static("application/json, text/event-stream");
const TOOLS_CALL: HeaderValue = HeaderValue::from_static("tools/call");

/// Pages of `tools/list` followed at most, so a server that keeps returning a cursor cannot
/// keep a client busy forever.
const MAX_LIST_PAGES: usize = 100;
/// Bytes of an unexpected reply body kept in an error message.
const BODY_SNIPPET: usize = 200;

/// A protocol era, named by its version string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Era {
    /// 2025-11-25: sessions opened with `initialize`.
    #[serde(rename = "2025-11-25")]
    Legacy,
    /// 2026-07-28: stateless requests carrying `_meta`.
    #[serde(rename = "2026-07-28")]
    Modern,
}

impl Era {
    /// Both eras, oldest first.
    pub const ALL: [Era; 2] = [Era::Legacy, Era::Modern];

    /// The protocol version string.
    pub fn version(self) -> &'static str {
        match self {
            Era::Legacy => LEGACY_VERSION,
            Era::Modern => MODERN_VERSION,
        }
    }
}

impl std::fmt::Display for Era {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.version())
    }
}

impl FromStr for Era {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            LEGACY_VERSION | "legacy" => Ok(Era::Legacy),
            MODERN_VERSION | "modern" | "stateless" => Ok(Era::Modern),
            other => Err(format!(
                "unknown era `{other}`; use {LEGACY_VERSION} or {MODERN_VERSION}"
            )),
        }
    }
}

/// What the client says it accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accept {
    /// `application/json, text/event-stream`, as the specification requires of clients.
    #[default]
    JsonOrStream,
    /// `application/json` alone: a diagnostic, to see what a server's SSE answers cost.
    JsonOnly,
}

impl FromStr for Accept {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "both" => Ok(Accept::JsonOrStream),
            "json" => Ok(Accept::JsonOnly),
            other => Err(format!("unknown accept `{other}`; use both or json")),
        }
    }
}

/// Settings shared by every request of a client.
#[derive(Debug, Clone, Copy)]
pub struct ClientOptions {
    /// Deadline for one HTTP exchange, reply body included.
    pub timeout: Duration,
    /// The `Accept` header sent.
    pub accept: Accept,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            accept: Accept::JsonOrStream,
        }
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The URL is not one this client can use.
    #[error("unusable url: {0}")]
    Url(String),
    /// The TCP connection could not be opened.
    #[error("cannot connect: {0}")]
    Connect(#[source] std::io::Error),
    /// The HTTP exchange failed (connection reset, malformed HTTP).
    #[error("http: {0}")]
    Http(#[from] hyper::Error),
    /// No complete reply within the deadline.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The server answered with a status other than success.
    #[error("http status {status}: {body}")]
    Status {
        /// The status code.
        status: u16,
        /// The start of the reply body.
        body: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("json-rpc error {code}: {message}")]
    JsonRpc {
        /// The error code.
        code: i64,
        /// The error message.
        message: String,
    },
    /// The tool ran and reported failure (`isError: true`).
    #[error("the tool reported an error: {0}")]
    ToolFailed(String),
    /// The reply is not a well-formed answer to the request.
    #[error("protocol: {0}")]
    Protocol(String),
}

impl ClientError {
    /// A short, stable name for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Url(_) => "url",
            ClientError::Connect(_) => "connect",
            ClientError::Http(_) => "http",
            ClientError::Timeout(_) => "timeout",
            ClientError::Status { .. } => "status",
            ClientError::JsonRpc { .. } => "jsonrpc",
            ClientError::ToolFailed(_) => "tool",
            ClientError::Protocol(_) => "protocol",
        }
    }

    /// Whether the server no longer knows the session (404 on a session request).
    pub fn session_lost(&self) -> bool {
        matches!(self, ClientError::Status { status: 404, .. })
    }
}

/// Where the MCP endpoint is: a resolved address, the `Host` header, the request path and
/// headers sent with every request (an `Authorization` header, for example).
#[derive(Debug)]
pub struct Endpoint {
    url: String,
    address: SocketAddr,
    authority: HeaderValue,
    path: Uri,
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Endpoint {
    /// Parses an `http://host:port/path` URL and resolves its host once.
    pub fn parse(url: &str) -> Result<Arc<Self>, ClientError> {
        Self::with_headers(url, &[])
    }

    /// Like [`Endpoint::parse`], with `name: value` headers added to every request.
    pub fn with_headers(url: &str, headers: &[(String, String)]) -> Result<Arc<Self>, ClientError> {
        let unusable = |why: &str| ClientError::Url(format!("{url}: {why}"));
        let uri: Uri = url.parse().map_err(|_| unusable("not a URL"))?;
        if uri.scheme_str() != Some("http") {
            return Err(unusable("only http:// is supported"));
        }
        let authority = uri.authority().ok_or_else(|| unusable("no host"))?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let port = authority.port_u16().unwrap_or(80);
        let address = (host, port)
            .to_socket_addrs()
            .map_err(|error| unusable(&error.to_string()))?
            .next()
            .ok_or_else(|| unusable("the host resolves to no address"))?;
        let path = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|_| unusable("bad path"))?;
        let authority =
            HeaderValue::from_str(authority.as_str()).map_err(|_| unusable("bad host"))?;
        let headers = headers
            .iter()
            .map(|(name, value)| {
                let bad = || ClientError::Url(format!("header `{name}` is not valid"));
                Ok((
                    HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?,
                    HeaderValue::from_str(value).map_err(|_| bad())?,
                ))
            })
            .collect::<Result<_, ClientError>>()?;
        Ok(Arc::new(Self {
            url: url.to_owned(),
            address,
            authority,
            path,
            headers,
        }))
    }

    /// The URL as given.
    pub fn url(&self) -> &str {
        &self.url
    }
}

/// A `tools/call` request prepared once and sent many times: only the id changes.
#[derive(Debug, Clone)]
pub struct PreparedCall {
    era: Era,
    before_id: Bytes,
    after_id: Bytes,
    tool: HeaderValue,
}

impl PreparedCall {
    /// Prepares a call of `tool` with `arguments` in `era`.
    pub fn new(era: Era, tool: &str, arguments: &Value) -> Result<Self, ClientError> {
        let mut params = json!({ "name": tool, "arguments": arguments });
        if era == Era::Modern {
            params["_meta"] = modern_meta();
        }
        let tool = HeaderValue::from_str(tool)
            .map_err(|_| ClientError::Url(format!("`{tool}` cannot be sent as Mcp-Name")))?;
        Ok(Self {
            era,
            before_id: Bytes::from_static(br#"{"jsonrpc":"2.0","id":"#),
            after_id: Bytes::from(format!(r#","method":"tools/call","params":{params}}}"#)),
            tool,
        })
    }

    fn body(&self, id: u64) -> Bytes {
        let id = id.to_string();
        let mut body =
            BytesMut::with_capacity(self.before_id.len() + id.len() + self.after_id.len());
        body.put_slice(&self.before_id);
        body.put_slice(id.as_bytes());
        body.put_slice(&self.after_id);
        body.freeze()
    }
}

/// One simulated MCP client: a connection, and in 2025-11-25 a session.
pub struct McpClient {
    endpoint: Arc<Endpoint>,
    era: Era,
    options: ClientOptions,
    connection: Option<SendRequest<Full<Bytes>>>,
    session: Option<HeaderValue>,
    next_id: u64,
}

/// What one request adds to the common headers.
#[derive(Clone, Copy)]
struct Extra<'a> {
    /// Whether this is `initialize`, which carries no version or session header.
    handshake: bool,
    method: Option<&'a HeaderValue>,
    name: Option<&'a HeaderValue>,
}

struct Reply {
    status: StatusCode,
    session: Option<HeaderValue>,
    event_stream: bool,
    body: Bytes,
}

impl McpClient {
    /// A client that has not yet connected; [`McpClient::start`] connects it.
    pub fn new(endpoint: Arc<Endpoint>, era: Era, options: ClientOptions) -> Self {
        Self {
            endpoint,
            era,
            options,
            connection: None,
            session: None,
            next_id: 1,
        }
    }

    /// The era this client speaks.
    pub fn era(&self) -> Era {
        self.era
    }

    /// Connects, and in 2025-11-25 opens the session.
    pub async fn start(&mut self) -> Result<(), ClientError> {
        match self.era {
            Era::Legacy => self.initialize().await,
            Era::Modern => self.ensure_connection().await,
        }
    }

    /// Opens a 2025-11-25 session: `initialize`, then `notifications/initialized`.
    pub async fn initialize(&mut self) -> Result<(), ClientError> {
        self.session = None;
        let id = self.take_id();
        let message = json!({
            "jsonrpc": "2.0",
            "id": id,
            "method": "initialize",
            "params": {
                "protocolVersion": LEGACY_VERSION,
                "capabilities": {},
                "clientInfo": { "name": "mcp-load", "version": env!("CARGO_PKG_VERSION") },
            },
        });
        let extra = Extra {
            handshake: true,
            method: None,
            name: None,
        };
        let reply = self.post(Bytes::from(message.to_string()), extra).await?;
        let _: Value = parse_result(&reply, id)?;
        self.session = reply.session;
        let initialized =
            Bytes::from_static(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
        let extra = Extra {
            handshake: false,
            method: None,
            name: None,
        };
        let reply = self.post(initialized, extra).await?;
        check_status(&reply)
    }

    /// The session id the server gave, if any.
    pub fn session_id(&self) -> Option<&str> {
        self.session.as_ref().and_then(|v| v.to_str().ok())
    }

    /// Lists every tool name, following `nextCursor`.
    pub async fn list_tools(&mut self) -> Result<Vec<String>, ClientError> {
        #[derive(Deserialize)]
        struct Tool {
            name: String,
        }
        #[derive(Deserialize)]
        struct Page {
            tools: Vec<Tool>,
            #[serde(rename = "nextCursor")]
            next_cursor: Option<String>,
        }
        let mut names = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_LIST_PAGES {
            let params = match &cursor {
                Some(cursor) => json!({ "cursor": cursor }),
                None => json!({}),
            };
            let page: Page = self.request("tools/list", params).await?;
            names.extend(page.tools.into_iter().map(|t| t.name));
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(names),
            }
        }
        Err(ClientError::Protocol(format!(
            "tools/list returned more than {MAX_LIST_PAGES} pages"
        )))
    }

    /// Sends a request (not `tools/call`) and returns its result.
    pub async fn request<T: DeserializeOwned>(
        &mut self,
        method: &str,
        mut params: Value,
    ) -> Result<T, ClientError> {
        if self.era == Era::Modern {
            params["_meta"] = modern_meta();
        }
        let id = self.take_id();
        let message = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        let method = HeaderValue::from_str(method)
            .map_err(|_| ClientError::Protocol(format!("`{method}` is not a header value")))?;
        let extra = Extra {
            handshake: false,
            method: Some(&method),
            name: None,
        };
        let reply = self.post(Bytes::from(message.to_string()), extra).await?;
        parse_result(&reply, id)
    }

    /// Calls a prepared tool call once; success means a result without `isError`.
    pub async fn call(&mut self, call: &PreparedCall) -> Result<(), ClientError> {
        if call.era != self.era {
            return Err(ClientError::Protocol(format!(
                "a {} call sent by a {} client",
                call.era, self.era
            )));
        }
        #[derive(Deserialize)]
        struct Outcome {
            #[serde(default, rename = "isError")]
            is_error: bool,
        }
        let id = self.take_id();
        let extra = Extra {
            handshake: false,
            method: Some(&TOOLS_CALL),
            name: Some(&call.tool),
        };
        let reply = self.post(call.body(id), extra).await?;
        let outcome: Outcome = parse_result(&reply, id)?;
        if outcome.is_error {
            return Err(ClientError::ToolFailed(snippet(&reply.body)));
        }
        Ok(())
    }

    fn take_id(&mut self) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    async fn ensure_connection(&mut self) -> Result<(), ClientError> {
        let reusable = match &mut self.connection {
            Some(sender) => sender.ready().await.is_ok(),
            None => false,
        };
        if !reusable {
            self.connection = None;
            let stream = TcpStream::connect(self.endpoint.address)
                .await
                .map_err(ClientError::Connect)?;
            stream.set_nodelay(true).map_err(ClientError::Connect)?;
            let (sender, connection) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            // The connection task ends when the server closes the connection or the sender is
            // dropped; its error, if any, reaches the next request through the sender.
            tokio::spawn(async move {
                let _ = connection.await;
            });
            self.connection = Some(sender);
        }
        Ok(())
    }

    async fn post(&mut self, body: Bytes, extra: Extra<'_>) -> Result<Reply, ClientError> {
        let timeout = self.options.timeout;
        match tokio::time::timeout(timeout, self.exchange(body, extra)).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(error)) => {
                // After a transport failure the connection is in an unknown state.
                if matches!(error, ClientError::Http(_) | ClientError::Connect(_)) {
                    self.connection = None;
                }
                Err(error)
            }
            Err(_) => {
                // A reply may still be on its way; this connection cannot be reused.
                self.connection = None;
                Err(ClientError::Timeout(timeout))
            }
        }
    }

    async fn exchange(&mut self, body: Bytes, extra: Extra<'_>) -> Result<Reply, ClientError> {
        let request = self.build_request(body, extra)?;
        self.ensure_connection().await?;
        let sender = self
            .connection
            .as_mut()
            .ok_or_else(|| ClientError::Protocol("no connection".to_owned()))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let session = response.headers().get(&SESSION_ID).cloned();
        let event_stream = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            session,
            event_stream,
            body,
        })
    }

    fn build_request(
        &self,
        body: Bytes,
        extra: Extra<'_>,
    ) -> Result<Request<Full<Bytes>>, ClientError> {
        let accept = match self.options.accept {
            Accept::JsonOrStream => JSON_OR_STREAM,
            Accept::JsonOnly => JSON,
        };
        let mut request = Request::post(self.endpoint.path.clone())
            .header(HOST, self.endpoint.authority.clone())
            .header(CONTENT_TYPE, JSON)
            .header(ACCEPT, accept)
            .body(Full::new(body))
            .map_err(|error| ClientError::Protocol(error.to_string()))?;
        let headers = request.headers_mut();
        for (name, value) in &self.endpoint.headers {
            headers.insert(name.clone(), value.clone());
        }
        if !extra.handshake {
            headers.insert(
                PROTOCOL_VERSION,
                HeaderValue::from_static(self.era.version()),
            );
            if let Some(session) = &self.session {
                headers.insert(SESSION_ID, session.clone());
            }
        }
        if self.era == Era::Modern {
            if let Some(method) = extra.method {
                headers.insert(MCP_METHOD, method.clone());
            }
            if let Some(name) = extra.name {
                headers.insert(MCP_NAME, name.clone());
            }
        }
        Ok(request)
    }
}

/// The `_meta` every 2026-07-28 request carries.
fn modern_meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
        "io.modelcontextprotocol/clientCapabilities": {},
    })
}

fn check_status(reply: &Reply) -> Result<(), ClientError> {
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(ClientError::Status {
            status: reply.status.as_u16(),
            body: snippet(&reply.body),
        })
    }
}

#[derive(Deserialize)]
struct Message<T> {
    #[serde(default)]
    id: Option<Value>,
    result: Option<T>,
    error: Option<RpcError>,
}

#[derive(Deserialize)]
struct RpcError {
    code: i64,
    message: String,
}

/// Finds the response to request `id` in a JSON or SSE reply and returns its result.
fn parse_result<T: DeserializeOwned>(reply: &Reply, id: u64) -> Result<T, ClientError> {
    check_status(reply)?;
    if !reply.event_stream {
        let message: Message<T> = serde_json::from_slice(&reply.body)
            .map_err(|error| ClientError::Protocol(format!("{error}: {}", snippet(&reply.body))))?;
        return into_result(message, id);
    }
    // An event stream may carry notifications and server requests before the response.
    for data in sse_data(&reply.body) {
        let Ok(message) = serde_json::from_slice::<Message<T>>(&data) else {
            continue;
        };
        if message.id.as_ref().and_then(Value::as_u64) == Some(id)
            && (message.result.is_some() || message.error.is_some())
        {
            return into_result(message, id);
        }
    }
    Err(ClientError::Protocol(format!(
        "the event stream ended without the response: {}",
        snippet(&reply.body)
    )))
}

fn into_result<T>(message: Message<T>, id: u64) -> Result<T, ClientError> {
    if let Some(error) = message.error {
        return Err(ClientError::JsonRpc {
            code: error.code,
            message: error.message,
        });
    }
    if message.id.as_ref().and_then(Value::as_u64) != Some(id) {
        return Err(ClientError::Protocol(format!(
            "reply id {:?} does not match request id {id}",
            message.id
        )));
    }
    message
        .result
        .ok_or_else(|| ClientError::Protocol("a reply with neither result nor error".to_owned()))
}

/// The `data` of each event in an SSE body, multi-line data joined with `\n`.
fn sse_data(body: &[u8]) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    let mut data: Vec<u8> = Vec::new();
    let mut has_data = false;
    for line in body.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            if has_data {
                events.push(std::mem::take(&mut data));
                has_data = false;
            }
            continue;
        }
        if let Some(value) = line.strip_prefix(b"data:") {
            let value = value.strip_prefix(b" ").unwrap_or(value);
            if has_data {
                data.push(b'\n');
            }
            data.extend_from_slice(value);
            has_data = true;
        }
    }
    if has_data {
        events.push(data);
    }
    events
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(BODY_SNIPPET)]);
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(event_stream: bool, body: &str) -> Reply {
        Reply {
            status: StatusCode::OK,
            session: None,
            event_stream,
            body: Bytes::from(body.to_owned()),
        }
    }

    fn check(event_stream: bool, body: &str, id: u64) -> Result<Value, String> {
        parse_result::<Value>(&reply(event_stream, body), id).map_err(|e| e.to_string())
    }

    #[test]
    fn replies_are_found_in_json_and_in_event_streams() {
        let cases: [(bool, &str, u64, Result<Value, String>); 6] = [
            (
                false,
                r#"{"jsonrpc":"2.0","id":3,"result":{"a":1}}"#,
                3,
                Ok(json!({"a":1})),
            ),
            (
                false,
                r#"{"jsonrpc":"2.0","id":3,"error":{"code":-32601,"message":"nope"}}"#,
                3,
                Err("json-rpc error -32601: nope".to_owned()),
            ),
            (
                true,
                "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{}}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n",
                7,
                Ok(json!({})),
            ),
            (
                true,
                "data: {\"jsonrpc\":\"2.0\",\r\ndata: \"id\":7,\"result\":{\"b\":2}}\r\n\r\n",
                7,
                Ok(json!({"b":2})),
            ),
            (
                true,
                ": keep-alive\n\n",
                7,
                Err(
                    "protocol: the event stream ended without the response: : keep-alive"
                        .to_owned(),
                ),
            ),
            (
                false,
                r#"{"jsonrpc":"2.0","id":4,"result":{}}"#,
                5,
                Err("protocol: reply id Some(Number(4)) does not match request id 5".to_owned()),
            ),
        ];
        for (event_stream, body, id, expected) in cases {
            assert_eq!(check(event_stream, body, id), expected, "{body}");
        }
    }

    #[test]
    fn prepared_calls_carry_the_id_and_the_modern_meta() {
        let call = PreparedCall::new(Era::Modern, "echo", &json!({"text": "hi"})).unwrap();
        let body: Value = serde_json::from_slice(&call.body(42)).unwrap();
        assert_eq!(body["id"], 42);
        assert_eq!(body["params"]["name"], "echo");
        assert_eq!(
            body["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"],
            MODERN_VERSION
        );
        let legacy = PreparedCall::new(Era::Legacy, "echo", &json!({})).unwrap();
        let body: Value = serde_json::from_slice(&legacy.body(1)).unwrap();
        assert!(body["params"].get("_meta").is_none());
    }

    #[test]
    fn eras_parse_from_their_versions() {
        assert_eq!("2025-11-25".parse(), Ok(Era::Legacy));
        assert_eq!("2026-07-28".parse(), Ok(Era::Modern));
        assert!("2024-11-05".parse::<Era>().is_err());
    }
}
