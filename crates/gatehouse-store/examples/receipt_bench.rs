//! Receipts appended per second, in batches of 64, on SQLite and (given a server) PostgreSQL.
//!
//! ```text
//! cargo run --release -p gatehouse-store --example receipt_bench -- [POSTGRES_SERVER_URL]
//! ```
//!
//! SQLite runs on a new file in the temporary directory. PostgreSQL runs on a new database
//! created on the given server (e.g. the URL printed by `scripts/postgres start`) and dropped
//! afterwards. Each backend is measured with one writer and with four writers on separate
//! stores (replicas) appending at once.

use std::time::Instant;

use gatehouse_store::{NewReceipt, ReceiptIndex, ReceiptKind, Store, Timestamp};
use sqlx::migrate::MigrateDatabase;

const BATCH: usize = 64;
const BATCHES_PER_WRITER: usize = 200;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sqlite_path =
        std::env::temp_dir().join(format!("gatehouse-bench-{}.db", std::process::id()));
    let sqlite_url = format!("sqlite://{}", sqlite_path.display());
    measure("SQLite", &sqlite_url).await?;
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", sqlite_path.display()));
    }

    if let Some(server_url) = std::env::args().nth(1) {
        sqlx::any::install_default_drivers();
        let database = format!("gatehouse_bench_{}", std::process::id());
        let url = match server_url.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{database}"),
            None => return Err("the PostgreSQL URL must end in /DATABASE".into()),
        };
        sqlx::Any::create_database(&url).await?;
        let result = measure("PostgreSQL", &url).await;
        sqlx::Any::force_drop_database(&url).await?;
        result?;
    } else {
        println!("PostgreSQL: not measured (pass a server URL, e.g. from scripts/postgres start)");
    }
    Ok(())
}

async fn measure(backend: &str, url: &str) -> Result<(), Box<dyn std::error::Error>> {
    for writers in [1, 4] {
        let mut stores = Vec::new();
        for _ in 0..writers {
            stores.push(Store::open(url).await?);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for (writer, store) in stores.into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                for batch in 0..BATCHES_PER_WRITER {
                    store.append_receipts(&receipts(writer, batch)).await?;
                }
                store.close().await;
                Ok::<_, gatehouse_store::StoreError>(())
            }));
        }
        for task in tasks {
            task.await??;
        }
        let elapsed = started.elapsed();
        let appended = writers * BATCHES_PER_WRITER * BATCH;
        println!(
            "{backend}: {:.0} receipts/s ({appended} receipts in batches of {BATCH} from {writers} writer(s) in {elapsed:.2?})",
            appended as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// A batch shaped like real traffic: intents completed in the same batch, ~400-byte bodies.
fn receipts(writer: usize, batch: usize) -> Vec<NewReceipt> {
    (0..BATCH)
        .map(|index| NewReceipt {
            recorded_at: Timestamp::now(),
            kind: ReceiptKind::Decision,
            index: ReceiptIndex {
                user: Some(format!("user{}", index % 20)),
                server: Some("github".to_owned()),
                tool: Some("create_issue".to_owned()),
                decision: "allow".to_owned(),
                outcome: Some("ok".to_owned()),
            },
            body: format!(
                "{{\"writer\":{writer},\"batch\":{batch},\"index\":{index},\"arguments_digest\":\"{}\"}}",
                "ab".repeat(170)
            ),
        })
        .collect()
}
