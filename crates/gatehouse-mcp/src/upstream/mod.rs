//! One upstream MCP server and the live link to it. The link is started on first use, its era
//! detected (a `server/discover` probe, then `initialize` for servers that predate 2026-07-28)
//! and remembered, and it is restarted on the next use after the process exits.

mod http;
pub(crate) mod mux;
mod pool;
mod stdio;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gatehouse_config::{Isolation, ServerConfig, ServerName, Transport};
use serde_json::{Value, json};
use tokio::sync::{Mutex, broadcast, mpsc};

pub use mux::{Owner, UpstreamEvent};
pub use pool::LinkKey;
use pool::{Activity, Health};

use crate::credentials::{CredentialSource, CredentialUse, render, resolve};
use crate::era::{self, Era, LATEST_LEGACY_VERSION, MODERN_VERSION};
use crate::jsonrpc;
use crate::naming::Namespace;
use mux::Mux;

/// How long a probe may take before a server is taken to be legacy.
const DISCOVER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// Grace period of each step when stopping a child.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long a replaced link waits before it looks for its last calls to finish.
const RETIRE_GRACE: Duration = Duration::from_millis(250);

/// Name and version the gateway gives as a client.
pub const GATEWAY_CLIENT_NAME: &str = "gatehouse";

/// A failure to reach an upstream, as opposed to an error the upstream answered with.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// The server could not be started or did not complete its handshake.
    #[error("server `{server}` could not be started: {reason}")]
    StartFailed {
        /// Server name.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The call ran past its deadline; a cancellation was sent upstream.
    #[error("server `{server}` did not answer within {seconds} s; the call was cancelled")]
    Timeout {
        /// Server name.
        server: String,
        /// The deadline.
        seconds: u64,
    },
    /// The link broke while the call was waiting.
    #[error("server `{server}` went away while the call was in flight")]
    LinkLost {
        /// Server name.
        server: String,
    },
    /// A credential the server needs is not available (for this person); nothing was started
    /// and the server's health is unaffected.
    #[error("server `{server}` needs a credential: {reason}")]
    MissingCredential {
        /// Server name.
        server: String,
        /// Which credential, and how to provide it.
        reason: String,
        /// Where the person can sign in to provide it, when that is how.
        sign_in: Option<String>,
    },
}

/// Per-call options.
pub struct CallOptions {
    /// Where notifications and requests that belong to this call go.
    pub events: Option<mpsc::Sender<UpstreamEvent>>,
    /// Who the call belongs to (a client session).
    pub owner: Option<Owner>,
    /// The client's capabilities, passed to 2026-07-28 servers in `_meta`.
    pub client_capabilities: Value,
    /// The log level the client asked for, if any.
    pub log_level: Option<String>,
    /// Deadline of the call.
    pub timeout: Duration,
    /// Extra HTTP headers for this request (such as `Mcp-Param-*`); ignored over stdio.
    pub headers: Vec<(String, String)>,
    /// Who is calling, which decides the link of an isolated server.
    pub requester: Requester,
}

/// Who a request is made for: decides which process of an isolated server serves it.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    /// The person, for servers isolated per user.
    pub user: Option<String>,
    /// The client session, for servers isolated per session.
    pub session: Option<String>,
    /// The token the person signed in with, for servers whose tokens are obtained by
    /// exchanging it (RFC 8693); it is never sent to an upstream.
    pub subject_token: Option<Arc<secrecy::SecretString>>,
}

/// What a server said about itself when the link started.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    /// Its era.
    pub era: Era,
    /// Its capabilities object.
    pub capabilities: Value,
    /// Its `serverInfo`/implementation object.
    pub implementation: Value,
    /// Its instructions, if any.
    pub instructions: Option<String>,
}

impl ServerInfo {
    /// What a `server/discover` or `initialize` result says about the server.
    fn from_result(era: Era, result: &Value, implementation: Option<&Value>) -> Self {
        Self {
            era,
            capabilities: result
                .get("capabilities")
                .cloned()
                .unwrap_or_else(|| json!({})),
            implementation: implementation.cloned().unwrap_or_else(|| json!({})),
            instructions: result
                .get("instructions")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// The state of an upstream, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Not running; it starts on first use.
    Stopped,
    /// A start is in progress.
    Starting,
    /// At least one process (or connection) is running.
    Running,
    /// The last start failed, or it crashed; the reason says what happened.
    Failed {
        /// Why.
        reason: String,
    },
}

enum Wire {
    Stdio(stdio::StdioWire),
    Http(Arc<http::HttpWire>),
}

struct Link {
    info: ServerInfo,
    mux: Arc<Mux>,
    wire: Wire,
    /// The credentials filled into the process's environment and arguments.
    credentials: Vec<CredentialUse>,
    /// The credential source's generation at which those were last known to be current.
    confirmed: AtomicU64,
}

impl Link {
    fn pid(&self) -> Option<u32> {
        match &self.wire {
            Wire::Stdio(wire) => wire.pid(),
            Wire::Http(_) => None,
        }
    }

    fn is_alive(&self) -> bool {
        match &self.wire {
            Wire::Stdio(wire) => !wire.has_exited(),
            Wire::Http(wire) => !wire.session_lost(),
        }
    }

    fn send_request(&self, id: u64, message: Value, headers: Vec<(String, String)>) {
        match &self.wire {
            Wire::Stdio(_) => self.mux.send(message),
            Wire::Http(wire) => wire.send_request(id, message, &self.mux, headers),
        }
    }

    /// Cancels a call the client no longer waits for.
    fn cancel(&self, id: u64, reason: &str) {
        if !self.mux.forget(id) {
            return;
        }
        match &self.wire {
            Wire::Http(wire) if self.info.era.is_modern() => wire.abandon(id),
            _ => self.mux.send(jsonrpc::notification(
                "notifications/cancelled",
                json!({"requestId": id, "reason": reason}),
            )),
        }
    }

    async fn shutdown(&self) {
        match &self.wire {
            Wire::Stdio(wire) => wire.shutdown(SHUTDOWN_GRACE).await,
            Wire::Http(wire) => {
                if !self.info.era.is_modern() {
                    wire.delete_session().await;
                }
                wire.close();
            }
        }
        self.mux.fail_all("the gateway stopped this server");
    }
}

/// One configured upstream server, with its running links (one when shared; one per user or
/// per session when isolated).
pub struct Upstream {
    config: ServerConfig,
    namespace: Namespace,
    http_client: reqwest::Client,
    credentials: Arc<dyn CredentialSource>,
    /// The secrets its configuration refers to.
    secrets: Vec<gatehouse_config::SecretUse>,
    /// The server takes a person's own credential: every person gets their own link.
    per_user_credentials: bool,
    slots: std::sync::Mutex<HashMap<LinkKey, Arc<Slot>>>,
    health: std::sync::Mutex<Health>,
    activity: std::sync::Mutex<Activity>,
    starting: AtomicUsize,
    generation: AtomicU64,
    known_era: std::sync::Mutex<Option<Era>>,
    notifications: broadcast::Sender<Value>,
    call_timeout: Duration,
}

/// One link and when it was last used.
struct Slot {
    link: Mutex<Option<Arc<Link>>>,
    last_used: std::sync::Mutex<Instant>,
}

impl Slot {
    fn touch(&self) {
        *lock(&self.last_used) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_used).elapsed()
    }

    /// The link if it is alive, without waiting for a start in progress.
    fn live(&self) -> Option<Arc<Link>> {
        self.link
            .try_lock()
            .ok()?
            .as_ref()
            .filter(|link| link.is_alive())
            .cloned()
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// An upstream's state, for operators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The state.
    pub state: Status,
    /// Processes (or connections) running.
    pub processes: usize,
    /// Their process ids (stdio).
    pub pids: Vec<u32>,
    /// Client calls in flight.
    pub in_flight: usize,
    /// Time since the last call, if it ever ran.
    pub idle_for: Option<Duration>,
    /// The idle period after which an unused process stops (`None` when always on).
    pub idle_deadline: Option<Duration>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Upstream")
            .field("name", &self.config.name)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// A stopped upstream; nothing is started until it is first used.
    pub fn new(
        config: ServerConfig,
        http_client: reqwest::Client,
        call_timeout: Duration,
        credentials: Arc<dyn CredentialSource>,
    ) -> Arc<Self> {
        let (notifications, _) = broadcast::channel(256);
        Arc::new(Self {
            namespace: Namespace::new(config.prefix.clone()),
            per_user_credentials: config.uses_user_secrets(),
            secrets: config.secrets().into_iter().cloned().collect(),
            config,
            http_client,
            credentials,
            slots: std::sync::Mutex::new(HashMap::new()),
            health: std::sync::Mutex::new(Health::default()),
            activity: std::sync::Mutex::new(Activity::new(Instant::now())),
            starting: AtomicUsize::new(0),
            generation: AtomicU64::new(0),
            known_era: std::sync::Mutex::new(None),
            notifications,
            call_timeout,
        })
    }

    /// The server's name.
    pub fn name(&self) -> &ServerName {
        &self.config.name
    }

    /// The server's configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    /// How the server's names appear to clients.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// Messages the server sent that belong to no call (`list_changed`, resource updates).
    pub fn notifications(&self) -> broadcast::Receiver<Value> {
        self.notifications.subscribe()
    }

    /// How many times a link has started; a catalog learned at an older generation is
    /// refreshed the next time the server is running.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The era the server was last seen to speak, if it ever started.
    pub fn known_era(&self) -> Option<Era> {
        lock(&self.known_era).clone()
    }

    /// Whether any link is running now.
    pub fn is_running(&self) -> bool {
        self.slots().iter().any(|slot| slot.live().is_some())
    }

    fn slots(&self) -> Vec<Arc<Slot>> {
        lock(&self.slots).values().cloned().collect()
    }

    /// The current state.
    pub fn status(&self) -> UpstreamStatus {
        let now = Instant::now();
        let links: Vec<(Arc<Link>, Duration)> = self
            .slots()
            .iter()
            .filter_map(|slot| Some((slot.live()?, slot.idle_for())))
            .collect();
        let health = lock(&self.health);
        let state = if !links.is_empty() {
            Status::Running
        } else if self.starting.load(Ordering::Relaxed) > 0 {
            Status::Starting
        } else if health.circuit_open(now) {
            Status::Failed {
                reason: format!(
                    "circuit open: {}",
                    health.last_failure().unwrap_or("unknown")
                ),
            }
        } else if let Some(reason) = health.last_failure() {
            Status::Failed {
                reason: reason.to_owned(),
            }
        } else {
            Status::Stopped
        };
        drop(health);
        let idle_deadline = (!self.config.lifecycle.always_on)
            .then(|| lock(&self.activity).idle_period(&self.config.lifecycle, now));
        UpstreamStatus {
            state,
            processes: links.len(),
            pids: links.iter().filter_map(|(link, _)| link.pid()).collect(),
            in_flight: links.iter().map(|(link, _)| link.mux.in_flight()).sum(),
            idle_for: links.iter().map(|(_, idle)| *idle).min(),
            idle_deadline,
        }
    }

    /// Starts the link `requester` would use, if needed, and returns what the server said
    /// about itself.
    pub async fn server_info(&self, requester: &Requester) -> Result<ServerInfo, UpstreamError> {
        Ok(self
            .live_link(&self.key_for(requester), requester)
            .await?
            .info
            .clone())
    }

    fn key_for(&self, requester: &Requester) -> LinkKey {
        let isolation = match self.config.lifecycle.isolation {
            // An HTTP server given each person's own credential is one connection per person.
            Isolation::Shared if self.per_user_credentials => Isolation::PerUser,
            isolation => isolation,
        };
        LinkKey::for_call(
            isolation,
            requester.user.as_deref(),
            requester.session.as_deref(),
        )
    }

    /// The credentials a call by `requester` uses, by id and version (never a value): those of
    /// the running process, or those a new one would take.
    pub async fn credentials_for(&self, requester: &Requester) -> Vec<CredentialUse> {
        if self.secrets.is_empty() && self.config.oauth.is_none() {
            return Vec::new();
        }
        let key = self.key_for(requester);
        let slot = lock(&self.slots).get(&key).cloned();
        if let Some(link) = slot.and_then(|slot| slot.live())
            && !link.credentials.is_empty()
        {
            return link.credentials.clone();
        }
        let user = link_user(&key, requester);
        let mut used = Vec::new();
        if let Some(oauth) = self.credentials.access_tokens(self.config.name.as_str())
            && let Ok(token) = oauth.token(user, requester.subject_token.as_ref()).await
        {
            used.push(CredentialUse {
                id: token.id.clone(),
                version: token.version,
            });
        }
        for secret in &self.secrets {
            if let Ok(credential) = resolve(secret, self.credentials.as_ref(), user).await {
                used.push(CredentialUse {
                    id: credential.id.clone(),
                    version: credential.version,
                });
            }
        }
        used
    }

    /// Sends a request and waits for its response message (a result or an error object).
    /// The message's id is replaced; the caller restores its own.
    pub async fn call(
        &self,
        mut message: Value,
        options: CallOptions,
    ) -> Result<Value, UpstreamError> {
        let key = self.key_for(&options.requester);
        lock(&self.activity).record_call(Instant::now());
        let link = self.live_link(&key, &options.requester).await?;
        if let (Wire::Http(wire), Some(token)) = (&link.wire, &options.requester.subject_token) {
            wire.offer_subject_token(token);
        }
        adapt_to_era(&mut message, &link.info.era, &options);
        let (id, answer) = link
            .mux
            .register(&mut message, options.events, options.owner);
        let mut guard = CancelOnDrop {
            link: Arc::clone(&link),
            id,
            armed: true,
        };
        link.send_request(id, message, options.headers);
        let outcome = tokio::time::timeout(options.timeout, answer).await;
        if let Some(slot) = lock(&self.slots).get(&key) {
            slot.touch();
        }
        match outcome {
            Ok(Ok(response)) => {
                guard.armed = false;
                lock(&self.health).record_healthy();
                Ok(response)
            }
            Ok(Err(_)) => {
                guard.armed = false;
                Err(UpstreamError::LinkLost {
                    server: self.config.name.to_string(),
                })
            }
            Err(_) => Err(UpstreamError::Timeout {
                server: self.config.name.to_string(),
                seconds: options.timeout.as_secs(),
            }),
        }
    }

    /// Sends a notification (for example `notifications/roots/list_changed`) to every
    /// running link.
    pub async fn notify(&self, message: Value) {
        for link in self.slots().iter().filter_map(|slot| slot.live()) {
            let mut message = message.clone();
            if !link.info.era.is_modern() {
                era::strip_envelope_meta(&mut message);
            }
            link.mux.send(message);
        }
    }

    /// Stops every link.
    pub async fn shutdown(&self) {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).drain().map(|(_, slot)| slot).collect();
        for slot in slots {
            let link = slot.link.lock().await.take();
            if let Some(link) = link {
                link.shutdown().await;
            }
        }
    }

    /// Stops links that have had no call in flight for longer than the adaptive idle period.
    /// Returns how many were stopped.
    pub async fn stop_idle(&self) -> usize {
        if self.config.lifecycle.always_on {
            return 0;
        }
        let period = lock(&self.activity).idle_period(&self.config.lifecycle, Instant::now());
        let idle: Vec<(LinkKey, Arc<Slot>)> = lock(&self.slots)
            .iter()
            .filter(|(_, slot)| slot.idle_for() >= period)
            .map(|(key, slot)| (key.clone(), Arc::clone(slot)))
            .collect();
        let mut stopped = 0;
        for (key, slot) in idle {
            let mut guard = slot.link.lock().await;
            let quiet = guard.as_ref().is_none_or(|link| link.mux.in_flight() == 0);
            if !quiet || slot.idle_for() < period {
                continue;
            }
            if let Some(link) = guard.take() {
                tracing::info!(server = %self.config.name, ?key, idle_secs = period.as_secs(), "stopping idle server");
                link.shutdown().await;
                stopped += 1;
            }
            drop(guard);
            lock(&self.slots).remove(&key);
        }
        stopped
    }

    async fn live_link(
        &self,
        key: &LinkKey,
        requester: &Requester,
    ) -> Result<Arc<Link>, UpstreamError> {
        let slot = {
            let mut slots = lock(&self.slots);
            if !slots.contains_key(key) && slots.len() >= self.config.lifecycle.max_processes {
                return Err(UpstreamError::StartFailed {
                    server: self.config.name.to_string(),
                    reason: format!(
                        "it already runs its maximum of {} processes; raise `max_processes` or wait for idle ones to stop",
                        self.config.lifecycle.max_processes
                    ),
                });
            }
            Arc::clone(slots.entry(key.clone()).or_insert_with(|| {
                Arc::new(Slot {
                    link: Mutex::new(None),
                    last_used: std::sync::Mutex::new(Instant::now()),
                })
            }))
        };
        let mut guard = slot.link.lock().await;
        if let Some(link) = guard.as_ref().filter(|link| link.is_alive()) {
            if self.holds_current_credentials(link, key, requester).await {
                return Ok(Arc::clone(link));
            }
            // A credential it was started with was rotated or removed: new calls go to a new
            // process; this one finishes the calls it has, then stops.
            if let Some(old) = guard.take() {
                tracing::info!(server = %self.config.name, ?key, "credential changed; replacing the process once its calls finish");
                self.retire(old);
            }
        }
        if let Some(old) = guard.take() {
            // The link died under us: that counts against the server's health.
            lock(&self.health).record_crash(
                &format!("server `{}` exited", self.config.name),
                Instant::now(),
            );
            old.shutdown().await;
        }
        // Credentials first: a person without their credential is no fault of the server's.
        let launch = self.prepare(key, requester).await?;
        lock(&self.health)
            .may_start(Instant::now())
            .map_err(|reason| UpstreamError::StartFailed {
                server: self.config.name.to_string(),
                reason,
            })?;
        self.starting.fetch_add(1, Ordering::Relaxed);
        let started = self.start(launch).await;
        self.starting.fetch_sub(1, Ordering::Relaxed);
        match started {
            Ok(link) => {
                lock(&self.health).record_success();
                self.generation.fetch_add(1, Ordering::Relaxed);
                slot.touch();
                *guard = Some(Arc::clone(&link));
                Ok(link)
            }
            Err(error) => {
                lock(&self.health).record_failure(&error.to_string(), Instant::now());
                Err(error)
            }
        }
    }

    /// Whether a running link's credentials are still the current ones. Cheap unless a
    /// credential changed since the last check.
    async fn holds_current_credentials(
        &self,
        link: &Link,
        key: &LinkKey,
        requester: &Requester,
    ) -> bool {
        let generation = self.credentials.generation();
        if link.credentials.is_empty() || link.confirmed.load(Ordering::Relaxed) == generation {
            return true;
        }
        let current = match self.prepare(key, requester).await {
            Ok(Launch::Stdio { used, .. }) => used,
            Ok(Launch::Http { .. }) => return true,
            Err(_) => return false,
        };
        let same = current == link.credentials;
        if same {
            link.confirmed.store(generation, Ordering::Relaxed);
        }
        same
    }

    /// Lets a replaced link finish its calls in flight (up to the call deadline), then stops it.
    fn retire(&self, link: Arc<Link>) {
        let deadline = Instant::now() + self.call_timeout;
        tokio::spawn(async move {
            // A call that took this link just before it was replaced registers on it without
            // waiting; the grace lets it do so before the link is found idle.
            tokio::time::sleep(RETIRE_GRACE).await;
            while link.mux.in_flight() > 0 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            link.shutdown().await;
        });
    }

    /// Fills in the credentials a new link for `key` takes.
    async fn prepare(&self, key: &LinkKey, requester: &Requester) -> Result<Launch, UpstreamError> {
        let server = self.config.name.to_string();
        let user = link_user(key, requester);
        let missing =
            |error: crate::credentials::CredentialError| UpstreamError::MissingCredential {
                server: server.clone(),
                reason: error.message,
                sign_in: error.sign_in,
            };
        let source = self.credentials.as_ref();
        match &self.config.transport {
            Transport::Stdio { args, env, .. } => {
                let mut used = Vec::new();
                let mut filled_args = Vec::with_capacity(args.len());
                for arg in args {
                    let rendered = render(arg, source, user).await.map_err(&missing)?;
                    used.extend(rendered.used);
                    filled_args.push(rendered.value);
                }
                let mut filled_env = std::collections::BTreeMap::new();
                for (name, value) in env {
                    let rendered = render(value, source, user).await.map_err(&missing)?;
                    used.extend(rendered.used);
                    filled_env.insert(name.clone(), rendered.value);
                }
                used.sort();
                used.dedup();
                Ok(Launch::Stdio {
                    args: filled_args,
                    env: filled_env,
                    used,
                })
            }
            Transport::Http { headers, .. } => {
                // Filled in again on every request; checked here so a missing one is reported
                // before anything starts.
                for value in headers.values().filter(|value| value.has_secrets()) {
                    render(value, source, user).await.map_err(&missing)?;
                }
                if let Some(oauth) = source.access_tokens(self.config.name.as_str()) {
                    oauth
                        .token(user, requester.subject_token.as_ref())
                        .await
                        .map_err(&missing)?;
                }
                Ok(Launch::Http {
                    user: user.map(str::to_owned),
                    subject_token: requester.subject_token.clone(),
                })
            }
        }
    }

    async fn start(&self, launch: Launch) -> Result<Arc<Link>, UpstreamError> {
        let server = self.config.name.to_string();
        let start_failed = |reason: String| UpstreamError::StartFailed {
            server: server.clone(),
            reason,
        };
        let (outbound_sender, outbound) = mpsc::unbounded_channel();
        let mux = Mux::new(
            &server,
            outbound_sender,
            self.notifications.clone(),
            self.call_timeout,
            Arc::clone(self.credentials.scrubber()),
        );
        let mut credentials = Vec::new();
        let wire = match (&self.config.transport, launch) {
            (Transport::Stdio { command, cwd, .. }, Launch::Stdio { args, env, used }) => {
                let spec = stdio::StdioCommand {
                    command,
                    args,
                    env,
                    cwd: cwd.as_deref(),
                };
                let wire = stdio::StdioWire::spawn(
                    &server,
                    &spec,
                    &mux,
                    outbound,
                    self.credentials.scrubber(),
                )
                .map_err(|error| start_failed(format!("`{command}` did not start: {error}")))?;
                credentials = used;
                Wire::Stdio(wire)
            }
            (
                Transport::Http { url, headers },
                Launch::Http {
                    user,
                    subject_token,
                },
            ) => {
                let wire = http::HttpWire::new(
                    &server,
                    self.http_client.clone(),
                    url,
                    headers,
                    (Arc::clone(&self.credentials), user, subject_token),
                    &mux,
                    outbound,
                )
                .map_err(start_failed)?;
                Wire::Http(wire)
            }
            _ => {
                return Err(start_failed(
                    "its transport changed while it was starting".to_owned(),
                ));
            }
        };
        let placeholder = ServerInfo {
            era: Era::Modern,
            capabilities: json!({}),
            implementation: json!({}),
            instructions: None,
        };
        let mut link = Link {
            info: placeholder,
            mux,
            wire,
            confirmed: AtomicU64::new(self.credentials.generation()),
            credentials,
        };
        let known = self
            .known_era
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let info = match known {
            Some(Era::Legacy(_)) => self.initialize(&link).await,
            _ => match self.discover(&link).await {
                Some(info) => Ok(info),
                None => self.initialize(&link).await,
            },
        };
        let info = match info {
            Ok(info) => info,
            Err(error) => {
                link.shutdown().await;
                return Err(error);
            }
        };
        tracing::info!(%server, era = info.era.version(), "upstream started");
        *self
            .known_era
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(info.era.clone());
        if let Wire::Http(wire) = &link.wire {
            wire.set_protocol_version(info.era.version());
            if !info.era.is_modern() {
                wire.open_listen_stream(&link.mux);
            }
        }
        link.info = info;
        let link = Arc::new(link);
        if link.info.era.is_modern() {
            self.listen_for_changes(&link);
        }
        Ok(link)
    }

    /// Opens the gateway's own `subscriptions/listen` stream to a 2026-07-28 server for the
    /// list changes it announces, and feeds them to [`Upstream::notifications`]. Legacy servers
    /// send these notifications unasked.
    fn listen_for_changes(&self, link: &Arc<Link>) {
        let announces = |kind: &str| {
            link.info
                .capabilities
                .pointer(&format!("/{kind}/listChanged"))
                == Some(&Value::Bool(true))
        };
        let filter = json!({
            "toolsListChanged": announces("tools"),
            "promptsListChanged": announces("prompts"),
            "resourcesListChanged": announces("resources"),
        });
        if !(announces("tools") || announces("prompts") || announces("resources")) {
            return;
        }
        let mut message = jsonrpc::request(
            json!(0),
            "subscriptions/listen",
            Some(json!({"notifications": filter})),
        );
        adapt_to_era(
            &mut message,
            &Era::Modern,
            &CallOptions::internal(self.call_timeout),
        );
        let (events, mut incoming) = mpsc::channel(64);
        let (id, ended) = link.mux.register_background(&mut message, events);
        link.send_request(id, message, Vec::new());
        let notifications = self.notifications.clone();
        tokio::spawn(async move {
            // The stream ends when the link does: the table is drained and `events` dropped.
            while let Some(event) = incoming.recv().await {
                if let UpstreamEvent::Notification(message) = event {
                    let _ = notifications.send(message);
                }
            }
            drop(ended);
        });
    }

    /// Probes with `server/discover`; `None` means the server is legacy (any error or silence).
    async fn discover(&self, link: &Link) -> Option<ServerInfo> {
        let mut message = jsonrpc::request(json!(0), "server/discover", Some(json!({})));
        adapt_to_era(
            &mut message,
            &Era::Modern,
            &CallOptions::internal(DISCOVER_TIMEOUT),
        );
        let response = self
            .handshake_call(link, message, DISCOVER_TIMEOUT)
            .await
            .ok()?;
        let result = response.get("result")?;
        let supported = result.get("supportedVersions")?.as_array()?;
        if !supported.iter().any(|v| v.as_str() == Some(MODERN_VERSION)) {
            return None;
        }
        let implementation = result
            .pointer("/_meta")
            .and_then(|meta| meta.get(era::META_SERVER_INFO))
            .or_else(|| result.get("serverInfo"));
        Some(ServerInfo::from_result(Era::Modern, result, implementation))
    }

    async fn initialize(&self, link: &Link) -> Result<ServerInfo, UpstreamError> {
        let server = self.config.name.to_string();
        let params = json!({
            "protocolVersion": LATEST_LEGACY_VERSION,
            "capabilities": {
                "sampling": {},
                "elicitation": {"form": {}, "url": {}},
                "roots": {"listChanged": true}
            },
            "clientInfo": {"name": GATEWAY_CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")}
        });
        let message = jsonrpc::request(json!(0), "initialize", Some(params));
        let response = self
            .handshake_call(link, message, HANDSHAKE_TIMEOUT)
            .await?;
        let Some(result) = response.get("result") else {
            let reason = response
                .pointer("/error/message")
                .and_then(Value::as_str)
                .unwrap_or("it answered initialize with an error")
                .to_owned();
            return Err(UpstreamError::StartFailed { server, reason });
        };
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(LATEST_LEGACY_VERSION)
            .to_owned();
        if !era::is_legacy_version(&version) {
            return Err(UpstreamError::StartFailed {
                server,
                reason: format!(
                    "it asked for protocol version `{version}`, which the gateway does not speak"
                ),
            });
        }
        if let Wire::Http(wire) = &link.wire {
            wire.set_protocol_version(&version);
        }
        // Delivered before anything else is sent: over HTTP a notification otherwise travels
        // on its own POST, and a server that registers tools once initialized would answer
        // the first listing before it has them.
        let initialized = jsonrpc::notification("notifications/initialized", json!({}));
        match &link.wire {
            Wire::Http(wire) => wire.deliver(&initialized, &link.mux).await,
            Wire::Stdio(_) => link.mux.send(initialized),
        }
        Ok(ServerInfo::from_result(
            Era::Legacy(version),
            result,
            result.get("serverInfo"),
        ))
    }

    async fn handshake_call(
        &self,
        link: &Link,
        mut message: Value,
        limit: Duration,
    ) -> Result<Value, UpstreamError> {
        let server = self.config.name.to_string();
        let (id, answer) = link.mux.register(&mut message, None, None);
        link.send_request(id, message, Vec::new());
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(UpstreamError::StartFailed {
                server,
                reason: "it exited during the handshake".to_owned(),
            }),
            Err(_) => {
                link.mux.forget(id);
                Err(UpstreamError::StartFailed {
                    server,
                    reason: format!(
                        "it did not answer the handshake within {} s",
                        limit.as_secs()
                    ),
                })
            }
        }
    }
}

impl CallOptions {
    /// Options for the gateway's own calls (listing, probing): no client attached.
    pub fn internal(timeout: Duration) -> Self {
        Self {
            events: None,
            owner: None,
            client_capabilities: json!({}),
            log_level: None,
            timeout,
            headers: Vec::new(),
            requester: Requester::default(),
        }
    }
}

/// Fits a request to the upstream's era: 2026-07-28 servers need the envelope in `_meta`, older
/// servers must not see it.
fn adapt_to_era(message: &mut Value, era: &Era, options: &CallOptions) {
    match era {
        Era::Modern => {
            if let Some(meta) = jsonrpc::meta_mut(message) {
                meta.insert(era::META_PROTOCOL_VERSION.to_owned(), json!(MODERN_VERSION));
                meta.insert(
                    era::META_CLIENT_CAPABILITIES.to_owned(),
                    options.client_capabilities.clone(),
                );
                meta.insert(
                    era::META_CLIENT_INFO.to_owned(),
                    json!({"name": GATEWAY_CLIENT_NAME, "version": env!("CARGO_PKG_VERSION")}),
                );
                match &options.log_level {
                    Some(level) => {
                        meta.insert(era::META_LOG_LEVEL.to_owned(), json!(level));
                    }
                    None => {
                        meta.remove(era::META_LOG_LEVEL);
                    }
                }
            }
        }
        Era::Legacy(_) => era::strip_envelope_meta(message),
    }
}

/// What a new link is started with: the filled-in command line of a stdio server, or the
/// person an HTTP link fills its credential headers for.
enum Launch {
    Stdio {
        args: Vec<secrecy::SecretString>,
        env: std::collections::BTreeMap<String, secrecy::SecretString>,
        used: Vec<CredentialUse>,
    },
    Http {
        user: Option<String>,
        subject_token: Option<Arc<secrecy::SecretString>>,
    },
}

/// The person a link serves: its key's user, or the caller of a per-session link.
fn link_user<'a>(key: &'a LinkKey, requester: &'a Requester) -> Option<&'a str> {
    match key {
        LinkKey::Shared => None,
        LinkKey::User(user) => Some(user),
        LinkKey::Session(_) => requester.user.as_deref(),
    }
}

/// Cancels the upstream call if the caller stops waiting (timeout, or the client went away).
struct CancelOnDrop {
    link: Arc<Link>,
    id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.link.cancel(self.id, "the client stopped waiting");
        }
    }
}
