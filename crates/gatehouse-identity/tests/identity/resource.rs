//! The protected resource metadata and the WWW-Authenticate challenges (MCP authorization).

use gatehouse_identity::{AuthError, TokenRejection};

use crate::support::{MemoryKeys, authenticator};

const CONFIG: &str = r#"
resource_url = "https://gateway.test/mcp"
scopes_supported = ["mcp:tools", "mcp:admin"]
[oidc]
issuer = "https://login.test/realms/acme"
required_scopes = ["mcp:tools"]
"#;

#[test]
fn metadata_names_the_resource_and_its_authorization_server() {
    let auth = authenticator(CONFIG, MemoryKeys::default());
    let resource = auth.protected_resource().unwrap();
    assert_eq!(
        resource.metadata_path(),
        "/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        resource.metadata_url(),
        "https://gateway.test/.well-known/oauth-protected-resource/mcp"
    );
    assert_eq!(
        resource.metadata_json(),
        r#"{
  "resource": "https://gateway.test/mcp",
  "authorization_servers": [
    "https://login.test/realms/acme"
  ],
  "scopes_supported": [
    "mcp:tools",
    "mcp:admin"
  ],
  "bearer_methods_supported": [
    "header"
  ]
}"#
    );
}

#[test]
fn challenges_start_the_flow_and_ask_for_step_up() {
    let auth = authenticator(CONFIG, MemoryKeys::default());
    let metadata =
        "resource_metadata=\"https://gateway.test/.well-known/oauth-protected-resource/mcp\"";
    let table: Vec<(AuthError, Option<String>)> = vec![
        (
            AuthError::MissingCredential,
            Some(format!("Bearer {metadata}, scope=\"mcp:tools\"")),
        ),
        (
            AuthError::TokenRejected(TokenRejection::Expired),
            Some(format!(
                "Bearer error=\"invalid_token\", {metadata}, scope=\"mcp:tools\""
            )),
        ),
        (
            AuthError::InsufficientScope {
                missing: vec!["mcp:tools".into()],
            },
            Some(format!(
                "Bearer error=\"insufficient_scope\", {metadata}, scope=\"mcp:tools\""
            )),
        ),
        (AuthError::IdentityProviderUnavailable("down".into()), None),
    ];
    for (error, expected) in table {
        let actual = auth
            .www_authenticate(&error)
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(actual, expected, "{error}");
    }
}

#[test]
fn a_root_resource_and_no_resource_url() {
    let root = CONFIG.replace("https://gateway.test/mcp", "https://gateway.test");
    let auth = authenticator(&root, MemoryKeys::default());
    let resource = auth.protected_resource().unwrap();
    assert_eq!(
        resource.metadata_path(),
        "/.well-known/oauth-protected-resource"
    );
    assert_eq!(resource.metadata().resource, "https://gateway.test");

    let keys_only = authenticator("[api_keys]\npepper_env = \"PEPPER\"", MemoryKeys::default());
    assert!(keys_only.protected_resource().is_none());
    let challenge = keys_only
        .www_authenticate(&AuthError::MissingCredential)
        .unwrap();
    assert_eq!(challenge, "Bearer");
}
