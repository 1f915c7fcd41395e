//! Where a user's grant is kept between calls and across restarts. The gateway implements
//! [`GrantStore`] over its database; [`MemoryGrantStore`] is for tests and single-process use.
//!
//! The trait returns boxed futures so that it stays object safe: one `Arc<dyn GrantStore>` is
//! shared by the clients of every upstream.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use secrecy::SecretString;

/// A gateway user, as the gateway names them. The grant of each user is kept apart.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserId(String);

impl UserId {
    /// The user named `id`.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.0)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "UserId({:?})", self.0)
    }
}

/// Whose grant, for which upstream: one user has one grant per upstream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GrantKey {
    /// The upstream the grant is for, as named in [`crate::ClientConfig::upstream`].
    pub upstream: String,
    /// The user who authorized it.
    pub user: UserId,
}

/// What a user's authorization left behind: the tokens the authorization server issued. The
/// tokens are [`SecretString`]s, redacted from `Debug`; the store is expected to encrypt them.
#[derive(Debug, Clone)]
pub struct StoredGrant {
    /// The latest access token.
    pub access_token: SecretString,
    /// When the access token stops being valid.
    pub expires_at: SystemTime,
    /// The refresh token, when the authorization server issued one. With rotation each refresh
    /// returns a new one and the old one is never sent again.
    pub refresh_token: Option<SecretString>,
    /// The scope the authorization server granted, when it said.
    pub scope: Option<String>,
}

/// The future a [`GrantStore`] method returns.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, GrantStoreError>> + Send + 'a>>;

/// Persistence for per-user grants. A method that fails must leave the previous state in
/// place: `save` either replaces the grant or changes nothing.
pub trait GrantStore: Send + Sync + 'static {
    /// The grant for `key`, or `None` when the user has not authorized (or it was removed).
    fn load<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, Option<StoredGrant>>;

    /// Stores `grant` for `key`, replacing any previous grant.
    fn save<'a>(&'a self, key: &'a GrantKey, grant: &'a StoredGrant) -> StoreFuture<'a, ()>;

    /// Removes the grant for `key`; removing a grant that does not exist is not an error.
    fn remove<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, ()>;
}

/// The store could not load, save or remove a grant. Its message must not contain a token.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct GrantStoreError(#[source] Arc<dyn std::error::Error + Send + Sync>);

impl GrantStoreError {
    /// Wraps the store's own error.
    pub fn new(source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(Arc::from(source.into()))
    }
}

/// Grants in a map: lost on restart, for tests and single-process use.
#[derive(Default)]
pub struct MemoryGrantStore {
    grants: Mutex<HashMap<GrantKey, StoredGrant>>,
}

impl MemoryGrantStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The grant for `key`, without going through the async trait.
    pub fn get(&self, key: &GrantKey) -> Option<StoredGrant> {
        self.lock().get(key).cloned()
    }

    /// Stores `grant` for `key`, without going through the async trait.
    pub fn insert(&self, key: GrantKey, grant: StoredGrant) {
        self.lock().insert(key, grant);
    }

    /// How many grants are stored.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no grant is stored.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<GrantKey, StoredGrant>> {
        self.grants.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl GrantStore for MemoryGrantStore {
    fn load<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, Option<StoredGrant>> {
        Box::pin(async move { Ok(self.get(key)) })
    }

    fn save<'a>(&'a self, key: &'a GrantKey, grant: &'a StoredGrant) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.insert(key.clone(), grant.clone());
            Ok(())
        })
    }

    fn remove<'a>(&'a self, key: &'a GrantKey) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.lock().remove(key);
            Ok(())
        })
    }
}

impl fmt::Debug for MemoryGrantStore {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("MemoryGrantStore")
            .field("grants", &self.len())
            .finish()
    }
}
