//! `conformance-fixture`: the server that the official MCP conformance suite is run against.
//!
//! `conformance-fixture` serves MCP over stdio; `conformance-fixture --http 127.0.0.1:0`
//! serves Streamable HTTP and prints `listening on http://127.0.0.1:PORT/mcp` first.
//! Logs go to stderr and are filtered by `RUST_LOG` (default `warn`).

use gatehouse_demo::{Listen, ServerKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gatehouse_demo::init_stderr_logging();
    let listen = Listen::from_args(std::env::args().skip(1))?;
    gatehouse_demo::run(ServerKind::ConformanceFixture, listen).await
}
