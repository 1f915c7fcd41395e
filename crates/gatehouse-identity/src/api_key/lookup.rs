//! Checking a presented API key against the record the gateway's store hands back.

use std::future::Future;
use std::sync::Arc;
use std::time::SystemTime;

use super::{ApiKeyId, KeyDigest, Pepper, PresentedApiKey};
use crate::error::{AuthError, KeyRejection};
use crate::principal::{CredentialRef, Principal};

/// What the store knows about one API key. The gateway builds it; this crate only reads it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// The stored digest of the key.
    pub digest: KeyDigest,
    /// The key's owner.
    pub user: String,
    /// The owner's groups.
    pub groups: Vec<String>,
    /// The owner's teams.
    pub teams: Vec<String>,
    /// When the key stops working; `None` for never.
    pub expires: Option<SystemTime>,
    /// The key was revoked, or its owner disabled.
    pub revoked: bool,
}

/// How the authenticator finds an API key's record. Implemented by the gateway over its store,
/// and by tests over a map, so this crate never touches the database.
pub trait KeyLookup: Send + Sync {
    /// The record for `id`, `Ok(None)` when there is no such key, or an error when the store
    /// could not answer (which becomes a 503, not a 401).
    fn find_key(
        &self,
        id: &ApiKeyId,
    ) -> impl Future<Output = Result<Option<StoredKey>, KeyLookupError>> + Send;
}

impl<T: KeyLookup> KeyLookup for Arc<T> {
    fn find_key(
        &self,
        id: &ApiKeyId,
    ) -> impl Future<Output = Result<Option<StoredKey>, KeyLookupError>> + Send {
        T::find_key(self, id)
    }
}

/// A [`KeyLookup`] with no keys, for deployments that do not use API keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoApiKeys;

impl KeyLookup for NoApiKeys {
    async fn find_key(&self, _id: &ApiKeyId) -> Result<Option<StoredKey>, KeyLookupError> {
        Ok(None)
    }
}

/// The store could not answer a key lookup.
#[derive(Debug, thiserror::Error)]
#[error("key lookup failed: {0}")]
pub struct KeyLookupError(#[source] Box<dyn std::error::Error + Send + Sync>);

impl KeyLookupError {
    /// Wraps the store's error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

/// Proves a presented API key: well formed, known, matching digest, not revoked, not expired.
pub(crate) async fn verify_api_key(
    pepper: &Pepper,
    lookup: &impl KeyLookup,
    presented: &str,
) -> Result<Principal, AuthError> {
    let presented =
        PresentedApiKey::parse(presented).map_err(|_| AuthError::MalformedCredential("api key"))?;
    // The digest is computed before the lookup and compared for every known key, so a
    // revoked or expired key costs the same as a valid one.
    let computed = presented.digest(pepper);
    let stored = lookup
        .find_key(&presented.id)
        .await
        .map_err(AuthError::KeyStoreUnavailable)?;
    let reject = |reason| AuthError::ApiKeyRejected {
        key_id: presented.id.clone(),
        reason,
    };
    let Some(stored) = stored else {
        return Err(reject(KeyRejection::UnknownKey));
    };
    if !stored.digest.matches(&computed) {
        return Err(reject(KeyRejection::SecretMismatch));
    }
    if stored.revoked {
        return Err(reject(KeyRejection::Revoked));
    }
    if stored
        .expires
        .is_some_and(|expires| expires <= SystemTime::now())
    {
        return Err(reject(KeyRejection::Expired));
    }
    Ok(Principal::new(
        stored.user,
        stored.groups,
        stored.teams,
        CredentialRef::ApiKey {
            key_id: presented.id,
        },
    ))
}
