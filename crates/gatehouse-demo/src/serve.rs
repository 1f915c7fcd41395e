//! Running a server handler over stdio or over Streamable HTTP.

use std::sync::Arc;

use rmcp::{
    ServerHandler, ServiceExt,
    transport::{
        StreamableHttpServerConfig, StreamableHttpService,
        streamable_http_server::session::local::LocalSessionManager,
    },
};
use tokio::net::TcpListener;

/// The HTTP path at which both servers serve MCP.
pub const MCP_PATH: &str = "/mcp";

/// Browser origins accepted on HTTP requests that carry an `Origin` header.
///
/// The servers only ever listen on loopback, so only loopback pages may call them; a
/// request from any other origin is refused with 403 (DNS-rebinding protection). The
/// `Host` header is checked against loopback names by rmcp's default configuration.
const LOOPBACK_ORIGINS: [&str; 3] = ["http://localhost:*", "http://127.0.0.1:*", "http://[::1]:*"];

pub(crate) async fn serve_stdio<H: ServerHandler>(handler: H) -> anyhow::Result<()> {
    // `stdio_pipes` drives stdin and stdout through the IO reactor when they are pipes,
    // as they are when a gateway launches the server, instead of a blocking thread per
    // read and write.
    let running = handler.serve(rmcp::transport::stdio_pipes()).await?;
    running.waiting().await?;
    Ok(())
}

pub(crate) async fn serve_http<H, F>(listener: TcpListener, make_handler: F) -> anyhow::Result<()>
where
    H: ServerHandler,
    F: Fn() -> H + Send + Sync + 'static,
{
    // Legacy clients (those that send `initialize`) get a session; requests carrying
    // 2026-07-28 `_meta` are always served statelessly by rmcp, whatever this says.
    // A JSON body is preferred for stateless replies that carry no notifications; rmcp
    // switches to an event stream as soon as a handler emits progress or logs.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(true)
        .with_json_response(true)
        .with_allowed_origins(LOOPBACK_ORIGINS);
    let service = StreamableHttpService::new(
        move || Ok(make_handler()),
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let router = axum::Router::new().nest_service(MCP_PATH, service);
    // Small SSE writes must not wait for the client's delayed ACK (Nagle): no delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router).await?;
    Ok(())
}
