//! The two eras of MCP. Up to 2025-11-25 a client opens a session with `initialize`; from
//! 2026-07-28 every request stands alone and carries its version and capabilities in `_meta`.

use serde_json::Value;

/// The stateless protocol version.
pub const MODERN_VERSION: &str = "2026-07-28";
/// The newest version that uses the `initialize` handshake.
pub const LATEST_LEGACY_VERSION: &str = "2025-11-25";
/// Handshake versions the gateway accepts from clients, newest first.
pub const LEGACY_VERSIONS: &[&str] = &["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` key of the protocol version on a 2026-07-28 request.
pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
/// `_meta` key of the client capabilities on a 2026-07-28 request.
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
/// `_meta` key of the client information on a 2026-07-28 request.
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
/// `_meta` key of the requested log level on a 2026-07-28 request.
pub const META_LOG_LEVEL: &str = "io.modelcontextprotocol/logLevel";
/// `_meta` key of the server information on a 2026-07-28 result.
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
/// `_meta` key tying a `subscriptions/listen` notification to its listen request.
pub const META_SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// Keys that describe a 2026-07-28 request's envelope, not its content.
pub const ENVELOPE_META_KEYS: &[&str] = &[
    META_PROTOCOL_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
];

/// Which era a peer speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Era {
    /// Handshake-based, with the negotiated version.
    Legacy(String),
    /// Stateless 2026-07-28.
    Modern,
}

impl Era {
    /// The protocol version string.
    pub fn version(&self) -> &str {
        match self {
            Era::Legacy(version) => version,
            Era::Modern => MODERN_VERSION,
        }
    }

    /// Whether this is the stateless era.
    pub fn is_modern(&self) -> bool {
        matches!(self, Era::Modern)
    }
}

/// Whether a handshake version is one the gateway accepts.
pub fn is_legacy_version(version: &str) -> bool {
    LEGACY_VERSIONS.contains(&version)
}

/// Removes the 2026-07-28 envelope keys from a message's `params._meta` (and the `_meta`
/// object itself if that leaves it empty), for forwarding to a legacy peer.
pub fn strip_envelope_meta(message: &mut Value) {
    let Some(params) = message.get_mut("params").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) else {
        return;
    };
    for key in ENVELOPE_META_KEYS {
        meta.remove(*key);
    }
    if meta.is_empty() {
        params.remove("_meta");
    }
}
