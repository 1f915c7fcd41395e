//! Sessions of legacy (2025-11-25 and earlier) clients. A 2026-07-28 client has none: every
//! request stands alone. A session holds what the handshake negotiated, the log level, the
//! resources it subscribed to, its open GET stream, the requests the gateway sent the client
//! and awaits answers to, and the calls in flight so `notifications/cancelled` can reach them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use rand::RngCore;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

/// One legacy client session.
pub struct Session {
    /// The session id sent in `Mcp-Session-Id`.
    pub id: String,
    /// The negotiated protocol version.
    pub version: String,
    /// The capabilities the client declared.
    pub capabilities: Value,
    /// Who opened it; a session never changes owner.
    pub owner: crate::identity::Who,
    state: Mutex<SessionState>,
    /// Cancelled when the session ends; its streams close.
    pub ended: CancellationToken,
}

#[derive(Default)]
struct SessionState {
    log_level: Option<String>,
    subscriptions: HashSet<String>,
    get_stream: Option<mpsc::Sender<Value>>,
    client_requests: HashMap<String, oneshot::Sender<Value>>,
    in_flight: HashMap<String, CancellationToken>,
    next_request: u64,
    last_seen: Option<Instant>,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `who` opened this session, with the same credential.
    pub fn is_owned_by(&self, who: &crate::identity::Who) -> bool {
        self.owner.user() == who.user() && self.owner.credential() == who.credential()
    }

    /// The log level set with `logging/setLevel`.
    pub fn log_level(&self) -> Option<String> {
        self.state().log_level.clone()
    }

    /// Sets the log level.
    pub fn set_log_level(&self, level: &str) {
        self.state().log_level = Some(level.to_owned());
    }

    /// Records a resource subscription (client-facing URI).
    pub fn subscribe(&self, uri: &str) {
        self.state().subscriptions.insert(uri.to_owned());
    }

    /// Removes a resource subscription.
    pub fn unsubscribe(&self, uri: &str) {
        self.state().subscriptions.remove(uri);
    }

    /// Whether the session subscribed to `uri`.
    pub fn is_subscribed(&self, uri: &str) -> bool {
        self.state().subscriptions.contains(uri)
    }

    /// Attaches the GET stream; a second GET replaces the first.
    pub fn attach_get_stream(&self, sender: mpsc::Sender<Value>) {
        self.state().get_stream = Some(sender);
    }

    /// The GET stream, if one is open.
    pub fn get_stream(&self) -> Option<mpsc::Sender<Value>> {
        self.state()
            .get_stream
            .clone()
            .filter(|sender| !sender.is_closed())
    }

    /// Gives a request to the client a session-unique id and registers where its answer goes.
    pub fn register_client_request(&self, message: &mut Value) -> oneshot::Receiver<Value> {
        let (sender, receiver) = oneshot::channel();
        let mut state = self.state();
        state.next_request += 1;
        let id = format!("gatehouse-{}", state.next_request);
        message["id"] = Value::String(id.clone());
        state.client_requests.insert(id, sender);
        receiver
    }

    /// Delivers the client's answer to a request the gateway sent; false if nothing waited.
    pub fn resolve_client_request(&self, response: Value) -> bool {
        let Some(id) = response.get("id").and_then(Value::as_str) else {
            return false;
        };
        let waiting = self.state().client_requests.remove(id);
        match waiting {
            Some(sender) => sender.send(response).is_ok(),
            None => false,
        }
    }

    /// Registers a call in flight under the client's request id; the token is cancelled by
    /// `notifications/cancelled`.
    pub fn begin_call(&self, id_key: &str) -> CancellationToken {
        let token = self.ended.child_token();
        self.state()
            .in_flight
            .insert(id_key.to_owned(), token.clone());
        token
    }

    /// Forgets a finished call.
    pub fn end_call(&self, id_key: &str) {
        self.state().in_flight.remove(id_key);
    }

    /// Cancels a call in flight.
    pub fn cancel_call(&self, id_key: &str) {
        if let Some(token) = self.state().in_flight.remove(id_key) {
            token.cancel();
        }
    }

    fn touch(&self) {
        self.state().last_seen = Some(Instant::now());
    }

    fn idle_for(&self) -> Duration {
        self.state()
            .last_seen
            .map(|seen| seen.elapsed())
            .unwrap_or_default()
    }
}

/// All live legacy sessions.
pub struct SessionTable {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    idle_limit: Duration,
}

impl SessionTable {
    /// An empty table whose sessions end after `idle_limit` without a request.
    pub fn new(idle_limit: Duration) -> Arc<Self> {
        Arc::new(Self {
            sessions: Mutex::new(HashMap::new()),
            idle_limit,
        })
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates a session with a fresh random id.
    pub fn create(
        &self,
        version: &str,
        capabilities: Value,
        owner: crate::identity::Who,
    ) -> Arc<Session> {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let session = Arc::new(Session {
            id: id.clone(),
            version: version.to_owned(),
            capabilities,
            owner,
            state: Mutex::new(SessionState::default()),
            ended: CancellationToken::new(),
        });
        session.touch();
        self.sessions().insert(id, Arc::clone(&session));
        session
    }

    /// Looks a session up and marks it used.
    pub fn get(&self, id: &str) -> Option<Arc<Session>> {
        let session = self.sessions().get(id).cloned()?;
        session.touch();
        Some(session)
    }

    /// Ends a session; its streams close.
    pub fn remove(&self, id: &str) -> bool {
        let session = self.sessions().remove(id);
        match session {
            Some(session) => {
                session.ended.cancel();
                true
            }
            None => false,
        }
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<Session>> {
        self.sessions().values().cloned().collect()
    }

    /// Number of live sessions.
    pub fn len(&self) -> usize {
        self.sessions().len()
    }

    /// Whether there are no sessions.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends sessions idle for longer than the limit (an open GET stream does not count as use).
    pub fn reap_idle(&self) {
        let expired: Vec<String> = self
            .sessions()
            .values()
            .filter(|session| session.idle_for() > self.idle_limit)
            .map(|session| session.id.clone())
            .collect();
        for id in expired {
            tracing::debug!(session = %id, "session ended after being idle");
            self.remove(&id);
        }
    }
}
