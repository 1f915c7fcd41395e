//! The gateway as an OAuth protected resource (RFC 9728, MCP authorization): the metadata
//! document that names the authorization servers, and the `WWW-Authenticate` challenges that
//! point MCP clients at it on 401 and ask for more scopes on 403.

use http::HeaderValue;
use serde::Serialize;
use url::Url;

use crate::error::AuthError;

const WELL_KNOWN_PREFIX: &str = "/.well-known/oauth-protected-resource";

/// The gateway's protected resource identity, built from `[auth]`.
#[derive(Debug, Clone)]
pub struct ProtectedResource {
    metadata: ProtectedResourceMetadata,
    metadata_path: String,
    metadata_url: String,
    challenge_scopes: Vec<String>,
}

/// The RFC 9728 metadata document, served as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtectedResourceMetadata {
    /// The resource identifier: the gateway's MCP endpoint URL as configured.
    pub resource: String,
    /// Authorization servers that issue tokens for this resource.
    pub authorization_servers: Vec<String>,
    /// Scopes a client may request.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Always `["header"]`: tokens are accepted only in the Authorization header, never in a
    /// query string or body.
    pub bearer_methods_supported: Vec<String>,
}

impl ProtectedResource {
    pub(crate) fn new(
        resource: String,
        parsed: &Url,
        authorization_servers: Vec<String>,
        scopes_supported: Vec<String>,
        challenge_scopes: Vec<String>,
    ) -> Self {
        // RFC 9728 section 3.1: the well-known segment goes between the host and the path,
        // and a path of just "/" is dropped.
        let path = match parsed.path() {
            "/" => "",
            path => path,
        };
        let metadata_path = format!("{WELL_KNOWN_PREFIX}{path}");
        let origin = parsed.origin().ascii_serialization();
        let mut metadata_url = format!("{origin}{metadata_path}");
        if let Some(query) = parsed.query() {
            metadata_url.push('?');
            metadata_url.push_str(query);
        }
        Self {
            metadata: ProtectedResourceMetadata {
                resource,
                authorization_servers,
                scopes_supported,
                bearer_methods_supported: vec!["header".to_owned()],
            },
            metadata_path,
            metadata_url,
            challenge_scopes,
        }
    }

    /// The metadata document.
    pub fn metadata(&self) -> &ProtectedResourceMetadata {
        &self.metadata
    }

    /// The metadata document as JSON text.
    pub fn metadata_json(&self) -> String {
        serde_json::to_string_pretty(&self.metadata).unwrap_or_default()
    }

    /// The path the gateway serves the document on, e.g.
    /// `/.well-known/oauth-protected-resource/mcp`. The gateway should serve the root form
    /// `/.well-known/oauth-protected-resource` as well; clients try this one first.
    pub fn metadata_path(&self) -> &str {
        &self.metadata_path
    }

    /// The absolute URL of the document, as put in `resource_metadata="…"`.
    pub fn metadata_url(&self) -> &str {
        &self.metadata_url
    }

    fn challenge(&self, error: Option<&str>) -> String {
        let mut parameters = Vec::new();
        if let Some(error) = error {
            parameters.push(format!("error=\"{error}\""));
        }
        parameters.push(format!(
            "resource_metadata=\"{}\"",
            quoted_string_escape(&self.metadata_url)
        ));
        if !self.challenge_scopes.is_empty() {
            // Scope tokens were checked against RFC 6749 at validation: no quote or backslash.
            parameters.push(format!("scope=\"{}\"", self.challenge_scopes.join(" ")));
        }
        format!("Bearer {}", parameters.join(", "))
    }
}

/// The `WWW-Authenticate` value for an authentication failure: on 401, a Bearer challenge
/// naming the metadata URL and scopes (`error="invalid_token"` when a credential was presented
/// but rejected); on 403, `error="insufficient_scope"` for step-up; nothing on 503.
pub(crate) fn www_authenticate(
    resource: Option<&ProtectedResource>,
    error: &AuthError,
) -> Option<HeaderValue> {
    let code = match error {
        AuthError::MissingCredential => None,
        AuthError::InsufficientScope { .. } => Some("insufficient_scope"),
        AuthError::KeyStoreUnavailable(_) | AuthError::IdentityProviderUnavailable(_) => {
            return None;
        }
        AuthError::MalformedCredential(_)
        | AuthError::MethodNotEnabled(_)
        | AuthError::ApiKeyRejected { .. }
        | AuthError::TokenRejected(_)
        | AuthError::UntrustedHeaderSource { .. } => Some("invalid_token"),
    };
    let value = match (resource, code) {
        (Some(resource), code) => resource.challenge(code),
        (None, Some(code)) => format!("Bearer error=\"{code}\""),
        (None, None) => "Bearer".to_owned(),
    };
    HeaderValue::from_str(&value).ok()
}

fn quoted_string_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('"', "\\\"")
}
