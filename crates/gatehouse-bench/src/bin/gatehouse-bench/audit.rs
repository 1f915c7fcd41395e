//! `audit`: what receipts cost. One anonymous Gatehouse (no `[auth]`, no grants) in front of
//! the demo server over HTTP, started once per variant with the same configuration but for
//! its `[audit]` and `[store]` tables: receipts off (`[audit] enabled = false`, the only way to
//! turn them off, allowed only on a gateway that governs nothing), receipts in the SQLite
//! store beside the configuration (the default), and receipts in PostgreSQL when a server was
//! given. Each variant is loaded at 1 and 32 clients, each cell right after the same cell
//! against the demo server directly, so every figure has a baseline taken seconds before it.
//! Receipts written come from the gateway's own counter (`gatehouse_audit_appended_total` on
//! `/metrics`), read before and after each cell.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use gatehouse_bench::Era;
use gatehouse_bench::report::format_micros;
use serde::Serialize;

use crate::machine::Machine;
use crate::process::tree_cpu_seconds;
use crate::scenarios::{CLIENTS, Cell, DIRECT, LoadShape, Outcome, load_cell};
use crate::table::{Footnotes, added, dash, markdown, ratio};
use crate::targets::{Context, Running, Upstream};

const RECEIPTS_OFF: &str = "Gatehouse, receipts off";
const RECEIPTS_SQLITE: &str = "Gatehouse, receipts in SQLite";
const RECEIPTS_POSTGRES: &str = "Gatehouse, receipts in PostgreSQL";
/// Deadline for reading `/metrics`.
const METRICS_TIMEOUT: Duration = Duration::from_secs(5);

/// What the command line chose.
#[derive(Debug, Clone, Serialize)]
pub struct AuditSettings {
    /// How each load cell runs.
    pub shape: LoadShape,
    /// The era spoken.
    pub era: Era,
    /// The PostgreSQL server for the store, or why there is none.
    #[serde(skip)]
    pub postgres: Result<String, String>,
    /// The PostgreSQL server's process id, whose CPU time (its backends included) is charged
    /// to the calls of the PostgreSQL variant.
    pub postgres_pid: Option<u32>,
}

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// The variant's label.
    pub target: String,
    /// Concurrent clients.
    pub clients: usize,
    /// The result.
    pub outcome: Outcome,
    /// The direct run just before.
    pub baseline: Option<Cell>,
    /// Receipts the gateway wrote during the cell (warm-up included); `None` with receipts
    /// off.
    pub receipts: Option<u64>,
    /// CPU time of the PostgreSQL server per call, in µs, for the PostgreSQL variant.
    pub postgres_cpu_us_per_call: Option<f64>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResults {
    /// When the run started (UTC).
    pub started: String,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: AuditSettings,
    /// The table.
    pub rows: Vec<AuditRow>,
    /// Things worth knowing about this run.
    pub notes: Vec<String>,
}

/// A variant: its label, the configuration that makes it, whether it writes receipts, and
/// the PostgreSQL server it uses, if any.
struct Variant {
    label: &'static str,
    folder: &'static str,
    extra: String,
    receipts: bool,
    postgres_pid: Option<u32>,
}

/// Runs every variant and returns the figures.
pub fn run_audit(
    ctx: &Context,
    settings: &AuditSettings,
    machine: Machine,
    started: String,
) -> Result<AuditResults> {
    let clock = Instant::now();
    let mut results = AuditResults {
        started,
        machine,
        settings: settings.clone(),
        rows: Vec::new(),
        notes: Vec::new(),
    };
    eprintln!("bench: the demo server over HTTP (the baseline)");
    let mut direct = ctx
        .start_demo_http()
        .context("the demo server is the baseline; without it there is nothing to compare")?;
    ctx.probe(&mut direct, settings.era, false)
        .context("the demo server failed its probe")?;

    let mut variants = vec![
        Variant {
            label: RECEIPTS_OFF,
            folder: "audit-off",
            extra: "[audit]\nenabled = false\n".to_owned(),
            receipts: false,
            postgres_pid: None,
        },
        Variant {
            label: RECEIPTS_SQLITE,
            folder: "audit-sqlite",
            extra: String::new(),
            receipts: true,
            postgres_pid: None,
        },
    ];
    match &settings.postgres {
        Ok(url) => variants.push(Variant {
            label: RECEIPTS_POSTGRES,
            folder: "audit-postgres",
            extra: format!("[store]\nurl = {}\n", crate::targets::toml_string(url)),
            receipts: true,
            postgres_pid: settings.postgres_pid,
        }),
        Err(reason) => results.notes.push(format!("PostgreSQL left out: {reason}")),
    }

    for variant in &variants {
        eprintln!("bench: {}", variant.label);
        let started = ctx
            .start_anonymous_with(variant.folder, &Upstream::Http(&direct.url), &variant.extra)
            .and_then(|mut running| {
                ctx.probe(&mut running, settings.era, false)?;
                Ok(running)
            });
        let running = match started {
            Ok(running) => running,
            Err(error) => {
                for clients in CLIENTS {
                    results.rows.push(AuditRow {
                        target: variant.label.to_owned(),
                        clients,
                        outcome: Outcome::Unavailable {
                            reason: format!("{error:#}"),
                        },
                        baseline: None,
                        receipts: None,
                        postgres_cpu_us_per_call: None,
                    });
                }
                continue;
            }
        };
        for clients in CLIENTS {
            let row = measure(ctx, settings, &direct, &running, variant, clients);
            results.rows.push(row);
        }
        results.notes.extend(running.stop());
    }
    results.notes.extend(direct.stop());
    results.notes.push(format!(
        "the whole run took {:.0} s",
        clock.elapsed().as_secs_f64()
    ));
    Ok(results)
}

/// One cell: the direct run, then the variant, with its receipt counter read around it.
fn measure(
    ctx: &Context,
    settings: &AuditSettings,
    direct: &Running,
    running: &Running,
    variant: &Variant,
    clients: usize,
) -> AuditRow {
    let era = settings.era;
    let baseline = load_cell(ctx, &settings.shape, direct, era, clients, DIRECT).ok();
    let before = variant.receipts.then(|| appended_total(&running.url));
    let postgres_before = variant.postgres_pid.map(tree_cpu_seconds);
    let cell = load_cell(ctx, &settings.shape, running, era, clients, variant.label);
    let postgres_after = variant.postgres_pid.map(tree_cpu_seconds);
    let after = variant.receipts.then(|| appended_total(&running.url));
    let receipts = match (before, after) {
        (Some(Ok(before)), Some(Ok(after))) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let postgres_cpu_us_per_call = match (&cell, postgres_before, postgres_after) {
        (Ok(cell), Some(before), Some(after)) => {
            let report = &cell.report;
            let calls = report.calls + report.errors + report.warmup_calls;
            (calls > 0).then(|| (after - before) * 1_000_000.0 / calls as f64)
        }
        _ => None,
    };
    let outcome = match cell {
        Ok(cell) => {
            eprintln!(
                "  {}: {}; {:.0} µs CPU per call{}",
                variant.label,
                cell.report.human_line(),
                cell.cpu_us_per_call,
                receipts.map_or_else(String::new, |n| format!("; {n} receipts written"))
            );
            Outcome::Measured(cell)
        }
        Err(error) => Outcome::Unavailable {
            reason: format!("{error:#}"),
        },
    };
    AuditRow {
        target: variant.label.to_owned(),
        clients,
        outcome,
        baseline,
        receipts,
        postgres_cpu_us_per_call,
    }
}

/// The PostgreSQL server's process id, from the first line of `postmaster.pid` in its data
/// folder.
pub fn postmaster_pid(data: &std::path::Path) -> Option<u32> {
    std::fs::read_to_string(data.join("postmaster.pid"))
        .ok()?
        .lines()
        .next()?
        .trim()
        .parse()
        .ok()
}

/// The gateway's count of receipts written, from `/metrics` on its own address.
fn appended_total(url: &str) -> Result<u64> {
    const SERIES: &str = "gatehouse_audit_appended_total ";
    let authority = url
        .strip_prefix("http://")
        .and_then(|rest| rest.split('/').next())
        .with_context(|| format!("`{url}` is not an http:// URL"))?;
    let mut stream = TcpStream::connect(authority)
        .with_context(|| format!("cannot connect to {authority} for /metrics"))?;
    stream.set_read_timeout(Some(METRICS_TIMEOUT))?;
    stream.set_write_timeout(Some(METRICS_TIMEOUT))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let Some(value) = answer.lines().find_map(|line| line.strip_prefix(SERIES)) else {
        bail!("no {} in /metrics", SERIES.trim());
    };
    value
        .trim()
        .parse()
        .with_context(|| format!("{} is not a count: {value}", SERIES.trim()))
}

/// Renders the report as Markdown.
pub fn render(results: &AuditResults) -> String {
    let mut notes = Footnotes::default();
    let settings = &results.settings;
    let mut out = String::new();
    out.push_str(&format!("Run of {}.\n\n", results.started));
    out.push_str(&format!("Machine: {}.\n\n", results.machine.line()));
    out.push_str(&format!(
        "Each cell: `mcp-load` ({} thread{}) calling the echo tool in {} for {} s (at most {} \
         calls) after a warm-up, each client on its own kept-alive connection, right after the \
         same cell against the demo server directly: × is the ratio to that direct run, + the \
         latency added to it. Every Gatehouse is anonymous (no `[auth]`, no grants) in front of \
         the demo server over HTTP, with the same configuration but for `[audit]` and \
         `[store]`: \"receipts off\" has `[audit] enabled = false`; the others write an intent \
         receipt that is durable before each call is forwarded and a completion after it \
         (fail-closed), in the SQLite file beside the configuration or in PostgreSQL on \
         127.0.0.1. Receipts/s is the gateway's receipt counter (`/metrics`) over the cell, per \
         call made, times calls/s. CPU/call is the gateway's CPU time per call (SQLite runs \
         inside it); PostgreSQL CPU/call is the PostgreSQL server's, its backends included.\n\n",
        settings.shape.threads,
        if settings.shape.threads == 1 { "" } else { "s" },
        settings.era,
        settings.shape.seconds,
        settings.shape.calls,
    ));
    out.push_str(&cells_table(results, &mut notes));
    out.push('\n');
    out.push_str(
        "What receipts cost: each variant with receipts against \"receipts off\" at the same \
         concurrency, both taken as ratios to their own direct runs (throughput) or as latency \
         added to them (p50, p99).\n\n",
    );
    out.push_str(&cost_table(results));
    out.push_str(&notes.render());
    if !results.notes.is_empty() {
        out.push('\n');
        for note in &results.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

fn cells_table(results: &AuditResults, notes: &mut Footnotes) -> String {
    let header = [
        "target",
        "clients",
        "calls/s",
        "direct calls/s",
        "× direct",
        "p50",
        "+p50",
        "p99",
        "+p99",
        "receipts/s",
        "receipts/call",
        "CPU/call",
        "PostgreSQL CPU/call",
        "errors",
    ];
    let mut rows = Vec::new();
    for row in &results.rows {
        let mut cells = vec![row.target.clone(), row.clients.to_string()];
        match &row.outcome {
            Outcome::Measured(cell) => {
                let report = &cell.report;
                let base = row.baseline.as_ref().map(|b| &b.report);
                cells.push(format!("{:.0}", report.calls_per_second));
                cells.push(base.map_or_else(dash, |b| format!("{:.0}", b.calls_per_second)));
                cells.push(
                    base.map_or_else(dash, |b| ratio(report.calls_per_second, b.calls_per_second)),
                );
                cells.push(format_micros(report.latency_us.p50));
                cells.push(
                    base.map_or_else(dash, |b| added(report.latency_us.p50, b.latency_us.p50)),
                );
                cells.push(format_micros(report.latency_us.p99));
                cells.push(
                    base.map_or_else(dash, |b| added(report.latency_us.p99, b.latency_us.p99)),
                );
                match per_call(row) {
                    Some(per_call) => {
                        cells.push(format!("{:.0}", per_call * report.calls_per_second));
                        cells.push(format!("{per_call:.2}"));
                    }
                    None => {
                        cells.push("off".to_owned());
                        cells.push("—".to_owned());
                    }
                }
                cells.push(format_micros(cell.cpu_us_per_call));
                cells.push(
                    row.postgres_cpu_us_per_call
                        .map_or_else(dash, format_micros),
                );
                let mut errors = report.errors.to_string();
                if let Some(first) = &report.first_error {
                    errors.push_str(&notes.mark(first));
                }
                cells.push(errors);
            }
            Outcome::Unsupported { reason } | Outcome::Unavailable { reason } => {
                cells.push(format!("unavailable{}", notes.mark(reason)));
                cells.extend(std::iter::repeat_n(String::new(), header.len() - 3));
            }
        }
        rows.push(cells);
    }
    markdown(&header, &rows)
}

/// Receipts written per call made (warm-up included) in a cell with receipts.
fn per_call(row: &AuditRow) -> Option<f64> {
    let Outcome::Measured(cell) = &row.outcome else {
        return None;
    };
    let receipts = row.receipts?;
    let report = &cell.report;
    let calls = report.calls + report.errors + report.warmup_calls;
    (calls > 0).then(|| receipts as f64 / calls as f64)
}

fn cost_table(results: &AuditResults) -> String {
    let header = [
        "receipts",
        "clients",
        "× direct, on",
        "× direct, off",
        "throughput on / off",
        "+p50 on",
        "+p50 off",
        "p50 added by receipts",
        "+p99 on",
        "+p99 off",
        "p99 added by receipts",
    ];
    let measured = |target: &str, clients: usize| {
        results.rows.iter().find_map(|row| match &row.outcome {
            Outcome::Measured(cell) if row.target == target && row.clients == clients => row
                .baseline
                .as_ref()
                .map(|base| (&cell.report, &base.report)),
            _ => None,
        })
    };
    let mut rows = Vec::new();
    for target in [RECEIPTS_SQLITE, RECEIPTS_POSTGRES] {
        for clients in CLIENTS {
            let (Some((on, on_base)), Some((off, off_base))) =
                (measured(target, clients), measured(RECEIPTS_OFF, clients))
            else {
                continue;
            };
            let on_ratio = on.calls_per_second / on_base.calls_per_second.max(f64::MIN_POSITIVE);
            let off_ratio = off.calls_per_second / off_base.calls_per_second.max(f64::MIN_POSITIVE);
            let on_p50 = on.latency_us.p50 - on_base.latency_us.p50;
            let off_p50 = off.latency_us.p50 - off_base.latency_us.p50;
            let on_p99 = on.latency_us.p99 - on_base.latency_us.p99;
            let off_p99 = off.latency_us.p99 - off_base.latency_us.p99;
            rows.push(vec![
                target
                    .strip_prefix("Gatehouse, receipts in ")
                    .unwrap_or(target)
                    .to_owned(),
                clients.to_string(),
                format!("{on_ratio:.2}×"),
                format!("{off_ratio:.2}×"),
                ratio(on_ratio, off_ratio),
                signed(on_p50),
                signed(off_p50),
                signed(on_p50 - off_p50),
                signed(on_p99),
                signed(off_p99),
                signed(on_p99 - off_p99),
            ]);
        }
    }
    if rows.is_empty() {
        return "No variant with receipts and \"receipts off\" were both measured.\n".to_owned();
    }
    markdown(&header, &rows)
}

/// A latency difference with its sign.
fn signed(micros: f64) -> String {
    added(micros, 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_differences_read_naturally() {
        assert_eq!(signed(1500.0), "+1500 µs");
        assert_eq!(signed(-20.0), "−20 µs");
    }
}
