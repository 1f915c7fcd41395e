//! Validation of each `[auth]` section into its checked settings.

use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use http::HeaderName;
use ipnet::IpNet;
use jsonwebtoken::Algorithm;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::{ApiKeySettings, Problems, SecretSource};
use crate::api_key::Pepper;
use crate::config::{RawApiKeys, RawAuth, RawOidc, RawTrustedHeader};
use crate::jwt::{KeySource, OidcSettings};
use crate::resource_metadata::ProtectedResource;
use crate::trusted_header::TrustedHeaderSettings;
use crate::url_rules::parse_configured_url;

const DEFAULT_ALGORITHMS: [Algorithm; 2] = [Algorithm::RS256, Algorithm::ES256];
const DEFAULT_COOLDOWN_SECS: u64 = 10;
const DEFAULT_MAX_AGE_SECS: u64 = 3600;
const DEFAULT_LEEWAY_SECS: u64 = 60;
const MAX_LEEWAY_SECS: u64 = 300;

pub(super) fn api_key_settings(
    raw: &RawApiKeys,
    secrets: &dyn SecretSource,
    problems: &mut Problems,
) -> Option<ApiKeySettings> {
    if raw.enabled == Some(false) {
        return None;
    }
    let secret = match (&raw.pepper_env, &raw.pepper_file) {
        (Some(name), None) => secrets.env_var(name).or_else(|| {
            let message = format!("environment variable {name} is not set");
            problems.add("auth.api_keys.pepper_env", message);
            None
        })?,
        (None, Some(path)) => match secrets.read_file(Path::new(path)) {
            Ok(contents) => {
                let trimmed = contents.expose_secret().trim_end_matches(['\r', '\n']);
                SecretString::from(trimmed)
            }
            Err(error) => {
                let message = format!("cannot read {path}: {error}");
                problems.add("auth.api_keys.pepper_file", message);
                return None;
            }
        },
        _ => {
            let message = "set exactly one of pepper_env and pepper_file";
            problems.add("auth.api_keys", message);
            return None;
        }
    };
    match Pepper::from_secret(secret) {
        Ok(pepper) => Some(ApiKeySettings { pepper }),
        Err(error) => {
            problems.add("auth.api_keys", error.to_string());
            None
        }
    }
}

pub(super) fn oidc_settings(
    raw: &RawOidc,
    resource_url: Option<&str>,
    problems: &mut Problems,
) -> Option<OidcSettings> {
    let before = problems.count();
    let key_source = key_source(raw, problems);
    let audience = match raw.audience.as_deref().or(resource_url) {
        Some(audience) if !audience.is_empty() => audience.to_owned(),
        _ => {
            let message = "set audience, or auth.resource_url which it defaults to";
            problems.add("auth.oidc.audience", message);
            String::new()
        }
    };
    let allowed_algorithms = allowed_algorithms(raw.allowed_algs.as_deref(), problems);
    let required_scopes = scopes(raw.required_scopes.as_deref()).unwrap_or_else(|message| {
        problems.add("auth.oidc.required_scopes", message);
        Vec::new()
    });
    let cooldown_secs = raw.cooldown_secs.unwrap_or(DEFAULT_COOLDOWN_SECS);
    let max_age_secs = raw.max_age_secs.unwrap_or(DEFAULT_MAX_AGE_SECS);
    if cooldown_secs == 0 {
        problems.add("auth.oidc.cooldown_secs", "must be at least 1");
    }
    if max_age_secs < cooldown_secs {
        problems.add(
            "auth.oidc.max_age_secs",
            "must not be less than cooldown_secs",
        );
    }
    let leeway_secs = raw.leeway_secs.unwrap_or(DEFAULT_LEEWAY_SECS);
    if leeway_secs > MAX_LEEWAY_SECS {
        let message = format!("must be at most {MAX_LEEWAY_SECS}");
        problems.add("auth.oidc.leeway_secs", message);
    }
    let claim = |name: &Option<String>, path: &str, problems: &mut Problems| match name {
        Some(name) if name.is_empty() => {
            problems.add(path, "must not be empty");
            None
        }
        other => other.clone(),
    };
    let user_claim = claim(&raw.user_claim, "auth.oidc.user_claim", problems);
    let groups_claim = claim(&raw.groups_claim, "auth.oidc.groups_claim", problems);
    let teams_claim = claim(&raw.teams_claim, "auth.oidc.teams_claim", problems);
    if problems.count() > before {
        return None;
    }
    Some(OidcSettings {
        issuer: raw.issuer.clone(),
        key_source: key_source?,
        audience,
        user_claim: user_claim.unwrap_or_else(|| "sub".to_owned()),
        groups_claim,
        teams_claim,
        required_scopes,
        allowed_algorithms,
        cooldown: Duration::from_secs(cooldown_secs),
        max_age: Duration::from_secs(max_age_secs),
        leeway_secs,
    })
}

/// The configured `jwks_uri`, or discovery under the issuer. The issuer is an identifier
/// compared exactly with `iss`, so it must be a plain URL (OpenID Connect Discovery 1.0).
fn key_source(raw: &RawOidc, problems: &mut Problems) -> Option<KeySource> {
    let path = "auth.oidc.issuer";
    let issuer = parse_configured_url(&raw.issuer).map_err(|message| problems.add(path, message));
    if issuer.as_ref().is_ok_and(|issuer| issuer.query().is_some()) {
        problems.add(path, "must not contain a query");
    }
    let configured = raw.jwks_uri.as_ref().map(|text| {
        parse_configured_url(text).map_err(|message| problems.add("auth.oidc.jwks_uri", message))
    });
    match configured {
        Some(jwks_uri) => jwks_uri.ok().map(KeySource::JwksUri),
        None => {
            issuer.ok()?;
            let document = format!(
                "{}/.well-known/openid-configuration",
                raw.issuer.trim_end_matches('/')
            );
            let document_url = Url::parse(&document)
                .map_err(|error| problems.add(path, format!("no discovery URL fits it ({error})")))
                .ok()?;
            Some(KeySource::Discovery { document_url })
        }
    }
}

fn allowed_algorithms(names: Option<&[String]>, problems: &mut Problems) -> Vec<Algorithm> {
    let Some(names) = names else {
        return DEFAULT_ALGORITHMS.to_vec();
    };
    let path = "auth.oidc.allowed_algs";
    if names.is_empty() {
        problems.add(path, "must list at least one algorithm");
    }
    let mut algorithms = Vec::new();
    for name in names {
        match Algorithm::from_str(name) {
            Ok(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) => problems.add(
                path,
                format!("{name} is symmetric and cannot be verified with published keys"),
            ),
            Ok(algorithm) => algorithms.push(algorithm),
            Err(_) if name.eq_ignore_ascii_case("none") => {
                problems.add(path, "\"none\" is never accepted");
            }
            Err(_) => problems.add(path, format!("unknown algorithm {name:?}")),
        }
    }
    algorithms
}

/// Checks scope tokens against RFC 6749 section 3.3, which also keeps them safe to put in a
/// quoted `WWW-Authenticate` parameter.
fn scopes(names: Option<&[String]>) -> Result<Vec<String>, String> {
    let names = names.unwrap_or_default();
    for name in names {
        let valid = !name.is_empty()
            && name.bytes().all(|byte| {
                byte == 0x21 || (0x23..=0x5b).contains(&byte) || (0x5d..=0x7e).contains(&byte)
            });
        if !valid {
            return Err(format!("{name:?} is not a valid scope"));
        }
    }
    Ok(names.to_vec())
}

pub(super) fn trusted_header_settings(
    raw: &RawTrustedHeader,
    problems: &mut Problems,
) -> Option<TrustedHeaderSettings> {
    let before = problems.count();
    let mut header = |name: &str, path: &str| {
        HeaderName::from_str(name)
            .map_err(|_| problems.add(path, format!("{name:?} is not a valid header name")))
            .ok()
    };
    let user_header = header(&raw.user_header, "auth.trusted_header.user_header");
    let groups_header = raw
        .groups_header
        .as_ref()
        .and_then(|name| header(name, "auth.trusted_header.groups_header"));
    let teams_header = raw
        .teams_header
        .as_ref()
        .and_then(|name| header(name, "auth.trusted_header.teams_header"));
    let path = "auth.trusted_header.trusted_proxies";
    if raw.trusted_proxies.is_empty() {
        problems.add(
            path,
            "list the proxies' addresses; the header is trusted from no other",
        );
    }
    let mut trusted_proxies = Vec::new();
    for text in &raw.trusted_proxies {
        let parsed = IpNet::from_str(text)
            .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
            .map(|net| net.trunc());
        match parsed {
            Ok(net) if net.prefix_len() == 0 => {
                problems.add(path, format!("{text} would trust every address"));
            }
            Ok(net) => trusted_proxies.push(net),
            Err(_) => problems.add(path, format!("{text:?} is not an address or CIDR range")),
        }
    }
    if problems.count() > before {
        return None;
    }
    Some(TrustedHeaderSettings {
        user_header: user_header?,
        groups_header,
        teams_header,
        trusted_proxies,
    })
}

pub(super) fn resource_settings(
    raw: &RawAuth,
    oidc: Option<&OidcSettings>,
    problems: &mut Problems,
) -> Option<ProtectedResource> {
    let scopes_supported = scopes(raw.scopes_supported.as_deref())
        .map_err(|message| problems.add("auth.scopes_supported", message))
        .unwrap_or_default();
    let Some(resource_url) = &raw.resource_url else {
        if raw.authorization_servers.is_some() || raw.scopes_supported.is_some() {
            let message = "needed for authorization_servers and scopes_supported to be published";
            problems.add("auth.resource_url", message);
        }
        return None;
    };
    let resource = parse_configured_url(resource_url)
        .map_err(|message| problems.add("auth.resource_url", message))
        .ok()?;
    // The default is the issuer, whose problems `[auth.oidc]` validation already reports.
    let servers = match (&raw.authorization_servers, &raw.oidc) {
        (Some(servers), _) => {
            for server in servers {
                if let Err(message) = parse_configured_url(server) {
                    let message = format!("{server}: {message}");
                    problems.add("auth.authorization_servers", message);
                }
            }
            servers.clone()
        }
        (None, Some(raw_oidc)) => vec![raw_oidc.issuer.clone()],
        (None, None) => Vec::new(),
    };
    if servers.is_empty() {
        let message = "name at least one, or configure auth.oidc whose issuer it defaults to";
        problems.add("auth.authorization_servers", message);
    }
    let challenge_scopes = match oidc {
        Some(oidc) if !oidc.required_scopes.is_empty() => oidc.required_scopes.clone(),
        _ => scopes_supported.clone(),
    };
    Some(ProtectedResource::new(
        resource_url.clone(),
        &resource,
        servers,
        scopes_supported,
        challenge_scopes,
    ))
}
