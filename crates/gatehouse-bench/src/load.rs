//! Running N simulated clients against one endpoint, bounded by a call count and a duration.
//!
//! Each client starts (connects; in 2025-11-25 opens its session), makes its warm-up calls
//! (bounded by count and time), and waits at a barrier; the measured phase starts for all of them at once, so throughput is
//! calls over one common interval. A client stops when the shared call budget is spent or the
//! deadline has passed, whichever comes first; a call in flight at the deadline completes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::Barrier;

use crate::client::{ClientError, ClientOptions, Endpoint, Era, McpClient, PreparedCall};
use crate::report::{Latencies, LoadReport};

/// The slowest latency the histogram holds, in nanoseconds (a minute).
const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;
/// Pause after a failed connection attempt, so a refused port does not become a busy loop.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The MCP endpoint.
    pub endpoint: Arc<Endpoint>,
    /// The protocol era every client speaks.
    pub era: Era,
    /// The tool every call names.
    pub tool: String,
    /// The arguments every call passes.
    pub arguments: Value,
    /// Simulated clients, each with its own connection (and session).
    pub clients: usize,
    /// Calls in the measured phase, at most, across all clients.
    pub max_calls: u64,
    /// Length of the measured phase, at most.
    pub duration: Duration,
    /// Calls each client makes before the measured phase; not recorded.
    pub warmup_calls: u64,
    /// Time each client spends on warm-up calls, at most.
    pub warmup_duration: Duration,
    /// Per-request settings.
    pub options: ClientOptions,
}

/// Why a load run produced no figures at all.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The call could not be prepared.
    #[error("cannot prepare the call: {0}")]
    Prepare(#[source] ClientError),
    /// No client could start.
    #[error("no client could start: {0}")]
    NoClientStarted(String),
    /// The histogram could not be made (a bug in the bounds).
    #[error("histogram: {0}")]
    Histogram(String),
}

/// Runs the load described by `spec` and reports on it.
pub async fn run_load(spec: &LoadSpec) -> Result<LoadReport, LoadError> {
    let call = Arc::new(
        PreparedCall::new(spec.era, &spec.tool, &spec.arguments).map_err(LoadError::Prepare)?,
    );
    let clients = spec.clients.max(1);
    let barrier = Arc::new(Barrier::new(clients + 1));
    let shared = Arc::new(Shared {
        issued: AtomicU64::new(0),
        max_calls: spec.max_calls,
        duration: spec.duration,
    });
    let mut tasks = Vec::with_capacity(clients);
    for _ in 0..clients {
        let client = McpClient::new(spec.endpoint.clone(), spec.era, spec.options);
        let histogram = new_histogram()?;
        tasks.push(tokio::spawn(run_client(
            client,
            Arc::clone(&call),
            Warmup {
                calls: spec.warmup_calls,
                duration: spec.warmup_duration,
            },
            Arc::clone(&barrier),
            Arc::clone(&shared),
            histogram,
        )));
    }
    barrier.wait().await;
    let start = Instant::now();

    let mut histogram = new_histogram()?;
    let mut error_kinds: BTreeMap<String, u64> = BTreeMap::new();
    let mut first_error = None;
    let mut clients_started = 0;
    let mut warmup_calls = 0;
    let mut finished = start;
    for task in tasks {
        let outcome = match task.await {
            Ok(outcome) => outcome,
            Err(error) => {
                *error_kinds.entry("client".to_owned()).or_default() += 1;
                first_error.get_or_insert_with(|| format!("client task failed: {error}"));
                continue;
            }
        };
        if outcome.started {
            clients_started += 1;
        }
        warmup_calls += outcome.warmup_calls;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = histogram.add(&outcome.histogram);
        for (kind, count) in outcome.error_kinds {
            *error_kinds.entry(kind.to_owned()).or_default() += count;
        }
        if first_error.is_none() {
            first_error = outcome.first_error;
        }
        finished = finished.max(outcome.finished);
    }
    if clients_started == 0 {
        return Err(LoadError::NoClientStarted(
            first_error.unwrap_or_else(|| "no reason given".to_owned()),
        ));
    }
    let seconds = finished.duration_since(start).as_secs_f64();
    let calls = histogram.len();
    Ok(LoadReport {
        url: spec.endpoint.url().to_owned(),
        era: spec.era,
        tool: spec.tool.clone(),
        clients,
        clients_started,
        calls,
        warmup_calls,
        errors: error_kinds.values().sum(),
        error_kinds,
        first_error,
        seconds,
        calls_per_second: if seconds > 0.0 {
            calls as f64 / seconds
        } else {
            0.0
        },
        latency_us: Latencies::from_nanoseconds(&histogram),
        client_cpu_us_per_call: None,
    })
}

/// How many 2025-11-25 sessions were opened, and how fast.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SessionsReport {
    /// Sessions opened (initialize answered and `notifications/initialized` accepted).
    pub opened: usize,
    /// Attempts that failed.
    pub errors: usize,
    /// The first failure, in full.
    pub first_error: Option<String>,
    /// Time taken, in seconds.
    pub seconds: f64,
}

/// Opens `count` 2025-11-25 sessions over `concurrency` connections and leaves them open:
/// no call is made and no session is deleted.
pub async fn open_sessions(
    endpoint: Arc<Endpoint>,
    count: usize,
    concurrency: usize,
    options: ClientOptions,
) -> SessionsReport {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.clamp(1, count.max(1)) {
        let mut client = McpClient::new(endpoint.clone(), Era::Legacy, options);
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let (mut opened, mut errors, mut first_error) = (0, 0, None);
            while next.fetch_add(1, Ordering::Relaxed) < count {
                match client.initialize().await {
                    Ok(()) => opened += 1,
                    Err(error) => {
                        errors += 1;
                        first_error.get_or_insert_with(|| error.to_string());
                    }
                }
            }
            (opened, errors, first_error)
        }));
    }
    let mut report = SessionsReport {
        opened: 0,
        errors: 0,
        first_error: None,
        seconds: 0.0,
    };
    for task in tasks {
        match task.await {
            Ok((opened, errors, first_error)) => {
                report.opened += opened;
                report.errors += errors;
                if report.first_error.is_none() {
                    report.first_error = first_error;
                }
            }
            Err(error) => {
                report.errors += 1;
                report.first_error.get_or_insert_with(|| error.to_string());
            }
        }
    }
    report.seconds = start.elapsed().as_secs_f64();
    report
}

#[derive(Clone, Copy)]
struct Warmup {
    calls: u64,
    duration: Duration,
}

struct Shared {
    issued: AtomicU64,
    max_calls: u64,
    duration: Duration,
}

struct ClientOutcome {
    started: bool,
    warmup_calls: u64,
    histogram: Histogram<u64>,
    error_kinds: BTreeMap<&'static str, u64>,
    first_error: Option<String>,
    finished: Instant,
}

impl ClientOutcome {
    fn error(&mut self, error: &ClientError) {
        *self.error_kinds.entry(error.kind()).or_default() += 1;
        if self.first_error.is_none() {
            self.first_error = Some(error.to_string());
        }
    }
}

fn new_histogram() -> Result<Histogram<u64>, LoadError> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3)
        .map_err(|error| LoadError::Histogram(error.to_string()))
}

async fn run_client(
    mut client: McpClient,
    call: Arc<PreparedCall>,
    warmup: Warmup,
    barrier: Arc<Barrier>,
    shared: Arc<Shared>,
    histogram: Histogram<u64>,
) -> ClientOutcome {
    let mut outcome = ClientOutcome {
        started: false,
        warmup_calls: 0,
        histogram,
        error_kinds: BTreeMap::new(),
        first_error: None,
        finished: Instant::now(),
    };
    match client.start().await {
        Ok(()) => {
            outcome.started = true;
            let warmup_deadline = Instant::now() + warmup.duration;
            for _ in 0..warmup.calls {
                if Instant::now() >= warmup_deadline {
                    break;
                }
                outcome.warmup_calls += 1;
                if let Err(error) = call_once(&mut client, &call).await {
                    outcome.error(&error);
                }
            }
        }
        Err(error) => outcome.error(&error),
    }
    // Every client reaches the barrier, started or not, or the run would never begin.
    barrier.wait().await;
    if !outcome.started {
        outcome.finished = Instant::now();
        return outcome;
    }
    let deadline = Instant::now() + shared.duration;
    loop {
        if Instant::now() >= deadline
            || shared.issued.fetch_add(1, Ordering::Relaxed) >= shared.max_calls
        {
            break;
        }
        let sent = Instant::now();
        match call_once(&mut client, &call).await {
            Ok(()) => {
                let nanos = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
                outcome.histogram.saturating_record(nanos.max(1));
            }
            Err(error) => outcome.error(&error),
        }
    }
    outcome.finished = Instant::now();
    outcome
}

/// One call; a lost 2025-11-25 session is opened again (the failed call still counts as an
/// error), and a refused connection pauses briefly.
async fn call_once(client: &mut McpClient, call: &PreparedCall) -> Result<(), ClientError> {
    let result = client.call(call).await;
    if let Err(error) = &result {
        if error.session_lost() && client.era() == Era::Legacy {
            // If the session cannot be opened again, the next call reports why.
            let _ = client.initialize().await;
        } else if matches!(error, ClientError::Connect(_)) {
            tokio::time::sleep(RECONNECT_PAUSE).await;
        }
    }
    result
}
