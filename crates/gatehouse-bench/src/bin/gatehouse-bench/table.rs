//! The report: one Markdown document with the calls table and the memory table, every figure
//! beside its ratio to the direct baseline of the same run. Reasons for missing figures are
//! footnotes, so the columns stay narrow.

use gatehouse_bench::report::format_micros;

use crate::scenarios::{DIRECT, GOVERNED_HTTP, MemoryFigures, Outcome, Results};

/// Renders the whole report.
pub fn render(results: &Results) -> String {
    let mut notes = Footnotes::default();
    let mut out = String::new();
    out.push_str(&format!("Run of {}.\n\n", results.started));
    out.push_str(&format!("Machine: {}.\n\n", results.machine.line()));
    out.push_str(&format!(
        "Each cell: `mcp-load` ({} thread{}) calling the echo tool for {} s (at most {} calls) \
         after a warm-up, with 1 and 32 clients, each client on its own kept-alive connection. \
         Every cell is paired with the same cell against the demo server directly, run just \
         before it: × is the ratio to that direct run, + the latency added to it. Latency in \
         µs (ms above 10 ms). CPU/call is the CPU time of the target's processes and their \
         children per call (for Gatehouse in front of the demo server over HTTP, the gateway \
         alone).\n\n",
        results.settings.threads,
        if results.settings.threads == 1 {
            ""
        } else {
            "s"
        },
        results.settings.seconds,
        results.settings.calls,
    ));
    out.push_str(&format!(
        "Gatehouse rows: audit receipts are on (an intent receipt durable in the SQLite store \
         `gatehouse.db` beside the configuration before each call is forwarded, a completion \
         receipt after it, fail-closed; `scripts/bench audit` measures them against receipts \
         off). \"anonymous\" rows have no `[auth]` and no \
         grants, so no key is checked and no grant is matched. \"{GOVERNED_HTTP}\" and its stdio \
         twin add the governance path: every request carries an API key issued by `gatehouse \
         key issue` (`Authorization: Bearer gh_…`), and each call is decided by the policy \
         engine against one grant (`user:bench` may call `demo__*` with read access). \
         Credential injection is not available yet, so it is not in these figures.\n\n"
    ));
    out.push_str(&calls_table(results, &mut notes));
    out.push('\n');
    out.push_str(&generator_note(results));
    out.push_str(&format!(
        "Memory: resident set of the target's processes (own + children, MiB), idle after one \
         list and one call, then with {} idle 2025-11-25 sessions open (initialize and \
         `notifications/initialized`, no call), before any load; KiB per session is the growth \
         over the idle figure.\n\n",
        results.settings.sessions
    ));
    out.push_str(&memory_table(results, &mut notes));
    out.push_str(&notes.render());
    if !results.notes.is_empty() {
        out.push('\n');
        for note in &results.notes {
            out.push_str(&format!("- {note}\n"));
        }
    }
    out
}

fn calls_table(results: &Results, notes: &mut Footnotes) -> String {
    let header = [
        "target",
        "era",
        "clients",
        "calls/s",
        "direct calls/s",
        "× direct",
        "p50",
        "+p50",
        "p90",
        "p99",
        "+p99",
        "max",
        "CPU/call",
        "direct CPU/call",
        "errors",
    ];
    let mut rows = Vec::new();
    for row in &results.load {
        let mut cells = vec![
            row.target.clone(),
            row.era.to_string(),
            row.clients.to_string(),
        ];
        match &row.outcome {
            Outcome::Measured(cell) => {
                let report = &cell.report;
                // A row is compared with the direct run just before it; the direct rows
                // themselves are the reference.
                let base_cell = row
                    .baseline
                    .as_ref()
                    .or_else(|| (row.target == DIRECT).then_some(cell));
                let base = base_cell.map(|b| &b.report);
                let l = &report.latency_us;
                cells.push(format!("{:.0}", report.calls_per_second));
                cells.push(base.map_or_else(dash, |b| format!("{:.0}", b.calls_per_second)));
                cells.push(
                    base.map_or_else(dash, |b| ratio(report.calls_per_second, b.calls_per_second)),
                );
                cells.push(format_micros(l.p50));
                cells.push(base.map_or_else(dash, |b| added(l.p50, b.latency_us.p50)));
                cells.push(format_micros(l.p90));
                cells.push(format_micros(l.p99));
                cells.push(base.map_or_else(dash, |b| added(l.p99, b.latency_us.p99)));
                cells.push(format_micros(l.max));
                cells.push(format_micros(cell.cpu_us_per_call));
                cells.push(base_cell.map_or_else(dash, |b| format_micros(b.cpu_us_per_call)));
                let mut errors = report.errors.to_string();
                if let Some(first) = &report.first_error {
                    errors.push_str(&notes.mark(first));
                }
                cells.push(errors);
            }
            Outcome::Unsupported { reason } => {
                cells.push(format!("not supported{}", notes.mark(reason)));
                cells.extend(std::iter::repeat_n(String::new(), header.len() - 4));
            }
            Outcome::Unavailable { reason } => {
                cells.push(format!("unavailable{}", notes.mark(reason)));
                cells.extend(std::iter::repeat_n(String::new(), header.len() - 4));
            }
        }
        rows.push(cells);
    }
    markdown(&header, &rows)
}

/// The load generator's own CPU cost across every cell, so its share of the machine is known.
fn generator_note(results: &Results) -> String {
    let costs: Vec<f64> = results
        .load
        .iter()
        .flat_map(|row| {
            let own = match &row.outcome {
                Outcome::Measured(cell) => Some(&cell.report),
                _ => None,
            };
            own.into_iter()
                .chain(row.baseline.as_ref().map(|b| &b.report))
        })
        .filter(|report| report.calls > 1000)
        .filter_map(|report| report.client_cpu_us_per_call)
        .collect();
    let (Some(low), Some(high)) = (
        costs.iter().copied().reduce(f64::min),
        costs.iter().copied().reduce(f64::max),
    ) else {
        return String::new();
    };
    format!(
        "`mcp-load` itself used {} to {} of CPU per call in the cells with more than 1000 calls.\n\n",
        format_micros(low),
        format_micros(high)
    )
}

fn memory_table(results: &Results, notes: &mut Footnotes) -> String {
    let header = [
        "target",
        "processes idle",
        "RSS idle MiB",
        "× direct",
        "sessions",
        "RSS with sessions MiB",
        "processes",
        "KiB/session",
        "× direct",
    ];
    let direct = results
        .memory
        .iter()
        .find(|row| row.target == DIRECT)
        .and_then(|row| row.figures.as_ref().ok());
    let mut rows = Vec::new();
    for row in &results.memory {
        let mut cells = vec![row.target.clone()];
        match &row.figures {
            Ok(f) => {
                let idle_total = (f.idle_own_kib + f.idle_children_kib) as f64;
                cells.push(f.idle_processes.to_string());
                cells.push(mib_pair(f.idle_own_kib, f.idle_children_kib));
                cells.push(direct.map_or_else(dash, |d| {
                    ratio(idle_total, (d.idle_own_kib + d.idle_children_kib) as f64)
                }));
                let mut opened = format!("{}/{}", f.sessions_opened, f.sessions);
                if let Some(error) = &f.session_error {
                    opened.push_str(&notes.mark(error));
                }
                cells.push(opened);
                cells.push(mib_pair(f.sessions_own_kib, f.sessions_children_kib));
                cells.push(f.sessions_processes.to_string());
                cells.push(format!("{:.1}", f.kib_per_session));
                cells.push(direct.map_or_else(dash, |d| per_session_ratio(f, d)));
            }
            Err(reason) => {
                cells.push(format!("unavailable{}", notes.mark(reason)));
                cells.extend(std::iter::repeat_n(String::new(), header.len() - 2));
            }
        }
        rows.push(cells);
    }
    markdown(&header, &rows)
}

fn per_session_ratio(f: &MemoryFigures, d: &MemoryFigures) -> String {
    if d.kib_per_session > 0.0 {
        ratio(f.kib_per_session, d.kib_per_session)
    } else {
        dash()
    }
}

pub(crate) fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 {
        format!("{:.2}×", value / base)
    } else {
        dash()
    }
}

pub(crate) fn added(value: f64, base: f64) -> String {
    let delta = value - base;
    let sign = if delta < 0.0 { "−" } else { "+" };
    format!("{sign}{}", format_micros(delta.abs()))
}

fn mib_pair(own_kib: u64, children_kib: u64) -> String {
    let mib = |kib: u64| kib as f64 / 1024.0;
    if children_kib == 0 {
        format!("{:.1}", mib(own_kib))
    } else {
        format!("{:.1} + {:.1}", mib(own_kib), mib(children_kib))
    }
}

pub(crate) fn dash() -> String {
    "—".to_owned()
}

/// A Markdown table padded so it also reads well in a terminal.
pub(crate) fn markdown(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |text: &str| text.chars().count();
    let mut widths: Vec<usize> = header.iter().map(|h| width(h)).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(width(cell));
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, cell)| {
                let pad = widths
                    .get(i)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(width(cell));
                // The first column is text; the others are figures, aligned right.
                if i == 0 {
                    format!("{cell}{}", " ".repeat(pad))
                } else {
                    format!("{}{cell}", " ".repeat(pad))
                }
            })
            .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(header.iter().map(|h| (*h).to_owned()).collect());
    let rule: Vec<String> = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if i == 0 {
                "-".repeat(w + 2)
            } else {
                format!("{}:", "-".repeat(w + 1))
            }
        })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in rows {
        out.push_str(&line(row.clone()));
    }
    out
}

/// Numbered reasons, each given once.
#[derive(Default)]
pub(crate) struct Footnotes {
    reasons: Vec<String>,
}

impl Footnotes {
    pub(crate) fn mark(&mut self, reason: &str) -> String {
        let reason = reason.lines().next().unwrap_or(reason).trim();
        let reason: String = reason.chars().take(300).collect();
        let index = match self.reasons.iter().position(|r| *r == reason) {
            Some(index) => index,
            None => {
                self.reasons.push(reason);
                self.reasons.len() - 1
            }
        };
        format!(" [{}]", index + 1)
    }

    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        if !self.reasons.is_empty() {
            out.push('\n');
        }
        for (i, reason) in self.reasons.iter().enumerate() {
            out.push_str(&format!("[{}] {reason}\n", i + 1));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_pad_and_align() {
        let table = markdown(&["a", "bb"], &[vec!["xyz".to_owned(), "1".to_owned()]]);
        assert_eq!(table, "| a   | bb |\n|-----|---:|\n| xyz |  1 |\n");
    }

    #[test]
    fn ratios_and_added_latency_read_naturally() {
        assert_eq!(ratio(50.0, 100.0), "0.50×");
        assert_eq!(ratio(1.0, 0.0), "—");
        assert_eq!(added(150.0, 100.0), "+50 µs");
        assert_eq!(added(90.0, 100.0), "−10 µs");
        assert_eq!(mib_pair(2048, 0), "2.0");
        assert_eq!(mib_pair(2048, 1024), "2.0 + 1.0");
    }

    #[test]
    fn footnotes_are_numbered_once_per_reason() {
        let mut notes = Footnotes::default();
        assert_eq!(notes.mark("a"), " [1]");
        assert_eq!(notes.mark("b\nmore"), " [2]");
        assert_eq!(notes.mark("a"), " [1]");
        assert_eq!(notes.render(), "\n[1] a\n[2] b\n");
    }
}
