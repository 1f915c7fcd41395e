//! `backends`: what backends on demand cost and save. One Gatehouse with many stdio demo
//! servers; a few 2025-11-25 sessions, each listing tools and calling echo on two servers
//! (overlapping, so a shared process is visible); the stdio processes alive at each moment,
//! the peak memory of the gateway and its children (sampled in the background), and the
//! latency of a server's first call against its warm calls. A second, fresh gateway shows the
//! cost of a call that reaches a server before any list has.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use gatehouse_bench::client::ClientOptions;
use gatehouse_bench::report::format_micros;
use gatehouse_bench::{Era, McpClient, PreparedCall};
use serde_json::json;

use crate::process::process_tree;
use crate::targets::{Context, Running, Upstream};

/// How often the memory sampler looks.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

/// What the command line chose.
pub struct BackendsSettings {
    /// Stdio servers configured.
    pub servers: usize,
    /// Client sessions opened.
    pub sessions: usize,
    /// Warm calls per session and server after the first.
    pub warm_calls: usize,
    /// Idle time before the last process count, in seconds.
    pub idle_seconds: f64,
}

#[derive(Default, Clone, Copy)]
struct Peak {
    own_kib: u64,
    children_kib: u64,
    total_kib: u64,
    processes: usize,
}

struct ServerCalls {
    server: String,
    sessions: Vec<usize>,
    first_call_us: f64,
    warm_us: Vec<f64>,
}

/// Runs the bench and returns its report as Markdown.
pub fn run_backends(ctx: &Context, settings: &BackendsSettings) -> Result<String> {
    let servers = settings.servers.max(2);
    let running = ctx.start_gatehouse("backends", &Upstream::Stdio, servers)?;
    let gateway_pid = running
        .processes
        .first()
        .map(|p| p.pid())
        .context("no gateway process")?;
    std::thread::sleep(Duration::from_millis(300));
    let at_serve = process_tree(gateway_pid).descendants.len();

    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop_sampling);
        std::thread::spawn(move || sample_peak(gateway_pid, &stop))
    };

    let mut moments = vec![("after `gatehouse serve`".to_owned(), at_serve)];
    let mut list_latencies = Vec::new();
    let mut calls: Vec<ServerCalls> = Vec::new();
    let mut clients = Vec::new();
    let endpoint = running.endpoint()?;
    for session in 0..settings.sessions {
        let mut client = McpClient::new(endpoint.clone(), Era::Legacy, ClientOptions::default());
        ctx.runtime.block_on(client.initialize())?;
        let started = Instant::now();
        let tools = ctx.runtime.block_on(client.list_tools())?;
        list_latencies.push((session + 1, micros(started), tools.len()));
        moments.push((
            format!("after session {}'s tools/list", session + 1),
            process_tree(gateway_pid).descendants.len(),
        ));
        // Session k uses servers k+1 and k+2: neighbours share one server.
        for index in [session % servers, (session + 1) % servers] {
            let server = format!("s{:02}", index + 1);
            let call = PreparedCall::new(
                Era::Legacy,
                &format!("{server}__echo"),
                &json!({ "text": "hi" }),
            )?;
            let started = Instant::now();
            ctx.runtime.block_on(client.call(&call))?;
            let first = micros(started);
            let mut warm = Vec::with_capacity(settings.warm_calls);
            for _ in 0..settings.warm_calls {
                let started = Instant::now();
                ctx.runtime.block_on(client.call(&call))?;
                warm.push(micros(started));
            }
            match calls.iter_mut().find(|c| c.server == server) {
                Some(existing) => {
                    existing.sessions.push(session + 1);
                    existing.warm_us.extend(warm);
                }
                None => calls.push(ServerCalls {
                    server,
                    sessions: vec![session + 1],
                    first_call_us: first,
                    warm_us: warm,
                }),
            }
        }
        moments.push((
            format!("after session {}'s calls", session + 1),
            process_tree(gateway_pid).descendants.len(),
        ));
        clients.push(client);
    }
    std::thread::sleep(Duration::from_secs_f64(settings.idle_seconds));
    moments.push((
        format!(
            "after {} s idle, sessions still open (idle shutdown waits 60 s at least by default)",
            settings.idle_seconds
        ),
        process_tree(gateway_pid).descendants.len(),
    ));
    stop_sampling.store(true, Ordering::Relaxed);
    let peak = sampler.join().unwrap_or_default();
    drop(clients);
    let leftovers = running.stop();

    let cold = cold_call(ctx, servers)?;
    Ok(render(
        settings,
        &Figures {
            servers,
            moments,
            lists: list_latencies,
            calls,
            peak,
            cold,
            leftovers,
        },
    ))
}

/// Everything the report shows.
struct Figures {
    servers: usize,
    /// A moment and the stdio processes alive then.
    moments: Vec<(String, usize)>,
    /// Session number, latency in µs, tools listed.
    lists: Vec<(usize, f64, usize)>,
    calls: Vec<ServerCalls>,
    peak: Peak,
    cold: ColdCall,
    leftovers: Vec<String>,
}

struct ColdCall {
    latency_us: f64,
    processes_after: usize,
    server: String,
}

/// A fresh gateway whose first request after `initialize` is a call, with no list before it.
fn cold_call(ctx: &Context, servers: usize) -> Result<ColdCall> {
    let running: Running = ctx.start_gatehouse("backends-cold", &Upstream::Stdio, servers)?;
    let gateway_pid = running
        .processes
        .first()
        .map(|p| p.pid())
        .context("no gateway process")?;
    let server = format!("s{:02}", servers.min(5));
    let mut client = McpClient::new(running.endpoint()?, Era::Legacy, ClientOptions::default());
    ctx.runtime.block_on(client.initialize())?;
    let call = PreparedCall::new(
        Era::Legacy,
        &format!("{server}__echo"),
        &json!({ "text": "hi" }),
    )?;
    let started = Instant::now();
    let result = ctx.runtime.block_on(client.call(&call));
    let latency_us = micros(started);
    let processes_after = process_tree(gateway_pid).descendants.len();
    running.stop();
    result?;
    Ok(ColdCall {
        latency_us,
        processes_after,
        server,
    })
}

fn sample_peak(pid: u32, stop: &AtomicBool) -> Peak {
    let mut peak = Peak::default();
    while !stop.load(Ordering::Relaxed) {
        let tree = process_tree(pid);
        if tree.total_kib() > peak.total_kib {
            peak.own_kib = tree.own_kib;
            peak.children_kib = tree.descendants_kib;
            peak.total_kib = tree.total_kib();
        }
        peak.processes = peak.processes.max(tree.descendants.len());
        std::thread::sleep(SAMPLE_EVERY);
    }
    peak
}

fn micros(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1_000_000.0
}

fn percentile(values: &[f64], quantile: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((sorted.len() as f64 - 1.0) * quantile).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn render(settings: &BackendsSettings, figures: &Figures) -> String {
    let Figures {
        servers,
        moments,
        lists,
        calls,
        peak,
        cold,
        leftovers,
    } = figures;
    let used: BTreeSet<&str> = calls.iter().map(|c| c.server.as_str()).collect();
    let mut out = format!(
        "Backends on demand: {servers} stdio demo servers behind one Gatehouse; {} 2025-11-25 \
         sessions, each listing tools and calling echo on 2 servers ({} used in all), {} warm \
         calls per session and server.\n\n",
        settings.sessions,
        used.len(),
        settings.warm_calls
    );
    out.push_str("| moment | stdio processes alive |\n|---|---:|\n");
    for (moment, processes) in moments {
        out.push_str(&format!("| {moment} | {processes} |\n"));
    }
    out.push_str(&format!(
        "\nPeak memory during the run: gateway {:.1} MiB + children {:.1} MiB = {:.1} MiB, \
         {} child processes at most ({} needed by the calls).\n\n",
        peak.own_kib as f64 / 1024.0,
        peak.children_kib as f64 / 1024.0,
        peak.total_kib as f64 / 1024.0,
        peak.processes,
        used.len()
    ));
    out.push_str("| tools/list | latency | tools |\n|---|---:|---:|\n");
    for (session, latency, tools) in lists {
        out.push_str(&format!(
            "| session {session} | {} | {tools} |\n",
            format_micros(*latency)
        ));
    }
    out.push_str(
        "\n| server | sessions | first call | warm p50 | warm p99 |\n|---|---|---:|---:|---:|\n",
    );
    for c in calls {
        let sessions: Vec<String> = c.sessions.iter().map(usize::to_string).collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            c.server,
            sessions.join(", "),
            format_micros(c.first_call_us),
            format_micros(percentile(&c.warm_us, 0.5)),
            format_micros(percentile(&c.warm_us, 0.99)),
        ));
    }
    out.push_str(&format!(
        "\nCold call on a fresh gateway (first request after initialize, no list before it) to \
         {}: {}; stdio processes alive after it: {}.\n",
        cold.server,
        format_micros(cold.latency_us),
        cold.processes_after
    ));
    for leftover in leftovers {
        out.push_str(&format!("\n- {leftover}"));
    }
    out
}
