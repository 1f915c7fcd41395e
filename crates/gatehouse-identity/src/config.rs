//! The `[auth]` table exactly as written: serde types that refuse unknown keys, so a misspelt
//! setting is an error that names it rather than a check silently skipped.
//! [`crate::AuthSettings::from_raw`] validates them.
//!
//! ```toml
//! [auth]
//! resource_url = "https://mcp.example.com/mcp"
//! scopes_supported = ["mcp:tools"]
//!
//! [auth.api_keys]
//! pepper_env = "GATEHOUSE_KEY_PEPPER"
//!
//! [auth.oidc]
//! issuer = "https://login.example.com/realms/acme"
//! user_claim = "preferred_username"
//! groups_claim = "groups"
//! required_scopes = ["mcp:tools"]
//!
//! [auth.trusted_header]
//! user_header = "X-Forwarded-User"
//! groups_header = "X-Forwarded-Groups"
//! trusted_proxies = ["10.0.0.0/8"]
//! ```

use serde::Deserialize;

/// The `[auth]` table: how callers prove who they are.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// The gateway's public URL of its MCP endpoint, e.g. `https://mcp.example.com/mcp`: the
    /// OAuth resource identifier, the default token audience, and the base of the protected
    /// resource metadata URL. Without it no metadata is published.
    pub resource_url: Option<String>,
    /// Authorization servers named in the protected resource metadata; defaults to
    /// `[auth.oidc.issuer]`.
    pub authorization_servers: Option<Vec<String>>,
    /// Scopes listed in the protected resource metadata (`scopes_supported`).
    pub scopes_supported: Option<Vec<String>>,
    /// Gateway-issued API keys; absent means API keys are not accepted.
    pub api_keys: Option<RawApiKeys>,
    /// OIDC/JWT bearer tokens from one identity provider; absent means tokens are not accepted.
    pub oidc: Option<RawOidc>,
    /// Identity headers set by an SSO proxy; absent means such headers are never trusted.
    pub trusted_header: Option<RawTrustedHeader>,
}

/// The `[auth.api_keys]` table. Exactly one of `pepper_env` and `pepper_file` is required
/// when the keys are enabled.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApiKeys {
    /// Accept gateway API keys (default `true` when the table is present).
    pub enabled: Option<bool>,
    /// Environment variable holding the server pepper mixed into key digests (32 bytes or
    /// more; changing it invalidates every issued key).
    pub pepper_env: Option<String>,
    /// File holding the server pepper; a trailing newline is ignored.
    pub pepper_file: Option<String>,
}

/// The `[auth.oidc]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The identity provider's issuer URL, compared exactly with each token's `iss`.
    pub issuer: String,
    /// The audience tokens must name; defaults to `auth.resource_url` (RFC 8707).
    pub audience: Option<String>,
    /// Where the signing keys are; when absent they are found through
    /// `<issuer>/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// The claim that names the user: `sub` (default), `email` or `preferred_username`; any
    /// string claim works.
    pub user_claim: Option<String>,
    /// The claim that lists the user's groups (an array of strings, or one string).
    pub groups_claim: Option<String>,
    /// The claim that lists the user's teams (an array of strings, or one string).
    pub teams_claim: Option<String>,
    /// Scopes every token must carry (in `scope` or `scp`); a valid token without them gets
    /// 403 with a step-up challenge.
    pub required_scopes: Option<Vec<String>>,
    /// Signature algorithms accepted (default `["RS256", "ES256"]`); `none` and the HMAC
    /// algorithms are refused.
    pub allowed_algs: Option<Vec<String>>,
    /// At most one key fetch per this many seconds when tokens name unknown key ids
    /// (default 10).
    pub cooldown_secs: Option<u64>,
    /// Keys older than this many seconds are fetched again on the next token (default 3600).
    pub max_age_secs: Option<u64>,
    /// Allowed clock skew in seconds for `exp` and `nbf` (default 60, at most 300).
    pub leeway_secs: Option<u64>,
}

/// The `[auth.trusted_header]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTrustedHeader {
    /// The header naming the user, e.g. `X-Forwarded-User`.
    pub user_header: String,
    /// The header listing the user's groups, comma-separated.
    pub groups_header: Option<String>,
    /// The header listing the user's teams, comma-separated.
    pub teams_header: Option<String>,
    /// Addresses or CIDR ranges of the proxies whose headers are believed; the header from any
    /// other peer is refused.
    pub trusted_proxies: Vec<String>,
}
