//! The one closed error type of the request path and its single mapping to a JSON-RPC error
//! and an HTTP status. The client sees a safe message; the log gets the detail.

use gatehouse_mcp::hub::RouteError;
use gatehouse_mcp::jsonrpc::{self, code};
use gatehouse_mcp::upstream::UpstreamError;
use http::StatusCode;
use serde_json::{Value, json};

/// Everything that can end a request early.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The body is not JSON.
    #[error("the body is not valid JSON: {0}")]
    Parse(String),
    /// The JSON is not an acceptable JSON-RPC message.
    #[error("{0}")]
    InvalidRequest(String),
    /// The parameters are wrong.
    #[error("{0}")]
    InvalidParams(String),
    /// A 2026-07-28 request lacks its envelope (`_meta` protocol version or capabilities).
    #[error("{0}")]
    MissingEnvelope(String),
    /// The protocol version is not one the gateway speaks.
    #[error("protocol version `{0}` is not supported")]
    UnsupportedVersion(String),
    /// `Mcp-Method`/`Mcp-Name` disagree with the body.
    #[error("{0}")]
    HeaderMismatch(String),
    /// No such method.
    #[error("method `{0}` is not supported")]
    MethodNotFound(String),
    /// The name, URI or task id routes nowhere.
    #[error(transparent)]
    Route(#[from] RouteError),
    /// A legacy request named a session the gateway does not know (ended or never existed).
    #[error("session not found; start a new one with initialize")]
    SessionNotFound,
    /// The session belongs to another identity or credential.
    #[error("this session belongs to another identity; start your own with initialize")]
    SessionNotOwned,
    /// A legacy request other than initialize came without a session id.
    #[error("missing Mcp-Session-Id header; send initialize first")]
    SessionRequired,
    /// The upstream could not be reached or failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// The request needs something from the client it cannot provide.
    #[error("{0}")]
    CannotBridge(String),
    /// A 2026-07-28 client lacks a capability or extension the request needs.
    #[error("{message}")]
    MissingCapability {
        /// What is missing, in words.
        message: String,
        /// The capabilities required, as `data.requiredCapabilities`.
        required: Value,
    },
    /// The policy does not allow this caller to do this.
    #[error("access denied: {reason}")]
    PolicyDenied {
        /// The decision's sentence.
        reason: String,
        /// The rules that decided.
        rules: Vec<String>,
        /// The hash of the policy in force.
        policy_hash: String,
    },
    /// The receipt could not be written and the audit fails closed: nothing was forwarded.
    #[error(
        "the audit trail cannot be written, so the request was refused and nothing was forwarded; try again shortly"
    )]
    AuditUnavailable(String),
    /// The person must sign in to an upstream first; for clients that take URL elicitations.
    #[error("{message}")]
    SignInRequired {
        /// What to do, with the address.
        message: String,
        /// Where to sign in.
        url: String,
    },
    /// The upstream answered with this JSON-RPC error object; it is passed on as it is.
    #[error("the server answered with an error")]
    Relayed(Value),
}

impl GatewayError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i64 {
        match self {
            GatewayError::Parse(_) => code::PARSE_ERROR,
            GatewayError::InvalidRequest(_)
            | GatewayError::SessionRequired
            | GatewayError::SessionNotFound
            | GatewayError::SessionNotOwned => code::INVALID_REQUEST,
            GatewayError::InvalidParams(_)
            | GatewayError::MissingEnvelope(_)
            | GatewayError::Route(_) => code::INVALID_PARAMS,
            GatewayError::UnsupportedVersion(_) => code::UNSUPPORTED_PROTOCOL_VERSION,
            GatewayError::HeaderMismatch(_) => code::HEADER_MISMATCH,
            GatewayError::MethodNotFound(_) => code::METHOD_NOT_FOUND,
            GatewayError::Upstream(UpstreamError::Timeout { .. }) => code::TIMEOUT,
            GatewayError::Upstream(_) => code::UPSTREAM_ERROR,
            GatewayError::CannotBridge(_) => code::INTERNAL_ERROR,
            GatewayError::MissingCapability { .. } => code::MISSING_REQUIRED_CLIENT_CAPABILITY,
            GatewayError::PolicyDenied { .. } => code::POLICY_DENIED,
            GatewayError::AuditUnavailable(_) => code::AUDIT_UNAVAILABLE,
            GatewayError::SignInRequired { .. } => code::URL_ELICITATION_REQUIRED,
            GatewayError::Relayed(error) => error
                .get("code")
                .and_then(Value::as_i64)
                .unwrap_or(code::INTERNAL_ERROR),
        }
    }

    /// The HTTP status when the error is the whole answer to a POST.
    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::Parse(_)
            | GatewayError::InvalidRequest(_)
            | GatewayError::MissingEnvelope(_)
            | GatewayError::UnsupportedVersion(_)
            | GatewayError::HeaderMismatch(_)
            | GatewayError::SessionRequired
            | GatewayError::MissingCapability { .. } => StatusCode::BAD_REQUEST,
            GatewayError::SessionNotFound => StatusCode::NOT_FOUND,
            GatewayError::SessionNotOwned => StatusCode::FORBIDDEN,
            GatewayError::MethodNotFound(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::OK,
        }
    }

    /// Extra data for the client.
    fn data(&self) -> Option<Value> {
        match self {
            GatewayError::UnsupportedVersion(requested) => {
                // Stateless requests can only move to the stateless version; a legacy client
                // reaches the others through initialize.
                Some(
                    json!({"supported": [gatehouse_mcp::era::MODERN_VERSION], "requested": requested}),
                )
            }
            GatewayError::PolicyDenied { rules, .. } => Some(json!({"rules": rules})),
            GatewayError::MissingCapability { required, .. } => {
                Some(json!({"requiredCapabilities": required}))
            }
            GatewayError::SignInRequired { message, url } => Some(json!({"elicitations": [{
                "mode": "url",
                "elicitationId": uuid::Uuid::new_v4().to_string(),
                "url": url,
                "message": message,
            }]})),
            _ => None,
        }
    }

    /// The JSON-RPC error response for request `id`.
    pub fn to_message(&self, id: Value) -> Value {
        if let GatewayError::Relayed(error) = self {
            return json!({"jsonrpc": "2.0", "id": id, "error": error});
        }
        jsonrpc::error(id, self.code(), &self.to_string(), self.data())
    }
}
