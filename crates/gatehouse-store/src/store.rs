//! Opening a store: the backend chosen from the URL, per-connection settings, and the embedded
//! schema migrations. Every repository is a set of `impl Store` blocks in its own file.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{Any, AnyConnection, AnyPool, Connection, Executor, Transaction};
use tokio::sync::Notify;

use crate::error::{StoreError, StoreResult, database};
use crate::time::Timestamp;

/// The database behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// An embedded SQLite file (the default), in WAL mode.
    Sqlite,
    /// A PostgreSQL server, for several gateway replicas sharing one store.
    Postgres,
}

impl fmt::Display for Backend {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(match self {
            Self::Sqlite => "SQLite",
            Self::Postgres => "PostgreSQL",
        })
    }
}

impl Backend {
    /// The backend a store URL names, if it names one this crate supports.
    pub fn of_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Self::Postgres)
        } else {
            None
        }
    }
}

/// The gateway's persistent state on SQLite or PostgreSQL, with the same behaviour on both.
///
/// Cloning is cheap and shares one connection pool. Repositories are plain async methods on
/// this type, one file each: users, groups and teams, API keys, secrets, catalog, receipts and
/// checkpoints, change events.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<StoreInner>,
}

pub(crate) struct StoreInner {
    pub(crate) pool: AnyPool,
    pub(crate) backend: Backend,
    /// The URL as opened. It may hold a password: never put it in an error or a log line.
    pub(crate) url: String,
    /// When this process last wrote `last_used_at` for an API key or secret, so that hot paths
    /// write at most once per [`crate::LAST_USED_GRANULARITY`].
    pub(crate) last_used_written: Mutex<HashMap<String, Timestamp>>,
    /// Woken whenever this process appends a change event, so local watchers need not poll.
    pub(crate) local_change: Notify,
}

impl fmt::Debug for Store {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Store")
            .field("backend", &self.inner.backend)
            .field("url", &redact_url(&self.inner.url))
            .finish()
    }
}

/// How long a connection waits for SQLite's write lock before giving up.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;

/// How long an operation waits for a free pooled connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl Store {
    /// Opens (creating if needed) the store at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH` creates the file when missing (`mode=rwc` is added unless the URL sets a
    /// mode); `postgres://USER:PASSWORD@HOST:PORT/DATABASE` needs an existing database.
    pub async fn open(url: &str) -> StoreResult<Self> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| StoreError::UnsupportedUrl {
            url: redact_url(url),
        })?;
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => {
                let separator = if url.contains('?') { '&' } else { '?' };
                format!("{url}{separator}mode=rwc")
            }
            _ => url.to_owned(),
        };
        let open_error = |source| StoreError::Open {
            backend,
            url: redact_url(&url),
            source,
        };
        let options = AnyPoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT);
        let pool = match backend {
            Backend::Sqlite => {
                options
                    .max_connections(8)
                    .after_connect(|connection, _| {
                        Box::pin(async move {
                            // Per connection: enforce REFERENCES, wait for the write lock instead
                            // of failing at once, and fsync every commit (receipts are promised
                            // durable before the upstream is called).
                            let pragmas = format!(
                                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; PRAGMA synchronous = FULL;"
                            );
                            connection.execute(sqlx::raw_sql(&pragmas)).await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
            }
            Backend::Postgres => {
                // One direct connection first: the pool retries a refused connection until its
                // acquire timeout, and a server that is down should be reported at once.
                AnyConnection::connect(&url)
                    .await
                    .map_err(open_error)?
                    .close()
                    .await
                    .map_err(open_error)?;
                options.max_connections(16).connect(&url).await
            }
        }
        .map_err(open_error)?;
        if backend == Backend::Sqlite {
            // WAL lets readers run beside the one writer. The mode is stored in the file, and
            // switching needs a lock that busy_timeout does not wait for, so it is set once here,
            // before the pool is shared.
            sqlx::query("PRAGMA journal_mode = WAL")
                .fetch_all(&pool)
                .await
                .map_err(open_error)?;
        }
        migrator(backend)
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate { backend, source })?;
        Ok(Self {
            inner: Arc::new(StoreInner {
                pool,
                backend,
                url,
                last_used_written: Mutex::new(HashMap::new()),
                local_change: Notify::new(),
            }),
        })
    }

    /// Which database this store uses.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// Closes every pooled connection; later operations fail.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    /// Begins a transaction that will write. SQLite's `BEGIN IMMEDIATE` takes the write lock
    /// up front: a deferred transaction that reads and then writes can fail with "database is
    /// locked" without waiting when another connection committed in between.
    pub(crate) async fn begin_write(
        &self,
        operation: &'static str,
    ) -> StoreResult<Transaction<'static, Any>> {
        match self.inner.backend {
            Backend::Sqlite => self.inner.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.inner.pool.begin().await,
        }
        .map_err(database(operation))
    }
}

/// Serializes read-then-append transactions on `lock` (a row of `store_locks`) until commit, on
/// both backends and across replicas. See the schema for why.
pub(crate) async fn take_append_lock(
    transaction: &mut Transaction<'static, Any>,
    lock: &'static str,
    operation: &'static str,
) -> StoreResult<()> {
    sqlx::query("UPDATE store_locks SET generation = generation + 1 WHERE name = $1")
        .bind(lock)
        .execute(&mut **transaction)
        .await
        .map_err(database(operation))?;
    Ok(())
}

/// The schema migrations, embedded. Built by hand rather than with `sqlx::migrate!` so the
/// workspace does not compile sqlx's proc-macro and both drivers a second time.
fn migrator(backend: Backend) -> Migrator {
    let files: &[(i64, &str, &str)] = match backend {
        Backend::Sqlite => &[(
            1,
            "initial",
            include_str!("../migrations/sqlite/0001_initial.sql"),
        )],
        Backend::Postgres => &[(
            1,
            "initial",
            include_str!("../migrations/postgres/0001_initial.sql"),
        )],
    };
    let migrations = files
        .iter()
        .map(|&(version, description, sql)| {
            Migration::new(
                version,
                Cow::Borrowed(description),
                MigrationType::Simple,
                Cow::Borrowed(sql),
                false,
            )
        })
        .collect::<Vec<_>>();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// The URL with the password, if any (`user:PASSWORD@` or `password=PASSWORD`), replaced by
/// `***`.
pub fn redact_url(url: &str) -> String {
    let url = redact_userinfo(url);
    match url.find("password=") {
        Some(start) => {
            let value_start = start + "password=".len();
            let value_end = url[value_start..]
                .find('&')
                .map_or(url.len(), |index| value_start + index);
            format!("{}***{}", &url[..value_start], &url[value_end..])
        }
        None => url,
    }
}

fn redact_userinfo(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|index| index + 3) else {
        return url.to_owned();
    };
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |index| scheme_end + index);
    let authority = &url[scheme_end..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_owned();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &authority[..colon],
        &url[scheme_end + at..]
    )
}
