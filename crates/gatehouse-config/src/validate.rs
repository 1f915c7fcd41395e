//! Raw configuration to checked [`Config`]: every problem is collected with its location.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use crate::locate::{line_at, line_of};
use crate::raw::{RawAudit, RawConfig, RawGateway, RawOAuth, RawServer};
use crate::{
    AuditSettings, Config, ConfigError, GatewaySettings, Isolation, Lifecycle, NAME_SEPARATOR,
    OAuthGrant, OAuthSettings, OtlpExport, Problem, ReceiptSettings, SecretScope, ServerConfig,
    ServerName, Template, Transport,
};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
const DEFAULT_MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;
const DEFAULT_CALL_TIMEOUT_SECS: u64 = 300;
const DEFAULT_SESSION_IDLE_SECS: u64 = 1800;
const DEFAULT_PAGE_SIZE: usize = 500;
/// The longest retention that can be written, a century; longer is a typo.
const MAX_RETAIN_DAYS: i64 = 36_500;
const SECONDS_PER_DAY: u64 = 86_400;

/// Parses and validates configuration text.
pub fn parse(text: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = toml::from_str(text).map_err(|error| ConfigError {
        problems: vec![Problem {
            path: "file".to_owned(),
            line: error.span().map(|span| line_at(text, span.start)),
            message: error.message().trim_end().to_owned(),
        }],
    })?;
    let mut checker = Checker {
        text,
        problems: Vec::new(),
    };
    let gateway = checker.gateway(&raw.gateway);
    let servers = checker.servers(&raw.servers);
    if raw.auth.is_none() && !gateway.listen.ip().is_loopback() {
        checker.problem(
            &["gateway", "listen"],
            format!(
                "`{}` is not a loopback address and there is no [auth] table, so anyone who can reach it would be served anonymously; add [auth] or listen on 127.0.0.1",
                gateway.listen
            ),
        );
    }
    if let Some(url) = &raw.store.url
        && !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
    {
        checker.problem(
            &["store", "url"],
            "must start with sqlite:// or postgres://",
        );
    }
    let governs = raw.auth.is_some() || !raw.grant.is_empty() || !raw.policy.files.is_empty();
    let mut audit = checker.audit(&raw.audit, governs);
    let retention = raw
        .audit
        .retain_days
        .as_ref()
        .and_then(|days| checker.retain_days(days));
    if let AuditSettings::Receipts(receipts) = &mut audit {
        receipts.retention = retention;
    }
    if checker.problems.is_empty() {
        Ok(Config {
            gateway,
            servers,
            store_url: raw.store.url.clone(),
            auth: raw.auth.clone(),
            grants: raw.grant.clone(),
            policy_files: raw.policy.files.clone(),
            audit,
        })
    } else {
        Err(ConfigError {
            problems: checker.problems,
        })
    }
}

/// Checks a server name or prefix; the error says what is wrong.
pub(crate) fn check_identifier(name: &str) -> Result<(), String> {
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let allowed = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if name.is_empty() {
        Err("must not be empty".to_owned())
    } else if !starts_well || !allowed {
        Err(format!(
            "`{name}` may hold only ASCII letters, digits, `-` and `_`, and must start with a letter or digit"
        ))
    } else if name.contains(NAME_SEPARATOR) || name.ends_with('_') {
        Err(format!(
            "`{name}` must not contain `{NAME_SEPARATOR}` or end with `_`: the separator must stay unambiguous"
        ))
    } else if name.len() > 64 {
        Err(format!("`{name}` is longer than 64 characters"))
    } else {
        Ok(())
    }
}

struct Checker<'a> {
    text: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, path: &[&str], message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.join("."),
            line: line_of(self.text, path),
            message: message.into(),
        });
    }

    /// `[audit] retain_days`: a whole number of days from 1 to a century.
    fn retain_days(&mut self, days: &toml::Value) -> Option<Duration> {
        const PATH: &[&str] = &["audit", "retain_days"];
        let problem = match days {
            toml::Value::Integer(days) if (1..=MAX_RETAIN_DAYS).contains(days) => {
                let days = u64::try_from(*days).unwrap_or(1);
                return Some(Duration::from_secs(days * SECONDS_PER_DAY));
            }
            toml::Value::Integer(days) if *days < 1 => format!(
                "must be at least 1 day, not {days}; leave `retain_days` out to keep receipts forever"
            ),
            toml::Value::Integer(days) => {
                format!("must be at most {MAX_RETAIN_DAYS} days (a century), not {days}")
            }
            other => {
                format!("must be a whole number of days, such as `retain_days = 90`, not `{other}`")
            }
        };
        self.problem(PATH, problem);
        None
    }

    fn gateway(&mut self, raw: &RawGateway) -> GatewaySettings {
        let listen_text = raw.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => {
                self.problem(
                    &["gateway", "listen"],
                    format!("`{listen_text}` is not an address and port such as `127.0.0.1:8080`"),
                );
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };
        let max_body_bytes = raw.max_body_bytes.unwrap_or(DEFAULT_MAX_BODY_BYTES);
        if max_body_bytes < 1024 {
            self.problem(&["gateway", "max_body_bytes"], "must be at least 1024");
        }
        let page_size = raw.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        if page_size == 0 {
            self.problem(&["gateway", "page_size"], "must be at least 1");
        }
        let call_timeout_secs = raw.call_timeout_secs.unwrap_or(DEFAULT_CALL_TIMEOUT_SECS);
        if call_timeout_secs == 0 {
            self.problem(&["gateway", "call_timeout_secs"], "must be at least 1");
        }
        let session_idle_secs = raw.session_idle_secs.unwrap_or(DEFAULT_SESSION_IDLE_SECS);
        if session_idle_secs == 0 {
            self.problem(&["gateway", "session_idle_secs"], "must be at least 1");
        }
        GatewaySettings {
            listen,
            allowed_hosts: raw.allowed_hosts.clone().unwrap_or_default(),
            allowed_origins: raw.allowed_origins.clone().unwrap_or_default(),
            max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(usize::MAX),
            call_timeout: Duration::from_secs(call_timeout_secs),
            session_idle: Duration::from_secs(session_idle_secs),
            page_size,
        }
    }

    fn servers(&mut self, raw: &BTreeMap<String, RawServer>) -> Vec<ServerConfig> {
        let mut servers = Vec::new();
        let mut prefixes: BTreeMap<String, String> = BTreeMap::new();
        for (name, server) in raw {
            let name_path = ["servers", name.as_str()];
            let server_name = match ServerName::new(name) {
                Ok(server_name) => server_name,
                Err(message) => {
                    self.problem(&name_path, format!("server name {message}"));
                    continue;
                }
            };
            let prefix = match server.prefix.as_deref() {
                None => Some(name.clone()),
                Some("") => None,
                Some(prefix) => match check_identifier(prefix) {
                    Ok(()) => Some(prefix.to_owned()),
                    Err(message) => {
                        self.problem(&["servers", name, "prefix"], format!("prefix {message}"));
                        None
                    }
                },
            };
            if let Some(prefix) = &prefix
                && let Some(other) = prefixes.insert(prefix.clone(), name.clone())
            {
                self.problem(
                        &["servers", name, "prefix"],
                        format!(
                            "prefix `{prefix}` is already used by server `{other}`; names would collide, so give one of them another `prefix`"
                        ),
                    );
            }
            let Some(transport) = self.transport(name, server) else {
                continue;
            };
            let lifecycle = self.lifecycle(name, server, &transport);
            let oauth = server
                .oauth
                .as_ref()
                .and_then(|oauth| self.oauth(name, oauth, &transport));
            servers.push(ServerConfig {
                name: server_name,
                prefix,
                transport,
                description: server.description.clone(),
                lifecycle,
                environment: server.environment.clone(),
                classes: server.classes.clone(),
                oauth,
            });
            for (tool, class) in &server.classes {
                if !matches!(class.as_str(), "read" | "write" | "destructive") {
                    self.problem(
                        &["servers", name, "classes", tool],
                        format!("`{class}` is not one of `read`, `write`, `destructive`"),
                    );
                }
            }
        }
        servers
    }

    fn lifecycle(&mut self, name: &str, server: &RawServer, transport: &Transport) -> Lifecycle {
        let defaults = Lifecycle::default();
        let user_secret = transport.user_secret();
        let isolation = match server.isolation.as_deref() {
            None if user_secret.is_some() && matches!(transport, Transport::Stdio { .. }) => {
                Isolation::PerUser
            }
            None | Some("shared") => Isolation::Shared,
            Some("per_user") => Isolation::PerUser,
            Some("per_session") => Isolation::PerSession,
            Some(other) => {
                self.problem(
                    &["servers", name, "isolation"],
                    format!("`{other}` is not one of `shared`, `per_user`, `per_session`"),
                );
                Isolation::Shared
            }
        };
        if let Some(secret) = user_secret
            && isolation == Isolation::Shared
            && matches!(transport, Transport::Stdio { .. })
        {
            self.problem(
                &["servers", name, "isolation"],
                format!(
                    "is `shared`, but the server takes `{secret}`, each person's own credential, so one process cannot serve everyone: use `per_user` (or remove `isolation`)"
                ),
            );
        }
        if isolation != Isolation::Shared && matches!(transport, Transport::Http { .. }) {
            self.problem(
                &["servers", name, "isolation"],
                "applies only to stdio servers (`command`); an HTTP server is one endpoint",
            );
        }
        let max_processes = server.max_processes.unwrap_or(defaults.max_processes);
        if max_processes == 0 {
            self.problem(&["servers", name, "max_processes"], "must be at least 1");
        }
        let idle_min = server
            .idle_min_secs
            .map_or(defaults.idle_min, Duration::from_secs);
        let idle_max = server
            .idle_max_secs
            .map_or(defaults.idle_max.max(idle_min), Duration::from_secs);
        if idle_min.is_zero() {
            self.problem(&["servers", name, "idle_min_secs"], "must be at least 1");
        }
        if idle_max < idle_min {
            self.problem(
                &["servers", name, "idle_max_secs"],
                "must not be shorter than `idle_min_secs`",
            );
        }
        Lifecycle {
            isolation,
            max_processes,
            idle_min,
            idle_max,
            always_on: server.always_on.unwrap_or(false),
        }
    }

    fn audit(&mut self, raw: &RawAudit, governs: bool) -> AuditSettings {
        let fail_closed = match raw.failure_mode.as_deref() {
            None | Some("closed") => true,
            Some("open") => false,
            Some(other) => {
                self.problem(
                    &["audit", "failure_mode"],
                    format!("`{other}` is not `closed` or `open`"),
                );
                true
            }
        };
        if !raw.otlp_headers.is_empty() && raw.otlp_endpoint.is_none() {
            self.problem(
                &["audit", "otlp_headers"],
                "applies only with `otlp_endpoint`",
            );
        }
        for (header, value) in &raw.otlp_headers {
            if !http_token(header) || value.contains(['\r', '\n']) {
                self.problem(
                    &["audit", "otlp_headers", header],
                    format!("`{header}` is not a valid HTTP header"),
                );
            }
        }
        let otlp =
            raw.otlp_endpoint
                .as_deref()
                .and_then(|endpoint| match otlp_logs_url(endpoint) {
                    Ok(logs_url) => Some(OtlpExport {
                        logs_url,
                        headers: raw.otlp_headers.clone(),
                    }),
                    Err(reason) => {
                        self.problem(&["audit", "otlp_endpoint"], reason);
                        None
                    }
                });
        if raw.enabled != Some(false) {
            return AuditSettings::Receipts(ReceiptSettings {
                fail_closed,
                export: raw.export.clone(),
                otlp,
                retention: None,
            });
        }
        if governs {
            self.problem(
                &["audit", "enabled"],
                "receipts can be turned off only on a gateway with no [auth], no [[grant]] and no [policy] files: every decision about who may call what is recorded",
            );
        }
        let exporting = raw.failure_mode.is_some()
            || raw.export.is_some()
            || raw.otlp_endpoint.is_some()
            || raw.retain_days.is_some();
        if exporting {
            self.problem(
                &["audit", "enabled"],
                "is false, so `failure_mode`, `export`, `otlp_endpoint` and `retain_days` would have nothing to act on; remove them or the `enabled` line",
            );
        }
        AuditSettings::Off
    }

    fn transport(&mut self, name: &str, server: &RawServer) -> Option<Transport> {
        match (&server.command, &server.url) {
            (Some(_), Some(_)) => {
                self.problem(
                    &["servers", name],
                    "has both `command` and `url`; keep `command` for a stdio server or `url` for an HTTP server",
                );
                None
            }
            (None, None) => {
                self.problem(
                    &["servers", name],
                    "needs `command` (a stdio server to spawn) or `url` (a Streamable HTTP server)",
                );
                None
            }
            (Some(command), None) => {
                if command.trim().is_empty() {
                    self.problem(&["servers", name, "command"], "must not be empty");
                }
                if !server.headers.is_empty() {
                    self.problem(
                        &["servers", name, "headers"],
                        "applies only to HTTP servers (`url`); use `env` for a stdio server",
                    );
                }
                let args = server
                    .args
                    .iter()
                    .enumerate()
                    .filter_map(|(index, arg)| {
                        self.template(
                            &["servers", name, "args"],
                            &format!("argument {}", index + 1),
                            arg,
                        )
                    })
                    .collect();
                let env = server
                    .env
                    .iter()
                    .filter_map(|(variable, value)| {
                        let template =
                            self.template(&["servers", name, "env", variable], "value", value)?;
                        Some((variable.clone(), template))
                    })
                    .collect();
                Some(Transport::Stdio {
                    command: command.clone(),
                    args,
                    env,
                    cwd: server.cwd.clone(),
                })
            }
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    self.problem(
                        &["servers", name, "url"],
                        format!("`{url}` must start with http:// or https://"),
                    );
                }
                if !server.args.is_empty() || !server.env.is_empty() || server.cwd.is_some() {
                    self.problem(
                        &["servers", name],
                        "`args`, `env` and `cwd` apply only to stdio servers (`command`)",
                    );
                }
                for (header, value) in &server.headers {
                    let valid_name = http_token(header);
                    if !valid_name || value.contains(['\r', '\n']) {
                        self.problem(
                            &["servers", name, "headers", header],
                            format!("`{header}` is not a valid HTTP header"),
                        );
                    }
                }
                let headers = server
                    .headers
                    .iter()
                    .filter_map(|(header, value)| {
                        let template =
                            self.template(&["servers", name, "headers", header], "value", value)?;
                        Some((header.clone(), template))
                    })
                    .collect();
                Some(Transport::Http {
                    url: url.clone(),
                    headers,
                })
            }
        }
    }
}

impl Checker<'_> {
    fn oauth(
        &mut self,
        name: &str,
        raw: &RawOAuth,
        transport: &Transport,
    ) -> Option<OAuthSettings> {
        let path = |key: &'static str| ["servers", name, "oauth", key];
        let Transport::Http { url, headers } = transport else {
            self.problem(
                &["servers", name, "oauth"],
                "applies only to HTTP servers (`url`); give a stdio server its token with `env`",
            );
            return None;
        };
        if headers
            .keys()
            .any(|header| header.eq_ignore_ascii_case("authorization"))
        {
            self.problem(
                &["servers", name, "headers"],
                "sets `Authorization`, which `oauth` fills in; remove one of them",
            );
        }
        let grant = match raw.grant.as_deref() {
            Some("client_credentials") => OAuthGrant::ClientCredentials,
            Some("authorization_code") => OAuthGrant::AuthorizationCode,
            Some("token_exchange") => OAuthGrant::TokenExchange {
                subject_token_type: raw
                    .subject_token_type
                    .clone()
                    .unwrap_or_else(|| "urn:ietf:params:oauth:token-type:jwt".to_owned()),
                audience: raw.audience.clone(),
            },
            other => {
                self.problem(
                    &path("grant"),
                    format!(
                        "{} is not one of `client_credentials`, `authorization_code`, `token_exchange`",
                        other.map_or("a missing grant".to_owned(), |other| format!("`{other}`"))
                    ),
                );
                return None;
            }
        };
        let check_url = |checker: &mut Self, key: &'static str, value: Option<&String>| {
            if let Some(value) = value
                && !(value.starts_with("https://") || value.starts_with("http://"))
            {
                checker.problem(
                    &path(key),
                    format!("`{value}` must start with https:// (or http:// on loopback)"),
                );
            }
        };
        check_url(self, "token_url", raw.token_url.as_ref());
        check_url(self, "authorization_url", raw.authorization_url.as_ref());
        check_url(self, "resource", raw.resource.as_ref());
        check_url(self, "redirect_uri", raw.redirect_uri.as_ref());
        let Some(token_url) = raw.token_url.clone() else {
            self.problem(
                &path("token_url"),
                "is required: the authorization server's token endpoint",
            );
            return None;
        };
        let Some(client_id) = raw.client_id.clone() else {
            self.problem(
                &path("client_id"),
                "is required: the gateway's client id at the authorization server",
            );
            return None;
        };
        if grant == OAuthGrant::AuthorizationCode && raw.authorization_url.is_none() {
            self.problem(
                &path("authorization_url"),
                "is required for `authorization_code`: where people are sent to sign in",
            );
        }
        let client_secret = raw
            .client_secret
            .as_ref()
            .and_then(|secret| self.template(&path("client_secret"), "value", secret));
        if client_secret
            .as_ref()
            .is_some_and(|secret| secret.secrets().any(|used| used.scope == SecretScope::User))
        {
            self.problem(
                &path("client_secret"),
                "is the gateway's own: use `{secret:NAME}`, not a person's",
            );
        }
        Some(OAuthSettings {
            grant,
            token_url,
            authorization_url: raw.authorization_url.clone(),
            issuer: raw.issuer.clone(),
            client_id,
            client_secret,
            scopes: raw.scopes.clone(),
            resource: raw.resource.clone().unwrap_or_else(|| url.clone()),
            redirect_uri: raw.redirect_uri.clone(),
        })
    }

    fn template(&mut self, path: &[&str], what: &str, written: &str) -> Option<Template> {
        match Template::parse(written) {
            Ok(template) => Some(template),
            Err(message) => {
                self.problem(path, format!("{what}: {message}"));
                None
            }
        }
    }
}

/// The OTLP/HTTP logs URL of a collector endpoint: an `http` or `https` URL with a host and
/// without credentials, query or fragment (credentials go in `otlp_headers`, which are never
/// logged); `/v1/logs` is appended unless the path already ends with it.
fn otlp_logs_url(endpoint: &str) -> Result<String, String> {
    let url = url::Url::parse(endpoint).map_err(|error| {
        format!("`{endpoint}` is not a URL ({error}); give the collector's OTLP/HTTP address, such as `http://127.0.0.1:4318`")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "`{endpoint}` must start with http:// or https:// (OTLP over HTTP; gRPC is not supported)"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{endpoint}` has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "`{endpoint}` must not hold credentials; put them in `otlp_headers`"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{endpoint}` must not have a query or fragment"));
    }
    let base = url.as_str().trim_end_matches('/');
    if base.ends_with("/v1/logs") {
        Ok(base.to_owned())
    } else {
        Ok(format!("{base}/v1/logs"))
    }
}

fn http_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests;
