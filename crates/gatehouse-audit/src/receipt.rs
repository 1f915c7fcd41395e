//! The receipt: what one decision records. A receipt never holds a secret: the principal is
//! named by user and credential id, the upstream credential by id and version, and the
//! arguments by a keyed digest (and, where configured, a redacted copy).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::ArgumentDigest;
use crate::time::Timestamp;
use crate::writer::FailureMode;

/// One decision: who asked for what, what was decided and by which rules, and how it ended.
/// Its canonical JSON (see [`crate::canonical`]) is the body of a log entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// When the decision (or, in a completion, the outcome) was recorded.
    pub time: Timestamp,
    /// The gateway's id for the request.
    pub request_id: String,
    /// The MCP session, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// Who acted; `None` when authentication failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// Which client sent the request.
    #[serde(default)]
    pub client: ClientInfo,
    /// The MCP method, e.g. `tools/call`.
    pub method: String,
    /// The upstream server, when the request was routed to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The tool, resource or prompt, when the method names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// What was decided, and why.
    pub decision: Decision,
    /// The upstream credential used, by id; never its value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<CredentialUse>,
    /// The keyed digest of the arguments, see [`crate::AuditKey`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments_digest: Option<ArgumentDigest>,
    /// The arguments with secrets and configured fields replaced by digests, when the server
    /// is configured to keep them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted_arguments: Option<Value>,
    /// The hash of the tool definition the call was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_definition_hash: Option<String>,
    /// How the call ended; `None` in an intent and in a decision that never ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<Outcome>,
    /// Whose fault a failure was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_source: Option<ErrorSource>,
    /// How long the request took in the gateway, in microseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_us: Option<u64>,
    /// Set only on the notice the writer appends after receipts could not be written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_gap: Option<AuditGap>,
    /// What kind of refusal this is, when the request was refused: refusals are recorded one
    /// by one up to a limit, then counted (see [`crate::RefusalLimiter`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusal: Option<RefusalKind>,
    /// Set only on an aggregate receipt: the refusals counted instead of recorded one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refusals: Option<RefusalAggregate>,
}

impl Receipt {
    /// A receipt with the required fields and nothing else, timed now.
    pub fn new(
        request_id: impl Into<String>,
        method: impl Into<String>,
        decision: Decision,
    ) -> Self {
        Self {
            time: Timestamp::now(),
            request_id: request_id.into(),
            session_id: None,
            principal: None,
            client: ClientInfo::default(),
            method: method.into(),
            server: None,
            target: None,
            decision,
            credential: None,
            arguments_digest: None,
            redacted_arguments: None,
            tool_definition_hash: None,
            outcome: None,
            error_source: None,
            latency_us: None,
            audit_gap: None,
            refusal: None,
            refusals: None,
        }
    }

    /// Sets the latency from a duration, saturating at `u64::MAX` microseconds.
    pub fn set_latency(&mut self, latency: Duration) {
        self.latency_us = Some(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The user's groups and teams at the time of the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The id of the API key or token that authenticated the call; never the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_id: Option<String>,
}

/// The client that sent the request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    /// The client's name from its `clientInfo`, e.g. `claude-code`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The peer address of the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
}

/// What the request was about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Tool, resource or prompt.
    pub kind: TargetKind,
    /// Its name (a URI for a resource) as the client sees it.
    pub name: String,
}

/// The kinds of things a request can target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A tool.
    Tool,
    /// A resource or resource template.
    Resource,
    /// A prompt.
    Prompt,
}

/// The decision and what made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// Allowed, denied, or refused because of an error.
    pub verdict: Verdict,
    /// The ids of the rules that made the decision.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rule_ids: Vec<String>,
    /// The hash of the policy in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_hash: Option<String>,
}

impl Decision {
    /// A decision with no rule ids and no policy hash.
    pub fn new(verdict: Verdict) -> Self {
        Self {
            verdict,
            rule_ids: Vec::new(),
            policy_hash: None,
        }
    }
}

/// Allowed, denied, or refused because of an error (failed authentication, malformed input,
/// an unavailable audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The call was allowed.
    Allow,
    /// Policy denied the call.
    Deny,
    /// The call was refused before a policy decision, or failed in the gateway.
    Error,
}

impl Verdict {
    /// The name used in receipts and indexes: `allow`, `deny`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::Error => "error",
        }
    }
}

/// The upstream credential a call used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialUse {
    /// The credential's id.
    pub id: String,
    /// Its version (rotation counter).
    pub version: u64,
}

/// How a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The upstream answered with a result.
    Ok,
    /// The upstream answered with a tool error (`isError`).
    ToolError,
    /// The upstream failed: a JSON-RPC error, a crash, a transport error.
    UpstreamError,
    /// The gateway gave up waiting.
    Timeout,
    /// The client cancelled or disconnected.
    Cancelled,
    /// Nobody knows: the gateway stopped between the intent and the completion.
    Unknown,
}

impl Outcome {
    /// The name used in receipts and indexes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::ToolError => "tool_error",
            Self::UpstreamError => "upstream_error",
            Self::Timeout => "timeout",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }
}

/// Where a failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorSource {
    /// The client sent something wrong or went away.
    Client,
    /// The upstream server failed.
    Upstream,
    /// The gateway itself failed.
    Gateway,
}

/// A notice that receipts were not written: appended by the writer as soon as the log accepts
/// appends again, so a gap in the audit trail is itself on the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditGap {
    /// The failure mode in force: under `fail_open` the calls went ahead unrecorded; under
    /// `fail_closed` they were refused.
    pub mode: FailureMode,
    /// When the first receipt was not written.
    pub since: Timestamp,
    /// When the log accepted appends again.
    pub until: Timestamp,
    /// How many appends to the log failed.
    pub failed_appends: u64,
    /// How many receipts were not written.
    pub unrecorded: u64,
}

/// The kinds of refusal that are counted against a flood.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The policy denied the call.
    Denied,
    /// The credential was missing, unknown, expired or revoked.
    Authentication,
    /// The `Mcp-Method`, `Mcp-Name` or `Mcp-Param-*` headers disagree with the body.
    HeaderMismatch,
    /// The `Host` or `Origin` header is not this gateway's (DNS rebinding).
    Rebinding,
    /// Any other request refused for the client's fault: malformed, unknown method or name,
    /// a session that is not the caller's.
    Invalid,
}

impl RefusalKind {
    /// The name used in receipts: `denied`, `authentication`, `header_mismatch`, `rebinding`,
    /// `invalid`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Denied => "denied",
            Self::Authentication => "authentication",
            Self::HeaderMismatch => "header_mismatch",
            Self::Rebinding => "rebinding",
            Self::Invalid => "invalid",
        }
    }

    /// The verdict a refusal of this kind is recorded with: `deny` for policy and
    /// authentication, `error` for the rest.
    pub fn verdict(self) -> Verdict {
        match self {
            Self::Denied | Self::Authentication => Verdict::Deny,
            Self::HeaderMismatch | Self::Rebinding | Self::Invalid => Verdict::Error,
        }
    }
}

/// Refusals of one kind from one subject in one window, beyond those recorded one by one. The
/// subject is the receipt's principal (a user), or `address` (a client that did not
/// authenticate); neither when the refusals came from more subjects than are tracked apart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalAggregate {
    /// What kind of refusal.
    pub kind: RefusalKind,
    /// The client address the refusals came from, when that is the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// How many refusals were counted.
    pub count: u64,
    /// When the first of them happened.
    pub first: Timestamp,
    /// When the last of them happened.
    pub last: Timestamp,
}
