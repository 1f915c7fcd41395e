//! Tamper-evident audit receipts for Gatehouse. Every decision the gateway makes (allow, deny,
//! error) becomes a [`Receipt`]: who asked, from which client and session, for which server and
//! tool, what was decided by which rules under which policy, which credential was used (by id,
//! never by value), a keyed digest of the arguments, and how the call ended. A call that reaches
//! an upstream is recorded twice, an *intent* that is durable before the upstream is called and
//! a *completion* after, so a crash in between leaves an intent whose outcome verifies as
//! unknown, never an effect without a record.
//!
//! Receipts are encoded as canonical JSON ([`canonical`]) and appended to a [`ReceiptLog`] that
//! links each entry to the previous one by SHA-256 ([`chain`]); the writer signs the chain head
//! with Ed25519 at regular [`Checkpoint`]s. [`verify`] walks the chain and names the first bad
//! sequence number for a changed byte, a deleted, inserted or reordered entry, a truncated
//! tail, a rewritten chain or a replayed checkpoint. [`AuditWriter`] batches appends behind a
//! bounded queue and fails closed by default. [`prune_before`] and [`prune_through`] delete old
//! entries and leave a signed anchor so the rest still verifies. A [`RefusalLimiter`] keeps a
//! flood of refusals from filling the log: past a few per window, they are counted into one
//! aggregate receipt.
//!
//! Architecture invariant: this crate does no storage of its own and no SQL. A log is anything
//! that implements [`ReceiptLog`]; `gatehouse-store` implements it on its tables, and
//! [`MemoryLog`] serves tests and benchmarks. Keys are generated and kept by the caller.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod canonical;
pub mod chain;
mod checkpoint;
mod digest;
mod entry;
mod keys;
mod log;
mod memory;
mod receipt;
mod refusals;
mod retention;
mod sink;
mod time;
mod verify;
mod writer;

pub use chain::{GENESIS_HASH, receipt_hash, seal};
pub use checkpoint::{Checkpoint, CheckpointError, CheckpointPurpose};
pub use digest::{ArgumentDigest, AuditKey, DIGEST_PREFIX, MIN_AUDIT_KEY_BYTES, RedactionRule};
pub use entry::{ChainHead, NewReceipt, ReceiptIndex, ReceiptKind, StoredReceipt};
pub use keys::{CheckpointSigner, KeyError, PublicKey, TrustedKeys};
pub use log::{LogError, ReceiptLog};
pub use memory::{MemoryLog, MemoryState};
pub use receipt::{
    AuditGap, ClientInfo, CredentialUse, Decision, ErrorSource, Outcome, Principal, Receipt,
    RefusalAggregate, RefusalKind, Target, TargetKind, Verdict,
};
pub use refusals::{
    Admission, CountedRefusals, RefusalKey, RefusalLimiter, RefusalLimits, RefusalSubject,
};
pub use retention::{
    PruneLimits, PruneOutcome, PruneSummary, RetentionError, prune_before, prune_through,
};
pub use sink::{
    ExportError, ExportSink, JsonLinesSink, SinkFuture, export_checkpoints, export_receipts,
    read_checkpoint_lines,
};
pub use time::Timestamp;
pub use verify::{
    CheckpointSource, Problem, Report, UnknownOutcome, VerifyOptions, verify, verify_with,
};
pub use writer::{
    AuditError, AuditWriter, Completion, FailureMode, Intent, PendingReceipt, Recorded,
    WriterConfig, WriterStats, WriterTask,
};
