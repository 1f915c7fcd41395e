//! The endpoints a benchmark loads: the canned responder, the demo server over HTTP, and
//! Gatehouse in front of the demo server over HTTP or over stdio. The other gateways are in
//! `peers.rs`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use gatehouse_bench::client::ClientOptions;
use gatehouse_bench::{Endpoint, Era, McpClient, PreparedCall};
use serde_json::json;

use crate::process::{Launch, Spawned, TreeMemory, process_tree, tree_cpu_seconds};

/// How long a Rust process may take to print its address.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Deadline for one probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Paths and the async runtime every step shares.
pub struct Context {
    /// The `gatehouse` binary.
    pub gatehouse: PathBuf,
    /// The `mcp-load` binary.
    pub mcp_load: PathBuf,
    /// Where the other gateways are installed (`.peers/bench`).
    pub peers: PathBuf,
    /// Where configurations and process logs of this run go.
    pub logs: PathBuf,
    /// Runs the probes and session openers in this process.
    pub runtime: tokio::runtime::Runtime,
}

/// A target that is up: its URL, what to send, and the processes that make it up.
pub struct Running {
    /// The MCP endpoint.
    pub url: String,
    /// Headers every request needs (a bearer token, for example).
    pub headers: Vec<(String, String)>,
    /// The echo tool's name as this target exposes it.
    pub tool: String,
    /// The processes whose memory is the target's, and which are ended with it.
    pub processes: Vec<Spawned>,
}

impl Running {
    /// Resident memory of every process of the target and their descendants.
    pub fn memory(&self) -> TreeMemory {
        let mut total = TreeMemory::default();
        for process in &self.processes {
            total.add(&process_tree(process.pid()));
        }
        total
    }

    /// CPU seconds used so far by every process of the target and their descendants.
    pub fn cpu_seconds(&self) -> f64 {
        self.processes
            .iter()
            .map(|process| tree_cpu_seconds(process.pid()))
            .sum()
    }

    /// Ends every process; returns descendants that had to be ended separately.
    pub fn stop(self) -> Vec<String> {
        self.processes.into_iter().flat_map(Spawned::stop).collect()
    }

    /// The endpoint, with the target's headers.
    pub fn endpoint(&self) -> Result<Arc<Endpoint>> {
        Ok(Endpoint::with_headers(&self.url, &self.headers)?)
    }
}

/// How Gatehouse reaches the demo server.
pub enum Upstream<'a> {
    /// Over Streamable HTTP at this URL.
    Http(&'a str),
    /// As a child process over stdio.
    Stdio,
}

impl Context {
    /// Starts this program's canned responder.
    pub fn start_canned(&self) -> Result<Running> {
        let program = std::env::current_exe().context("cannot find the runner's own binary")?;
        let mut process = Spawned::start(
            Launch {
                name: "canned",
                program: &program,
                args: vec!["canned".to_owned()],
                env: Vec::new(),
                cwd: None,
            },
            &self.logs,
        )?;
        let url = process.wait_for_url("listening on", START_TIMEOUT)?;
        Ok(Running {
            url,
            headers: Vec::new(),
            tool: "echo".to_owned(),
            processes: vec![process],
        })
    }

    /// Starts the demo server on Streamable HTTP.
    pub fn start_demo_http(&self) -> Result<Running> {
        let mut process = Spawned::start(
            Launch {
                name: "demo-http",
                program: &self.gatehouse,
                args: vec![
                    "demo-server".to_owned(),
                    "--http".to_owned(),
                    "127.0.0.1:0".to_owned(),
                ],
                env: Vec::new(),
                cwd: None,
            },
            &self.logs,
        )?;
        let url = process.wait_for_url("listening on", START_TIMEOUT)?;
        Ok(Running {
            url,
            headers: Vec::new(),
            tool: "echo".to_owned(),
            processes: vec![process],
        })
    }

    /// Starts Gatehouse with `servers` demo servers named `prefix01`, `prefix02`, ... (or
    /// just `demo` when there is one), all reached the same way.
    pub fn start_gatehouse(
        &self,
        name: &str,
        upstream: &Upstream<'_>,
        servers: usize,
    ) -> Result<Running> {
        let server_names: Vec<String> = if servers == 1 {
            vec!["demo".to_owned()]
        } else {
            (1..=servers).map(|n| format!("s{n:02}")).collect()
        };
        let mut config = String::from("[gateway]\nlisten = \"127.0.0.1:0\"\n");
        for server in &server_names {
            config.push_str(&format!("\n[servers.{server}]\n"));
            match upstream {
                Upstream::Http(url) => config.push_str(&format!("url = {}\n", toml_string(url))),
                Upstream::Stdio => config.push_str(&format!(
                    "command = {}\nargs = [\"demo-server\"]\n",
                    toml_string(&self.gatehouse.to_string_lossy())
                )),
            }
        }
        let path = self.logs.join(format!("{name}.toml"));
        std::fs::write(&path, config)
            .with_context(|| format!("cannot write {}", path.display()))?;
        let mut process = Spawned::start(
            Launch {
                name,
                program: &self.gatehouse,
                args: vec![
                    "serve".to_owned(),
                    "--config".to_owned(),
                    path.to_string_lossy().into_owned(),
                ],
                env: Vec::new(),
                cwd: None,
            },
            &self.logs,
        )?;
        let url = process.wait_for_url("gatehouse listening on", START_TIMEOUT)?;
        Ok(Running {
            url,
            headers: Vec::new(),
            tool: format!("{}__echo", server_names[0]),
            processes: vec![process],
        })
    }

    /// Checks that `target` answers a list and a call in `era`; finds the echo tool when the
    /// target's name for it is not known in advance.
    pub fn probe(&self, target: &mut Running, era: Era, find_tool: bool) -> Result<()> {
        let endpoint = target.endpoint()?;
        let known = target.tool.clone();
        let tool = self.runtime.block_on(async move {
            let options = ClientOptions {
                timeout: PROBE_TIMEOUT,
                ..ClientOptions::default()
            };
            let mut client = McpClient::new(endpoint, era, options);
            client.start().await?;
            let tools = client.list_tools().await?;
            let tool = if find_tool {
                tools
                    .iter()
                    .find(|name| *name == "echo")
                    .or_else(|| tools.iter().find(|name| name.ends_with("echo")))
                    .cloned()
                    .with_context(|| format!("no echo tool among {tools:?}"))?
            } else if tools.contains(&known) {
                known
            } else {
                bail!("`{known}` is not among the listed tools {tools:?}");
            };
            let call = PreparedCall::new(era, &tool, &json!({ "text": "probe" }))?;
            client.call(&call).await?;
            Ok::<_, anyhow::Error>(tool)
        })?;
        target.tool = tool;
        Ok(())
    }
}

/// A TOML basic string. JSON's escapes are a subset of TOML's, so a JSON string is one.
pub fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A word for `sh -c`, quoted so spaces and quotes in paths survive.
pub fn shell_word(text: &Path) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}
