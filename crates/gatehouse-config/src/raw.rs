//! The configuration file exactly as written: serde types with `deny_unknown_fields`, so a
//! misspelt key is an error that names it rather than a setting silently ignored.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Settings of the gateway's own HTTP endpoint.
    #[serde(default)]
    pub gateway: RawGateway,
    /// The upstream MCP servers, keyed by their name.
    #[serde(default)]
    pub servers: BTreeMap<String, RawServer>,
    /// Where the gateway keeps its state.
    #[serde(default)]
    pub store: RawStore,
    /// How callers prove who they are (API keys, OIDC tokens, trusted proxy headers). Checked
    /// by the identity layer; without it every request is anonymous, which is allowed only on
    /// a loopback address.
    pub auth: Option<toml::Table>,
    /// Who may see and call what: `[[grant]]` tables, checked by the policy engine. With
    /// `[auth]` configured, nothing is allowed that no grant allows.
    #[serde(default)]
    pub grant: Vec<toml::Table>,
    /// Policy settings beyond the grants.
    #[serde(default)]
    pub policy: RawPolicySettings,
    /// Audit receipts.
    #[serde(default)]
    pub audit: RawAudit,
}

/// The `[audit]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAudit {
    /// `closed` (default): a call whose receipt cannot be written is refused with 503 and never
    /// forwarded; `open`: calls go on and the gap is recorded when the log works again.
    pub failure_mode: Option<String>,
    /// Also write every receipt as a JSON line to `stdout` or to this file.
    pub export: Option<String>,
    /// Delete receipts older than this many days, leaving a signed anchor so the rest still
    /// verifies; absent, receipts are kept forever. Read as any TOML value so that a wrong
    /// type gets a message about days rather than about serde types.
    pub retain_days: Option<toml::Value>,
    /// Also send every receipt as an OpenTelemetry log record to this OTLP/HTTP collector,
    /// e.g. `http://otel-collector:4318` (`/v1/logs` is appended unless the URL ends with it).
    pub otlp_endpoint: Option<String>,
    /// Headers sent with every OTLP request, e.g. a collector's API key.
    #[serde(default)]
    pub otlp_headers: BTreeMap<String, String>,
    /// `false` writes no receipts at all. Allowed only on a gateway that governs nothing (no
    /// `[auth]`, no `[[grant]]`, no `[policy] files`), for development and for measuring what
    /// receipts cost.
    pub enabled: Option<bool>,
}

/// The `[policy]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicySettings {
    /// Cedar policy files used beside the grants, relative to the configuration file.
    #[serde(default)]
    pub files: Vec<String>,
}

/// The `[store]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// `sqlite://PATH` (default: `gatehouse.db` beside the configuration file) or
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` for several replicas.
    pub url: Option<String>,
}

/// The `[gateway]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGateway {
    /// Address and port to listen on, `127.0.0.1:8080` by default; port 0 picks a free port.
    pub listen: Option<String>,
    /// Host header values accepted besides the loopback names (DNS-rebinding protection).
    pub allowed_hosts: Option<Vec<String>>,
    /// Origin header values accepted from browsers; loopback origins are always accepted.
    pub allowed_origins: Option<Vec<String>>,
    /// Largest accepted request body in bytes (default 4 MiB).
    pub max_body_bytes: Option<u64>,
    /// Deadline for one upstream call in seconds (default 300).
    pub call_timeout_secs: Option<u64>,
    /// A legacy client session with no request for this many seconds ends (default 1800).
    pub session_idle_secs: Option<u64>,
    /// Items per page of a merged list (default 500).
    pub page_size: Option<usize>,
}

/// One `[servers.NAME]` table: either `command` (stdio) or `url` (Streamable HTTP).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Program to spawn for a stdio server.
    pub command: Option<String>,
    /// Arguments for `command`.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment given to the spawned program; it gets nothing else from the gateway.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Working directory for the spawned program.
    pub cwd: Option<String>,
    /// Endpoint of a Streamable HTTP server.
    pub url: Option<String>,
    /// Extra HTTP headers sent to a Streamable HTTP server.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Name prefix for this server's tools and prompts (`PREFIX__tool`); defaults to the server
    /// name; `""` exposes the names unchanged.
    pub prefix: Option<String>,
    /// A note for operators; shown by `gatehouse server list`.
    pub description: Option<String>,
    /// Who shares a stdio server's process: `shared` (default, one for everyone), `per_user`
    /// (one per person, for servers that keep user state or take a per-user credential) or
    /// `per_session` (one per client session).
    pub isolation: Option<String>,
    /// Most processes this server may run at once (default 16; only `per_user` and
    /// `per_session` run more than one).
    pub max_processes: Option<usize>,
    /// Shortest idle period before an unused process is stopped, in seconds (default 60).
    pub idle_min_secs: Option<u64>,
    /// Longest idle period, reached by busy servers, in seconds (default 1800).
    pub idle_max_secs: Option<u64>,
    /// Keep the server running from its first use on, never stopping it when idle.
    pub always_on: Option<bool>,
    /// The server's environment (`production`, `staging`), which grants can be scoped to.
    pub environment: Option<String>,
    /// The operator's classification of tools, which beats the server's own hints:
    /// `{ tool_name = "read" | "write" | "destructive" }` (upstream names, without prefix).
    #[serde(default)]
    pub classes: BTreeMap<String, String>,
    /// How the gateway obtains OAuth access tokens for an HTTP server (it is a client of the
    /// server's authorization server of its own; the caller's token is never passed on).
    pub oauth: Option<RawOAuth>,
}

/// A `[servers.NAME.oauth]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOAuth {
    /// `client_credentials` (one token for the gateway), `authorization_code` (each person
    /// signs in once; refreshed) or `token_exchange` (each person's own token is exchanged).
    pub grant: Option<String>,
    /// The authorization server's token endpoint.
    pub token_url: Option<String>,
    /// Its authorization endpoint (`authorization_code` only).
    pub authorization_url: Option<String>,
    /// Its issuer identifier, compared with the `iss` of authorization responses.
    pub issuer: Option<String>,
    /// The gateway's client id there.
    pub client_id: Option<String>,
    /// The gateway's client secret, normally `{secret:NAME}`.
    pub client_secret: Option<String>,
    /// Scopes to ask for.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The RFC 8707 resource the tokens are for; defaults to the server's `url`.
    pub resource: Option<String>,
    /// The callback registered with the authorization server; defaults to
    /// `http://LISTEN-ADDRESS/oauth/callback/NAME`.
    pub redirect_uri: Option<String>,
    /// `token_exchange`: the type of the person's token (default
    /// `urn:ietf:params:oauth:token-type:jwt`).
    pub subject_token_type: Option<String>,
    /// `token_exchange`: the audience to ask for, if the server wants one.
    pub audience: Option<String>,
}
