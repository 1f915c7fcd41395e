//! The tiny command line shared by the `gatehouse-demo` and `conformance-fixture` binaries.

use std::net::SocketAddr;

use anyhow::{Context, bail};
use tokio::net::TcpListener;

/// Which of the two servers to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// The demo server (`echo`, notes, `slow_count`, a prompt and resources).
    Demo,
    /// The conformance fixture that the official conformance suite calls.
    ConformanceFixture,
}

/// Where a server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listen {
    /// MCP over stdin and stdout.
    Stdio,
    /// MCP over Streamable HTTP on this address, at [`crate::MCP_PATH`].
    Http(SocketAddr),
}

impl Listen {
    /// Reads the command line (without the program name): nothing means stdio, and
    /// `--http ADDR` (for example `--http 127.0.0.1:0`) means HTTP.
    pub fn from_args(args: impl IntoIterator<Item = String>) -> anyhow::Result<Self> {
        let mut args = args.into_iter();
        let Some(first) = args.next() else {
            return Ok(Self::Stdio);
        };
        let address = match first.as_str() {
            "--http" => args
                .next()
                .context("--http needs an address such as 127.0.0.1:0")?,
            other => match other.strip_prefix("--http=") {
                Some(address) => address.to_owned(),
                None => bail!("unknown argument {other:?}; usage: [--http ADDR]"),
            },
        };
        if let Some(extra) = args.next() {
            bail!("unexpected argument {extra:?}; usage: [--http ADDR]");
        }
        let address = address
            .parse()
            .with_context(|| format!("{address:?} is not an address such as 127.0.0.1:0"))?;
        Ok(Self::Http(address))
    }
}

/// Runs `server` as `listen` says until the client goes away (stdio) or forever (HTTP).
///
/// In HTTP mode exactly one line, `listening on http://HOST:PORT/mcp`, is printed to
/// stdout once the socket is bound, so a caller that asked for port 0 learns the port.
pub async fn run(server: ServerKind, listen: Listen) -> anyhow::Result<()> {
    match listen {
        Listen::Stdio => match server {
            ServerKind::Demo => crate::serve_demo_stdio().await,
            ServerKind::ConformanceFixture => crate::serve_fixture_stdio().await,
        },
        Listen::Http(address) => {
            let listener = TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address}"))?;
            let bound = listener.local_addr()?;
            println!("listening on http://{bound}{}", crate::MCP_PATH);
            match server {
                ServerKind::Demo => crate::serve_demo_http(listener).await,
                ServerKind::ConformanceFixture => crate::serve_fixture_http(listener).await,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Listen> {
        Listen::from_args(args.iter().map(|arg| (*arg).to_owned()))
    }

    #[test]
    fn command_line_selects_the_transport() -> anyhow::Result<()> {
        assert_eq!(parse(&[])?, Listen::Stdio);
        assert_eq!(
            parse(&["--http", "127.0.0.1:0"])?,
            Listen::Http("127.0.0.1:0".parse()?)
        );
        assert_eq!(
            parse(&["--http=127.0.0.1:9"])?,
            Listen::Http("127.0.0.1:9".parse()?)
        );
        assert!(parse(&["--http"]).is_err());
        assert!(parse(&["--http", "nowhere"]).is_err());
        assert!(parse(&["--stdio"]).is_err());
        assert!(parse(&["--http", "127.0.0.1:0", "more"]).is_err());
        Ok(())
    }
}
