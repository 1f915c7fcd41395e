//! Server catalogs, through one transcript helper.
//!
//! Commands: `put SERVER KIND ERA TIME ITEMS_JSON`; `get SERVER KIND`; `list [SERVER]`;
//! `remove SERVER`.

use gatehouse_store::{CatalogEntry, CatalogKind};

use crate::support::{
    TestDb, check_transcript, on_both_backends, relative_time, render, show_relative,
};

async fn check(db: &TestDb, steps: &[(&str, &str)]) {
    let store = &db.store;
    check_transcript(steps, async |command| {
        let words: Vec<&str> = command.split_whitespace().collect();
        let kind = |name: &str| CatalogKind::from_name(name).expect("catalog kind");
        match words.as_slice() {
            ["put", server, list_kind, era, time, items] => {
                let entry = CatalogEntry {
                    server: (*server).to_owned(),
                    kind: kind(list_kind),
                    items_json: (*items).to_owned(),
                    era: (*era).to_owned(),
                    fetched_at: relative_time(time),
                };
                render(store.put_catalog_entry(&entry).await, |()| "ok".into())
            }
            ["get", server, list_kind] => render(
                store.catalog_entry(server, kind(list_kind)).await,
                |entry| entry.map_or_else(|| "none".to_owned(), show_entry),
            ),
            ["list"] => render(store.catalog_entries(None).await, show_entries),
            ["list", server] => render(store.catalog_entries(Some(server)).await, show_entries),
            ["remove", server] => render(store.remove_catalog(server).await, |removed| {
                format!("removed {removed}")
            }),
            _ => panic!("unknown command `{command}`"),
        }
    })
    .await;
}

fn show_entry(entry: CatalogEntry) -> String {
    format!(
        "{} {} {} {} {}",
        entry.server,
        entry.kind.as_str(),
        entry.era,
        show_relative(entry.fetched_at),
        entry.items_json
    )
}

fn show_entries(entries: Vec<CatalogEntry>) -> String {
    entries
        .into_iter()
        .map(show_entry)
        .collect::<Vec<_>>()
        .join("; ")
}

on_both_backends! {
    catalogs_replace_per_server_and_kind: check, &[
        ("get github tools", "none"),
        ("put github tools 2025-11-25 +0s [{\"name\":\"create_issue\"}]", "ok"),
        ("put github prompts 2025-11-25 +0s []", "ok"),
        ("put time tools 2026-07-28 +5s [{\"name\":\"now\"}]", "ok"),
        ("get github tools", "github tools 2025-11-25 +0s [{\"name\":\"create_issue\"}]"),
        ("put github tools 2026-07-28 +60s [{\"name\":\"create_issue\"},{\"name\":\"close_issue\"}]", "ok"),
        ("get github tools", "github tools 2026-07-28 +60s [{\"name\":\"create_issue\"},{\"name\":\"close_issue\"}]"),
        ("put github resource_templates 2026-07-28 +60s [{\"uriTemplate\":\"repo://{name}\"}]", "ok"),
        ("list github", "github tools 2026-07-28 +60s [{\"name\":\"create_issue\"},{\"name\":\"close_issue\"}]; github resource_templates 2026-07-28 +60s [{\"uriTemplate\":\"repo://{name}\"}]; github prompts 2025-11-25 +0s []"),
        ("list", "github tools 2026-07-28 +60s [{\"name\":\"create_issue\"},{\"name\":\"close_issue\"}]; github resource_templates 2026-07-28 +60s [{\"uriTemplate\":\"repo://{name}\"}]; github prompts 2025-11-25 +0s []; time tools 2026-07-28 +5s [{\"name\":\"now\"}]"),
        ("remove github", "removed 3"),
        ("remove github", "removed 0"),
        ("list", "time tools 2026-07-28 +5s [{\"name\":\"now\"}]"),
    ];
}
