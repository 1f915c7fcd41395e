//! The Gatehouse HTTP server: one Streamable HTTP MCP endpoint (`/mcp`) in front of every
//! configured upstream, serving legacy clients (initialize, `Mcp-Session-Id`, GET stream,
//! DELETE) and 2026-07-28 clients (stateless requests, `server/discover`,
//! `subscriptions/listen`) side by side.
//!
//! Entry points: [`Gateway::new`] builds the state from a validated configuration and
//! [`serve`] runs it on a listener until the shutdown future resolves.

pub mod audit;
pub mod audit_log;
mod catalogs;
pub mod credentials;
mod dispatch;
mod envelope;
mod error;
mod http_api;
pub mod identity;
mod listen;
pub mod oauth;
pub mod otlp;
mod pages;
mod parked;
pub mod policy;
mod relay;
pub mod retention;
mod revocation;
mod session;
mod strict_json;

use std::sync::Arc;
use std::time::Duration;

use gatehouse_config::{Config, GatewaySettings};
use gatehouse_mcp::hub::Hub;
use serde_json::{Value, json};

pub use error::GatewayError;

/// How long a call parked for a client's answer waits before it is cancelled.
const PARKED_CALL_LIMIT: Duration = Duration::from_secs(300);
pub use session::SessionTable;

/// The gateway's shared state.
pub struct Gateway {
    hub: Arc<Hub>,
    identity: identity::Identity,
    policy: policy::PolicyGate,
    audit: audit::Audit,
    credentials: Arc<credentials::Credentials>,
    store: gatehouse_store::Store,
    /// How long receipts are kept (`[audit] retain_days`); `None` keeps them forever.
    retention: Option<Duration>,
    streams: revocation::StreamRegistry,
    sessions: Arc<SessionTable>,
    settings: GatewaySettings,
    server_info: Value,
    instructions: Option<String>,
    closing: tokio_util::sync::CancellationToken,
    parked: parked::ParkedCalls,
}

impl Gateway {
    /// Builds the gateway for a configuration, its store, identity layer, policy, audit trail
    /// and credentials; starts no upstream.
    pub fn new(
        config: &Config,
        store: gatehouse_store::Store,
        identity: identity::Identity,
        policy: policy::PolicyGate,
        audit: audit::Audit,
        credentials: Arc<credentials::Credentials>,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub: Hub::new(config, Arc::clone(&credentials) as _),
            identity,
            policy,
            audit,
            credentials,
            store,
            retention: match &config.audit {
                gatehouse_config::AuditSettings::Receipts(receipts) => receipts.retention,
                gatehouse_config::AuditSettings::Off => None,
            },
            streams: revocation::StreamRegistry::default(),
            sessions: SessionTable::new(config.gateway.session_idle),
            settings: config.gateway.clone(),
            server_info: json!({"name": "gatehouse", "title": "Gatehouse", "version": env!("CARGO_PKG_VERSION")}),
            instructions: None,
            closing: tokio_util::sync::CancellationToken::new(),
            parked: parked::ParkedCalls::default(),
        })
    }

    /// The upstream hub.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// Replaces the policy in force (after a reload validated the new one).
    pub fn replace_policy(&self, policy: gatehouse_policy::PolicySet) {
        self.policy.replace(policy);
    }

    /// The live legacy sessions.
    pub fn sessions(&self) -> &Arc<SessionTable> {
        &self.sessions
    }
}

/// Serves the gateway on `listener` until `shutdown` resolves, then records the refusals still
/// being counted and stops every upstream. Meanwhile the counts of refusal windows that ended
/// are recorded every second and, with `[audit] retain_days`, old receipts are pruned (see
/// [`retention`]).
pub async fn serve(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let reaper = {
        let sessions = Arc::clone(&gateway.sessions);
        let gateway_for_reaper = Arc::clone(&gateway);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(30));
            loop {
                tick.tick().await;
                sessions.reap_idle();
                gateway_for_reaper.parked.sweep(PARKED_CALL_LIMIT);
            }
        })
    };
    let counted_refusals = {
        let gateway = Arc::clone(&gateway);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            // Stopped between rounds, never inside one, so no count taken is lost.
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = gateway.closing.cancelled() => break,
                }
                gateway.audit.record_counted_refusals(false).await;
            }
        })
    };
    let pruner = gateway
        .retention
        .map(|keep| tokio::spawn(retention::prune_periodically(Arc::clone(&gateway), keep)));
    gateway.load_catalogs().await;
    let persister = tokio::spawn(catalogs::persist(Arc::clone(&gateway)));
    let watcher = tokio::spawn(revocation::watch(Arc::clone(&gateway)));
    let router = http_api::router(Arc::clone(&gateway));
    let closing = {
        let gateway = Arc::clone(&gateway);
        async move {
            shutdown.await;
            // Long-lived streams would hold the graceful shutdown open forever: end them.
            gateway.closing.cancel();
            for session in gateway.sessions.all() {
                gateway.sessions.remove(&session.id);
            }
        }
    };
    // Small SSE writes must not wait for the client's delayed ACK (Nagle): no delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let result = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(closing)
    .await;
    reaper.abort();
    watcher.abort();
    persister.abort();
    // Also when the server stopped on an error rather than on the shutdown signal.
    gateway.closing.cancel();
    let _ = counted_refusals.await;
    if let Some(pruner) = pruner {
        pruner.abort();
    }
    // No request is served any more: every count still open goes on the record.
    gateway.audit.record_counted_refusals(true).await;
    gateway.hub.shutdown().await;
    result
}
