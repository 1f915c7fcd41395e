//! `[auth]` validation: the documented example is accepted, and every mistake is reported with
//! its path.

use crate::support::{FakeSecrets, settings};
use gatehouse_identity::AuthSettings;
use gatehouse_identity::config::RawAuth;

/// The example from the `config` module's documentation.
const EXAMPLE: &str = r#"
resource_url = "https://mcp.example.com/mcp"
scopes_supported = ["mcp:tools"]

[api_keys]
pepper_env = "PEPPER"

[oidc]
issuer = "https://login.example.com/realms/acme"
user_claim = "preferred_username"
groups_claim = "groups"
required_scopes = ["mcp:tools"]

[trusted_header]
user_header = "X-Forwarded-User"
groups_header = "X-Forwarded-Groups"
trusted_proxies = ["10.0.0.0/8"]
"#;

#[test]
fn the_documented_example_is_valid() {
    let settings = settings(EXAMPLE).unwrap();
    let resource = settings.protected_resource().unwrap();
    assert_eq!(
        resource.metadata().authorization_servers,
        ["https://login.example.com/realms/acme"]
    );
    assert!(settings.api_keys().is_some());
}

#[test]
fn the_pepper_can_come_from_a_file() {
    let raw: RawAuth = toml::from_str("[api_keys]\npepper_file = \"/run/pepper\"").unwrap();
    let mut secrets = FakeSecrets::default();
    secrets.files.insert(
        "/run/pepper".into(),
        format!("{}\n", crate::support::PEPPER),
    );
    assert!(AuthSettings::from_raw(&raw, &secrets).is_ok());
}

#[test]
fn mistakes_are_reported_with_their_path() {
    let table = [
        (
            "[oidc]\nissuer = \"https://idp.test\"\nallowed_algs = [\"none\", \"HS256\", \"XY1\"]",
            "auth.oidc.audience: set audience, or auth.resource_url which it defaults to\n\
             auth.oidc.allowed_algs: \"none\" is never accepted\n\
             auth.oidc.allowed_algs: HS256 is symmetric and cannot be verified with published keys\n\
             auth.oidc.allowed_algs: unknown algorithm \"XY1\"",
        ),
        (
            "resource_url = \"http://gateway.example.com/mcp\"\n[oidc]\nissuer = \"http://idp.example.com\"\n\
             jwks_uri = \"https://user:pw@idp.test/keys\"\ncooldown_secs = 0\nleeway_secs = 900",
            "auth.oidc.issuer: must use https (plain http only to a loopback address)\n\
             auth.oidc.jwks_uri: must not contain credentials\n\
             auth.oidc.cooldown_secs: must be at least 1\n\
             auth.oidc.leeway_secs: must be at most 300\n\
             auth.resource_url: must use https (plain http only to a loopback address)",
        ),
        (
            "[api_keys]\npepper_env = \"MISSING\"",
            "auth.api_keys.pepper_env: environment variable MISSING is not set",
        ),
        (
            "[api_keys]\npepper_env = \"PEPPER\"\npepper_file = \"/p\"",
            "auth.api_keys: set exactly one of pepper_env and pepper_file",
        ),
        (
            "[trusted_header]\nuser_header = \"bad header\"\ntrusted_proxies = [\"0.0.0.0/0\", \"nope\"]",
            "auth.trusted_header.user_header: \"bad header\" is not a valid header name\n\
             auth.trusted_header.trusted_proxies: 0.0.0.0/0 would trust every address\n\
             auth.trusted_header.trusted_proxies: \"nope\" is not an address or CIDR range",
        ),
        (
            "resource_url = \"https://gw.test/mcp\"\nscopes_supported = [\"a\\\"b\"]\n\
             [api_keys]\npepper_env = \"PEPPER\"",
            "auth.scopes_supported: \"a\\\"b\" is not a valid scope\n\
             auth.authorization_servers: name at least one, or configure auth.oidc whose issuer it defaults to",
        ),
        (
            "",
            "auth: no authentication method is enabled; configure api_keys, oidc or trusted_header",
        ),
        (
            "[api_keys]\nenabled = false",
            "auth: no authentication method is enabled; configure api_keys, oidc or trusted_header",
        ),
        (
            "resource_url = \"https://gw.test/mcp\"\n[oidc]\nissuer = \"https://idp.test/?tenant=1\"",
            "auth.oidc.issuer: must not contain a query",
        ),
        (
            "[oidc]\nissuer = \"https://idp.test\"\nclient_secret = \"x\"",
            "toml: unknown field `client_secret`",
        ),
    ];
    let mut mismatches = Vec::new();
    for (toml_text, expected) in table {
        let actual = match settings(toml_text) {
            Ok(_) => "ok".to_owned(),
            Err(error) => error,
        };
        // A TOML parse error carries a source excerpt, so only its message is compared.
        let matches = match expected.strip_prefix("toml: ") {
            Some(message) => actual.contains(message),
            None => actual == expected,
        };
        if !matches {
            mismatches.push(format!(
                "{toml_text}\n  expected: {expected}\n  actual:   {actual}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n\n"));
}
