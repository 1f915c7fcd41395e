//! `gatehouse audit`: read, export, verify and prune the receipts. Verification walks the whole
//! chain and checks every signed checkpoint; it names the first bad record. Pruning deletes old
//! receipts and leaves a signed anchor that the rest of the chain verifies from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use gatehouse_audit::{PruneOutcome, ReceiptLog, Timestamp, TrustedKeys};
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
    /// Every receipt and checkpoint as JSON lines; after pruning, the first checkpoint is the
    /// signed anchor the receipts start from.
    Export,
    /// Delete the receipts recorded before a time, leaving a signed anchor so the rest still
    /// verifies. Calls that may still be running, and everything after them, are kept.
    Prune {
        /// An RFC 3339 time such as 2026-01-01T00:00:00Z, or an age in days such as `90d`
        /// (receipts older than 90 days).
        #[arg(long)]
        before: String,
    },
}

pub(crate) async fn run(path: &Path, command: AuditCommand) -> Result<()> {
    let config = crate::load(path)?;
    let store = crate::people::open_store(path, &config).await?;
    let log = StoreLog(store.clone());
    match command {
        AuditCommand::Verify { checkpoints } => {
            let signer = gatehouse_gateway::audit::load_signer(&crate::config_folder(path))
                .map_err(anyhow::Error::msg)?;
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
            if let Some(anchor_seq) = report.anchor_seq {
                println!(
                    "anchor: receipts up to {anchor_seq} were pruned; the chain starts from the signed anchor there"
                );
            }
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
        AuditCommand::Prune { before } => {
            let before = parse_cutoff(&before)?;
            let signer = gatehouse_gateway::audit::load_signer(&crate::config_folder(path))
                .map_err(anyhow::Error::msg)?;
            let longest_call = gatehouse_gateway::retention::longest_call(&config.gateway);
            let outcome = gatehouse_gateway::retention::prune_receipts_before(
                &store,
                &signer,
                before,
                longest_call,
            )
            .await
            .context("receipts were not pruned")?;
            print_pruned(&outcome, before);
        }
    }
    Ok(())
}

/// What pruning deleted, the anchor it left, and what it kept back.
fn print_pruned(outcome: &PruneOutcome, before: Timestamp) {
    match &outcome.pruned {
        Some(summary) => {
            let anchor = &summary.anchor;
            println!(
                "deleted {} receipts, through receipt {}",
                summary.deleted, anchor.seq
            );
            println!(
                "anchor: receipt {} hash {} signed by key {} at {}",
                anchor.seq,
                anchor.head_hash,
                anchor.key_id,
                show_time(anchor.created_at)
            );
            for unknown in &summary.pruned_unknown_outcomes {
                println!(
                    "pruned a call whose outcome is unknown: intent receipt {}",
                    unknown.intent_seq
                );
            }
        }
        None => println!(
            "nothing to prune: no receipt at the start of the log was recorded before {}",
            show_time(before)
        ),
    }
    if let Some(intent_seq) = outcome.held_back_by {
        println!(
            "kept receipt {intent_seq} and everything after it: it is the intent of a call that may still be running"
        );
    }
}

/// `--before`: an RFC 3339 time, or an age in days (`90d`) counted back from now.
fn parse_cutoff(text: &str) -> Result<Timestamp> {
    let unreadable = || {
        format!(
            "--before `{text}` is neither an RFC 3339 time such as 2026-01-01T00:00:00Z nor an age in days such as 90d"
        )
    };
    if let Some(days) = text.strip_suffix('d') {
        let days: u64 = days.parse().with_context(unreadable)?;
        let age = std::time::Duration::from_secs(days.saturating_mul(86_400));
        return Ok(Timestamp::now().saturating_sub(age));
    }
    let time = chrono::DateTime::parse_from_rfc3339(text).with_context(unreadable)?;
    Ok(Timestamp::from_unix_millis(time.timestamp_millis()))
}

/// A time as RFC 3339, in UTC.
fn show_time(time: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(time.as_unix_millis()).map_or_else(
        || format!("{} ms after the Unix epoch", time.as_unix_millis()),
        |time| time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
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
