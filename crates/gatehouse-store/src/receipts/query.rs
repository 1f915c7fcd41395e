//! Reading receipts: raw ranges of the chain (for verification and export), and queries by
//! the indexed columns that pair each intent with its completion.

use super::{ChainHead, RECEIPT_COLUMNS, StoredReceipt, chain_head_on, receipt_from_row};
use crate::error::{StoreResult, database};
use crate::store::Store;
use crate::time::Timestamp;

/// Which receipts [`Store::query_receipts`] returns. Unset fields match everything; the
/// default matches every receipt, oldest first, 100 at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptFilter {
    /// Only this user's.
    pub user: Option<String>,
    /// Only this server's.
    pub server: Option<String>,
    /// Only this tool's (or resource's, or prompt's).
    pub tool: Option<String>,
    /// Only this decision, e.g. `deny`.
    pub decision: Option<String>,
    /// Only those recorded at or after this time.
    pub since: Option<Timestamp>,
    /// Only those recorded before this time.
    pub until: Option<Timestamp>,
    /// Only those after this sequence number (ascending) or before it (descending): the
    /// position to continue a paged read from.
    pub from_seq: Option<i64>,
    /// In which order.
    pub order: ReceiptOrder,
    /// At most this many.
    pub limit: u32,
}

impl Default for ReceiptFilter {
    fn default() -> Self {
        Self {
            user: None,
            server: None,
            tool: None,
            decision: None,
            since: None,
            until: None,
            from_seq: None,
            order: ReceiptOrder::Ascending,
            limit: 100,
        }
    }
}

/// The order of query results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReceiptOrder {
    /// Oldest first.
    #[default]
    Ascending,
    /// Newest first.
    Descending,
}

/// A decision or intent receipt, with the completion of an intent when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptRecord {
    /// The receipt.
    pub receipt: StoredReceipt,
    /// The completion receipt of an intent; `None` for a decision, and for an intent whose
    /// outcome is not known (yet, or ever, after a crash).
    pub completion: Option<StoredReceipt>,
}

impl Store {
    /// Up to `limit` receipts from sequence number `from_seq` on, ascending: the raw chain.
    pub async fn receipts_range(
        &self,
        from_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<StoredReceipt>> {
        let sql =
            format!("SELECT {RECEIPT_COLUMNS} FROM receipts WHERE seq >= $1 ORDER BY seq LIMIT $2");
        let rows = sqlx::query(&sql)
            .bind(from_seq)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(database("reading receipts"))?;
        rows.iter().map(|row| receipt_from_row(row, "")).collect()
    }

    /// The last `limit` receipts, ascending.
    pub async fn receipts_tail(&self, limit: u32) -> StoreResult<Vec<StoredReceipt>> {
        let sql = format!("SELECT {RECEIPT_COLUMNS} FROM receipts ORDER BY seq DESC LIMIT $1");
        let rows = sqlx::query(&sql)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(database("reading receipts"))?;
        let mut receipts = rows
            .iter()
            .map(|row| receipt_from_row(row, ""))
            .collect::<StoreResult<Vec<_>>>()?;
        receipts.reverse();
        Ok(receipts)
    }

    /// The newest receipt's place in the chain (the anchor's, when pruning deleted every
    /// receipt), or `None` when nothing was ever appended.
    pub async fn chain_head(&self) -> StoreResult<Option<ChainHead>> {
        const OPERATION: &str = "reading the chain head";
        let mut connection = self.pool().acquire().await.map_err(database(OPERATION))?;
        chain_head_on(&mut connection, OPERATION).await
    }

    /// Decision and intent receipts matching `filter`, each intent with its completion.
    pub async fn query_receipts(&self, filter: &ReceiptFilter) -> StoreResult<Vec<ReceiptRecord>> {
        // Only the conditions that are set go into the SQL, so each can use its index.
        let mut conditions = vec!["r.kind <> 'completion'".to_owned()];
        let mut texts = Vec::new();
        for (column, value) in [
            ("user_name", &filter.user),
            ("server", &filter.server),
            ("tool", &filter.tool),
            ("decision", &filter.decision),
        ] {
            if let Some(value) = value {
                texts.push(value.as_str());
                conditions.push(format!("r.{column} = ${}", texts.len()));
            }
        }
        let mut numbers = Vec::new();
        let (seq_comparison, direction) = match filter.order {
            ReceiptOrder::Ascending => (">", "ASC"),
            ReceiptOrder::Descending => ("<", "DESC"),
        };
        for (condition, value) in [
            (
                "r.recorded_at >=",
                filter.since.map(Timestamp::as_unix_millis),
            ),
            (
                "r.recorded_at <",
                filter.until.map(Timestamp::as_unix_millis),
            ),
            (
                if seq_comparison == ">" {
                    "r.seq >"
                } else {
                    "r.seq <"
                },
                filter.from_seq,
            ),
        ] {
            if let Some(value) = value {
                numbers.push(value);
                conditions.push(format!("{condition} ${}", texts.len() + numbers.len()));
            }
        }
        let limit_parameter = texts.len() + numbers.len() + 1;
        let receipt_columns = prefixed_columns("r", "");
        let completion_columns = prefixed_columns("c", "c_");
        let sql = format!(
            "SELECT {receipt_columns}, {completion_columns} FROM receipts r \
             LEFT JOIN receipts c ON c.intent_seq = r.seq \
             WHERE {} ORDER BY r.seq {direction} LIMIT ${limit_parameter}",
            conditions.join(" AND ")
        );
        let mut query = sqlx::query(&sql);
        for text in texts {
            query = query.bind(text);
        }
        for number in numbers {
            query = query.bind(number);
        }
        let rows = query
            .bind(i64::from(filter.limit))
            .fetch_all(self.pool())
            .await
            .map_err(database("querying receipts"))?;
        rows.iter()
            .map(|row| {
                let receipt = receipt_from_row(row, "")?;
                let has_completion = sqlx::Row::try_get::<Option<i64>, _>(row, "c_seq")
                    .map_err(database("querying receipts"))?
                    .is_some();
                let completion = if has_completion {
                    Some(receipt_from_row(row, "c_")?)
                } else {
                    None
                };
                Ok(ReceiptRecord {
                    receipt,
                    completion,
                })
            })
            .collect()
    }

    /// Intents recorded before `recorded_before` that have no completion, oldest first: after
    /// a crash, the calls whose outcome is unknown. The caller appends a completion with
    /// outcome `unknown` for each, which keeps the chain append-only.
    pub async fn open_intents(
        &self,
        recorded_before: Timestamp,
        limit: u32,
    ) -> StoreResult<Vec<StoredReceipt>> {
        let columns = prefixed_columns("r", "");
        let sql = format!(
            "SELECT {columns} FROM receipts r WHERE r.kind = 'intent' AND r.recorded_at < $1 \
             AND NOT EXISTS (SELECT 1 FROM receipts c WHERE c.intent_seq = r.seq) \
             ORDER BY r.seq LIMIT $2"
        );
        let rows = sqlx::query(&sql)
            .bind(recorded_before.as_unix_millis())
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await
            .map_err(database("listing open intents"))?;
        rows.iter().map(|row| receipt_from_row(row, "")).collect()
    }
}

/// `RECEIPT_COLUMNS` qualified by `table` and renamed with `prefix`.
fn prefixed_columns(table: &str, prefix: &str) -> String {
    RECEIPT_COLUMNS
        .split(", ")
        .map(|column| format!("{table}.{column} AS {prefix}{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}
