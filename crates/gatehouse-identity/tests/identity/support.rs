//! The shared harness: building an authenticator from TOML, an in-memory key store, and the
//! one table-driven `check` helper every test goes through.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use gatehouse_identity::config::RawAuth;
use gatehouse_identity::{
    ApiKeyId, AuthError, AuthSettings, Authenticator, KeyLookup, KeyLookupError, Principal,
    SecretSource, StoredKey,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use secrecy::SecretString;

pub const RESOURCE_URL: &str = "https://gateway.test/mcp";
pub const PEPPER: &str = "test-pepper-with-at-least-thirty-two-bytes";

/// Environment and files for the pepper, without touching the process's own.
#[derive(Default)]
pub struct FakeSecrets {
    pub env: HashMap<String, String>,
    pub files: HashMap<String, String>,
}

impl FakeSecrets {
    pub fn with_pepper() -> Self {
        let mut secrets = Self::default();
        secrets.env.insert("PEPPER".into(), PEPPER.into());
        secrets
    }
}

impl SecretSource for FakeSecrets {
    fn env_var(&self, name: &str) -> Option<SecretString> {
        self.env
            .get(name)
            .map(|value| SecretString::from(value.as_str()))
    }

    fn read_file(&self, path: &Path) -> std::io::Result<SecretString> {
        let key = path.to_string_lossy();
        self.files
            .get(key.as_ref())
            .map(|value| SecretString::from(value.as_str()))
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// An in-memory key store.
#[derive(Clone, Default)]
pub struct MemoryKeys(Arc<Mutex<HashMap<ApiKeyId, StoredKey>>>);

impl MemoryKeys {
    pub fn insert(&self, id: ApiKeyId, key: StoredKey) {
        self.0.lock().unwrap().insert(id, key);
    }
}

impl KeyLookup for MemoryKeys {
    async fn find_key(&self, id: &ApiKeyId) -> Result<Option<StoredKey>, KeyLookupError> {
        Ok(self.0.lock().unwrap().get(id).cloned())
    }
}

/// A key store that is down.
pub struct BrokenKeys;

impl KeyLookup for BrokenKeys {
    async fn find_key(&self, _id: &ApiKeyId) -> Result<Option<StoredKey>, KeyLookupError> {
        Err(KeyLookupError::new("database is locked"))
    }
}

/// Parses an `[auth]` table written as TOML (the table's contents, without the header).
pub fn settings(toml_text: &str) -> Result<AuthSettings, String> {
    let raw: RawAuth = toml::from_str(toml_text).map_err(|error| error.to_string())?;
    AuthSettings::from_raw(&raw, &FakeSecrets::with_pepper()).map_err(|error| error.to_string())
}

pub fn authenticator<K: KeyLookup>(toml_text: &str, keys: K) -> Authenticator<K> {
    let settings = settings(toml_text).unwrap();
    Authenticator::new(settings, keys).unwrap()
}

/// The usual OIDC configuration for `issuer_url`, plus `extra` lines in `[oidc]`.
pub fn oidc_toml(issuer_url: &str, extra: &str) -> String {
    format!(
        r#"
resource_url = "{RESOURCE_URL}"
[oidc]
issuer = "{issuer_url}"
user_claim = "preferred_username"
groups_claim = "groups"
required_scopes = ["mcp:tools"]
allowed_algs = ["RS256", "RS384", "ES256"]
{extra}
"#
    )
}

pub fn client_peer() -> SocketAddr {
    "192.0.2.10:50000".parse().unwrap()
}

pub fn bearer(credential: &str) -> HeaderMap {
    headers(&[("authorization", &format!("Bearer {credential}"))])
}

pub fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// One request and the outcome it must have, rendered by [`describe`].
pub struct Case {
    pub name: &'static str,
    pub headers: HeaderMap,
    pub peer: SocketAddr,
    pub expect: String,
}

impl Case {
    pub fn new(
        name: &'static str,
        headers: HeaderMap,
        peer: &str,
        expect: impl Into<String>,
    ) -> Self {
        Self {
            name,
            headers,
            peer: peer.parse().unwrap(),
            expect: expect.into(),
        }
    }

    pub fn bearer(name: &'static str, credential: &str, expect: impl Into<String>) -> Self {
        Self {
            name,
            headers: bearer(credential),
            peer: client_peer(),
            expect: expect.into(),
        }
    }
}

/// Runs every case and reports all mismatches at once. Each rejection is also checked for
/// what the client sees: a fixed message, no credential text, and a challenge on 401/403.
pub async fn check<K: KeyLookup>(authenticator: &Authenticator<K>, cases: Vec<Case>) {
    let mut mismatches = Vec::new();
    for case in cases {
        let outcome = authenticator.authenticate(&case.headers, case.peer).await;
        if let Err(error) = &outcome {
            check_error_is_safe(authenticator, &case, error);
        }
        let actual = describe(&outcome);
        if actual != case.expect {
            mismatches.push(format!(
                "{}:\n  expected: {}\n  actual:   {actual}",
                case.name, case.expect
            ));
        }
    }
    assert!(mismatches.is_empty(), "\n{}", mismatches.join("\n"));
}

pub fn describe(outcome: &Result<Principal, AuthError>) -> String {
    match outcome {
        Ok(principal) => format!(
            "ok {} user={} groups=[{}] teams=[{}] credential={}",
            principal.method(),
            principal.user(),
            principal.groups().join(","),
            principal.teams().join(","),
            principal.credential()
        ),
        Err(error) => format!("{} {error}", error.status().as_u16()),
    }
}

fn check_error_is_safe<K: KeyLookup>(
    authenticator: &Authenticator<K>,
    case: &Case,
    error: &AuthError,
) {
    let detail = error.to_string();
    let debug = format!("{error:?}");
    if let Some(value) = case.headers.get("authorization") {
        let credential = value.to_str().unwrap().trim_start_matches("Bearer ");
        // The credential's secret part must appear in neither the log text nor Debug.
        let secret_part = match credential.strip_prefix("gh_") {
            // An API key's secret is its last 43 characters.
            Some(_) if credential.len() > 43 => &credential[credential.len() - 43..],
            // A token's signature.
            _ => credential.rsplit('.').next().unwrap_or(credential),
        };
        if secret_part.len() >= 8 {
            assert!(
                !detail.contains(secret_part),
                "{}: secret in {detail}",
                case.name
            );
            assert!(
                !debug.contains(secret_part),
                "{}: secret in {debug}",
                case.name
            );
        }
    }
    let allowed = [
        "authentication required",
        "invalid credential",
        "insufficient scope",
        "authentication temporarily unavailable",
    ];
    assert!(allowed.contains(&error.client_message()), "{}", case.name);
    let status = error.status().as_u16();
    let challenge = authenticator.www_authenticate(error);
    assert_eq!(
        challenge.is_some(),
        status != 503,
        "{}: challenge on {status}",
        case.name
    );
}
