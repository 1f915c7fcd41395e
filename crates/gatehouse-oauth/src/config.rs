//! What an upstream's OAuth client is configured with, and its validated form.

use std::fmt;
use std::time::Duration;

use secrecy::SecretString;
use url::{Host, Url};

/// The `grant_type` of an RFC 8693 token exchange.
pub const TOKEN_EXCHANGE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
/// RFC 8693 token type: an OAuth access token.
pub const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
/// RFC 8693 token type: an OpenID Connect ID token.
pub const ID_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:id_token";
/// RFC 8693 token type: a JWT.
pub const JWT_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:jwt";

/// How long a token is assumed to live when the authorization server does not say
/// (`expires_in` is only RECOMMENDED by RFC 6749).
pub(crate) const ASSUMED_LIFETIME: Duration = Duration::from_secs(300);

/// The OAuth client of one upstream.
pub struct ClientConfig {
    /// The upstream's name, used in error messages, logs and [`crate::GrantKey`]s.
    pub upstream: String,
    /// The authorization server that issues the upstream's tokens.
    pub server: AuthorizationServer,
    /// The gateway's client id at that authorization server.
    pub client_id: String,
    /// The gateway's client secret; `None` for a public client.
    pub client_secret: Option<SecretString>,
    /// How the client secret is presented at the token endpoint.
    pub client_auth: ClientAuthMethod,
    /// The scopes requested; none means the `scope` parameter is left out.
    pub scopes: Vec<String>,
    /// The upstream's canonical URI, sent as the RFC 8707 `resource` parameter on every
    /// authorization and token request so that tokens are bound to this upstream alone.
    pub resource: Url,
    /// How tokens are obtained.
    pub grant: Grant,
    /// A token is replaced this long before it expires.
    pub refresh_margin: Duration,
    /// How long a started authorization waits for its callback.
    pub authorization_ttl: Duration,
}

impl ClientConfig {
    /// A configuration with the default margins (30 s before expiry; 10 minutes for an
    /// authorization to complete), no client secret and no scopes.
    pub fn new(
        upstream: impl Into<String>,
        server: AuthorizationServer,
        client_id: impl Into<String>,
        resource: Url,
        grant: Grant,
    ) -> Self {
        Self {
            upstream: upstream.into(),
            server,
            client_id: client_id.into(),
            client_secret: None,
            client_auth: ClientAuthMethod::ClientSecretBasic,
            scopes: Vec::new(),
            resource,
            grant,
            refresh_margin: Duration::from_secs(30),
            authorization_ttl: Duration::from_secs(600),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientConfig")
            .field("upstream", &self.upstream)
            .field("server", &self.server)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .field("client_auth", &self.client_auth)
            .field("scopes", &self.scopes)
            .field("resource", &self.resource.as_str())
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

/// An authorization server's endpoints and the capabilities the client relies on, from
/// configuration ([`AuthorizationServer::new`]) or from its metadata
/// ([`AuthorizationServer::discover`]).
#[derive(Debug, Clone)]
pub struct AuthorizationServer {
    /// The issuer identifier, when known. Authorization responses that carry `iss` are
    /// compared with it (RFC 9207), which defeats mix-up attacks.
    pub issuer: Option<String>,
    /// Where tokens are requested.
    pub token_endpoint: Url,
    /// Where users are sent to authorize; required by the authorization code grant.
    pub authorization_endpoint: Option<Url>,
    /// The server puts `iss` in every authorization response
    /// (`authorization_response_iss_parameter_supported`), so a response without it is refused.
    pub issuer_in_authorization_response: bool,
    /// The server supports PKCE with S256. Discovery sets it from
    /// `code_challenge_methods_supported`; the authorization code grant is refused without it.
    pub pkce_s256: bool,
}

impl AuthorizationServer {
    /// A server known by its token endpoint only. PKCE S256, which every OAuth 2.1 server
    /// must support, is assumed.
    pub fn new(token_endpoint: Url) -> Self {
        Self {
            issuer: None,
            token_endpoint,
            authorization_endpoint: None,
            issuer_in_authorization_response: false,
            pkce_s256: true,
        }
    }

    /// The same server with its authorization endpoint.
    pub fn with_authorization_endpoint(mut self, authorization_endpoint: Url) -> Self {
        self.authorization_endpoint = Some(authorization_endpoint);
        self
    }

    /// The same server with its issuer identifier, compared with the `iss` of authorization
    /// responses.
    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
}

/// How the client authenticates at the token endpoint when it has a secret (RFC 6749
/// section 2.3.1). A public client sends its `client_id` in the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMethod {
    /// HTTP Basic with the form-encoded id and secret: what every server must support.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the request body.
    ClientSecretPost,
}

/// How the client obtains tokens, which also decides whose tokens they are.
#[derive(Debug, Clone)]
pub enum Grant {
    /// The gateway's own token, shared by every caller (RFC 6749 section 4.4).
    ClientCredentials,
    /// Each user authorizes once in a browser (with PKCE S256 and `state`); their grant is
    /// stored and refreshed (RFC 6749 section 4.1).
    AuthorizationCode {
        /// The gateway's callback, registered with the authorization server.
        redirect_uri: Url,
    },
    /// Each user's own token is exchanged for an upstream token (RFC 8693).
    TokenExchange(TokenExchange),
}

/// The fixed parameters of a token exchange; the subject token comes with each call.
#[derive(Debug, Clone)]
pub struct TokenExchange {
    /// What the user's token is, e.g. [`ACCESS_TOKEN_TYPE`] or [`ID_TOKEN_TYPE`].
    pub subject_token_type: String,
    /// The type of token asked for, when the server needs to be told.
    pub requested_token_type: Option<String>,
    /// The logical name of the upstream, when the server identifies it that way rather than
    /// by `resource`.
    pub audience: Option<String>,
}

/// A configuration the client cannot work with.
#[derive(Debug, Clone, thiserror::Error)]
#[error("oauth client for upstream {upstream}: {problem}")]
pub struct ConfigError {
    /// The upstream whose client is misconfigured.
    pub upstream: String,
    /// What is wrong.
    pub problem: String,
}

/// The validated configuration.
pub(crate) struct Settings {
    pub(crate) upstream: String,
    pub(crate) issuer: Option<String>,
    pub(crate) issuer_in_authorization_response: bool,
    pub(crate) token_endpoint: Url,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) client_auth: ClientAuthMethod,
    /// The requested scopes joined with spaces, when there are any.
    pub(crate) scope: Option<String>,
    /// The canonical form of the resource URI.
    pub(crate) resource: String,
    pub(crate) grant: ValidGrant,
    pub(crate) refresh_margin: Duration,
    pub(crate) authorization_ttl: Duration,
}

/// A grant with what it needs, checked.
pub(crate) enum ValidGrant {
    ClientCredentials,
    AuthorizationCode(CodeFlow),
    TokenExchange(TokenExchange),
}

/// The authorization code grant's endpoints.
pub(crate) struct CodeFlow {
    pub(crate) authorization_endpoint: Url,
    pub(crate) redirect_uri: Url,
}

impl ClientConfig {
    pub(crate) fn validate(self) -> Result<Settings, ConfigError> {
        let problem = |problem: String| ConfigError {
            upstream: self.upstream.clone(),
            problem,
        };
        check_endpoint(&self.server.token_endpoint)
            .map_err(|error| problem(format!("token endpoint {error}")))?;
        check_endpoint(&self.resource).map_err(|error| problem(format!("resource {error}")))?;
        if self.server.issuer_in_authorization_response && self.server.issuer.is_none() {
            return Err(problem(
                "the server sends iss in authorization responses but its issuer is not known"
                    .into(),
            ));
        }
        if self.client_id.is_empty() {
            return Err(problem("client_id is empty".into()));
        }
        if let Some(scope) = self.scopes.iter().find(|scope| !is_scope_token(scope)) {
            return Err(problem(format!(
                "scope {scope:?} is not a single scope token (RFC 6749 section 3.3)"
            )));
        }
        let grant = match self.grant {
            Grant::ClientCredentials => ValidGrant::ClientCredentials,
            Grant::TokenExchange(exchange) => ValidGrant::TokenExchange(exchange),
            Grant::AuthorizationCode { redirect_uri } => {
                let Some(authorization_endpoint) = self.server.authorization_endpoint.clone()
                else {
                    return Err(problem(
                        "the authorization code grant needs the server's authorization endpoint"
                            .into(),
                    ));
                };
                check_endpoint(&authorization_endpoint)
                    .map_err(|error| problem(format!("authorization endpoint {error}")))?;
                check_endpoint(&redirect_uri)
                    .map_err(|error| problem(format!("redirect_uri {error}")))?;
                if !self.server.pkce_s256 {
                    return Err(problem(
                        "the authorization server does not advertise PKCE with S256 \
                         (code_challenge_methods_supported), which the authorization code \
                         grant requires"
                            .into(),
                    ));
                }
                ValidGrant::AuthorizationCode(CodeFlow {
                    authorization_endpoint,
                    redirect_uri,
                })
            }
        };
        let scope = (!self.scopes.is_empty()).then(|| self.scopes.join(" "));
        Ok(Settings {
            resource: canonical_resource(&self.resource),
            upstream: self.upstream,
            issuer: self.server.issuer,
            issuer_in_authorization_response: self.server.issuer_in_authorization_response,
            token_endpoint: self.server.token_endpoint,
            client_id: self.client_id,
            client_secret: self.client_secret,
            client_auth: self.client_auth,
            scope,
            grant,
            refresh_margin: self.refresh_margin,
            authorization_ttl: self.authorization_ttl,
        })
    }
}

/// The rule for every URL of an authorization server (or identity provider) the gateway talks
/// to or sends people to: HTTPS, or plain HTTP only to a loopback address (development and
/// tests), with no credentials and no fragment. The error says what is wrong.
pub fn check_endpoint(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => return Err("must use https (plain http only to a loopback address)".into()),
        other => return Err(format!("has unsupported scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}

/// RFC 6749 section 3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`.
fn is_scope_token(scope: &str) -> bool {
    !scope.is_empty()
        && scope.bytes().all(|byte| {
            byte == 0x21 || (0x23..=0x5b).contains(&byte) || (0x5d..=0x7e).contains(&byte)
        })
}

/// The resource URI as sent: lowercase scheme and host (the URL parser does that), and no
/// trailing slash on an empty path, the form the MCP authorization specification recommends.
pub(crate) fn canonical_resource(resource: &Url) -> String {
    let text = resource.as_str();
    if resource.path() == "/" && resource.query().is_none() {
        text.strip_suffix('/').unwrap_or(text).to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn resource_is_sent_in_canonical_form() {
        let cases = [
            ("https://MCP.Example.com", "https://mcp.example.com"),
            ("https://mcp.example.com/", "https://mcp.example.com"),
            (
                "https://mcp.example.com:8443",
                "https://mcp.example.com:8443",
            ),
            (
                "https://mcp.example.com/server/mcp",
                "https://mcp.example.com/server/mcp",
            ),
            (
                "https://mcp.example.com/mcp/",
                "https://mcp.example.com/mcp/",
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(canonical_resource(&url(input)), expected, "{input}");
        }
    }

    #[test]
    fn endpoints_follow_the_one_rule() {
        let cases = [
            ("https://as.example.com/token", true),
            ("http://127.0.0.1:8080/token", true),
            ("http://localhost/token", true),
            ("http://[::1]/token", true),
            ("http://as.example.com/token", false),
            ("https://user:pass@as.example.com/token", false),
            ("https://as.example.com/token#frag", false),
            ("ftp://as.example.com/token", false),
        ];
        for (input, allowed) in cases {
            assert_eq!(check_endpoint(&url(input)).is_ok(), allowed, "{input}");
        }
    }

    #[test]
    fn configuration_problems_are_named() {
        let check = |change: fn(&mut ClientConfig), expected: &str| {
            let mut config = ClientConfig::new(
                "files",
                AuthorizationServer::new(url("https://as.example.com/token")),
                "gatehouse",
                url("https://files.example.com/mcp"),
                Grant::AuthorizationCode {
                    redirect_uri: url("https://gatehouse.example.com/oauth/callback"),
                },
            );
            config.server.authorization_endpoint = Some(url("https://as.example.com/authorize"));
            change(&mut config);
            match (config.validate(), expected) {
                (Ok(_), "") => {}
                (Ok(_), expected) => panic!("accepted, expected {expected:?}"),
                (Err(error), expected) => {
                    let message = error.to_string();
                    assert!(
                        !expected.is_empty() && message.contains(expected),
                        "{message:?} lacks {expected:?}"
                    );
                }
            }
        };
        check(|_| {}, "");
        check(
            |config| config.server.authorization_endpoint = None,
            "needs the server's authorization endpoint",
        );
        check(|config| config.server.pkce_s256 = false, "PKCE with S256");
        check(
            |config| config.scopes = vec!["a b".into()],
            "single scope token",
        );
        check(
            |config| config.resource = url("http://files.example.com/mcp"),
            "upstream files: resource must use https",
        );
        check(|config| config.client_id.clear(), "client_id is empty");
    }
}
