//! Which era a request belongs to, and the checks each era demands before anything else
//! happens: a legacy request must name a live session; a 2026-07-28 request must carry its
//! version and capabilities in `_meta`, and its `Mcp-Method`/`Mcp-Name` headers must match
//! the body exactly (the name header may be `=?base64?…?=` encoded).

use std::sync::Arc;

use gatehouse_mcp::era::{self, MODERN_VERSION};
use gatehouse_mcp::{headers, jsonrpc};
use http::HeaderMap;
use serde_json::Value;

use crate::error::GatewayError;
use crate::identity::Who;
use crate::session::{Session, SessionTable};

/// Who sent a request, by era.
#[derive(Clone)]
pub enum Caller {
    /// A legacy client inside its session.
    Legacy(Arc<Session>),
    /// A legacy client opening a session with `initialize`.
    Handshake,
    /// A 2026-07-28 client; everything about it is on the request.
    Modern(ModernCaller),
}

/// What a 2026-07-28 request says about its client.
#[derive(Clone, Debug)]
pub struct ModernCaller {
    /// `_meta` client capabilities.
    pub capabilities: Value,
    /// `_meta` log level, if the client opted in to log messages.
    pub log_level: Option<String>,
    /// The `Mcp-Param-*` headers, by lower-case name.
    pub param_headers: Vec<(String, String)>,
}

impl ModernCaller {
    /// The raw value of an `Mcp-Param-*` header, by lower-case name.
    pub fn param_header(&self, name: &str) -> Option<&str> {
        self.param_headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Caller {
    /// Whether the caller speaks 2026-07-28.
    pub fn is_modern(&self) -> bool {
        matches!(self, Caller::Modern(_))
    }

    /// The client's declared capabilities.
    pub fn capabilities(&self) -> Value {
        match self {
            Caller::Legacy(session) => session.capabilities.clone(),
            Caller::Modern(modern) => modern.capabilities.clone(),
            Caller::Handshake => Value::Object(Default::default()),
        }
    }

    /// The log level the client wants, if any.
    pub fn log_level(&self) -> Option<String> {
        match self {
            Caller::Legacy(session) => session.log_level(),
            Caller::Modern(modern) => modern.log_level.clone(),
            Caller::Handshake => None,
        }
    }

    /// Who the request is made for, which picks the process of an isolated server.
    pub fn requester(&self, who: &Who) -> gatehouse_mcp::upstream::Requester {
        gatehouse_mcp::upstream::Requester {
            user: who.user().map(str::to_owned),
            session: self.session().map(|session| session.id.clone()),
            subject_token: who.subject_token(),
        }
    }

    /// The session, for a legacy caller.
    pub fn session(&self) -> Option<&Arc<Session>> {
        match self {
            Caller::Legacy(session) => Some(session),
            _ => None,
        }
    }
}

/// Methods that 2026-07-28 removed; a modern request for one gets 404 and -32601.
const REMOVED_METHODS: &[&str] = &[
    "initialize",
    "ping",
    "logging/setLevel",
    "resources/subscribe",
    "resources/unsubscribe",
    "tasks/result",
    "tasks/list",
];

const SESSION_HEADER: &str = "mcp-session-id";
const VERSION_HEADER: &str = "mcp-protocol-version";
const METHOD_HEADER: &str = "mcp-method";
const NAME_HEADER: &str = "mcp-name";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The session named by a request's `Mcp-Session-Id` header, if any.
pub fn session_header(headers: &HeaderMap) -> Option<&str> {
    header(headers, SESSION_HEADER)
}

/// Decides the era of a POSTed message and runs that era's checks.
pub fn classify(
    headers: &HeaderMap,
    message: &Value,
    sessions: &SessionTable,
    who: &Who,
) -> Result<Caller, GatewayError> {
    let meta_version = message
        .pointer("/params/_meta")
        .and_then(|meta| meta.get(era::META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let header_version = header(headers, VERSION_HEADER);
    let method = jsonrpc::method(message);
    let modern = meta_version.is_some()
        || header_version == Some(MODERN_VERSION)
        || method == Some("server/discover");
    if modern {
        // A 2026-07-28 request ignores any session id it carries.
        return check_modern(headers, message).map(Caller::Modern);
    }
    if method == Some("initialize") {
        return Ok(Caller::Handshake);
    }
    let id = session_header(headers).ok_or(GatewayError::SessionRequired)?;
    let session = sessions.get(id).ok_or(GatewayError::SessionNotFound)?;
    // A session is bound to the identity and credential that opened it.
    if !session.is_owned_by(who) {
        return Err(GatewayError::SessionNotOwned);
    }
    if let Some(version) = header_version
        && !era::is_legacy_version(version)
    {
        return Err(GatewayError::UnsupportedVersion(version.to_owned()));
    }
    Ok(Caller::Legacy(session))
}

fn check_modern(headers: &HeaderMap, message: &Value) -> Result<ModernCaller, GatewayError> {
    let method = jsonrpc::method(message).unwrap_or_default();
    let is_request = jsonrpc::kind(message) == jsonrpc::Kind::Request;
    let meta = message.pointer("/params/_meta").and_then(Value::as_object);
    let version = meta
        .and_then(|meta| meta.get(era::META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    // Methods this era removed are refused before anything else is examined.
    if REMOVED_METHODS.contains(&method) {
        return Err(GatewayError::MethodNotFound(method.to_owned()));
    }
    if let (Some(header_version), Some(version)) = (header(headers, VERSION_HEADER), version)
        && header_version != version
    {
        return Err(GatewayError::HeaderMismatch(format!(
            "MCP-Protocol-Version header `{header_version}` does not match _meta protocol version `{version}`"
        )));
    }
    if is_request {
        let Some(version) = version else {
            return Err(GatewayError::MissingEnvelope(format!(
                "missing _meta[\"{}\"]: every 2026-07-28 request carries its protocol version",
                era::META_PROTOCOL_VERSION
            )));
        };
        if version != MODERN_VERSION {
            return Err(GatewayError::UnsupportedVersion(version.to_owned()));
        }
    }
    match single_header(headers, METHOD_HEADER)? {
        None => {
            return Err(GatewayError::HeaderMismatch(
                "missing Mcp-Method header: it must repeat the body's method".to_owned(),
            ));
        }
        Some(value) if value != method => {
            return Err(GatewayError::HeaderMismatch(format!(
                "Mcp-Method header `{value}` does not match the body's method `{method}`"
            )));
        }
        Some(_) => {}
    }
    if let Some(member) = headers::name_member(method) {
        let body_name = message
            .get("params")
            .and_then(|p| p.get(member))
            .and_then(Value::as_str);
        let header_name = match single_header(headers, NAME_HEADER)? {
            None => None,
            Some(raw) => Some(headers::decode_value(raw).ok_or_else(|| {
                GatewayError::HeaderMismatch("Mcp-Name header is not valid Base64".to_owned())
            })?),
        };
        match (header_name, body_name) {
            (None, _) => {
                return Err(GatewayError::HeaderMismatch(format!(
                    "missing Mcp-Name header: it must repeat params.{member}"
                )));
            }
            (Some(header_name), Some(body_name)) if header_name == body_name => {}
            (Some(header_name), _) => {
                return Err(GatewayError::HeaderMismatch(format!(
                    "Mcp-Name header `{}` does not match params.{member}",
                    header_name.escape_debug()
                )));
            }
        }
    }
    if is_request
        && meta
            .and_then(|meta| meta.get(era::META_CLIENT_CAPABILITIES))
            .is_none()
    {
        return Err(GatewayError::MissingEnvelope(format!(
            "missing _meta[\"{}\"]: every 2026-07-28 request carries the client's capabilities",
            era::META_CLIENT_CAPABILITIES
        )));
    }
    Ok(ModernCaller {
        capabilities: meta
            .and_then(|meta| meta.get(era::META_CLIENT_CAPABILITIES))
            .cloned()
            .unwrap_or_else(|| Value::Object(Default::default())),
        log_level: meta
            .and_then(|meta| meta.get(era::META_LOG_LEVEL))
            .and_then(Value::as_str)
            .map(str::to_owned),
        param_headers: param_headers(headers)?,
    })
}

/// A header that must appear at most once: two copies could be read differently by two
/// hops, so they are refused.
fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, GatewayError> {
    let mut values = headers.get_all(name).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(GatewayError::HeaderMismatch(format!(
            "the {name} header appears more than once"
        )));
    }
    match first {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            GatewayError::HeaderMismatch(format!("the {name} header is not printable ASCII"))
        }),
    }
}

fn param_headers(headers: &HeaderMap) -> Result<Vec<(String, String)>, GatewayError> {
    let mut found = Vec::new();
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with(headers::PARAM_HEADER_PREFIX)
            && let Some(value) = single_header(headers, name)?
        {
            found.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok(found)
}
