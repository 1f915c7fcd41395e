//! Credentials the gateway holds for upstreams, as the protocol side sees them: a
//! [`CredentialSource`] fills in a configured [`Template`] (`{secret:NAME}`,
//! `{user_secret:NAME}`) when a process starts or a request is sent, and a [`Scrubber`]
//! replaces every value the gateway has handed out with a marker in whatever comes back from
//! any upstream, before it reaches a client, a log line or a receipt.
//!
//! The source lives with the store (in the gateway); this crate only asks it for values and
//! watches its generation, which moves whenever a credential is rotated or removed, to know
//! when a running process holds an outdated value.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, PoisonError, RwLock};

use gatehouse_config::{Part, SecretScope, SecretUse, Template};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

/// A credential's value with what identifies it in receipts.
pub struct Credential {
    /// `NAME` for a service credential, `NAME@USER` for a person's own.
    pub id: String,
    /// Its rotation counter.
    pub version: i64,
    /// The value.
    pub value: SecretString,
}

impl fmt::Debug for Credential {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Credential")
            .field("id", &self.id)
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// Which credential, and which version of it, a process or request was given.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CredentialUse {
    /// The credential id.
    pub id: String,
    /// The version.
    pub version: i64,
}

/// Why a credential is not available. No variant carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialError {
    /// Which credential, and how to provide it.
    pub message: String,
    /// Where the person can sign in to provide it (an OAuth authorization), when that is how.
    pub sign_in: Option<String>,
}

impl From<String> for CredentialError {
    fn from(message: String) -> Self {
        Self {
            message,
            sign_in: None,
        }
    }
}

/// The future a [`CredentialSource`] returns.
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Arc<Credential>, CredentialError>> + Send + 'a>>;

/// Where credential values come from.
pub trait CredentialSource: Send + Sync + 'static {
    /// The current value of `secret` for `user` (who must be given for a person's own
    /// credential). The error says which secret is missing and how to set it.
    fn credential<'a>(
        &'a self,
        secret: &'a SecretUse,
        user: Option<&'a str>,
    ) -> CredentialFuture<'a>;

    /// A counter that moves whenever any credential is rotated or removed.
    fn generation(&self) -> u64;

    /// Every value handed out is scrubbed from what upstreams send back.
    fn scrubber(&self) -> &Arc<Scrubber>;

    /// The OAuth access tokens of server `server`, when it is configured for OAuth.
    fn access_tokens(&self, _server: &str) -> Option<Arc<dyn AccessTokens>> {
        None
    }
}

/// OAuth access tokens for one upstream, obtained by the gateway as that upstream's client.
pub trait AccessTokens: Send + Sync + 'static {
    /// A current access token for `user` (or the gateway's own with `None`), as a credential
    /// whose id names the grant and whose version tells tokens apart. The error says what the
    /// person must do, e.g. where to sign in.
    /// `subject_token` is the person's own sign-in token, for servers that exchange it.
    fn token<'a>(
        &'a self,
        user: Option<&'a str>,
        subject_token: Option<&'a Arc<SecretString>>,
    ) -> CredentialFuture<'a>;

    /// The upstream refused `token` (HTTP 401): the next [`AccessTokens::token`] gets a new one.
    fn rejected(&self, user: Option<&str>, token: &Credential);
}

/// The credential `secret` names for a request by `user`: the service credential, or that
/// person's own (which needs a person).
pub async fn resolve(
    secret: &SecretUse,
    source: &dyn CredentialSource,
    user: Option<&str>,
) -> Result<Arc<Credential>, CredentialError> {
    let owner = match secret.scope {
        SecretScope::Service => None,
        SecretScope::User => Some(user.ok_or_else(|| {
            CredentialError::from(format!(
                "`{secret}` is a person's own credential, and this request has no signed-in person"
            ))
        })?),
    };
    source.credential(secret, owner).await
}

/// A template with its secrets filled in.
pub struct Rendered {
    /// The value.
    pub value: SecretString,
    /// The credentials it took.
    pub used: Vec<CredentialUse>,
}

/// Fills in `template` for `user`.
pub async fn render(
    template: &Template,
    source: &dyn CredentialSource,
    user: Option<&str>,
) -> Result<Rendered, CredentialError> {
    let mut value = String::new();
    let mut used = Vec::new();
    for part in template.parts() {
        match part {
            Part::Text(text) => value.push_str(text),
            Part::Secret(secret) => {
                let credential = resolve(secret, source, user).await?;
                value.push_str(credential.value.expose_secret());
                used.push(CredentialUse {
                    id: credential.id.clone(),
                    version: credential.version,
                });
            }
        }
    }
    Ok(Rendered {
        value: SecretString::from(value),
        used,
    })
}

/// Replaces known secret values with markers such as `[redacted secret github v2]`.
#[derive(Default)]
pub struct Scrubber {
    known: RwLock<Arc<Vec<Known>>>,
}

struct Known {
    value: SecretString,
    marker: String,
}

impl Scrubber {
    /// Adds `credential`'s value; values stay known for the gateway's lifetime, so an old
    /// version a running process still holds is scrubbed too.
    pub fn learn(&self, credential: &Credential) {
        let secret = credential.value.expose_secret();
        if secret.is_empty() || self.knows(secret) {
            return;
        }
        let mut known = self.known.write().unwrap_or_else(PoisonError::into_inner);
        let mut next: Vec<Known> = known
            .iter()
            .map(|entry| Known {
                value: entry.value.clone(),
                marker: entry.marker.clone(),
            })
            .collect();
        next.push(Known {
            value: credential.value.clone(),
            marker: format!(
                "[redacted secret {} v{}]",
                credential.id, credential.version
            ),
        });
        // Longest first, so that a value containing another is replaced whole.
        next.sort_by_key(|entry| std::cmp::Reverse(entry.value.expose_secret().len()));
        *known = Arc::new(next);
    }

    fn knows(&self, secret: &str) -> bool {
        self.snapshot()
            .iter()
            .any(|entry| entry.value.expose_secret() == secret)
    }

    fn snapshot(&self) -> Arc<Vec<Known>> {
        Arc::clone(&self.known.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Whether any value is known (when none is, scrubbing costs nothing).
    pub fn is_empty(&self) -> bool {
        self.snapshot().is_empty()
    }

    /// `text` with every known value replaced.
    pub fn scrub_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let known = self.snapshot();
        scrub_with(&known, text)
    }

    /// Replaces known values in every string (and object key) of `message`; returns whether
    /// anything was replaced.
    pub fn scrub_value(&self, message: &mut Value) -> bool {
        let known = self.snapshot();
        if known.is_empty() {
            return false;
        }
        scrub_value_with(&known, message)
    }
}

fn scrub_with<'a>(known: &[Known], text: &'a str) -> Cow<'a, str> {
    let mut text = Cow::Borrowed(text);
    for entry in known {
        let secret = entry.value.expose_secret();
        if text.contains(secret) {
            text = Cow::Owned(text.replace(secret, &entry.marker));
        }
    }
    text
}

fn scrub_value_with(known: &[Known], value: &mut Value) -> bool {
    match value {
        Value::String(text) => match scrub_with(known, text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(clean) => {
                *text = clean;
                true
            }
        },
        Value::Array(items) => items.iter_mut().fold(false, |changed, item| {
            scrub_value_with(known, item) | changed
        }),
        Value::Object(members) => {
            let dirty_keys: Vec<String> = members
                .keys()
                .filter(|key| matches!(scrub_with(known, key), Cow::Owned(_)))
                .cloned()
                .collect();
            let mut changed = !dirty_keys.is_empty();
            for key in dirty_keys {
                if let Some(item) = members.remove(&key) {
                    members.insert(scrub_with(known, &key).into_owned(), item);
                }
            }
            for item in members.values_mut() {
                changed |= scrub_value_with(known, item);
            }
            changed
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn credential(id: &str, version: i64, value: &str) -> Credential {
        Credential {
            id: id.to_owned(),
            version,
            value: SecretString::from(value.to_owned()),
        }
    }

    #[test]
    fn known_values_are_replaced_everywhere_in_a_message() {
        let scrubber = Scrubber::default();
        assert!(scrubber.is_empty());
        scrubber.learn(&credential("github", 2, "ghp_canary_1234"));
        scrubber.learn(&credential("short", 1, "canary_1"));
        let mut message = json!({
            "result": {"content": [{"type": "text", "text": "token=ghp_canary_1234; other=canary_1"}],
                       "ghp_canary_1234": true, "n": 3}
        });
        assert!(scrubber.scrub_value(&mut message));
        assert_eq!(
            message,
            json!({"result": {"content": [{"type": "text", "text": "token=[redacted secret github v2]; other=[redacted secret short v1]"}],
                              "[redacted secret github v2]": true, "n": 3}})
        );
        assert!(!scrubber.scrub_value(&mut message));
        assert_eq!(scrubber.scrub_text("no secrets"), "no secrets");
    }

    #[test]
    fn a_value_containing_another_is_replaced_whole() {
        let scrubber = Scrubber::default();
        scrubber.learn(&credential("inner", 1, "abcdefgh"));
        scrubber.learn(&credential("outer", 1, "xx-abcdefgh-yy"));
        assert_eq!(
            scrubber.scrub_text("[xx-abcdefgh-yy] [abcdefgh]"),
            "[[redacted secret outer v1]] [[redacted secret inner v1]]"
        );
    }
}
