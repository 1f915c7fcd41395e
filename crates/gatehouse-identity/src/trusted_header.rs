//! Identity from an SSO proxy's headers, believed only when the TCP peer is a configured proxy.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderName};
use ipnet::IpNet;

use crate::error::AuthError;
use crate::principal::{CredentialRef, Principal};

/// The longest user name or group list accepted from a header.
const MAX_HEADER_VALUE_BYTES: usize = 4096;

/// Validated `[auth.trusted_header]`.
#[derive(Debug, Clone)]
pub(crate) struct TrustedHeaderSettings {
    pub(crate) user_header: HeaderName,
    pub(crate) groups_header: Option<HeaderName>,
    pub(crate) teams_header: Option<HeaderName>,
    pub(crate) trusted_proxies: Vec<IpNet>,
}

impl TrustedHeaderSettings {
    /// `None` when the request has no user header; otherwise the principal it names, or a
    /// refusal when the peer is not a trusted proxy.
    pub(crate) fn identify(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
    ) -> Option<Result<Principal, AuthError>> {
        let mut values = headers.get_all(&self.user_header).iter();
        let first = values.next()?;
        // An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d; compare it as
        // the IPv4 address the CIDRs are written in.
        let peer = peer.ip().to_canonical();
        if !self.trusted_proxies.iter().any(|net| net.contains(&peer)) {
            return Some(Err(AuthError::UntrustedHeaderSource {
                header: self.user_header.to_string(),
                peer,
            }));
        }
        if values.next().is_some() {
            return Some(Err(AuthError::MalformedCredential("repeated user header")));
        }
        let user = match first.to_str().map(str::trim) {
            Ok(user) if is_plain_text(user) => user.to_owned(),
            _ => return Some(Err(AuthError::MalformedCredential("user header"))),
        };
        let list = |name: &Option<HeaderName>| -> Result<Vec<String>, AuthError> {
            let Some(name) = name else {
                return Ok(Vec::new());
            };
            let mut items = Vec::new();
            for value in headers.get_all(name) {
                let text = value
                    .to_str()
                    .ok()
                    .filter(|text| text.len() <= MAX_HEADER_VALUE_BYTES)
                    .ok_or(AuthError::MalformedCredential("group or team header"))?;
                items.extend(
                    text.split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(str::to_owned),
                );
            }
            Ok(items)
        };
        let groups = match list(&self.groups_header) {
            Ok(groups) => groups,
            Err(error) => return Some(Err(error)),
        };
        let teams = match list(&self.teams_header) {
            Ok(teams) => teams,
            Err(error) => return Some(Err(error)),
        };
        Some(Ok(Principal::new(
            user,
            groups,
            teams,
            CredentialRef::TrustedHeader { proxy: peer },
        )))
    }
}

fn is_plain_text(text: &str) -> bool {
    !text.is_empty() && text.len() <= MAX_HEADER_VALUE_BYTES && !text.chars().any(char::is_control)
}
