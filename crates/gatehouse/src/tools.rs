//! `gatehouse tools`: every tool the gateway knows of, read from the catalogs it has learned
//! and persisted, under the names clients see.

use std::path::Path;

use anyhow::Result;
use gatehouse_mcp::naming::Namespace;
use gatehouse_store::CatalogKind;
use serde_json::Value;

pub(crate) async fn list(path: &Path) -> Result<()> {
    let config = crate::load(path)?;
    let store = crate::people::open_store(path, &config).await?;
    let entries = store.catalog_entries(None).await?;
    println!(
        "{:<40} {:<16} {:<10} DESCRIPTION",
        "TOOL", "SERVER", "HINTS"
    );
    let mut shown = 0;
    for server in &config.servers {
        let Some(entry) = entries
            .iter()
            .find(|e| e.server == server.name.as_str() && e.kind == CatalogKind::Tools)
        else {
            println!(
                "{:<40} {:<16} {:<10} (not learned yet: the gateway lists it on first use)",
                "-", server.name, "-"
            );
            continue;
        };
        let namespace = Namespace::new(server.prefix.clone());
        let tools: Vec<Value> = serde_json::from_str(&entry.items_json).unwrap_or_default();
        for tool in &tools {
            let name = tool["name"].as_str().unwrap_or_default();
            let hints = match (
                tool.pointer("/annotations/readOnlyHint"),
                tool.pointer("/annotations/destructiveHint"),
            ) {
                (Some(Value::Bool(true)), _) => "read-only",
                (_, Some(Value::Bool(true))) => "destructive",
                (_, Some(Value::Bool(false))) => "writes",
                _ => "-",
            };
            let description = tool["description"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default();
            println!(
                "{:<40} {:<16} {hints:<10} {description}",
                namespace.expose_name(name),
                server.name
            );
            shown += 1;
        }
    }
    println!("{shown} tools");
    Ok(())
}
