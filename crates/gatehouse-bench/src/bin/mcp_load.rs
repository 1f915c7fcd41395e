//! `mcp-load`: N concurrent MCP clients calling one tool in a loop over Streamable HTTP, in
//! either protocol era, bounded by a call count and a duration. Prints one line of JSON on
//! stdout and one line for people on stderr; exits 1 if any call failed.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use gatehouse_bench::client::{Accept, ClientOptions};
use gatehouse_bench::{Endpoint, Era, LoadSpec, run_load};

#[derive(Parser)]
#[command(
    name = "mcp-load",
    version,
    about = "Load an MCP endpoint with tool calls"
)]
struct Cli {
    /// The MCP endpoint, for example http://127.0.0.1:8080/mcp.
    #[arg(long)]
    url: String,
    /// A header sent with every request, as `Name: value` (repeatable).
    #[arg(long = "header", short = 'H', value_parser = parse_header)]
    headers: Vec<(String, String)>,
    /// Protocol era: 2025-11-25 (sessions) or 2026-07-28 (stateless).
    #[arg(long, default_value = "2025-11-25")]
    era: Era,
    /// The tool to call.
    #[arg(long, default_value = "echo")]
    tool: String,
    /// The call's arguments, as JSON.
    #[arg(long, default_value = r#"{"text":"hello"}"#)]
    arguments: String,
    /// Concurrent clients, each with its own connection (and session).
    #[arg(long, short = 'c', default_value_t = 1)]
    clients: usize,
    /// Calls in the measured phase, at most.
    #[arg(long, default_value_t = 1_000_000)]
    calls: u64,
    /// Length of the measured phase in seconds, at most.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unrecorded calls each client makes first.
    #[arg(long, default_value_t = 20)]
    warmup: u64,
    /// Time each client spends on warm-up calls in seconds, at most.
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Deadline for one request in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Worker threads of the generator (it shares the machine with what it measures).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// `both` sends `Accept: application/json, text/event-stream` as clients must;
    /// `json` sends `application/json` only, to see what SSE answers cost.
    #[arg(long, default_value = "both")]
    accept: Accept,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(error) => {
            eprintln!("mcp-load: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    let arguments = serde_json::from_str(&cli.arguments).context("--arguments is not JSON")?;
    let spec = LoadSpec {
        endpoint: Endpoint::with_headers(&cli.url, &cli.headers)?,
        era: cli.era,
        tool: cli.tool,
        arguments,
        clients: cli.clients.max(1),
        max_calls: cli.calls,
        duration: seconds(cli.duration, "--duration")?,
        warmup_calls: cli.warmup,
        warmup_duration: seconds(cli.warmup_seconds, "--warmup-seconds")?,
        options: ClientOptions {
            timeout: seconds(cli.timeout, "--timeout")?,
            accept: cli.accept,
        },
    };
    let runtime = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    let mut report = runtime.block_on(run_load(&spec))?;
    let calls = report.calls + report.errors + report.warmup_calls;
    if let Some(cpu) = own_cpu_seconds()
        && calls > 0
    {
        report.client_cpu_us_per_call = Some(cpu * 1_000_000.0 / calls as f64);
    }
    println!("{}", report.json_line());
    eprintln!("{}", report.human_line());
    Ok(report.errors == 0)
}

fn seconds(value: f64, flag: &str) -> Result<Duration> {
    Duration::try_from_secs_f64(value).with_context(|| format!("{flag} must be a positive number"))
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not `Name: value`"))?;
    Ok((name.trim().to_owned(), value.trim().to_owned()))
}

/// CPU time this process has used, in seconds, from `/proc/self/stat` (Linux reports it in
/// ticks of 1/100 s).
fn own_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // After the command name: state is field 3, utime 14, stime 15.
    let ticks: u64 = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|field| field.parse::<u64>().ok())
        .sum();
    Some(ticks as f64 / 100.0)
}
