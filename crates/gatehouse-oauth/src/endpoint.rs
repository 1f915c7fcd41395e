//! One token request: the form POST to the token endpoint (RFC 6749 section 3.2) with the
//! client's authentication and the RFC 8707 `resource`, and its answer parsed into an
//! [`IssuedToken`] or an [`OAuthError`] that carries none of the secrets sent.

use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::form_urlencoded;

use crate::config::{ASSUMED_LIFETIME, ClientAuthMethod, Settings};
use crate::error::{ErrorResponse, OAuthError};

/// Larger than any real token response.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longer lifetimes are cut to this, so that expiry arithmetic cannot overflow.
const MAX_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// The HTTP client for token and metadata requests. Redirects are not followed: a token
/// request carries credentials and must reach the configured endpoint only.
pub(crate) fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
}

/// The grant-specific fields of a token request. Fields added with [`TokenForm::secret`] are
/// removed from anything the server echoes back.
pub(crate) struct TokenForm<'a> {
    fields: Vec<(&'static str, &'a str)>,
    secrets: Vec<&'a str>,
}

impl<'a> TokenForm<'a> {
    pub(crate) fn new(grant_type: &'a str) -> Self {
        Self {
            fields: vec![("grant_type", grant_type)],
            secrets: Vec::new(),
        }
    }

    pub(crate) fn field(mut self, name: &'static str, value: &'a str) -> Self {
        self.fields.push((name, value));
        self
    }

    pub(crate) fn optional(self, name: &'static str, value: Option<&'a str>) -> Self {
        match value {
            Some(value) => self.field(name, value),
            None => self,
        }
    }

    pub(crate) fn secret(mut self, name: &'static str, value: &'a SecretString) -> Self {
        let value = value.expose_secret();
        self.fields.push((name, value));
        self.secrets.push(value);
        self
    }
}

/// A successful token response.
pub(crate) struct IssuedToken {
    pub(crate) access_token: SecretString,
    pub(crate) lifetime: Duration,
    pub(crate) refresh_token: Option<SecretString>,
    pub(crate) scope: Option<String>,
}

impl IssuedToken {
    pub(crate) fn expires_at(&self, issued_at: SystemTime) -> SystemTime {
        issued_at
            .checked_add(self.lifetime)
            .unwrap_or(issued_at + ASSUMED_LIFETIME)
    }
}

/// Sends one token request and parses its answer.
pub(crate) async fn request_token(
    http: &reqwest::Client,
    settings: &Settings,
    form: TokenForm<'_>,
) -> Result<IssuedToken, OAuthError> {
    let TokenForm {
        mut fields,
        mut secrets,
    } = form;
    // RFC 8707 and the MCP authorization specification: on every token request, whatever the
    // grant, so that the token is bound to this upstream.
    fields.push(("resource", &settings.resource));
    let mut request = http
        .post(settings.token_endpoint.clone())
        .header(ACCEPT, "application/json");
    let basic = match (&settings.client_secret, settings.client_auth) {
        (Some(secret), ClientAuthMethod::ClientSecretBasic) => {
            Some(basic_credentials(settings, secret))
        }
        _ => None,
    };
    match &settings.client_secret {
        None => fields.push(("client_id", &settings.client_id)),
        Some(secret) => {
            secrets.push(secret.expose_secret());
            match &basic {
                Some(basic) => {
                    // A server that echoes the header would otherwise leak the encoded secret.
                    secrets.push(basic.as_str());
                    let mut value =
                        HeaderValue::from_str(basic).map_err(|_| invalid_client_id(settings))?;
                    value.set_sensitive(true);
                    request = request.header(AUTHORIZATION, value);
                }
                None => {
                    fields.push(("client_id", &settings.client_id));
                    fields.push(("client_secret", secret.expose_secret()));
                }
            }
        }
    }
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&fields)
        .finish();
    let response = request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|error| unreachable(settings, &error))?;
    let status = response.status();
    let body = read_limited(settings, response).await?;
    if status.is_success() {
        parse_token(settings, &body)
    } else {
        Err(parse_error(settings, status.as_u16(), &body, &secrets))
    }
}

/// `Basic` with the form-encoded client id and secret, as RFC 6749 section 2.3.1 requires.
fn basic_credentials(settings: &Settings, secret: &SecretString) -> Zeroizing<String> {
    let encode = |text: &str| form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
    let pair = Zeroizing::new(format!(
        "{}:{}",
        encode(&settings.client_id),
        encode(secret.expose_secret())
    ));
    Zeroizing::new(format!("Basic {}", STANDARD.encode(pair.as_bytes())))
}

/// Base64 output is always a valid header value; this is for the impossible case.
fn invalid_client_id(settings: &Settings) -> OAuthError {
    OAuthError::Internal {
        upstream: settings.upstream.clone(),
        detail: "the client credentials do not make a valid Authorization header".into(),
    }
}

async fn read_limited(
    settings: &Settings,
    mut response: reqwest::Response,
) -> Result<Zeroizing<Vec<u8>>, OAuthError> {
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|error| unreachable(settings, &error))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(invalid(
                settings,
                format!("the response is larger than {MAX_RESPONSE_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// RFC 6749 section 5.1.
#[derive(Deserialize)]
struct TokenBody {
    access_token: SecretString,
    token_type: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    refresh_token: Option<SecretString>,
    #[serde(default)]
    scope: Option<String>,
}

fn parse_token(settings: &Settings, body: &[u8]) -> Result<IssuedToken, OAuthError> {
    let token: TokenBody = serde_json::from_slice(body).map_err(|error| {
        // serde's messages can quote the offending value, which may be a token; only the
        // name of a missing field is safe to repeat.
        let message = error.to_string();
        let problem = match message.split(" at line").next() {
            Some(missing) if missing.starts_with("missing field") => missing.to_owned(),
            _ => "the body is not a JSON token response (RFC 6749 section 5.1)".to_owned(),
        };
        invalid(settings, problem)
    })?;
    if token.access_token.expose_secret().is_empty() {
        return Err(invalid(settings, "access_token is empty".into()));
    }
    // The token is sent as `Authorization: Bearer`; another type (DPoP, MAC) would need a
    // proof this client does not make.
    if !token.token_type.eq_ignore_ascii_case("bearer") {
        return Err(invalid(settings, "token_type is not Bearer".into()));
    }
    let lifetime = token
        .expires_in
        .as_ref()
        .and_then(seconds)
        .map_or(ASSUMED_LIFETIME, |lifetime| lifetime.min(MAX_LIFETIME));
    Ok(IssuedToken {
        access_token: token.access_token,
        lifetime,
        refresh_token: token
            .refresh_token
            .filter(|refresh| !refresh.expose_secret().is_empty()),
        scope: token.scope,
    })
}

/// `expires_in` as a number of seconds; some servers send it as a string.
fn seconds(value: &serde_json::Value) -> Option<Duration> {
    match value {
        serde_json::Value::Number(number) => number
            .as_u64()
            .or_else(|| {
                number
                    .as_f64()
                    .filter(|seconds| *seconds >= 0.0)
                    .map(|seconds| seconds as u64)
            })
            .map(Duration::from_secs),
        serde_json::Value::String(text) => text.trim().parse().ok().map(Duration::from_secs),
        _ => None,
    }
}

/// RFC 6749 section 5.2.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

fn parse_error(settings: &Settings, status: u16, body: &[u8], secrets: &[&str]) -> OAuthError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(body) => OAuthError::TokenRefused {
            upstream: settings.upstream.clone(),
            endpoint: settings.token_endpoint.to_string(),
            response: ErrorResponse::cleaned(
                &body.error,
                body.error_description.as_deref(),
                secrets,
            ),
        },
        Err(_) => OAuthError::TokenEndpointStatus {
            upstream: settings.upstream.clone(),
            endpoint: settings.token_endpoint.to_string(),
            status,
        },
    }
}

fn unreachable(settings: &Settings, error: &reqwest::Error) -> OAuthError {
    let detail = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        // The innermost cause says what happened (connection refused, certificate, DNS);
        // reqwest's own message only repeats the URL.
        let mut cause: &dyn std::error::Error = error;
        while let Some(source) = cause.source() {
            cause = source;
        }
        cause.to_string()
    };
    OAuthError::TokenEndpointUnreachable {
        upstream: settings.upstream.clone(),
        endpoint: settings.token_endpoint.to_string(),
        detail,
    }
}

fn invalid(settings: &Settings, problem: String) -> OAuthError {
    OAuthError::InvalidTokenResponse {
        upstream: settings.upstream.clone(),
        endpoint: settings.token_endpoint.to_string(),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthorizationServer, ClientConfig, Grant};

    fn settings() -> Settings {
        ClientConfig::new(
            "files",
            AuthorizationServer::new(url::Url::parse("https://as.example.com/token").unwrap()),
            "gatehouse",
            url::Url::parse("https://files.example.com/mcp").unwrap(),
            Grant::ClientCredentials,
        )
        .validate()
        .unwrap()
    }

    #[test]
    fn token_responses_are_parsed_without_echoing_values() {
        let settings = settings();
        let check = |body: &str, expected: Result<u64, &str>| match (
            parse_token(&settings, body.as_bytes()),
            expected,
        ) {
            (Ok(token), Ok(lifetime)) => assert_eq!(token.lifetime.as_secs(), lifetime, "{body}"),
            (Err(error), Err(problem)) => {
                let message = error.to_string();
                assert!(message.contains(problem), "{message} lacks {problem}");
                assert!(!message.contains("canary"), "{message}");
            }
            (outcome, expected) => panic!("{body}: {:?} vs {expected:?}", outcome.err()),
        };
        check(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":60}"#,
            Ok(60),
        );
        check(
            r#"{"access_token":"a","token_type":"bearer","expires_in":"90"}"#,
            Ok(90),
        );
        check(r#"{"access_token":"a","token_type":"Bearer"}"#, Ok(300));
        check(
            r#"{"access_token":"a","token_type":"Bearer","expires_in":1e30}"#,
            Ok(MAX_LIFETIME.as_secs()),
        );
        check(
            r#"{"token_type":"Bearer"}"#,
            Err("missing field `access_token`"),
        );
        check(
            r#"{"access_token":"canary","token_type":"DPoP"}"#,
            Err("token_type is not Bearer"),
        );
        check(
            r#"{"access_token":"canary","token_type":5}"#,
            Err("not a JSON token response"),
        );
        check(
            r#"{"access_token":"","token_type":"Bearer"}"#,
            Err("access_token is empty"),
        );
    }
}
