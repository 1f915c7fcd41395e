//! Persisted upstream catalogs: per server and list kind, the items as the server last
//! announced them, so listing never needs to start a backend. Items are stored as JSON text
//! exactly as given; the store does not parse them.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::error::{StoreError, StoreResult, database};
use crate::store::Store;
use crate::time::Timestamp;

/// Which list of a server's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CatalogKind {
    /// `tools/list`.
    Tools,
    /// `resources/list`.
    Resources,
    /// `resources/templates/list`.
    ResourceTemplates,
    /// `prompts/list`.
    Prompts,
}

impl CatalogKind {
    /// Every kind, in listing order.
    pub const ALL: [Self; 4] = [
        Self::Tools,
        Self::Resources,
        Self::ResourceTemplates,
        Self::Prompts,
    ];

    /// The stored name: `tools`, `resources`, `resource_templates` or `prompts`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tools => "tools",
            Self::Resources => "resources",
            Self::ResourceTemplates => "resource_templates",
            Self::Prompts => "prompts",
        }
    }

    /// The kind with stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// One list of one server's catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The server's configured name.
    pub server: String,
    /// Which list.
    pub kind: CatalogKind,
    /// The items as a JSON array, as the server announced them.
    pub items_json: String,
    /// The protocol revision the server spoke, e.g. `2025-11-25`.
    pub era: String,
    /// When the list was fetched from the server.
    pub fetched_at: Timestamp,
}

const ENTRY_COLUMNS: &str = "server, list_kind, items, era, fetched_at";

impl Store {
    /// Stores one list of a server's catalog, replacing what was stored for that list.
    pub async fn put_catalog_entry(&self, entry: &CatalogEntry) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO catalog_entries (server, list_kind, items, era, fetched_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (server, list_kind) DO UPDATE SET items = excluded.items, era = excluded.era, fetched_at = excluded.fetched_at",
        )
        .bind(&entry.server)
        .bind(entry.kind.as_str())
        .bind(&entry.items_json)
        .bind(&entry.era)
        .bind(entry.fetched_at.as_unix_millis())
        .execute(self.pool())
        .await
        .map_err(database("storing a catalog"))?;
        Ok(())
    }

    /// One list of a server's catalog, if stored.
    pub async fn catalog_entry(
        &self,
        server: &str,
        kind: CatalogKind,
    ) -> StoreResult<Option<CatalogEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM catalog_entries WHERE server = $1 AND list_kind = $2"
        );
        let row = sqlx::query(&sql)
            .bind(server)
            .bind(kind.as_str())
            .fetch_optional(self.pool())
            .await
            .map_err(database("reading a catalog"))?;
        row.as_ref().map(entry_from_row).transpose()
    }

    /// Every stored list, of one server or of all, by server and kind.
    pub async fn catalog_entries(&self, server: Option<&str>) -> StoreResult<Vec<CatalogEntry>> {
        let sql = format!(
            "SELECT {ENTRY_COLUMNS} FROM catalog_entries WHERE ($1 IS NULL OR server = $1) ORDER BY server"
        );
        let rows = sqlx::query(&sql)
            .bind(server)
            .fetch_all(self.pool())
            .await
            .map_err(database("reading catalogs"))?;
        let mut entries = rows
            .iter()
            .map(entry_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        entries.sort_by(|left, right| (&left.server, left.kind).cmp(&(&right.server, right.kind)));
        Ok(entries)
    }

    /// Forgets a server's catalog (e.g. when the server is removed from the config); returns
    /// how many lists were removed.
    pub async fn remove_catalog(&self, server: &str) -> StoreResult<u64> {
        let removed = sqlx::query("DELETE FROM catalog_entries WHERE server = $1")
            .bind(server)
            .execute(self.pool())
            .await
            .map_err(database("removing a catalog"))?;
        Ok(removed.rows_affected())
    }
}

fn entry_from_row(row: &AnyRow) -> StoreResult<CatalogEntry> {
    let read = || -> Result<(String, String, String, String, i64), sqlx::Error> {
        Ok((
            row.try_get("server")?,
            row.try_get("list_kind")?,
            row.try_get("items")?,
            row.try_get("era")?,
            row.try_get("fetched_at")?,
        ))
    };
    let (server, kind, items_json, era, fetched_at) =
        read().map_err(database("reading a catalog"))?;
    let kind = CatalogKind::from_name(&kind).ok_or(StoreError::Corrupt {
        column: "catalog_entries.list_kind",
        value: kind,
    })?;
    Ok(CatalogEntry {
        server,
        kind,
        items_json,
        era,
        fetched_at: Timestamp::from_unix_millis(fetched_at),
    })
}
