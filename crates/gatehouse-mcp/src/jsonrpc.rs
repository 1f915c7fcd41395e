//! Raw JSON-RPC 2.0 messages. The gateway keeps every message it forwards as a
//! `serde_json::Value` and edits only the members it must rewrite (ids, names, URIs, progress
//! tokens), so fields it does not know pass through unchanged.

use serde_json::{Map, Value, json};

/// Standard and MCP error codes used by the gateway.
pub mod code {
    /// The body is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a valid request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad parameters (also: resource not found, since 2026-07-28).
    pub const INVALID_PARAMS: i64 = -32602;
    /// The gateway failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// An upstream server failed or could not be reached (implementation-defined range).
    pub const UPSTREAM_ERROR: i64 = -32001;
    /// The call ran past its deadline (implementation-defined range).
    pub const TIMEOUT: i64 = -32002;
    /// The gateway's policy does not allow the call (implementation-defined range).
    pub const POLICY_DENIED: i64 = -32003;
    /// The audit trail cannot be written and fails closed (implementation-defined range).
    pub const AUDIT_UNAVAILABLE: i64 = -32004;
    /// `Mcp-Method` / `Mcp-Name` headers disagree with the body (2026-07-28).
    pub const HEADER_MISMATCH: i64 = -32020;
    /// A client capability the request needs was not declared (2026-07-28).
    pub const MISSING_REQUIRED_CLIENT_CAPABILITY: i64 = -32021;
    /// The protocol version is not supported (2026-07-28).
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// The person must visit a URL (here: sign in to an upstream) before the request can go on.
    pub const URL_ELICITATION_REQUIRED: i64 = -32042;
}

/// What kind of JSON-RPC message a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Has `method` and `id`.
    Request,
    /// Has `method` and no `id`.
    Notification,
    /// Has `id` and `result` or `error`, no `method`.
    Response,
    /// Anything else.
    Invalid,
}

/// Classifies a message.
pub fn kind(message: &Value) -> Kind {
    let Some(object) = message.as_object() else {
        return Kind::Invalid;
    };
    let has_id = object.get("id").is_some_and(valid_id);
    match object.get("method") {
        Some(Value::String(_)) if has_id => Kind::Request,
        Some(Value::String(_)) if !object.contains_key("id") => Kind::Notification,
        Some(_) => Kind::Invalid,
        None if has_id && (object.contains_key("result") ^ object.contains_key("error")) => {
            Kind::Response
        }
        None => Kind::Invalid,
    }
}

/// A JSON-RPC id must be a string or an integer.
pub fn valid_id(id: &Value) -> bool {
    matches!(id, Value::String(_)) || id.as_i64().is_some() || id.as_u64().is_some()
}

/// The `method` of a request or notification.
pub fn method(message: &Value) -> Option<&str> {
    message.get("method").and_then(Value::as_str)
}

/// A request message.
pub fn request(id: Value, method: &str, params: Option<Value>) -> Value {
    let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
    if let Some(params) = params {
        message["params"] = params;
    }
    message
}

/// A notification message.
pub fn notification(method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "method": method, "params": params})
}

/// A success response.
pub fn result(id: Value, result: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "result": result})
}

/// An error response. `id` is `null` when the request's id could not be read.
pub fn error(id: Value, code: i64, message: &str, data: Option<Value>) -> Value {
    let mut error = json!({"code": code, "message": message});
    if let Some(data) = data {
        error["data"] = data;
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// The `error.code` of an error response.
pub fn error_code(message: &Value) -> Option<i64> {
    message.get("error")?.get("code")?.as_i64()
}

/// A stable text key for an id, used to index maps of pending requests.
pub fn id_key(id: &Value) -> String {
    match id {
        Value::String(text) => format!("s:{text}"),
        other => format!("n:{other}"),
    }
}

/// Mutable access to `params._meta`, creating both objects if absent. Returns `None` if
/// `params` exists but is not an object.
pub fn meta_mut(message: &mut Value) -> Option<&mut Map<String, Value>> {
    let object = message.as_object_mut()?;
    let params = object
        .entry("params")
        .or_insert_with(|| Value::Object(Map::new()));
    let params = params.as_object_mut()?;
    let meta = params
        .entry("_meta")
        .or_insert_with(|| Value::Object(Map::new()));
    meta.as_object_mut()
}
