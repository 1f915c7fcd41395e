//! `gatehouse-demo`: the demo MCP server bundled with Gatehouse.
//!
//! `gatehouse-demo` serves MCP over stdio; `gatehouse-demo --http 127.0.0.1:0` serves
//! Streamable HTTP and prints `listening on http://127.0.0.1:PORT/mcp` first.
//! Logs go to stderr and are filtered by `RUST_LOG` (default `warn`).

use gatehouse_demo::{Listen, ServerKind};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    gatehouse_demo::init_stderr_logging();
    let listen = Listen::from_args(std::env::args().skip(1))?;
    gatehouse_demo::run(ServerKind::Demo, listen).await
}
