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
        "{:<40} {:<16} {:<12} {:<12} DESCRIPTION",
        "TOOL", "SERVER", "CLASS", "FROM"
    );
    let mut shown = 0;
    for server in &config.servers {
        let Some(entry) = entries
            .iter()
            .find(|e| e.server == server.name.as_str() && e.kind == CatalogKind::Tools)
        else {
            println!(
                "{:<40} {:<16} {:<12} {:<12} (not learned yet: the gateway lists it on first use)",
                "-", server.name, "-", "-"
            );
            continue;
        };
        let namespace = Namespace::new(server.prefix.clone());
        let tools: Vec<Value> = serde_json::from_str(&entry.items_json).unwrap_or_default();
        for tool in &tools {
            let name = tool["name"].as_str().unwrap_or_default();
            // The same classification the policy uses: operator override, then annotations,
            // then heuristics; ambiguous counts as write.
            let operator = server
                .classes
                .get(name)
                .and_then(|class| match class.as_str() {
                    "read" => Some(gatehouse_policy::Class::Read),
                    "write" => Some(gatehouse_policy::Class::Write),
                    "destructive" => Some(gatehouse_policy::Class::Destructive),
                    _ => None,
                });
            let (class, source) = gatehouse_policy::classify(tool, operator);
            let description = tool["description"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default();
            println!(
                "{:<40} {:<16} {:<12} {:<12} {description}",
                namespace.expose_name(name),
                server.name,
                class.as_str(),
                source.as_str()
            );
            shown += 1;
        }
    }
    println!("{shown} tools");
    Ok(())
}
