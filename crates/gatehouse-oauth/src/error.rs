//! What went wrong, said so that an operator knows which upstream and endpoint failed and what
//! to do. No variant holds a token, a code, a verifier or a secret: text that came from an
//! authorization server is stripped of every secret the request carried before it is kept.

use std::fmt;

use crate::store::{GrantStoreError, UserId};

/// Why an access token could not be had.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The user has no usable grant for the upstream and must authorize in a browser.
    #[error(
        "upstream {upstream}: user {user} must authorize access again ({reason}); send them \
         through the authorization flow, which starts at {authorization_endpoint}"
    )]
    AuthorizationRequired {
        /// The upstream.
        upstream: String,
        /// The user who must authorize.
        user: UserId,
        /// Why the stored grant, if any, is not enough.
        reason: ReauthorizationReason,
        /// Where the authorization flow sends the user.
        authorization_endpoint: String,
    },
    /// The token endpoint answered with an OAuth error response.
    #[error("upstream {upstream}: token endpoint {endpoint} refused the request: {response}{}", response.hint())]
    TokenRefused {
        /// The upstream.
        upstream: String,
        /// The token endpoint.
        endpoint: String,
        /// The parsed error response.
        response: ErrorResponse,
    },
    /// The token endpoint could not be reached or did not answer in time.
    #[error(
        "upstream {upstream}: token endpoint {endpoint} could not be reached ({detail}); check \
         that the gateway can connect to it"
    )]
    TokenEndpointUnreachable {
        /// The upstream.
        upstream: String,
        /// The token endpoint.
        endpoint: String,
        /// What the HTTP client reported.
        detail: String,
    },
    /// The token endpoint answered with an error status but no OAuth error response.
    #[error(
        "upstream {upstream}: token endpoint {endpoint} answered with status {status} and no \
         OAuth error; check the endpoint URL"
    )]
    TokenEndpointStatus {
        /// The upstream.
        upstream: String,
        /// The token endpoint.
        endpoint: String,
        /// The HTTP status.
        status: u16,
    },
    /// The token endpoint's success response is not one the client can use.
    #[error(
        "upstream {upstream}: token endpoint {endpoint} sent an unusable token response: {problem}"
    )]
    InvalidTokenResponse {
        /// The upstream.
        upstream: String,
        /// The token endpoint.
        endpoint: String,
        /// What is wrong with it.
        problem: String,
    },
    /// An authorization callback named a `state` that was never issued or was already used.
    #[error(
        "upstream {upstream}: the authorization response names an unknown or already used \
         state; start the authorization again"
    )]
    UnknownAuthorizationState {
        /// The upstream.
        upstream: String,
    },
    /// An authorization callback came after its authorization expired.
    #[error("upstream {upstream}: the authorization expired before it completed; start it again")]
    ExpiredAuthorizationState {
        /// The upstream.
        upstream: String,
    },
    /// The `iss` of an authorization response is missing or names another issuer (RFC 9207):
    /// the response may come from a different authorization server, so its code is not used.
    #[error(
        "upstream {upstream}: the authorization response {problem} (expected issuer {expected}); \
         its code was not used"
    )]
    IssuerMismatch {
        /// The upstream.
        upstream: String,
        /// The issuer the client expected.
        expected: String,
        /// What was wrong with `iss`.
        problem: &'static str,
    },
    /// The authorization server reported an error to the callback instead of a code.
    #[error("upstream {upstream}: authorization was not granted: {response}")]
    AuthorizationDenied {
        /// The upstream.
        upstream: String,
        /// The error the server reported.
        response: ErrorResponse,
    },
    /// An authorization callback without `code` or `state`.
    #[error("upstream {upstream}: the authorization response has no {missing}")]
    MalformedAuthorizationResponse {
        /// The upstream.
        upstream: String,
        /// The missing parameter.
        missing: &'static str,
    },
    /// Too many authorizations are waiting for their callback.
    #[error(
        "upstream {upstream}: too many authorizations are waiting for their callback; try again \
         once some have completed or expired"
    )]
    TooManyPendingAuthorizations {
        /// The upstream.
        upstream: String,
    },
    /// The subject does not fit the configured grant, e.g. a user's token asked of a client
    /// configured for client credentials.
    #[error("upstream {upstream}: its {grant} grant cannot issue a token for {subject}")]
    WrongSubject {
        /// The upstream.
        upstream: String,
        /// The configured grant.
        grant: &'static str,
        /// What was asked for.
        subject: &'static str,
    },
    /// An operation of the authorization code grant asked of a client with another grant.
    #[error(
        "upstream {upstream}: {operation} needs the authorization code grant, configured is {grant}"
    )]
    NotAuthorizationCode {
        /// The upstream.
        upstream: String,
        /// The operation asked for.
        operation: &'static str,
        /// The configured grant.
        grant: &'static str,
    },
    /// The grant store failed.
    #[error("upstream {upstream}: the grant of user {user} could not be {action}: {source}")]
    GrantStore {
        /// The upstream.
        upstream: String,
        /// Whose grant.
        user: UserId,
        /// `loaded`, `saved` or `removed`.
        action: &'static str,
        /// The store's error.
        source: GrantStoreError,
    },
    /// A failure inside the client itself.
    #[error("upstream {upstream}: {detail}")]
    Internal {
        /// The upstream.
        upstream: String,
        /// What failed.
        detail: String,
    },
}

/// Why a user has to authorize again.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReauthorizationReason {
    /// No grant is stored for the user.
    NoGrant,
    /// The access token expired and there is no refresh token.
    ExpiredWithoutRefreshToken,
    /// The authorization server refused the refresh token; the stored grant was removed.
    RefreshRefused(ErrorResponse),
}

impl fmt::Display for ReauthorizationReason {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReauthorizationReason::NoGrant => formatter.write_str("no grant is stored"),
            ReauthorizationReason::ExpiredWithoutRefreshToken => {
                formatter.write_str("the access token expired and there is no refresh token")
            }
            ReauthorizationReason::RefreshRefused(response) => write!(
                formatter,
                "the authorization server refused the refresh token ({response}) and the grant \
                 was removed"
            ),
        }
    }
}

/// An OAuth error response (RFC 6749 section 5.2), as reported by a token endpoint or to an
/// authorization callback, cleaned of anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse {
    /// The error code, e.g. `invalid_grant`; `unrecognized_error` when the server sent something
    /// that is not an error code.
    pub error: String,
    /// The server's description, without any secret the request carried, control characters
    /// removed and cut to a bounded length.
    pub description: Option<String>,
}

/// The longest description kept.
const MAX_DESCRIPTION_CHARS: usize = 200;
/// The longest error code kept; the registered codes are far shorter.
const MAX_ERROR_CODE_CHARS: usize = 64;

impl ErrorResponse {
    /// The response built from the server's `error` and `error_description`, with every value of
    /// `secrets` that appears in them replaced.
    pub(crate) fn cleaned(error: &str, description: Option<&str>, secrets: &[&str]) -> Self {
        // RFC 6749: error = 1*( %x20-21 / %x23-5B / %x5D-7E ). Anything else, or an error that
        // contains a secret, is not a code this client can act on.
        let is_code = !error.is_empty()
            && error.chars().count() <= MAX_ERROR_CODE_CHARS
            && error
                .bytes()
                .all(|byte| matches!(byte, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
            && !contains_any(error, secrets);
        let error = if is_code {
            error.to_owned()
        } else {
            "unrecognized_error".to_owned()
        };
        let description = description
            .map(|text| redact(text, secrets))
            .filter(|text| !text.is_empty());
        Self { error, description }
    }

    /// What an operator can do about the error, for the codes where that is clear.
    fn hint(&self) -> &'static str {
        match self.error.as_str() {
            "invalid_client" | "unauthorized_client" => {
                "; check the upstream's client id, client secret and client authentication method"
            }
            "invalid_scope" => "; check the upstream's configured scopes",
            "invalid_target" => "; check the upstream's resource URI",
            "unsupported_grant_type" => {
                "; the authorization server does not allow this grant for the client"
            }
            _ => "",
        }
    }
}

impl fmt::Display for ErrorResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.error)?;
        if let Some(description) = &self.description {
            write!(formatter, " ({description})")?;
        }
        Ok(())
    }
}

fn contains_any(text: &str, secrets: &[&str]) -> bool {
    secrets
        .iter()
        .any(|secret| !secret.is_empty() && text.contains(secret))
}

/// `text` with every secret replaced by `[redacted]`, control characters dropped and the
/// length bounded. Secrets are replaced before cutting, so a cut never leaves a secret's prefix
/// behind.
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut text = text.to_owned();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        text = text.replace(secret, "[redacted]");
    }
    let mut kept: String = text
        .chars()
        .filter(|character| !character.is_control())
        .take(MAX_DESCRIPTION_CHARS)
        .collect();
    if text
        .chars()
        .filter(|character| !character.is_control())
        .count()
        > MAX_DESCRIPTION_CHARS
    {
        kept.push('…');
    }
    kept.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_responses_are_cleaned() {
        let cases: [(&str, Option<&str>, &str, Option<&str>); 6] = [
            ("invalid_grant", None, "invalid_grant", None),
            (
                "invalid_grant",
                Some("refresh token rt-secret was revoked"),
                "invalid_grant",
                Some("refresh token [redacted] was revoked"),
            ),
            ("rt-secret", Some("x"), "unrecognized_error", Some("x")),
            ("bad\"quote", None, "unrecognized_error", None),
            (
                "invalid_request",
                Some("line\nbreak\u{1b}[31m"),
                "invalid_request",
                Some("linebreak[31m"),
            ),
            ("invalid_request", Some("   "), "invalid_request", None),
        ];
        for (error, description, expected_error, expected_description) in cases {
            let cleaned = ErrorResponse::cleaned(error, description, &["rt-secret", ""]);
            assert_eq!(cleaned.error, expected_error, "{error}");
            assert_eq!(
                cleaned.description.as_deref(),
                expected_description,
                "{error}"
            );
        }
    }

    #[test]
    fn long_descriptions_are_cut_after_redaction() {
        let secret = "s".repeat(300);
        let text = format!("{} {secret}", "a".repeat(150));
        let cleaned = ErrorResponse::cleaned("invalid_request", Some(&text), &[&secret]);
        let description = cleaned.description.unwrap();
        assert!(description.ends_with("[redacted]"), "{description}");
        let long = "b".repeat(500);
        let cleaned = ErrorResponse::cleaned("invalid_request", Some(&long), &[]);
        assert_eq!(
            cleaned.description.unwrap().chars().count(),
            MAX_DESCRIPTION_CHARS + 1
        );
    }
}
