//! Calls held open across HTTP requests, to bridge a legacy server's mid-call request
//! (sampling, elicitation, roots) to a 2026-07-28 client, which cannot receive requests. The
//! gateway answers the client with `input_required`, keeps the upstream call running here
//! under a random handle passed as `requestState`, and resumes it when the client retries
//! with its answers. A handle is bound to the call it came from, expires, and is single use.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use gatehouse_mcp::upstream::{UpstreamError, UpstreamEvent};
use rand::RngCore;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Prefix of the gateway's own `requestState` handles.
pub const HANDLE_PREFIX: &str = "gatehouse-parked:";
/// The key of the single input request the gateway asks at a time.
pub const INPUT_KEY: &str = "gatehouse-input";

/// An upstream call in progress: its task and what it sends back meanwhile. Dropping it
/// aborts the task, which cancels the upstream call.
pub struct Flight {
    /// The running call.
    pub task: JoinHandle<Result<Value, UpstreamError>>,
    /// Notifications and requests from the upstream for this call.
    pub incoming: mpsc::Receiver<UpstreamEvent>,
    /// Whether `incoming` has closed.
    pub incoming_closed: bool,
}

impl Drop for Flight {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A call waiting for the client's answer to one upstream request.
pub struct Parked {
    /// The call.
    pub flight: Flight,
    /// Where the client's answer goes.
    pub reply: oneshot::Sender<Value>,
    /// The id the upstream gave its request.
    pub upstream_request_id: Value,
    /// The method the call was made with and the client-facing name it targeted.
    pub origin: (String, String),
    parked_at: Instant,
}

impl Parked {
    /// A parked call.
    pub fn new(
        flight: Flight,
        reply: oneshot::Sender<Value>,
        upstream_request_id: Value,
        origin: (String, String),
    ) -> Self {
        Self {
            flight,
            reply,
            upstream_request_id,
            origin,
            parked_at: Instant::now(),
        }
    }
}

/// Every parked call.
#[derive(Default)]
pub struct ParkedCalls {
    calls: Mutex<HashMap<String, Parked>>,
}

impl ParkedCalls {
    fn calls(&self) -> MutexGuard<'_, HashMap<String, Parked>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds a call and returns its handle.
    pub fn park(&self, parked: Parked) -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let handle: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let handle = format!("{HANDLE_PREFIX}{handle}");
        self.calls().insert(handle.clone(), parked);
        handle
    }

    /// Takes a parked call out by its handle (once).
    pub fn take(&self, handle: &str) -> Option<Parked> {
        self.calls().remove(handle)
    }

    /// Drops calls parked longer than `limit`; their upstream calls are cancelled.
    pub fn sweep(&self, limit: Duration) {
        self.calls()
            .retain(|_, parked| parked.parked_at.elapsed() < limit);
    }
}
