//! Gatehouse's persistent state, and the only crate that writes SQL. One [`Store`], opened from
//! a URL, runs the same queries on an embedded SQLite file (the default, in WAL mode) or on
//! PostgreSQL (for several gateway replicas), through sqlx's `Any` driver, with an embedded
//! schema migration per backend. Repositories are plain async methods on [`Store`], one file
//! each: users, groups and teams, API keys (digests only), secrets (ciphertext only), server
//! catalogs, hash-chained audit receipts with checkpoints, and change events that tell every
//! replica about revocations. The store never sees a key, a secret value or a signing key:
//! callers digest, seal and sign; the store keeps bytes.

#![forbid(unsafe_code)]

mod api_keys;
mod catalog;
mod changes;
mod error;
mod groups;
mod meta;
pub mod receipts;
mod secrets;
mod store;
mod time;
mod users;

use std::time::Duration;

pub use api_keys::{ApiKey, ApiKeyStatus, NewApiKey};
pub use catalog::{CatalogEntry, CatalogKind};
pub use changes::{
    CHANGE_BATCH_LIMIT, ChangeBatch, ChangeCursor, ChangeEvent, ChangeKind, ChangeWatcher,
};
pub use error::{EntityKind, StoreError, StoreResult};
pub use groups::{Group, GroupKind, Memberships};
pub use receipts::chain::{ChainBreak, GENESIS_HASH, receipt_hash, verify_links};
pub use receipts::{
    ChainHead, Checkpoint, NewReceipt, ReceiptFilter, ReceiptIndex, ReceiptKind, ReceiptOrder,
    ReceiptRecord, StoredReceipt,
};
pub use secrets::{NewSecret, SealedSecret, SecretMetadata, SecretRef};
pub use store::{Backend, Store, redact_url};
pub use time::Timestamp;
pub use users::User;

/// How precisely `last_used_at` of API keys and secrets is kept: a use is written only when
/// the stored time is older than this, so a busy key costs one write a minute, not one a call.
pub const LAST_USED_GRANULARITY: Duration = Duration::from_secs(60);
