//! Claim types and the mapping from a verified token's claims to a [`Principal`].

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use super::OidcSettings;
use crate::error::{AuthError, TokenRejection};
use crate::principal::{CredentialRef, Principal};

/// Refuses claims of the wrong JSON type, and missing required ones. Time claims must be
/// non-negative integers: a string `exp` or `nbf` is refused rather than skipped.
pub(super) fn check_types(
    claims: &Map<String, Value>,
    settings: &OidcSettings,
) -> Result<(), TokenRejection> {
    let wrong = |name: &str| TokenRejection::WrongClaimType(name.to_owned());
    for name in ["exp", "iss", "aud", "sub", settings.user_claim.as_str()] {
        if !claims.contains_key(name) {
            return Err(TokenRejection::MissingClaim(name.to_owned()));
        }
    }
    for name in ["exp", "nbf", "iat"] {
        if claims.get(name).is_some_and(|value| !value.is_u64()) {
            return Err(wrong(name));
        }
    }
    for name in ["iss", "sub", "jti", "scope", settings.user_claim.as_str()] {
        if claims.get(name).is_some_and(|value| !value.is_string()) {
            return Err(wrong(name));
        }
    }
    let optional_lists = [
        Some("aud"),
        Some("scp"),
        settings.groups_claim.as_deref(),
        settings.teams_claim.as_deref(),
    ];
    for name in optional_lists.into_iter().flatten() {
        if claims
            .get(name)
            .is_some_and(|value| string_list(value).is_none())
        {
            return Err(wrong(name));
        }
    }
    if claims
        .get("email_verified")
        .is_some_and(|value| !value.is_boolean())
    {
        return Err(wrong("email_verified"));
    }
    Ok(())
}

/// Maps verified claims to a principal, then checks the required scopes.
pub(super) fn principal(
    claims: &Map<String, Value>,
    settings: &OidcSettings,
) -> Result<Principal, AuthError> {
    let reject = AuthError::TokenRejected;
    check_types(claims, settings).map_err(reject)?;
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
    let user = text(&settings.user_claim)
        .filter(|user| !user.is_empty())
        .ok_or_else(|| reject(TokenRejection::MissingClaim(settings.user_claim.clone())))?;
    // An address the provider has not verified names nobody in particular.
    if settings.user_claim == "email"
        && claims.get("email_verified").and_then(Value::as_bool) == Some(false)
    {
        return Err(reject(TokenRejection::UnverifiedEmail));
    }
    let list = |name: &Option<String>| {
        name.as_ref()
            .and_then(|name| claims.get(name))
            .and_then(string_list)
            .unwrap_or_default()
    };
    let groups = list(&settings.groups_claim);
    let teams = list(&settings.teams_claim);
    // `scope` is one space-separated string (RFC 9068); `scp` is the same or an array.
    let granted: BTreeSet<&str> = ["scope", "scp"]
        .into_iter()
        .filter_map(|name| claims.get(name))
        .flat_map(|value| match value {
            Value::String(text) => text.split(' ').collect::<Vec<_>>(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let missing: Vec<String> = settings
        .required_scopes
        .iter()
        .filter(|scope| !granted.contains(scope.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(AuthError::InsufficientScope { missing });
    }
    let credential = CredentialRef::Jwt {
        issuer: text("iss").unwrap_or_default(),
        subject: text("sub").unwrap_or_default(),
        token_id: text("jti"),
    };
    Ok(Principal::new(user, groups, teams, credential))
}

/// An array of strings, or one string taken as a single item.
fn string_list(value: &Value) -> Option<Vec<String>> {
    match value {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    }
}
