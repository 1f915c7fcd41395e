//! What a load run measured, as one line of JSON for programs and one line for people.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::client::Era;

/// The result of one load run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadReport {
    /// The endpoint loaded.
    pub url: String,
    /// The protocol era spoken.
    pub era: Era,
    /// The tool called.
    pub tool: String,
    /// Simulated clients asked for.
    pub clients: usize,
    /// Clients that connected (and in 2025-11-25 opened a session) and took part.
    pub clients_started: usize,
    /// Successful calls in the measured phase.
    pub calls: u64,
    /// Calls made during the warm-up, not measured.
    #[serde(default)]
    pub warmup_calls: u64,
    /// Failed calls and failed client starts.
    pub errors: u64,
    /// Errors by kind (`status`, `jsonrpc`, `timeout`, ...).
    pub error_kinds: BTreeMap<String, u64>,
    /// The first error seen, in full.
    pub first_error: Option<String>,
    /// Length of the measured phase, in seconds.
    pub seconds: f64,
    /// Successful calls per second over the measured phase.
    pub calls_per_second: f64,
    /// Latency of successful calls, in microseconds.
    pub latency_us: Latencies,
    /// CPU time the generator itself used per call (warm-up and client starts included), in
    /// microseconds, when the process could read it.
    #[serde(default)]
    pub client_cpu_us_per_call: Option<f64>,
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Latencies {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Slowest call.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latencies {
    /// Reads the percentiles from a histogram of nanoseconds.
    pub fn from_nanoseconds(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let micros = |ns: u64| ns as f64 / 1_000.0;
        Self {
            p50: micros(histogram.value_at_quantile(0.50)),
            p90: micros(histogram.value_at_quantile(0.90)),
            p99: micros(histogram.value_at_quantile(0.99)),
            max: micros(histogram.max()),
            mean: histogram.mean() / 1_000.0,
        }
    }
}

impl LoadReport {
    /// The report as one line of JSON.
    pub fn json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|error| format!(r#"{{"error":"{error}"}}"#))
    }

    /// The report as one line for people.
    pub fn human_line(&self) -> String {
        let l = &self.latency_us;
        let mut line = format!(
            "{} {} c={}: {} calls in {:.2} s = {:.0} calls/s; latency p50 {} p90 {} p99 {} max {}; {} error{}",
            self.url,
            self.era,
            self.clients,
            self.calls,
            self.seconds,
            self.calls_per_second,
            format_micros(l.p50),
            format_micros(l.p90),
            format_micros(l.p99),
            format_micros(l.max),
            self.errors,
            if self.errors == 1 { "" } else { "s" },
        );
        if let Some(first) = &self.first_error {
            line.push_str(&format!(" (first: {first})"));
        }
        line
    }
}

/// Microseconds below 10 ms, milliseconds above.
pub fn format_micros(micros: f64) -> String {
    if micros < 10_000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.1} ms", micros / 1_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_read_in_microseconds() {
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for ns in 1..=100u64 {
            histogram.record(ns * 1_000).unwrap();
        }
        let l = Latencies::from_nanoseconds(&histogram);
        assert!((l.p50 - 50.0).abs() < 0.1, "{l:?}");
        assert!((l.p99 - 99.0).abs() < 0.1, "{l:?}");
        assert!((l.max - 100.0).abs() < 0.1, "{l:?}");
        assert_eq!(format_micros(412.4), "412 µs");
        assert_eq!(format_micros(12_345.0), "12.3 ms");
    }
}
