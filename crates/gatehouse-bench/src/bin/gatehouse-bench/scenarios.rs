//! `all`: every target in turn, each load cell paired with a run of the direct baseline
//! just before it, so a ratio compares two measurements taken seconds apart on a machine whose
//! other load comes and goes.
//!
//! For each target: start it; probe each era with one list and one call; read its idle
//! memory; open the idle 2025-11-25 sessions and read its memory again; then, for each era it
//! speaks and each concurrency, run `mcp-load` against the direct baseline and against the
//! target; stop it by pid.

use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use gatehouse_bench::client::ClientOptions;
use gatehouse_bench::{Era, LoadReport, open_sessions};
use serde::Serialize;

use crate::machine::Machine;
use crate::process::{Launch, Spawned, TreeMemory};
use crate::targets::{Context, Running, Upstream};

/// The baseline every ratio is taken against.
pub const DIRECT: &str = "direct → demo (HTTP)";
/// The generator's own ceiling.
pub const CANNED: &str = "mcp-load → canned responder (generator ceiling)";
const GATEHOUSE_HTTP: &str = "Gatehouse, anonymous, audit → demo (HTTP)";
const GATEHOUSE_STDIO: &str = "Gatehouse, anonymous, audit → demo (stdio)";
/// Gatehouse with the governance path on: API key, policy decision, audit receipts.
pub const GOVERNED_HTTP: &str = "Gatehouse + API key, policy, audit → demo (HTTP)";
/// The same in front of the stdio demo server.
pub const GOVERNED_STDIO: &str = "Gatehouse + API key, policy, audit → demo (stdio)";

/// Concurrency levels every target is loaded at.
pub const CLIENTS: [usize; 2] = [1, 32];
/// Sessions are opened over this many connections at once.
const SESSION_CONCURRENCY: usize = 8;
/// Longest wait for a target's processes to settle after sessions are opened.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the command line chose.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Length of each measured load, in seconds.
    pub seconds: f64,
    /// Calls per measured load, at most.
    pub calls: u64,
    /// Idle 2025-11-25 sessions opened for the memory figures.
    pub sessions: usize,
    /// Sessions opened on supergateway, which starts one process per session.
    pub supergateway_sessions: usize,
    /// Worker threads of `mcp-load`.
    pub threads: usize,
    /// Leave out the other gateways.
    pub skip_peers: bool,
}

impl Settings {
    /// How each load cell runs.
    pub fn shape(&self) -> LoadShape {
        LoadShape {
            seconds: self.seconds,
            calls: self.calls,
            threads: self.threads,
        }
    }
}

/// How one `mcp-load` run is shaped.
#[derive(Debug, Clone, Serialize)]
pub struct LoadShape {
    /// Length of the measured load, in seconds.
    pub seconds: f64,
    /// Calls, at most.
    pub calls: u64,
    /// Worker threads of `mcp-load`.
    pub threads: usize,
}

/// The figures of one load cell.
#[derive(Debug, Clone, Serialize)]
pub struct Cell {
    /// What `mcp-load` reported.
    pub report: LoadReport,
    /// CPU time the target's processes used per call (warm-up included), in µs.
    pub cpu_us_per_call: f64,
}

/// How one load cell went.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Figures.
    Measured(Cell),
    /// The target does not speak this era.
    Unsupported {
        /// What it answered.
        reason: String,
    },
    /// The target could not be started or loaded.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// One line of the calls table.
#[derive(Debug, Clone, Serialize)]
pub struct LoadRow {
    /// The target's label.
    pub target: String,
    /// The era spoken.
    pub era: Era,
    /// Concurrent clients.
    pub clients: usize,
    /// The result.
    pub outcome: Outcome,
    /// The direct baseline for the same era and concurrency, run just before.
    pub baseline: Option<Cell>,
}

/// Memory figures of one target, in KiB.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryFigures {
    /// The target's own processes, idle after one list and one call.
    pub idle_own_kib: u64,
    /// Their descendants (stdio servers, workers), idle.
    pub idle_children_kib: u64,
    /// Processes, idle (the target's own and descendants).
    pub idle_processes: usize,
    /// Sessions asked for.
    pub sessions: usize,
    /// Sessions opened.
    pub sessions_opened: usize,
    /// The first failure to open a session.
    pub session_error: Option<String>,

    /// The target's own processes with the sessions open.
    pub sessions_own_kib: u64,
    /// Their descendants with the sessions open.
    pub sessions_children_kib: u64,
    /// Processes with the sessions open.
    pub sessions_processes: usize,
    /// Growth per opened session over the idle figure.
    pub kib_per_session: f64,
}

/// One line of the memory table.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryRow {
    /// The target's label.
    pub target: String,
    /// Figures, or why there are none.
    pub figures: Result<MemoryFigures, String>,
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Results {
    /// When the run started (UTC).
    pub started: String,
    /// The machine.
    pub machine: Machine,
    /// The settings.
    pub settings: Settings,
    /// The calls table.
    pub load: Vec<LoadRow>,
    /// The memory table.
    pub memory: Vec<MemoryRow>,
    /// Things worth knowing about this run (processes left behind, versions).
    pub notes: Vec<String>,
}

impl Results {
    fn unavailable(&mut self, target: &str, eras: &[Era], reason: &str, memory: bool) {
        for &era in eras {
            for clients in CLIENTS {
                self.load.push(LoadRow {
                    target: target.to_owned(),
                    era,
                    clients,
                    outcome: Outcome::Unavailable {
                        reason: reason.to_owned(),
                    },
                    baseline: None,
                });
            }
        }
        if memory {
            self.memory.push(MemoryRow {
                target: target.to_owned(),
                figures: Err(reason.to_owned()),
            });
        }
    }
}

/// A target that is up and probed, with its idle memory.
struct Prepared {
    running: Running,
    eras: Vec<(Era, Result<(), String>)>,
    idle: TreeMemory,
}

impl Prepared {
    fn speaks(&self, wanted: Era) -> bool {
        self.eras
            .iter()
            .any(|(era, probed)| *era == wanted && probed.is_ok())
    }
}

/// Runs every scenario and returns the figures.
pub fn run_all(
    ctx: &Context,
    settings: &Settings,
    machine: Machine,
    started: String,
) -> Result<Results> {
    let mut results = Results {
        started,
        machine,
        settings: settings.clone(),
        load: Vec::new(),
        memory: Vec::new(),
        notes: Vec::new(),
    };
    let clock = Instant::now();

    step("the demo server over HTTP (the baseline)");
    let direct = ctx
        .start_demo_http()
        .context("the demo server is the baseline; without it there is nothing to compare")?;
    let direct = prepare(ctx, direct, false, &mut results, DIRECT)
        .context("the demo server failed its probe")?;
    run_loads(ctx, settings, None, &direct, DIRECT, &mut results);

    step("the demo server's memory (a fresh instance)");
    let fresh = ctx.start_demo_http();
    measure_memory_only(ctx, fresh, settings.sessions, DIRECT, &mut results);

    step("the canned responder (the generator's ceiling)");
    match ctx.start_canned() {
        Ok(running) => {
            if let Some(prepared) = prepare(ctx, running, false, &mut results, CANNED) {
                run_loads(
                    ctx,
                    settings,
                    Some(&direct),
                    &prepared,
                    CANNED,
                    &mut results,
                );
                results.notes.extend(prepared.running.stop());
            }
        }
        Err(error) => results.unavailable(CANNED, &Era::ALL, &format!("{error:#}"), false),
    }

    step("Gatehouse → demo over HTTP");
    let started = ctx.start_gatehouse("gatehouse-http", &Upstream::Http(&direct.running.url), 1);
    let target = Target {
        label: GATEHOUSE_HTTP,
        find_tool: false,
        sessions: settings.sessions,
    };
    measure(ctx, settings, &direct, started, &target, &mut results);

    step("Gatehouse → demo over stdio");
    let started = ctx.start_gatehouse("gatehouse-stdio", &Upstream::Stdio, 1);
    let target = Target {
        label: GATEHOUSE_STDIO,
        find_tool: false,
        sessions: settings.sessions,
    };
    measure(ctx, settings, &direct, started, &target, &mut results);

    step("Gatehouse + API key, policy, audit → demo over HTTP");
    let started = ctx.start_governed("governed-http", &Upstream::Http(&direct.running.url));
    let target = Target {
        label: GOVERNED_HTTP,
        find_tool: false,
        sessions: settings.sessions,
    };
    measure(ctx, settings, &direct, started, &target, &mut results);

    step("Gatehouse + API key, policy, audit → demo over stdio");
    let started = ctx.start_governed("governed-stdio", &Upstream::Stdio);
    let target = Target {
        label: GOVERNED_STDIO,
        find_tool: false,
        sessions: settings.sessions,
    };
    measure(ctx, settings, &direct, started, &target, &mut results);

    if settings.skip_peers {
        results
            .notes
            .push("other gateways left out (--skip-peers)".to_owned());
    } else {
        let label = format!("mcp-proxy {} → demo (stdio)", ctx.peer_version("mcp-proxy"));
        step(&label);
        let started = ctx.start_mcp_proxy();
        let target = Target {
            label: &label,
            find_tool: true,
            sessions: settings.sessions,
        };
        measure(ctx, settings, &direct, started, &target, &mut results);

        let label = format!(
            "supergateway {} --stateful → demo (stdio)",
            ctx.peer_version("supergateway")
        );
        step(&label);
        let started = ctx.start_supergateway();
        let target = Target {
            label: &label,
            find_tool: true,
            sessions: settings.supergateway_sessions,
        };
        measure(ctx, settings, &direct, started, &target, &mut results);

        let label = format!(
            "ContextForge {} → translate → demo (stdio)",
            ctx.peer_version("contextforge")
        );
        step(&label);
        let started = ctx.start_contextforge();
        let target = Target {
            label: &label,
            find_tool: true,
            sessions: settings.sessions,
        };
        measure(ctx, settings, &direct, started, &target, &mut results);
    }

    results.notes.extend(direct.running.stop());
    results.notes.push(format!(
        "the whole run took {:.0} s",
        clock.elapsed().as_secs_f64()
    ));
    Ok(results)
}

/// A target's label and how to treat it.
struct Target<'a> {
    label: &'a str,
    /// Whether its name for the echo tool must be found by listing.
    find_tool: bool,
    /// Idle sessions to open for the memory figures.
    sessions: usize,
}

fn step(what: &str) {
    eprintln!("bench: {what}");
}

/// Probes one target, measures its memory, loads it (each cell after a baseline cell), and
/// stops it.
fn measure(
    ctx: &Context,
    settings: &Settings,
    direct: &Prepared,
    started: Result<Running>,
    target: &Target<'_>,
    results: &mut Results,
) {
    let running = match started {
        Ok(running) => running,
        Err(error) => {
            results.unavailable(target.label, &Era::ALL, &format!("{error:#}"), true);
            return;
        }
    };
    let Some(prepared) = prepare(ctx, running, target.find_tool, results, target.label) else {
        return;
    };
    let figures = sessions_memory(ctx, &prepared, target.sessions);
    results.memory.push(MemoryRow {
        target: target.label.to_owned(),
        figures,
    });
    run_loads(
        ctx,
        settings,
        Some(direct),
        &prepared,
        target.label,
        results,
    );
    results.notes.extend(prepared.running.stop());
}

/// Memory figures of a target that is not loaded.
fn measure_memory_only(
    ctx: &Context,
    started: Result<Running>,
    sessions: usize,
    label: &str,
    results: &mut Results,
) {
    let figures = match started {
        Err(error) => Err(format!("{error:#}")),
        Ok(running) => match prepare(ctx, running, false, results, label) {
            None => Err("the probe failed".to_owned()),
            Some(prepared) => {
                let figures = sessions_memory(ctx, &prepared, sessions);
                results.notes.extend(prepared.running.stop());
                figures
            }
        },
    };
    results.memory.push(MemoryRow {
        target: label.to_owned(),
        figures,
    });
}

/// Probes both eras and reads the idle memory; `None` (with rows saying why) if the target
/// answers in neither era.
fn prepare(
    ctx: &Context,
    mut running: Running,
    find_tool: bool,
    results: &mut Results,
    label: &str,
) -> Option<Prepared> {
    let mut eras = Vec::new();
    for era in Era::ALL {
        let probed = ctx
            .probe(&mut running, era, find_tool)
            .map_err(|error| format!("{error:#}"));
        eras.push((era, probed));
    }
    if eras.iter().all(|(_, probed)| probed.is_err()) {
        let reason = eras
            .iter()
            .map(|(era, probed)| {
                format!(
                    "{era}: {}",
                    probed.as_ref().err().map_or("", String::as_str)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        results.unavailable(
            label,
            &Era::ALL,
            &format!("no era answered: {reason}"),
            label != CANNED,
        );
        results.notes.extend(running.stop());
        return None;
    }
    // Let the start-up work (a spawned stdio server, a first catalog) finish before reading.
    std::thread::sleep(Duration::from_millis(500));
    let idle = running.memory();
    Some(Prepared {
        running,
        eras,
        idle,
    })
}

/// Loads `prepared` in every era it speaks at every concurrency; with a baseline, each cell
/// is preceded by the same cell against it.
fn run_loads(
    ctx: &Context,
    settings: &Settings,
    baseline: Option<&Prepared>,
    prepared: &Prepared,
    label: &str,
    results: &mut Results,
) {
    for (era, probed) in &prepared.eras {
        for clients in CLIENTS {
            let mut paired = None;
            let outcome = match probed {
                Err(reason) => Outcome::Unsupported {
                    reason: reason.clone(),
                },
                Ok(()) => {
                    if let Some(direct) = baseline.filter(|direct| direct.speaks(*era)) {
                        paired = load_cell(
                            ctx,
                            &settings.shape(),
                            &direct.running,
                            *era,
                            clients,
                            DIRECT,
                        )
                        .ok();
                    }
                    match load_cell(
                        ctx,
                        &settings.shape(),
                        &prepared.running,
                        *era,
                        clients,
                        label,
                    ) {
                        Ok(cell) => Outcome::Measured(cell),
                        Err(error) => Outcome::Unavailable {
                            reason: format!("{error:#}"),
                        },
                    }
                }
            };
            if let Outcome::Measured(cell) = &outcome {
                let against = paired.as_ref().map_or_else(String::new, |b| {
                    format!(
                        " (direct just before: {:.0} calls/s)",
                        b.report.calls_per_second
                    )
                });
                eprintln!(
                    "  {label}: {}; {:.0} µs CPU per call{against}",
                    cell.report.human_line(),
                    cell.cpu_us_per_call
                );
            }
            results.load.push(LoadRow {
                target: label.to_owned(),
                era: *era,
                clients,
                outcome,
                baseline: paired,
            });
        }
    }
}

/// Runs `mcp-load` once, in its own process, reads its JSON line, and charges the CPU time
/// the target used meanwhile to the calls made.
pub fn load_cell(
    ctx: &Context,
    settings: &LoadShape,
    running: &Running,
    era: Era,
    clients: usize,
    label: &str,
) -> Result<Cell> {
    let mut args = vec![
        "--url".to_owned(),
        running.url.clone(),
        "--era".to_owned(),
        era.to_string(),
        "--tool".to_owned(),
        running.tool.clone(),
        "--clients".to_owned(),
        clients.to_string(),
        "--duration".to_owned(),
        settings.seconds.to_string(),
        "--calls".to_owned(),
        settings.calls.to_string(),
        "--threads".to_owned(),
        settings.threads.to_string(),
    ];
    for (name, value) in &running.headers {
        args.push("--header".to_owned());
        args.push(format!("{name}: {value}"));
    }
    let name = format!("load-{}-{era}-c{clients}", slug(label));
    let cpu_before = running.cpu_seconds();
    let mut process = Spawned::start(
        Launch {
            name: &name,
            program: &ctx.mcp_load,
            args,
            env: Vec::new(),
            cwd: None,
        },
        &ctx.logs,
    )?;
    // Warm-up, client starts and the last calls in flight all fit in this allowance.
    let allowance = Duration::from_secs_f64(settings.seconds) + Duration::from_secs(60);
    let line = process.wait_for_line(|line| line.starts_with('{'), allowance)?;
    let _ = process.wait_exit(Duration::from_secs(10));
    let cpu = running.cpu_seconds() - cpu_before;
    let report: LoadReport = serde_json::from_str(&line)?;
    let calls = report.calls + report.errors + report.warmup_calls;
    Ok(Cell {
        cpu_us_per_call: if calls > 0 {
            cpu * 1_000_000.0 / calls as f64
        } else {
            0.0
        },
        report,
    })
}

/// Opens idle sessions and reads the memory again once the processes have settled.
fn sessions_memory(
    ctx: &Context,
    prepared: &Prepared,
    sessions: usize,
) -> Result<MemoryFigures, String> {
    if !prepared.speaks(Era::Legacy) {
        return Err("does not open 2025-11-25 sessions".to_owned());
    }
    let endpoint = prepared.running.endpoint().map_err(|e| format!("{e:#}"))?;
    let report = ctx.runtime.block_on(open_sessions(
        endpoint,
        sessions,
        SESSION_CONCURRENCY,
        ClientOptions::default(),
    ));
    let with_sessions = settle(&prepared.running);
    let idle = &prepared.idle;
    let growth = with_sessions.total_kib().saturating_sub(idle.total_kib());
    Ok(MemoryFigures {
        idle_own_kib: idle.own_kib,
        idle_children_kib: idle.descendants_kib,
        idle_processes: prepared.running.processes.len() + idle.descendants.len(),
        sessions,
        sessions_opened: report.opened,
        session_error: report.first_error,
        sessions_own_kib: with_sessions.own_kib,
        sessions_children_kib: with_sessions.descendants_kib,
        sessions_processes: prepared.running.processes.len() + with_sessions.descendants.len(),
        kib_per_session: if report.opened > 0 {
            growth as f64 / report.opened as f64
        } else {
            0.0
        },
    })
}

/// Waits until the process count has not changed for a second (children started per session
/// come up after the reply), then reads the memory.
fn settle(running: &Running) -> TreeMemory {
    let deadline = Instant::now() + SETTLE_TIMEOUT;
    let mut last = running.memory();
    let mut stable_since = Instant::now();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(250));
        let now = running.memory();
        if now.descendants.len() != last.descendants.len() {
            stable_since = Instant::now();
        }
        last = now;
        if stable_since.elapsed() >= Duration::from_secs(1) {
            break;
        }
    }
    last
}

fn slug(label: &str) -> String {
    let mut slug = String::new();
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c.to_ascii_lowercase());
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    slug.trim_matches('-').chars().take(40).collect()
}
