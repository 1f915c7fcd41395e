//! `gatehouse audit`: read, export and verify the receipts. Verification walks the whole chain
//! and checks every signed checkpoint; it names the first bad record.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_audit::{CheckpointSigner, ReceiptLog, TrustedKeys};
use gatehouse_gateway::audit::SIGNING_KEY_FILE;
use gatehouse_gateway::audit_log::StoreLog;
use gatehouse_store::{ReceiptFilter, ReceiptOrder};

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Verify the chain and its signed checkpoints.
    Verify {
        /// Also trust these exported checkpoints (JSON lines), to detect a log cut back to an
        /// older checkpoint.
        #[arg(long)]
        checkpoints: Option<PathBuf>,
    },
    /// The newest receipts.
    Tail {
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        count: u32,
        /// Keep printing receipts as they are written, until interrupted.
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Receipts matching filters, oldest first.
    Query {
        /// Only this person's.
        #[arg(long)]
        user: Option<String>,
        /// Only this server's.
        #[arg(long)]
        server: Option<String>,
        /// Only this tool's.
        #[arg(long)]
        tool: Option<String>,
        /// Only `allow`, `deny` or `error`.
        #[arg(long)]
        decision: Option<String>,
        /// Only receipts at or after this time (RFC 3339, such as 2026-11-22T08:00:00Z).
        #[arg(long)]
        since: Option<String>,
        /// Only receipts before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Print JSON lines only, without sequence numbers.
        #[arg(long)]
        json: bool,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Every receipt and checkpoint as JSON lines.
    Export,
}

pub(crate) async fn run(path: &Path, command: AuditCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = crate::people::open_store(path, &config).await?;
    let log = StoreLog(store.clone());
    match command {
        AuditCommand::Verify { checkpoints } => {
            let key_path = crate::config_folder(path).join(SIGNING_KEY_FILE);
            let text = std::fs::read_to_string(&key_path).with_context(|| {
                format!(
                    "cannot read the signing key {}; it is created by `gatehouse serve`",
                    key_path.display()
                )
            })?;
            let signer = CheckpointSigner::from_secret_json(&secrecy::SecretString::from(text))
                .map_err(|error| anyhow::anyhow!("{}: {error}", key_path.display()))?;
            let keys = TrustedKeys::new([signer.public_key()]);
            let mut options = gatehouse_audit::VerifyOptions::default();
            if let Some(file) = checkpoints {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?;
                options.trusted_checkpoints = gatehouse_audit::read_checkpoint_lines(&text)
                    .map_err(|error| anyhow::anyhow!("{}: {error}", file.display()))?;
            }
            let report = gatehouse_audit::verify_with(&log, &keys, &options).await?;
            println!(
                "receipts: {}, checkpoints matched: {}, unsigned tail: {}",
                report.receipts, report.checkpoints_matched, report.unsigned_tail
            );
            for unknown in &report.unknown_outcomes {
                println!("unknown outcome: {unknown:?}");
            }
            for problem in &report.problems {
                println!("problem: {problem}");
            }
            if !report.is_intact() {
                bail!(
                    "the audit log does not verify; first bad record: {:?}",
                    report.first_bad_seq()
                );
            }
            println!("intact");
        }
        AuditCommand::Tail { count, follow } => {
            let mut next = 1;
            for receipt in store.receipts_tail(count).await? {
                println!("{} {}", receipt.seq, receipt.body);
                next = receipt.seq + 1;
            }
            if follow {
                loop {
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    for receipt in store.receipts_range(next, 1000).await? {
                        println!("{} {}", receipt.seq, receipt.body);
                        next = receipt.seq + 1;
                    }
                }
            }
        }
        AuditCommand::Query {
            user,
            server,
            tool,
            decision,
            since,
            until,
            json,
            limit,
        } => {
            let filter = ReceiptFilter {
                user,
                server,
                tool,
                decision,
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                limit,
                order: ReceiptOrder::Ascending,
                ..Default::default()
            };
            for record in store.query_receipts(&filter).await? {
                let completion = record.completion.map(|completion| completion.body);
                if json {
                    println!("{}", record.receipt.body);
                    if let Some(completion) = completion {
                        println!("{completion}");
                    }
                } else {
                    println!("{} {}", record.receipt.seq, record.receipt.body);
                    if let Some(completion) = completion {
                        println!("   completed: {completion}");
                    }
                }
            }
        }
        AuditCommand::Export => {
            let mut out = tokio::io::stdout();
            gatehouse_audit::export_receipts(&log, 1, &mut out).await?;
            gatehouse_audit::export_checkpoints(&log, &mut out).await?;
            let _ = log.chain_head().await?;
        }
    }
    Ok(())
}

/// An RFC 3339 time as a store timestamp.
fn parse_time(text: &str) -> Result<gatehouse_store::Timestamp> {
    let time = chrono::DateTime::parse_from_rfc3339(text).with_context(|| {
        format!("`{text}` is not an RFC 3339 time such as 2026-11-22T08:00:00Z")
    })?;
    Ok(gatehouse_store::Timestamp::from_unix_millis(
        time.timestamp_millis(),
    ))
}
