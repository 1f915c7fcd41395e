//! Server catalogs kept in the store, so that listing never needs to start a server: at
//! start-up the hub is seeded with every persisted list, and every list learned from a server
//! afterwards is written back.

use std::sync::Arc;

use gatehouse_mcp::catalog::ListKind;
use gatehouse_store::{CatalogEntry, CatalogKind, Timestamp};
use serde_json::Value;
use tokio::sync::broadcast;

use crate::Gateway;

fn store_kind(kind: ListKind) -> CatalogKind {
    match kind {
        ListKind::Tools => CatalogKind::Tools,
        ListKind::Prompts => CatalogKind::Prompts,
        ListKind::Resources => CatalogKind::Resources,
        ListKind::ResourceTemplates => CatalogKind::ResourceTemplates,
    }
}

impl Gateway {
    /// Seeds the hub with the catalogs persisted by earlier runs.
    pub async fn load_catalogs(&self) {
        let entries = match self.store.catalog_entries(None).await {
            Ok(entries) => entries,
            Err(error) => {
                tracing::warn!(%error, "persisted catalogs unavailable; servers are asked on first listing");
                return;
            }
        };
        let mut loaded = 0;
        for entry in entries {
            let Some(kind) = ListKind::ALL
                .into_iter()
                .find(|kind| store_kind(*kind) == entry.kind)
            else {
                continue;
            };
            match serde_json::from_str::<Vec<Value>>(&entry.items_json) {
                Ok(items) => {
                    self.hub.seed_catalog(&entry.server, kind, items);
                    loaded += 1;
                }
                Err(error) => {
                    tracing::warn!(server = %entry.server, %error, "persisted catalog unreadable; ignored")
                }
            }
        }
        tracing::debug!(loaded, "persisted catalogs loaded");
    }
}

/// Writes every list the hub learns to the store, until the gateway stops.
pub async fn persist(gateway: Arc<Gateway>) {
    let mut learned = gateway.hub.learned_lists();
    loop {
        let list = match learned.recv().await {
            Ok(list) => list,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let era = gateway
            .hub
            .upstream(list.server.as_str())
            .and_then(|upstream| upstream.known_era())
            .map(|era| era.version().to_owned())
            .unwrap_or_default();
        let entry = CatalogEntry {
            server: list.server.to_string(),
            kind: store_kind(list.kind),
            items_json: Value::Array(list.items).to_string(),
            era,
            fetched_at: Timestamp::now(),
        };
        if let Err(error) = gateway.store.put_catalog_entry(&entry).await {
            tracing::warn!(server = %entry.server, %error, "catalog not persisted");
        }
    }
}
