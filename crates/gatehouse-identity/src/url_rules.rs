//! The one rule for every URL this crate is configured with: HTTPS, or plain HTTP only to a
//! loopback address (development and tests), with no credentials or fragment in it.

use url::{Host, Url};

/// Parses a configured URL and applies the rule; the error says what is wrong.
pub(crate) fn parse_configured_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
    check_url(&url)?;
    Ok(url)
}

/// Applies the rule to a URL that came from a fetched document (discovery's `jwks_uri`).
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(url) => {}
        "http" => return Err("must use https (plain http only to a loopback address)".into()),
        other => return Err(format!("unsupported scheme {other:?}")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain credentials".into());
    }
    if url.fragment().is_some() {
        return Err("must not contain a fragment".into());
    }
    Ok(())
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => address.is_loopback(),
        Some(Host::Ipv6(address)) => address.is_loopback(),
        None => false,
    }
}
