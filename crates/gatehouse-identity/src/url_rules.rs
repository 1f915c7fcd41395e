//! The one rule for every URL this crate is configured with: HTTPS, or plain HTTP only to a
//! loopback address (development and tests), with no credentials or fragment in it.

use url::Url;

/// Parses a configured URL and applies the rule; the error says what is wrong.
pub(crate) fn parse_configured_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|error| format!("not a URL ({error})"))?;
    check_url(&url)?;
    Ok(url)
}

/// Applies the rule to a URL that came from a fetched document (discovery's `jwks_uri`).
pub(crate) fn check_url(url: &Url) -> Result<(), String> {
    gatehouse_oauth::check_endpoint(url)
}
