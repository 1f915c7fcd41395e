//! The gateway's credentials: values opened from the vault on first use and kept in memory
//! until the change watcher reports a rotation or removal, so a call costs no store read and a
//! rotation reaches the next call within the watcher's poll interval. Every value opened is
//! taught to the scrubber.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use gatehouse_config::{Config, SecretScope, SecretUse};
use gatehouse_mcp::credentials::{
    AccessTokens, Credential, CredentialFuture, CredentialSource, Scrubber,
};

use crate::oauth::{UpstreamOAuth, VaultGrants};
use gatehouse_store::{SecretRef, StoreError};
use gatehouse_vault::{Vault, VaultError};

/// How often a credential's last use is written to the store, at most.
const USE_RECORD_INTERVAL: Duration = Duration::from_secs(60);

/// Credentials from the vault, cached.
pub struct Credentials {
    vault: Option<Arc<Vault>>,
    oauth: OnceLock<HashMap<String, Arc<UpstreamOAuth>>>,
    cache: Mutex<HashMap<String, Arc<Credential>>>,
    last_recorded: Mutex<HashMap<String, Instant>>,
    generation: AtomicU64,
    scrubber: Arc<Scrubber>,
}

impl Credentials {
    /// Credentials from `vault`; `None` when the gateway has no secrets key.
    pub fn new(vault: Option<Vault>) -> Arc<Self> {
        Arc::new(Self {
            vault: vault.map(Arc::new),
            oauth: OnceLock::new(),
            cache: Mutex::new(HashMap::new()),
            last_recorded: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            scrubber: Arc::new(Scrubber::default()),
        })
    }

    fn cache(&self) -> MutexGuard<'_, HashMap<String, Arc<Credential>>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the cached value of credential `id` (`NAME` or `NAME@USER`) after it was rotated
    /// or removed; running processes that hold it are replaced.
    pub fn forget(&self, id: &str) {
        // Under the cache's lock, so an opening in progress sees the move before it caches.
        let mut cache = self.cache();
        cache.remove(id);
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// A credential was rotated or removed (as the change watcher reports): drops its cached
    /// value, and builds again the OAuth clients whose client secret it is.
    pub async fn changed(&self, id: &str) {
        self.forget(id);
        let Some(clients) = self.oauth.get() else {
            return;
        };
        for client in clients.values().filter(|client| client.uses_secret(id)) {
            if let Err(error) = client.reload_client_secret(self).await {
                tracing::error!(%error, secret = id, "OAuth client secret not reloaded; token requests keep the previous one");
            }
        }
    }

    /// Drops every cached credential of a removed person.
    pub fn forget_user(&self, user: &str) {
        let suffix = format!("@{user}");
        let mut cache = self.cache();
        cache.retain(|id, _| !id.ends_with(&suffix));
        self.generation.fetch_add(1, Ordering::Relaxed);
    }

    /// Builds the OAuth client of every server with an `oauth` table; `callback_base` is the
    /// gateway's own address (`http://127.0.0.1:8080`), for callbacks not configured
    /// explicitly. Call once, before serving.
    pub async fn configure_oauth(
        &self,
        config: &Config,
        callback_base: &str,
    ) -> Result<(), String> {
        let mut clients = HashMap::new();
        for server in &config.servers {
            let Some(settings) = &server.oauth else {
                continue;
            };
            let grants: Arc<dyn gatehouse_oauth::GrantStore> = match &self.vault {
                Some(vault) => VaultGrants::new(Arc::clone(vault)),
                None if settings.is_per_user() => {
                    return Err(format!(
                        "servers.{}: each person's OAuth grant is sealed in the vault, and there is no secrets key",
                        server.name
                    ));
                }
                None => Arc::new(gatehouse_oauth::MemoryGrantStore::new()),
            };
            let client = UpstreamOAuth::new(server, settings, self, grants, callback_base).await?;
            clients.insert(server.name.to_string(), Arc::new(client));
        }
        self.oauth
            .set(clients)
            .map_err(|_| "OAuth clients are configured once".to_owned())
    }

    /// The OAuth client of `server`, if it has one.
    pub fn oauth_client(&self, server: &str) -> Option<Arc<UpstreamOAuth>> {
        self.oauth.get()?.get(server).cloned()
    }

    /// Checks that every service credential the configuration refers to can be opened; the
    /// error lists each one that cannot, with how to set it.
    pub async fn check_config(&self, config: &Config) -> Result<(), String> {
        let mut problems = Vec::new();
        for server in &config.servers {
            for secret in server.secrets() {
                if secret.scope == SecretScope::User {
                    continue;
                }
                // Opened, not used: a check at start-up is no use of the secret.
                if let Err(error) = self.open(secret, None).await {
                    problems.push(format!("servers.{}: {error}", server.name));
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("\n"))
        }
    }

    async fn open(
        &self,
        secret: &SecretUse,
        user: Option<&str>,
    ) -> Result<Arc<Credential>, String> {
        let reference = SecretRef {
            name: &secret.name,
            user,
        };
        let id = reference.to_string();
        if let Some(credential) = self.cache().get(&id) {
            return Ok(Arc::clone(credential));
        }
        let Some(vault) = &self.vault else {
            return Err(not_set(secret, user));
        };
        // A rotation reported while the value is being opened must not be cached over.
        let generation = self.generation();
        let opened = match vault.reveal(reference).await {
            Ok(opened) => opened,
            Err(VaultError::Store(StoreError::NotFound { .. })) => {
                return Err(not_set(secret, user));
            }
            Err(error) => return Err(error.to_string()),
        };
        let credential = Arc::new(Credential {
            id: opened.metadata.secret_ref().to_string(),
            version: opened.metadata.version,
            value: opened.value,
        });
        self.scrubber.learn(&credential);
        let mut cache = self.cache();
        if self.generation() == generation {
            cache.insert(id, Arc::clone(&credential));
        }
        drop(cache);
        Ok(credential)
    }

    /// Records a use in the store now and then (for `secret list`), off the call's path.
    fn note_use(&self, reference: SecretRef<'_>) {
        let Some(vault) = &self.vault else { return };
        let id = reference.to_string();
        {
            let mut recorded = self
                .last_recorded
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if recorded
                .get(&id)
                .is_some_and(|at| at.elapsed() < USE_RECORD_INTERVAL)
            {
                return;
            }
            recorded.insert(id, Instant::now());
        }
        let vault = Arc::clone(vault);
        let name = reference.name.to_owned();
        let user = reference.user.map(str::to_owned);
        tokio::spawn(async move {
            let reference = SecretRef {
                name: &name,
                user: user.as_deref(),
            };
            if let Err(error) = vault.record_use(reference).await {
                tracing::debug!(%error, secret = %reference, "last use not recorded");
            }
        });
    }
}

fn not_set(secret: &SecretUse, user: Option<&str>) -> String {
    match user {
        None => format!(
            "secret `{}` is not set; set it with `gatehouse secret set {}`",
            secret.name, secret.name
        ),
        Some(user) => format!(
            "`{user}` has not stored their own credential `{}`; they can set it with `gatehouse secret set --user {user} {}`",
            secret.name, secret.name
        ),
    }
}

impl CredentialSource for Credentials {
    fn credential<'a>(
        &'a self,
        secret: &'a SecretUse,
        user: Option<&'a str>,
    ) -> CredentialFuture<'a> {
        Box::pin(async move {
            let credential = self.open(secret, user).await?;
            self.note_use(SecretRef {
                name: &secret.name,
                user,
            });
            Ok(credential)
        })
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn scrubber(&self) -> &Arc<Scrubber> {
        &self.scrubber
    }

    fn access_tokens(&self, server: &str) -> Option<Arc<dyn AccessTokens>> {
        self.oauth_client(server)
            .map(|client| client as Arc<dyn AccessTokens>)
    }
}
