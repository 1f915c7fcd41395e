//! Authorization server metadata from an issuer identifier: RFC 8414, then OpenID Connect
//! Discovery, in the order the MCP authorization specification gives.

use serde::Deserialize;
use url::Url;

use crate::config::{AuthorizationServer, check_endpoint};
use crate::endpoint::http_client;

/// Larger than any real metadata document.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The metadata of an issuer could not be had or is not usable.
#[derive(Debug, Clone, thiserror::Error)]
#[error("authorization server metadata for issuer {issuer}: {problem}")]
pub struct DiscoveryError {
    /// The issuer.
    pub issuer: String,
    /// What went wrong.
    pub problem: String,
}

impl AuthorizationServer {
    /// Fetches the metadata of `issuer` and keeps what the client needs. The document must name
    /// `issuer` exactly, or a different server's endpoints could be trusted. Redirects are not
    /// followed.
    pub async fn discover(issuer: &str) -> Result<Self, DiscoveryError> {
        let problem = |problem: String| DiscoveryError {
            issuer: issuer.to_owned(),
            problem,
        };
        let issuer_url =
            Url::parse(issuer).map_err(|error| problem(format!("not a URL ({error})")))?;
        check_endpoint(&issuer_url).map_err(|error| problem(format!("the issuer {error}")))?;
        if issuer_url.query().is_some() {
            return Err(problem(
                "the issuer must not have a query (RFC 8414 section 2)".into(),
            ));
        }
        let http = http_client()
            .map_err(|error| problem(format!("the HTTP client could not be built: {error}")))?;
        let mut failures = Vec::new();
        for url in metadata_urls(&issuer_url) {
            match fetch(&http, &url).await {
                Ok(Some(metadata)) => return from_metadata(issuer, metadata).map_err(problem),
                Ok(None) => failures.push(format!("{url}: not found")),
                Err(failure) => failures.push(format!("{url}: {failure}")),
            }
        }
        Err(problem(format!(
            "no metadata document found ({})",
            failures.join("; ")
        )))
    }
}

/// Where the metadata may be, in order. For an issuer with a path the well-known segment is
/// inserted before the path (RFC 8414 section 3.1), and OpenID Connect's appended form is tried
/// last.
fn metadata_urls(issuer: &Url) -> Vec<Url> {
    let path = issuer.path().trim_end_matches('/');
    let at = |path: String| {
        let mut url = issuer.clone();
        url.set_path(&path);
        url
    };
    let mut urls = vec![
        at(format!("/.well-known/oauth-authorization-server{path}")),
        at(format!("/.well-known/openid-configuration{path}")),
    ];
    if !path.is_empty() {
        urls.push(at(format!("{path}/.well-known/openid-configuration")));
    }
    urls
}

#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    #[serde(default)]
    token_endpoint: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

fn from_metadata(issuer: &str, metadata: Metadata) -> Result<AuthorizationServer, String> {
    if metadata.issuer != issuer {
        return Err(format!(
            "the document names issuer {:?}, not the one it was fetched for",
            metadata.issuer
        ));
    }
    let endpoint = |name: &str, text: &str| {
        let url = Url::parse(text).map_err(|error| format!("{name} is not a URL ({error})"))?;
        check_endpoint(&url).map_err(|error| format!("{name} {error}"))?;
        Ok::<_, String>(url)
    };
    let token_endpoint = metadata
        .token_endpoint
        .as_deref()
        .ok_or("the document has no token_endpoint")?;
    Ok(AuthorizationServer {
        issuer: Some(metadata.issuer.clone()),
        token_endpoint: endpoint("token_endpoint", token_endpoint)?,
        authorization_endpoint: metadata
            .authorization_endpoint
            .as_deref()
            .map(|text| endpoint("authorization_endpoint", text))
            .transpose()?,
        issuer_in_authorization_response: metadata.authorization_response_iss_parameter_supported,
        // The MCP authorization specification: without S256 in
        // code_challenge_methods_supported the client must not proceed.
        pkce_s256: metadata
            .code_challenge_methods_supported
            .iter()
            .any(|method| method == "S256"),
    })
}

/// The document at `url`; `None` when there is none (404).
async fn fetch(http: &reqwest::Client, url: &Url) -> Result<Option<Metadata>, String> {
    let mut response = http
        .get(url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status();
    if status == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(format!("status {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("document larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|error| format!("not a metadata document ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_locations_follow_the_specification_order() {
        let check = |issuer: &str, expected: &[&str]| {
            let urls = metadata_urls(&Url::parse(issuer).unwrap());
            let urls: Vec<&str> = urls.iter().map(Url::as_str).collect();
            assert_eq!(urls, expected, "{issuer}");
        };
        check(
            "https://auth.example.com",
            &[
                "https://auth.example.com/.well-known/oauth-authorization-server",
                "https://auth.example.com/.well-known/openid-configuration",
            ],
        );
        check(
            "https://auth.example.com/tenant1/",
            &[
                "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
                "https://auth.example.com/.well-known/openid-configuration/tenant1",
                "https://auth.example.com/tenant1/.well-known/openid-configuration",
            ],
        );
    }
}
