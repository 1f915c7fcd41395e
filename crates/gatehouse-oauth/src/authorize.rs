//! The browser half of the authorization code grant: the authorization URL a user is sent to,
//! the response their browser brings back, and the authorizations waiting for it.
//!
//! Each started authorization keeps its PKCE verifier in memory under its `state`, for a
//! bounded time and for one use: taking it out is the only way to read it, so a replayed
//! callback finds nothing. Started authorizations are not persisted; a restart asks the user to
//! start again.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use secrecy::SecretString;
use url::{Url, form_urlencoded};

use crate::store::UserId;

/// At most this many authorizations wait for their callback per upstream.
const MAX_PENDING: usize = 10_000;
/// At most this many per user: starting another drops the user's oldest.
const MAX_PENDING_PER_USER: usize = 8;

/// An authorization to send a user to.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    /// The authorization endpoint with the request's parameters, including the PKCE challenge,
    /// `state` and `resource`.
    pub url: Url,
    /// The `state` the callback must bring back.
    pub state: String,
}

/// What the authorization server sent back to the redirect URI, from the callback's query.
#[derive(Clone, Default)]
pub struct AuthorizationResponse {
    /// `state`, naming the authorization this answers.
    pub state: Option<String>,
    /// `code`, on success.
    pub code: Option<SecretString>,
    /// `iss` (RFC 9207), the issuer that answered.
    pub iss: Option<String>,
    /// `error`, when authorization was not granted.
    pub error: Option<String>,
    /// `error_description`, with `error`.
    pub error_description: Option<String>,
}

impl AuthorizationResponse {
    /// A successful response.
    pub fn new(state: impl Into<String>, code: SecretString) -> Self {
        Self {
            state: Some(state.into()),
            code: Some(code),
            ..Self::default()
        }
    }

    /// The response in a callback's query string (without the `?`). Unknown parameters are
    /// ignored; a repeated parameter keeps its first value.
    pub fn from_query(query: &str) -> Self {
        let mut response = Self::default();
        for (name, value) in form_urlencoded::parse(query.as_bytes()) {
            let slot = match name.as_ref() {
                "state" => &mut response.state,
                "iss" => &mut response.iss,
                "error" => &mut response.error,
                "error_description" => &mut response.error_description,
                "code" => {
                    if response.code.is_none() {
                        response.code = Some(SecretString::from(value.into_owned()));
                    }
                    continue;
                }
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(value.into_owned());
            }
        }
        response
    }
}

impl fmt::Debug for AuthorizationResponse {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AuthorizationResponse")
            .field("has_state", &self.state.is_some())
            .field("has_code", &self.code.is_some())
            .field("iss", &self.iss)
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// A started authorization.
pub(crate) struct Pending {
    pub(crate) user: UserId,
    pub(crate) verifier: SecretString,
    started_at: Instant,
    expires_at: Instant,
}

impl Pending {
    pub(crate) fn new(
        user: UserId,
        verifier: SecretString,
        started_at: Instant,
        expires_at: Instant,
    ) -> Self {
        Self {
            user,
            verifier,
            started_at,
            expires_at,
        }
    }

    fn is_expired(&self, now: Instant) -> bool {
        now >= self.expires_at
    }
}

/// Why a `state` could not be taken.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TakeError {
    Unknown,
    Expired,
}

/// The authorizations of one upstream waiting for their callback, by `state`.
#[derive(Default)]
pub(crate) struct PendingAuthorizations {
    entries: Mutex<HashMap<String, Pending>>,
}

impl PendingAuthorizations {
    /// Keeps `pending` under `state`; `Err` when too many are waiting.
    pub(crate) fn insert(&self, state: String, pending: Pending, now: Instant) -> Result<(), ()> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, entry| !entry.is_expired(now));
        let mut of_user: Vec<(Instant, String)> = entries
            .iter()
            .filter(|(_, entry)| entry.user == pending.user)
            .map(|(state, entry)| (entry.started_at, state.clone()))
            .collect();
        if of_user.len() >= MAX_PENDING_PER_USER {
            of_user.sort();
            let excess = of_user.len() + 1 - MAX_PENDING_PER_USER;
            for (_, state) in of_user.into_iter().take(excess) {
                entries.remove(&state);
            }
        }
        if entries.len() >= MAX_PENDING {
            return Err(());
        }
        entries.insert(state, pending);
        Ok(())
    }

    /// Takes out the authorization `state` names. It is removed whatever the outcome, so a
    /// `state` is good for one callback.
    pub(crate) fn take(&self, state: &str, now: Instant) -> Result<Pending, TakeError> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let pending = entries.remove(state).ok_or(TakeError::Unknown)?;
        if pending.is_expired(now) {
            return Err(TakeError::Expired);
        }
        Ok(pending)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret as _;

    use super::*;

    fn pending(user: &str, started_at: Instant, ttl: Duration) -> Pending {
        Pending::new(
            UserId::new(user),
            SecretString::from("v"),
            started_at,
            started_at + ttl,
        )
    }

    #[test]
    fn a_state_is_taken_once_and_only_before_it_expires() {
        let pending_map = PendingAuthorizations::default();
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        pending_map
            .insert("a".into(), pending("alice", now, ttl), now)
            .unwrap();
        pending_map
            .insert("b".into(), pending("bob", now, ttl), now)
            .unwrap();
        assert_eq!(
            pending_map.take("a", now).unwrap().user,
            UserId::new("alice")
        );
        assert_eq!(pending_map.take("a", now).err(), Some(TakeError::Unknown));
        assert_eq!(
            pending_map.take("b", now + ttl).err(),
            Some(TakeError::Expired)
        );
        assert_eq!(pending_map.take("b", now).err(), Some(TakeError::Unknown));
        assert_eq!(
            pending_map.take("never", now).err(),
            Some(TakeError::Unknown)
        );
    }

    #[test]
    fn one_user_cannot_hold_more_than_a_few() {
        let pending_map = PendingAuthorizations::default();
        let start = Instant::now();
        let ttl = Duration::from_secs(60);
        for index in 0..20u64 {
            let at = start + Duration::from_millis(index);
            pending_map
                .insert(format!("s{index}"), pending("alice", at, ttl), at)
                .unwrap();
        }
        let now = start + Duration::from_millis(20);
        assert_eq!(pending_map.take("s0", now).err(), Some(TakeError::Unknown));
        assert!(pending_map.take("s19", now).is_ok());
        assert!(pending_map.take("s12", now).is_ok());
        assert_eq!(pending_map.take("s11", now).err(), Some(TakeError::Unknown));
    }

    #[test]
    fn callback_query_is_parsed() {
        let response = AuthorizationResponse::from_query(
            "code=abc%2Bdef&state=s1&iss=https%3A%2F%2Fas.example&state=s2&extra=1",
        );
        assert_eq!(response.code.unwrap().expose_secret(), "abc+def");
        assert_eq!(response.state.as_deref(), Some("s1"));
        assert_eq!(response.iss.as_deref(), Some("https://as.example"));
        let denied =
            AuthorizationResponse::from_query("error=access_denied&error_description=no&state=s");
        assert_eq!(denied.error.as_deref(), Some("access_denied"));
        assert!(denied.code.is_none());
        let debug = format!(
            "{:?}",
            AuthorizationResponse::from_query("code=canary&state=s")
        );
        assert!(!debug.contains("canary"), "{debug}");
    }
}
