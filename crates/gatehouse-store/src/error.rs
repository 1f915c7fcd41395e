//! The store's one error type. Each variant names the condition and, where the caller can act,
//! what to do about it. Messages never contain secret values or database passwords.

use crate::Backend;

/// Everything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The URL is neither `sqlite:` nor `postgres:`.
    #[error(
        "unsupported store URL `{url}`; use `sqlite://PATH?mode=rwc` or `postgres://USER:PASSWORD@HOST:PORT/DATABASE`"
    )]
    UnsupportedUrl {
        /// The URL with any password replaced by `***`.
        url: String,
    },
    /// The database could not be opened or reached.
    #[error(
        "cannot open the {backend} store at `{url}`: {source}; check the URL, that the file's directory is writable or the server is running, and the credentials"
    )]
    Open {
        /// Which backend was being opened.
        backend: Backend,
        /// The URL with any password replaced by `***`.
        url: String,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// The embedded schema migrations failed.
    #[error(
        "cannot bring the {backend} store schema up to date: {source}; if this store was written by a newer Gatehouse, upgrade, otherwise restore it from a backup"
    )]
    Migrate {
        /// Which backend was being migrated.
        backend: Backend,
        /// What the migrator reported.
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    /// A query failed for a reason that is not one of the named conditions below.
    #[error(
        "the store failed while {operation}: {source}; check that the database is reachable and writable"
    )]
    Database {
        /// What the store was doing, e.g. `appending receipts`.
        operation: &'static str,
        /// What the driver reported.
        #[source]
        source: sqlx::Error,
    },
    /// A row holds a value this version does not understand.
    #[error(
        "the store holds an unexpected value in {column}: `{value}`; the store may have been written by a newer Gatehouse or edited by hand"
    )]
    Corrupt {
        /// The table and column, e.g. `receipts.kind`.
        column: &'static str,
        /// The value found.
        value: String,
    },
    /// An entity with this name already exists.
    #[error("{kind} `{name}` already exists; choose another name or change the existing one")]
    AlreadyExists {
        /// What kind of entity, e.g. `user`.
        kind: EntityKind,
        /// Its name or id.
        name: String,
    },
    /// No entity with this name exists.
    #[error("{kind} `{name}` does not exist; list them to see the names in use")]
    NotFound {
        /// What kind of entity, e.g. `user`.
        kind: EntityKind,
        /// Its name or id.
        name: String,
    },
    /// The user is already a member of the group or team.
    #[error("user `{user}` is already a member of {kind} `{group}`")]
    AlreadyMember {
        /// Group or team.
        kind: EntityKind,
        /// The group or team name.
        group: String,
        /// The user name.
        user: String,
    },
    /// The user is not a member of the group or team.
    #[error("user `{user}` is not a member of {kind} `{group}`")]
    NotMember {
        /// Group or team.
        kind: EntityKind,
        /// The group or team name.
        group: String,
        /// The user name.
        user: String,
    },
    /// A team cannot be removed while it owns secrets.
    #[error("team `{team}` owns secrets ({secrets}); give them another owner or remove them first")]
    TeamOwnsSecrets {
        /// The team name.
        team: String,
        /// The owned secrets' ids, comma separated.
        secrets: String,
    },
    /// A rotation raced with another rotation of the same secret.
    #[error(
        "secret `{secret}` is at version {actual}, not {expected}: it was rotated meanwhile; read it again and retry"
    )]
    SecretVersionConflict {
        /// The secret's id (`name` or `name@user`).
        secret: String,
        /// The version the caller based its rotation on.
        expected: i64,
        /// The version in the store.
        actual: i64,
    },
    /// A completion receipt names a sequence number that is not an intent receipt.
    #[error(
        "receipt {intent_seq} is not an intent receipt, so it cannot be completed; complete the sequence number returned when the intent was appended"
    )]
    NotAnIntent {
        /// The sequence number given.
        intent_seq: i64,
    },
    /// An intent receipt already has its completion.
    #[error("intent receipt {intent_seq} is already completed; an intent is completed once")]
    IntentAlreadyCompleted {
        /// The intent's sequence number.
        intent_seq: i64,
    },
    /// A checkpoint does not match the stored chain.
    #[error(
        "checkpoint at receipt {seq} does not match the stored chain (no receipt with that sequence number and hash); sign the head returned by the store"
    )]
    CheckpointMismatch {
        /// The sequence number the checkpoint names.
        seq: i64,
    },
}

/// The kinds of entity named in [`StoreError::AlreadyExists`] and [`StoreError::NotFound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// A user.
    User,
    /// A group.
    Group,
    /// A team.
    Team,
    /// A gateway API key.
    ApiKey,
    /// An upstream secret.
    Secret,
    /// A receipt.
    Receipt,
    /// A checkpoint.
    Checkpoint,
}

impl std::fmt::Display for EntityKind {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(match self {
            Self::User => "user",
            Self::Group => "group",
            Self::Team => "team",
            Self::ApiKey => "API key",
            Self::Secret => "secret",
            Self::Receipt => "receipt",
            Self::Checkpoint => "checkpoint",
        })
    }
}

/// Shorthand for the store's results.
pub type StoreResult<T> = Result<T, StoreError>;

/// Wraps a driver error with what the store was doing.
pub(crate) fn database(operation: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Database { operation, source }
}

/// True when the error is a unique or primary key violation.
pub(crate) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// True when the error is a foreign key violation.
pub(crate) fn is_foreign_key_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}
