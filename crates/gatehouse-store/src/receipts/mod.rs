//! Audit receipts: an append-only, hash-chained log. Receipts are appended in batches, one
//! transaction each, under the `receipts` append lock, which assigns gapless sequence numbers
//! and links each receipt to the one before (see [`chain`]). Nothing is ever updated: a call
//! that reaches an upstream gets an *intent* receipt before the call and a *completion*
//! receipt after, which names the intent's sequence number; an intent with no completion
//! (after a crash) reads as outcome unknown. Indexed columns (user, server, tool, decision,
//! time) are copies of fields of the body, for queries; the hash covers them too. Receipts are
//! deleted only by pruning ([`Store::prune_receipts`]), oldest first, leaving a signed anchor
//! that the retained chain continues from.

pub mod chain;
mod checkpoints;
mod prune;
mod query;

use std::collections::{HashMap, HashSet};

use sqlx::Row;
use sqlx::any::AnyRow;

pub use checkpoints::Checkpoint;
pub use query::{ReceiptFilter, ReceiptOrder, ReceiptRecord};

use crate::error::{StoreError, StoreResult, database, is_unique_violation};
use crate::store::{Store, take_append_lock};
use crate::time::Timestamp;
use chain::{GENESIS_HASH, receipt_hash};

/// What a receipt records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReceiptKind {
    /// A decision that is complete in itself: a denial, a refusal, a call that never reached
    /// an upstream.
    Decision,
    /// A call about to be sent upstream; completed later by a [`ReceiptKind::Completion`].
    Intent,
    /// The outcome of the intent with sequence number `intent_seq`.
    Completion {
        /// The intent this completes.
        intent_seq: i64,
    },
}

impl ReceiptKind {
    /// The stored name: `decision`, `intent` or `completion`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Decision => "decision",
            Self::Intent => "intent",
            Self::Completion { .. } => "completion",
        }
    }

    /// The completed intent's sequence number, for a completion.
    pub fn intent_seq(self) -> Option<i64> {
        match self {
            Self::Completion { intent_seq } => Some(intent_seq),
            Self::Decision | Self::Intent => None,
        }
    }

    fn from_columns(kind: &str, intent_seq: Option<i64>) -> StoreResult<Self> {
        match (kind, intent_seq) {
            ("decision", None) => Ok(Self::Decision),
            ("intent", None) => Ok(Self::Intent),
            ("completion", Some(intent_seq)) => Ok(Self::Completion { intent_seq }),
            _ => Err(StoreError::Corrupt {
                column: "receipts.kind",
                value: format!("{kind} (intent_seq {intent_seq:?})"),
            }),
        }
    }
}

/// The queryable fields of a receipt, copied from its body by the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiptIndex {
    /// The acting user, when authenticated.
    pub user: Option<String>,
    /// The upstream server, when routed.
    pub server: Option<String>,
    /// The tool, resource or prompt name, when there is one.
    pub tool: Option<String>,
    /// The decision, e.g. `allow`, `deny`, `error`.
    pub decision: String,
    /// The outcome, e.g. `ok`, `upstream_error`; `None` on an intent.
    pub outcome: Option<String>,
}

/// A receipt to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReceipt {
    /// When the decision was made.
    pub recorded_at: Timestamp,
    /// What it records.
    pub kind: ReceiptKind,
    /// The queryable fields.
    pub index: ReceiptIndex,
    /// The receipt itself, as canonical JSON.
    pub body: String,
}

/// A receipt as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReceipt {
    /// Its sequence number, from 1, without gaps.
    pub seq: i64,
    /// When the decision was made.
    pub recorded_at: Timestamp,
    /// What it records.
    pub kind: ReceiptKind,
    /// The queryable fields.
    pub index: ReceiptIndex,
    /// The receipt itself, as canonical JSON.
    pub body: String,
    /// The previous receipt's hash ([`chain::GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// This receipt's hash.
    pub hash: String,
}

/// A receipt's place in the chain: what a checkpoint signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    /// The receipt's sequence number.
    pub seq: i64,
    /// The receipt's hash.
    pub hash: String,
}

/// How many rows go into one INSERT statement: 13 parameters each stays far below both
/// backends' parameter limits.
const ROWS_PER_INSERT: usize = 64;

pub(crate) const RECEIPT_COLUMNS: &str = "seq, recorded_at, kind, intent_seq, user_name, server, tool, decision, outcome, body, prev_hash, hash";

impl Store {
    /// Appends `receipts` in order, in one transaction, and returns each one's place in the
    /// chain. Either all are appended or none. A completion must name an intent that is
    /// stored or earlier in the same batch, and not yet completed.
    pub async fn append_receipts(&self, receipts: &[NewReceipt]) -> StoreResult<Vec<ChainHead>> {
        const OPERATION: &str = "appending receipts";
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        let mut transaction = self.begin_write(OPERATION).await?;
        take_append_lock(&mut transaction, "receipts", OPERATION).await?;
        let (mut seq, mut prev_hash) = match chain_head_on(&mut transaction, OPERATION).await? {
            Some(head) => (head.seq, head.hash),
            None => (0, GENESIS_HASH.to_owned()),
        };
        check_completions(&mut transaction, seq, receipts).await?;

        let mut stored = Vec::with_capacity(receipts.len());
        for receipt in receipts {
            seq += 1;
            let hash = receipt_hash(
                &prev_hash,
                seq,
                receipt.recorded_at,
                receipt.kind,
                &receipt.index,
                &receipt.body,
            );
            stored.push(StoredReceipt {
                seq,
                recorded_at: receipt.recorded_at,
                kind: receipt.kind,
                index: receipt.index.clone(),
                body: receipt.body.clone(),
                prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
                hash,
            });
        }
        for rows in stored.chunks(ROWS_PER_INSERT) {
            insert_receipts(&mut transaction, rows).await?;
        }
        transaction.commit().await.map_err(database(OPERATION))?;
        Ok(stored
            .into_iter()
            .map(|receipt| ChainHead {
                seq: receipt.seq,
                hash: receipt.hash,
            })
            .collect())
    }
}

/// The newest receipt's place in the chain or, when pruning deleted every receipt, the
/// anchor's: no checkpoint can name a receipt after the newest, so the newest checkpoint is
/// then the anchor.
pub(crate) async fn chain_head_on(
    connection: &mut sqlx::AnyConnection,
    operation: &'static str,
) -> StoreResult<Option<ChainHead>> {
    let newest: Option<(i64, String)> =
        sqlx::query_as("SELECT seq, hash FROM receipts ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *connection)
            .await
            .map_err(database(operation))?;
    let head = match newest {
        Some(head) => Some(head),
        None => sqlx::query_as("SELECT seq, head_hash FROM checkpoints ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut *connection)
            .await
            .map_err(database(operation))?,
    };
    Ok(head.map(|(seq, hash)| ChainHead { seq, hash }))
}

/// Checks every completion in `receipts` (to be numbered from `head_seq + 1`) names an intent
/// that has no completion yet: a stored one, one earlier in the batch, or one pruned while its
/// call was running.
async fn check_completions(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    head_seq: i64,
    receipts: &[NewReceipt],
) -> StoreResult<()> {
    const OPERATION: &str = "checking completed intents";
    let mut batch_intents = HashSet::new();
    let mut completed = HashSet::new();
    let mut stored_intents = Vec::new();
    for (offset, receipt) in (1..).zip(receipts) {
        match receipt.kind {
            ReceiptKind::Intent => {
                batch_intents.insert(head_seq + offset);
            }
            ReceiptKind::Decision => {}
            ReceiptKind::Completion { intent_seq } => {
                if !completed.insert(intent_seq) {
                    return Err(StoreError::IntentAlreadyCompleted { intent_seq });
                }
                if intent_seq > head_seq {
                    if !batch_intents.contains(&intent_seq) {
                        return Err(StoreError::NotAnIntent { intent_seq });
                    }
                } else {
                    stored_intents.push(intent_seq);
                }
            }
        }
    }
    if stored_intents.is_empty() {
        return Ok(());
    }
    let placeholders = (1..=stored_intents.len())
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT r.seq, r.kind, (SELECT COUNT(*) FROM receipts c WHERE c.intent_seq = r.seq) AS completions \
         FROM receipts r WHERE r.seq IN ({placeholders})"
    );
    let mut query = sqlx::query(&sql);
    for seq in &stored_intents {
        query = query.bind(*seq);
    }
    let rows = query
        .fetch_all(&mut **transaction)
        .await
        .map_err(database(OPERATION))?;
    let mut found = HashMap::new();
    for row in &rows {
        let read = || -> Result<(i64, String, i64), sqlx::Error> {
            Ok((
                row.try_get("seq")?,
                row.try_get("kind")?,
                row.try_get("completions")?,
            ))
        };
        let (seq, kind, completions) = read().map_err(database(OPERATION))?;
        found.insert(seq, (kind, completions));
    }
    for intent_seq in stored_intents {
        match found.get(&intent_seq) {
            Some((kind, 0)) if kind == "intent" => {}
            Some((kind, _)) if kind == "intent" => {
                return Err(StoreError::IntentAlreadyCompleted { intent_seq });
            }
            Some(_) => return Err(StoreError::NotAnIntent { intent_seq }),
            None => check_pruned_intent(transaction, intent_seq).await?,
        }
    }
    Ok(())
}

/// Checks that `intent_seq`, which is not stored, lies before the first stored receipt (it was
/// pruned) and that no stored receipt completes it.
async fn check_pruned_intent(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    intent_seq: i64,
) -> StoreResult<()> {
    const OPERATION: &str = "checking completed intents";
    let (first_seq,): (Option<i64>,) = sqlx::query_as("SELECT MIN(seq) FROM receipts")
        .fetch_one(&mut **transaction)
        .await
        .map_err(database(OPERATION))?;
    if intent_seq < 1 || intent_seq >= first_seq.unwrap_or(i64::MAX) {
        return Err(StoreError::NotAnIntent { intent_seq });
    }
    let (completions,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM receipts WHERE intent_seq = $1")
            .bind(intent_seq)
            .fetch_one(&mut **transaction)
            .await
            .map_err(database(OPERATION))?;
    if completions > 0 {
        return Err(StoreError::IntentAlreadyCompleted { intent_seq });
    }
    Ok(())
}

async fn insert_receipts(
    transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
    rows: &[StoredReceipt],
) -> StoreResult<()> {
    const OPERATION: &str = "appending receipts";
    const COLUMNS: usize = 12;
    let values = (0..rows.len())
        .map(|row| {
            let placeholders = (1..=COLUMNS)
                .map(|column| format!("${}", row * COLUMNS + column))
                .collect::<Vec<_>>()
                .join(", ");
            format!("({placeholders})")
        })
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!("INSERT INTO receipts ({RECEIPT_COLUMNS}) VALUES {values}");
    let mut query = sqlx::query(&sql);
    for row in rows {
        query = query
            .bind(row.seq)
            .bind(row.recorded_at.as_unix_millis())
            .bind(row.kind.as_str())
            .bind(row.kind.intent_seq())
            .bind(row.index.user.as_deref())
            .bind(row.index.server.as_deref())
            .bind(row.index.tool.as_deref())
            .bind(row.index.decision.as_str())
            .bind(row.index.outcome.as_deref())
            .bind(row.body.as_str())
            .bind(row.prev_hash.as_str())
            .bind(row.hash.as_str());
    }
    query.execute(&mut **transaction).await.map_err(|error| {
        // The checks above make this unreachable unless the table was edited by hand.
        if is_unique_violation(&error) {
            StoreError::Corrupt {
                column: "receipts.intent_seq",
                value: "a completion for an intent that the store reports as open".to_owned(),
            }
        } else {
            database(OPERATION)(error)
        }
    })?;
    Ok(())
}

pub(crate) fn receipt_from_row(row: &AnyRow, prefix: &str) -> StoreResult<StoredReceipt> {
    let column = |name: &str| format!("{prefix}{name}");
    let read = || -> Result<_, sqlx::Error> {
        Ok((
            row.try_get::<i64, _>(column("seq").as_str())?,
            row.try_get::<i64, _>(column("recorded_at").as_str())?,
            row.try_get::<String, _>(column("kind").as_str())?,
            row.try_get::<Option<i64>, _>(column("intent_seq").as_str())?,
            ReceiptIndex {
                user: row.try_get(column("user_name").as_str())?,
                server: row.try_get(column("server").as_str())?,
                tool: row.try_get(column("tool").as_str())?,
                decision: row.try_get(column("decision").as_str())?,
                outcome: row.try_get(column("outcome").as_str())?,
            },
            row.try_get::<String, _>(column("body").as_str())?,
            row.try_get::<String, _>(column("prev_hash").as_str())?,
            row.try_get::<String, _>(column("hash").as_str())?,
        ))
    };
    let (seq, recorded_at, kind, intent_seq, index, body, prev_hash, hash) =
        read().map_err(database("reading receipts"))?;
    Ok(StoredReceipt {
        seq,
        recorded_at: Timestamp::from_unix_millis(recorded_at),
        kind: ReceiptKind::from_columns(&kind, intent_seq)?,
        index,
        body,
        prev_hash,
        hash,
    })
}
