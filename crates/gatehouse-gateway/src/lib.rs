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
mod dispatch;
mod envelope;
mod error;
mod http_api;
pub mod identity;
mod listen;
pub mod otlp;
mod pages;
mod parked;
pub mod policy;
mod relay;
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
    store: gatehouse_store::Store,
    streams: revocation::StreamRegistry,
    sessions: Arc<SessionTable>,
    settings: GatewaySettings,
    server_info: Value,
    instructions: Option<String>,
    closing: tokio_util::sync::CancellationToken,
    parked: parked::ParkedCalls,
}

impl Gateway {
    /// Builds the gateway for a configuration, its store and its identity layer; starts no
    /// upstream.
    pub fn new(
        config: &Config,
        store: gatehouse_store::Store,
        identity: identity::Identity,
        policy: policy::PolicyGate,
        audit: audit::Audit,
    ) -> Arc<Self> {
        Arc::new(Self {
            hub: Hub::new(config),
            identity,
            policy,
            audit,
            store,
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

/// Serves the gateway on `listener` until `shutdown` resolves, then stops every upstream.
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
    gateway.hub.shutdown().await;
    result
}
