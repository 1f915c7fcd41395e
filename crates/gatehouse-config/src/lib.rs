//! Gatehouse configuration in two stages: the file as written ([`raw`], serde types that refuse
//! unknown keys) and the checked [`Config`] the rest of the gateway uses. Validation collects
//! every problem with its location instead of stopping at the first. This crate does no IO
//! beyond the text it is handed; [`edit`] rewrites that text keeping the user's comments.

pub mod edit;
mod locate;
pub mod raw;
mod starter;
mod template;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

pub use starter::starter_config;
pub use template::{Part, SecretScope, SecretUse, Template, check_secret_name};
pub use validate::parse;

/// The separator between a server's prefix and an item name: `github__create_issue`.
pub const NAME_SEPARATOR: &str = "__";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Settings of the gateway's own endpoint.
    pub gateway: GatewaySettings,
    /// Upstream servers in name order.
    pub servers: Vec<ServerConfig>,
    /// The store URL, if configured; the default is a SQLite file beside the configuration.
    pub store_url: Option<String>,
    /// The `[auth]` table as written, checked by the identity layer; `None` means anonymous
    /// access, which validation allows only on loopback.
    pub auth: Option<toml::Table>,
    /// The `[[grant]]` tables as written, checked by the policy engine.
    pub grants: Vec<toml::Table>,
    /// Cedar policy files, as written (relative to the configuration file).
    pub policy_files: Vec<String>,
    /// Audit receipts: written or not, and where copies go.
    pub audit: AuditSettings,
}

/// The `[audit]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSettings {
    /// Every decision leaves a receipt in the store.
    Receipts(ReceiptSettings),
    /// No receipts: validation allows this only on a gateway with no `[auth]`, no grants and
    /// no policy files.
    Off,
}

/// How receipts are written and exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptSettings {
    /// Whether a call is refused when its receipt cannot be written.
    pub fail_closed: bool,
    /// Where receipts are also exported as JSON lines (`stdout` or a file), if anywhere.
    pub export: Option<String>,
    /// Where receipts are also sent as OpenTelemetry log records, if anywhere.
    pub otlp: Option<OtlpExport>,
    /// How long receipts are kept; `None` keeps them forever.
    pub retention: Option<Duration>,
}

impl Default for ReceiptSettings {
    fn default() -> Self {
        Self {
            fail_closed: true,
            export: None,
            otlp: None,
            retention: None,
        }
    }
}

/// An OTLP/HTTP logs destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpExport {
    /// The URL export requests are posted to: the configured endpoint with `/v1/logs`
    /// appended, unless it already ended with it.
    pub logs_url: String,
    /// Headers sent with every request.
    pub headers: BTreeMap<String, String>,
}

/// Settings of the gateway's own HTTP endpoint.
#[derive(Debug, Clone)]
pub struct GatewaySettings {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Host header values accepted besides loopback names.
    pub allowed_hosts: Vec<String>,
    /// Origin header values accepted besides loopback origins.
    pub allowed_origins: Vec<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Deadline for one upstream call.
    pub call_timeout: Duration,
    /// Idle lifetime of a legacy client session.
    pub session_idle: Duration,
    /// Items per page of a merged list.
    pub page_size: usize,
}

/// A server name: ASCII letters, digits, `-` and single `_`, starting with a letter or digit.
/// It never contains [`NAME_SEPARATOR`], which keeps `prefix__name` routing unambiguous.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerName(String);

impl ServerName {
    /// Checks `name` and wraps it; the error says what is wrong.
    pub fn new(name: &str) -> Result<Self, String> {
        validate::check_identifier(name).map(|()| Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

/// One upstream server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Its unique name.
    pub name: ServerName,
    /// The prefix put before its tool and prompt names, or `None` to expose them unchanged.
    pub prefix: Option<String>,
    /// How to reach it.
    pub transport: Transport,
    /// An operator's note.
    pub description: Option<String>,
    /// How its processes are started and stopped.
    pub lifecycle: Lifecycle,
    /// Its environment tag, for grants scoped to one.
    pub environment: Option<String>,
    /// Operator classifications of its tools (upstream name to `read`, `write` or
    /// `destructive`).
    pub classes: BTreeMap<String, String>,
    /// How the gateway obtains OAuth tokens for it (HTTP servers only).
    pub oauth: Option<OAuthSettings>,
}

/// How tokens are obtained from an upstream's authorization server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OAuthGrant {
    /// One token for the gateway (client credentials).
    ClientCredentials,
    /// Each person signs in once in a browser; their grant is stored and refreshed.
    AuthorizationCode,
    /// Each person's own token is exchanged for an upstream token (RFC 8693).
    TokenExchange {
        /// The type of the person's token.
        subject_token_type: String,
        /// The audience asked for, if any.
        audience: Option<String>,
    },
}

/// The gateway as an OAuth client of one upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthSettings {
    /// How tokens are obtained.
    pub grant: OAuthGrant,
    /// The token endpoint.
    pub token_url: String,
    /// The authorization endpoint (authorization code only).
    pub authorization_url: Option<String>,
    /// The issuer identifier, if known.
    pub issuer: Option<String>,
    /// The gateway's client id.
    pub client_id: String,
    /// The client secret, usually a reference to a service secret.
    pub client_secret: Option<Template>,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// The RFC 8707 resource (the server's URL unless configured).
    pub resource: String,
    /// The registered callback, if configured; otherwise derived from the listen address.
    pub redirect_uri: Option<String>,
}

impl OAuthSettings {
    /// Whether each person has their own token (so each gets their own connection).
    pub fn is_per_user(&self) -> bool {
        !matches!(self.grant, OAuthGrant::ClientCredentials)
    }
}

impl ServerConfig {
    /// Every secret the server refers to, each once, in name order.
    pub fn secrets(&self) -> Vec<&SecretUse> {
        let client_secret = self
            .oauth
            .as_ref()
            .and_then(|oauth| oauth.client_secret.as_ref());
        let mut secrets: Vec<&SecretUse> = self
            .transport
            .templates()
            .into_iter()
            .chain(client_secret)
            .flat_map(Template::secrets)
            .collect();
        secrets.sort();
        secrets.dedup();
        secrets
    }

    /// Whether the server uses a person's own credential, so that each person needs their own
    /// process or connection.
    pub fn uses_user_secrets(&self) -> bool {
        self.transport.user_secret().is_some()
            || self.oauth.as_ref().is_some_and(OAuthSettings::is_per_user)
    }
}

/// Who shares one process of a stdio server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// One process for everyone.
    Shared,
    /// One process per person.
    PerUser,
    /// One process per client session.
    PerSession,
}

/// How a server's processes are started and stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    /// Who shares a process.
    pub isolation: Isolation,
    /// Most processes at once.
    pub max_processes: usize,
    /// Shortest idle period before an unused process stops.
    pub idle_min: Duration,
    /// Longest idle period, for busy servers.
    pub idle_max: Duration,
    /// Never stop when idle.
    pub always_on: bool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Self {
            isolation: Isolation::Shared,
            max_processes: 16,
            idle_min: Duration::from_secs(60),
            idle_max: Duration::from_secs(1800),
            always_on: false,
        }
    }
}

/// How the gateway reaches an upstream server.
#[derive(Debug, Clone)]
pub enum Transport {
    /// A program the gateway spawns and speaks to over stdin/stdout.
    Stdio {
        /// Program path or name.
        command: String,
        /// Its arguments, which may refer to secrets.
        args: Vec<Template>,
        /// Its complete environment (nothing is inherited beyond `PATH` and `HOME`), whose
        /// values may refer to secrets.
        env: BTreeMap<String, Template>,
        /// Its working directory.
        cwd: Option<String>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        /// The endpoint URL.
        url: String,
        /// Extra headers sent on every request, whose values may refer to secrets.
        headers: BTreeMap<String, Template>,
    },
}

impl Transport {
    /// Every configured value that may refer to secrets.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            Self::Stdio { args, env, .. } => args.iter().chain(env.values()).collect(),
            Self::Http { headers, .. } => headers.values().collect(),
        }
    }

    /// The first reference to a person's own credential, if any.
    pub fn user_secret(&self) -> Option<&SecretUse> {
        self.templates()
            .into_iter()
            .flat_map(Template::secrets)
            .find(|secret| secret.scope == SecretScope::User)
    }
}

/// Everything wrong with a configuration, each problem with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{}", render_problems(.problems))]
pub struct ConfigError {
    /// The problems found, in file order where known.
    pub problems: Vec<Problem>,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key path, such as `servers.github.url`.
    pub path: String,
    /// 1-based line in the file, where known.
    pub line: Option<usize>,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.path, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

fn render_problems(problems: &[Problem]) -> String {
    let lines: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
    format!(
        "{} problem{} in the configuration:\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}
