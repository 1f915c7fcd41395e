//! `gatehouse-bench`: the runner behind `scripts/bench`. `all` measures the direct baseline,
//! Gatehouse and the other gateways side by side in one invocation and prints one Markdown
//! report; `backends` measures backends on demand; `audit` measures what audit receipts cost,
//! in SQLite and in PostgreSQL; `canned` serves the canned responder that `all` uses to
//! measure the load generator's own ceiling.
//!
//! Everything it starts listens on 127.0.0.1 only, on a port the system picked, and is ended
//! by its process id before the runner exits.

#![forbid(unsafe_code)]

mod audit;
mod backends;
mod machine;
mod peers;
mod process;
mod scenarios;
mod table;
mod targets;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::{Args, Parser, Subcommand};

use crate::backends::BackendsSettings;
use crate::machine::Machine;
use crate::scenarios::Settings;
use crate::targets::Context;

#[derive(Parser)]
#[command(
    name = "gatehouse-bench",
    version,
    about = "Gatehouse benchmarks, side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Every scenario: direct, Gatehouse over HTTP and stdio, the other gateways; calls and memory.
    All(AllArgs),
    /// Backends on demand: many stdio servers, a few sessions; processes, memory, cold calls.
    Backends(BackendsArgs),
    /// Audit receipts: receipts written per second in SQLite and PostgreSQL, and the latency
    /// and throughput of a gateway with receipts against one without.
    Audit(AuditArgs),
    /// Serve the canned responder on 127.0.0.1 and print its URL.
    #[command(hide = true)]
    Canned,
}

#[derive(Args)]
struct Paths {
    /// The `gatehouse` binary (a release build).
    #[arg(long)]
    gatehouse: PathBuf,
    /// The `mcp-load` binary (a release build).
    #[arg(long)]
    mcp_load: PathBuf,
    /// Where `scripts/bench install` put the other gateways; logs go to `<peers>/logs`.
    #[arg(long, default_value = ".peers/bench")]
    peers: PathBuf,
}

#[derive(Args)]
struct AllArgs {
    #[command(flatten)]
    paths: Paths,
    /// Length of each measured load, in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Calls per measured load, at most.
    #[arg(long, default_value_t = 2_000_000)]
    calls: u64,
    /// Idle 2025-11-25 sessions opened for the memory figures.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Sessions opened on supergateway, which starts one process per session.
    #[arg(long, default_value_t = 100)]
    supergateway_sessions: usize,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Leave out the other gateways.
    #[arg(long)]
    skip_peers: bool,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct AuditArgs {
    #[command(flatten)]
    paths: Paths,
    /// Length of each measured load, in seconds.
    #[arg(long, default_value_t = 4.0)]
    seconds: f64,
    /// Calls per measured load, at most.
    #[arg(long, default_value_t = 2_000_000)]
    calls: u64,
    /// Worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// The protocol era spoken.
    #[arg(long, default_value = "2026-07-28")]
    era: gatehouse_bench::Era,
    /// A PostgreSQL server for the store (`postgres://...`); without it the PostgreSQL rows
    /// are left out.
    #[arg(long, env = "GATEHOUSE_BENCH_POSTGRES_URL", hide_env_values = true)]
    postgres: Option<String>,
    /// The PostgreSQL server's data folder, whose `postmaster.pid` names the process whose
    /// CPU time is measured.
    #[arg(long)]
    postgres_data: Option<PathBuf>,
    /// Why there is no PostgreSQL server, for the report.
    #[arg(long, default_value = "no server given (--postgres)")]
    postgres_missing: String,
    /// Also write every figure as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct BackendsArgs {
    #[command(flatten)]
    paths: Paths,
    /// Stdio servers configured.
    #[arg(long, default_value_t = 10)]
    servers: usize,
    /// Client sessions opened.
    #[arg(long, default_value_t = 3)]
    sessions: usize,
    /// Warm calls per session and server after the first.
    #[arg(long, default_value_t = 50)]
    warm_calls: usize,
    /// Idle time before the last process count, in seconds.
    #[arg(long, default_value_t = 3.0)]
    idle_seconds: f64,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gatehouse-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Canned => serve_canned(),
        Command::All(args) => {
            let ctx = context(&args.paths)?;
            let settings = Settings {
                seconds: args.seconds,
                calls: args.calls,
                sessions: args.sessions,
                supergateway_sessions: args.supergateway_sessions,
                threads: args.threads,
                skip_peers: args.skip_peers,
            };
            let results = scenarios::run_all(&ctx, &settings, Machine::describe(), now())?;
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&results)?;
                std::fs::write(path, json)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("{}", table::render(&results));
            Ok(())
        }
        Command::Audit(args) => {
            let ctx = context(&args.paths)?;
            let settings = audit::AuditSettings {
                shape: scenarios::LoadShape {
                    seconds: args.seconds,
                    calls: args.calls,
                    threads: args.threads,
                },
                era: args.era,
                postgres: args.postgres.ok_or(args.postgres_missing),
                postgres_pid: args
                    .postgres_data
                    .as_deref()
                    .and_then(audit::postmaster_pid),
            };
            let results = audit::run_audit(&ctx, &settings, Machine::describe(), now())?;
            if let Some(path) = &args.json {
                let json = serde_json::to_string_pretty(&results)?;
                std::fs::write(path, json)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("{}", audit::render(&results));
            Ok(())
        }
        Command::Backends(args) => {
            let ctx = context(&args.paths)?;
            let settings = BackendsSettings {
                servers: args.servers,
                sessions: args.sessions,
                warm_calls: args.warm_calls,
                idle_seconds: args.idle_seconds,
            };
            println!(
                "Run of {}.\n\nMachine: {}.\n",
                now(),
                Machine::describe().line()
            );
            println!("{}", backends::run_backends(&ctx, &settings)?);
            Ok(())
        }
    }
}

fn context(paths: &Paths) -> Result<Context> {
    let logs = paths.peers.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("cannot create {}", logs.display()))?;
    let absolute = |path: &PathBuf| std::path::absolute(path).unwrap_or_else(|_| path.clone());
    for (path, what) in [
        (&paths.gatehouse, "--gatehouse"),
        (&paths.mcp_load, "--mcp-load"),
    ] {
        anyhow::ensure!(
            path.exists(),
            "{what} {} does not exist; build it first",
            path.display()
        );
    }
    Ok(Context {
        gatehouse: absolute(&paths.gatehouse),
        mcp_load: absolute(&paths.mcp_load),
        peers: absolute(&paths.peers),
        logs: absolute(&logs),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?,
    })
}

/// The current time in UTC, as `date` prints it.
fn now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| "an unknown date".to_owned())
}

fn serve_canned() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("listening on http://{}/mcp", listener.local_addr()?);
        std::io::stdout().flush()?;
        gatehouse_bench::canned::serve_canned(listener).await?;
        Ok(())
    })
}
