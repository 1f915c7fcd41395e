//! Reading the one `Authorization: Bearer` credential of a request.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::api_key::API_KEY_PREFIX;
use crate::error::AuthError;

/// Larger than any access token an identity provider issues; bounds the work spent on one.
const MAX_BEARER_BYTES: usize = 16 * 1024;

/// A bearer credential, sorted by its shape: gateway API keys carry [`API_KEY_PREFIX`], and
/// anything else is taken for a JWT (which always starts `eyJ`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bearer<'a> {
    ApiKey(&'a str),
    Token(&'a str),
}

/// The request's bearer credential; `Ok(None)` when there is no Authorization header.
pub(crate) fn bearer_credential(headers: &HeaderMap) -> Result<Option<Bearer<'_>>, AuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::MalformedCredential(
            "repeated authorization header",
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| AuthError::MalformedCredential("authorization header"))?;
    let (scheme, credential) = value
        .trim()
        .split_once(' ')
        .ok_or(AuthError::MalformedCredential("authorization header"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::MalformedCredential(
            "authorization scheme is not bearer",
        ));
    }
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(AuthError::MalformedCredential("empty bearer credential"));
    }
    if credential.len() > MAX_BEARER_BYTES {
        return Err(AuthError::MalformedCredential(
            "bearer credential too large",
        ));
    }
    if credential.starts_with(API_KEY_PREFIX) {
        Ok(Some(Bearer::ApiKey(credential)))
    } else {
        Ok(Some(Bearer::Token(credential)))
    }
}
