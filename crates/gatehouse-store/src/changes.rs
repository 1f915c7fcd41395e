//! Change events: how several gateway replicas (and CLI commands run beside a gateway) learn
//! that something they may have cached changed: a key revoked, a user disabled, a secret
//! rotated, the config edited. Every repository that makes such a change appends its event in
//! the same transaction, so the change and its announcement commit together.
//!
//! Readers keep a [`ChangeCursor`] and ask for [`Store::changes_since`]. Sequence numbers are
//! assigned under the `changes` append lock, so they are gapless and commit in order: a reader
//! can never see event N+1 before event N. A [`ChangeWatcher`] waits for new events: woken at
//! once by changes made through the same [`Store`], by PostgreSQL `LISTEN`/`NOTIFY` from other
//! replicas, and otherwise by polling (SQLite files written by another process).

use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Any, Row, Transaction};

use crate::error::{StoreResult, database};
use crate::store::{Backend, Store, take_append_lock};
use crate::time::Timestamp;

/// The PostgreSQL notification channel that announces new change events.
const NOTIFY_CHANNEL: &str = "gatehouse_changes";

/// The most events one [`Store::changes_since`] returns.
pub const CHANGE_BATCH_LIMIT: i64 = 1000;

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// A user was disabled: their keys stop working and their sessions must end; subject: the
    /// user name.
    UserDisabled,
    /// A user was enabled again; subject: the user name.
    UserEnabled,
    /// A user was removed, with their API keys and per-user secrets (no separate events are
    /// written for those); subject: the user name.
    UserRemoved,
    /// A user joined or left a group or team; subject: the user name.
    MembershipChanged,
    /// A group or team was disabled or removed; subject: `group:NAME` or `team:NAME`.
    GroupChanged,
    /// An API key was revoked; subject: the key id.
    ApiKeyRevoked,
    /// A secret was rotated; subject: the credential id (`NAME` or `NAME@USER`).
    SecretRotated,
    /// A secret was removed; subject: the credential id.
    SecretRemoved,
    /// Sessions were revoked by an operator; subject chosen by the caller (e.g. a session id).
    SessionRevoked,
    /// The configuration changed; subject chosen by the caller (e.g. its hash).
    ConfigChanged,
    /// A kind this version does not know, written by a newer one.
    Other(String),
}

impl ChangeKind {
    /// The stored name, e.g. `api_key_revoked`.
    pub fn as_str(&self) -> &str {
        match self {
            Self::UserDisabled => "user_disabled",
            Self::UserEnabled => "user_enabled",
            Self::UserRemoved => "user_removed",
            Self::MembershipChanged => "membership_changed",
            Self::GroupChanged => "group_changed",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::SecretRotated => "secret_rotated",
            Self::SecretRemoved => "secret_removed",
            Self::SessionRevoked => "session_revoked",
            Self::ConfigChanged => "config_changed",
            Self::Other(name) => name,
        }
    }

    /// The kind with stored name `name`.
    pub fn from_name(name: &str) -> Self {
        match name {
            "user_disabled" => Self::UserDisabled,
            "user_enabled" => Self::UserEnabled,
            "user_removed" => Self::UserRemoved,
            "membership_changed" => Self::MembershipChanged,
            "group_changed" => Self::GroupChanged,
            "api_key_revoked" => Self::ApiKeyRevoked,
            "secret_rotated" => Self::SecretRotated,
            "secret_removed" => Self::SecretRemoved,
            "session_revoked" => Self::SessionRevoked,
            "config_changed" => Self::ConfigChanged,
            other => Self::Other(other.to_owned()),
        }
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

/// One change event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// Its position in the change log, from 1.
    pub seq: i64,
    /// When it was recorded.
    pub recorded_at: Timestamp,
    /// What changed.
    pub kind: ChangeKind,
    /// Which thing changed; see each [`ChangeKind`].
    pub subject: String,
}

/// A position in the change log: every event up to it has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChangeCursor(i64);

impl ChangeCursor {
    /// Before the first event.
    pub const START: Self = Self(0);

    /// The cursor just after event `seq`.
    pub const fn after(seq: i64) -> Self {
        Self(seq)
    }

    /// The sequence number of the last event seen (0 for none).
    pub const fn last_seen(self) -> i64 {
        self.0
    }
}

/// The answer to [`Store::changes_since`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// New events in order, at most [`CHANGE_BATCH_LIMIT`]; ask again when full.
    pub events: Vec<ChangeEvent>,
    /// The cursor to ask with next.
    pub cursor: ChangeCursor,
    /// True when events after the cursor were pruned before they were read: the reader has
    /// missed changes and must reload everything it caches.
    pub missed_events: bool,
}

impl Store {
    /// Appends a change event made outside the store's own repositories (config reloads,
    /// operator session revocations) and returns the cursor just after it.
    pub async fn record_change(
        &self,
        kind: &ChangeKind,
        subject: &str,
    ) -> StoreResult<ChangeCursor> {
        const OPERATION: &str = "recording a change";
        let mut transaction = self.begin_write(OPERATION).await?;
        let seq = append_change(&mut transaction, kind, subject).await?;
        transaction.commit().await.map_err(database(OPERATION))?;
        self.changes_committed();
        Ok(ChangeCursor(seq))
    }

    /// Events after `cursor`, oldest first.
    pub async fn changes_since(&self, cursor: ChangeCursor) -> StoreResult<ChangeBatch> {
        const OPERATION: &str = "reading change events";
        let rows = sqlx::query(
            "SELECT seq, recorded_at, kind, subject FROM change_events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(cursor.0)
        .bind(CHANGE_BATCH_LIMIT)
        .fetch_all(self.pool())
        .await
        .map_err(database(OPERATION))?;
        let events = rows
            .iter()
            .map(|row| -> Result<ChangeEvent, sqlx::Error> {
                Ok(ChangeEvent {
                    seq: row.try_get("seq")?,
                    recorded_at: Timestamp::from_unix_millis(row.try_get("recorded_at")?),
                    kind: ChangeKind::from_name(&row.try_get::<String, _>("kind")?),
                    subject: row.try_get("subject")?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(database(OPERATION))?;
        let missed_events = match events.first() {
            Some(first) => first.seq > cursor.0 + 1,
            None => false,
        };
        let cursor = events.last().map_or(cursor, |last| ChangeCursor(last.seq));
        Ok(ChangeBatch {
            events,
            cursor,
            missed_events,
        })
    }

    /// The cursor after the newest event: where a replica that has just loaded its state from
    /// the store starts reading.
    pub async fn latest_change_cursor(&self) -> StoreResult<ChangeCursor> {
        let seq: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM change_events")
            .fetch_one(self.pool())
            .await
            .map_err(database("reading the change log head"))?;
        Ok(ChangeCursor(seq))
    }

    /// Deletes events recorded before `before`, always keeping the newest so sequence numbers
    /// keep growing. Returns how many were deleted.
    pub async fn prune_changes(&self, before: Timestamp) -> StoreResult<u64> {
        let pruned = sqlx::query(
            "DELETE FROM change_events WHERE recorded_at < $1 \
             AND seq < (SELECT COALESCE(MAX(seq), 0) FROM change_events)",
        )
        .bind(before.as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(database("pruning change events"))?;
        Ok(pruned.rows_affected())
    }

    /// A watcher that returns events after `cursor` as they come, waiting at most
    /// `poll_interval` between looks at the store when nothing wakes it sooner.
    pub async fn watch_changes(
        &self,
        cursor: ChangeCursor,
        poll_interval: Duration,
    ) -> StoreResult<ChangeWatcher> {
        let listener = match self.inner.backend {
            Backend::Postgres => {
                let mut listener = PgListener::connect(&self.inner.url)
                    .await
                    .map_err(database("listening for change notifications"))?;
                listener
                    .listen(NOTIFY_CHANNEL)
                    .await
                    .map_err(database("listening for change notifications"))?;
                Some(listener)
            }
            Backend::Sqlite => None,
        };
        Ok(ChangeWatcher {
            store: self.clone(),
            cursor,
            poll_interval,
            listener,
        })
    }

    /// Wakes this process's watchers after a transaction that appended change events committed.
    pub(crate) fn changes_committed(&self) {
        self.inner.local_change.notify_waiters();
    }
}

/// Waits for change events; made by [`Store::watch_changes`].
pub struct ChangeWatcher {
    store: Store,
    cursor: ChangeCursor,
    poll_interval: Duration,
    /// `None` on SQLite, and on PostgreSQL once the listening connection failed: from then on
    /// the watcher polls.
    listener: Option<PgListener>,
}

impl fmt::Debug for ChangeWatcher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ChangeWatcher")
            .field("cursor", &self.cursor)
            .field("poll_interval", &self.poll_interval)
            .field("listening", &self.listener.is_some())
            .finish()
    }
}

impl ChangeWatcher {
    /// The next events after the watcher's cursor, waiting until there is at least one, and
    /// advances the cursor past them. A store error is returned as is; calling again retries.
    pub async fn next_batch(&mut self) -> StoreResult<ChangeBatch> {
        loop {
            // Registered before the look at the store, so a change committed in between still
            // wakes the wait below.
            let local_change = self.store.inner.local_change.notified();
            let batch = self.store.changes_since(self.cursor).await?;
            if !batch.events.is_empty() {
                self.cursor = batch.cursor;
                return Ok(batch);
            }
            let notification = async {
                match self.listener.as_mut() {
                    Some(listener) => listener.recv().await.map(drop),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = local_change => {}
                received = notification => {
                    if received.is_err() {
                        self.listener = None;
                    }
                }
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// The cursor after the last event returned.
    pub fn cursor(&self) -> ChangeCursor {
        self.cursor
    }
}

/// Appends one change event inside `transaction` and returns its sequence number. PostgreSQL
/// delivers the notification to listeners when the transaction commits, not before.
pub(crate) async fn append_change(
    transaction: &mut Transaction<'static, Any>,
    kind: &ChangeKind,
    subject: &str,
) -> StoreResult<i64> {
    const OPERATION: &str = "appending a change event";
    take_append_lock(transaction, "changes", OPERATION).await?;
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO change_events (seq, recorded_at, kind, subject) \
         SELECT COALESCE(MAX(seq), 0) + 1, $1, $2, $3 FROM change_events RETURNING seq",
    )
    .bind(Timestamp::now().as_unix_millis())
    .bind(kind.as_str())
    .bind(subject)
    .fetch_one(&mut **transaction)
    .await
    .map_err(database(OPERATION))?;
    if transaction.backend_name() == "PostgreSQL" {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut **transaction)
            .await
            .map_err(database(OPERATION))?;
    }
    Ok(seq)
}
