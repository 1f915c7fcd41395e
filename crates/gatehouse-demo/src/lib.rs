//! Two small MCP servers written with `rmcp`, used to try Gatehouse and to test it.
//!
//! The *demo server* is what a new user meets first: an `echo` tool (also used for
//! benchmarks), an in-memory note book with read, write and destructive tools, a slow
//! counter that reports progress and honours cancellation, a readme resource, a resource
//! template, a prompt and argument completion.
//!
//! The *conformance fixture* implements every tool, resource and prompt that the official
//! MCP conformance suite calls in its server scenarios, including those of the tasks
//! extension (SEP-2663), so the suite can be run against the fixture directly or through
//! the gateway.
//!
//! Both servers run over stdio and over Streamable HTTP (at [`MCP_PATH`]), and both serve
//! the two protocol eras on the same endpoint: a client that opens with `initialize`
//! (2025-11-25 and older) gets a session, and a client that sends per-request `_meta`
//! (2026-07-28) is served statelessly. Where a tool needs input from the client, a
//! legacy peer is sent a real server-to-client request, while a modern peer receives an
//! `input_required` result and retries (see `fixture/ask.rs`).

#![forbid(unsafe_code)]

mod cli;
mod demo;
mod fixture;
mod serve;

pub use cli::{Listen, ServerKind, run};
pub use serve::MCP_PATH;

use tokio::net::TcpListener;

/// Serves the demo server over stdin and stdout until the client closes the stream.
///
/// Nothing but MCP messages is written to stdout.
pub async fn serve_demo_stdio() -> anyhow::Result<()> {
    serve::serve_stdio(demo::DemoServer::new()).await
}

/// Serves the demo server over Streamable HTTP at [`MCP_PATH`] on `listener`.
///
/// Returns only when the HTTP server fails. Notes are shared by every session and every
/// stateless request that this process serves.
pub async fn serve_demo_http(listener: TcpListener) -> anyhow::Result<()> {
    let server = demo::DemoServer::new();
    serve::serve_http(listener, move || server.clone()).await
}

/// Serves the conformance fixture over stdin and stdout until the client closes the stream.
///
/// Nothing but MCP messages is written to stdout.
pub async fn serve_fixture_stdio() -> anyhow::Result<()> {
    serve::serve_stdio(fixture::FixtureServer::new(fixture::Shared::new())).await
}

/// Serves the conformance fixture over Streamable HTTP at [`MCP_PATH`] on `listener`.
///
/// Each legacy session and each stateless request gets its own handler, so a log level
/// set with `logging/setLevel` stays within its session, while list-change triggers reach
/// every open `subscriptions/listen` stream of the process.
pub async fn serve_fixture_http(listener: TcpListener) -> anyhow::Result<()> {
    let shared = fixture::Shared::new();
    serve::serve_http(listener, move || {
        fixture::FixtureServer::new(shared.clone())
    })
    .await
}

/// Sends `tracing` output to stderr, filtered by `RUST_LOG` (default `warn`).
///
/// Meant for the two binaries: stdout belongs to the MCP stream in stdio mode.
pub fn init_stderr_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    // A second call (for example from a test harness) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
