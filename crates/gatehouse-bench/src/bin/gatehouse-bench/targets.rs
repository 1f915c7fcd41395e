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
    /// just `demo` when there is one), all reached the same way, anonymous (no `[auth]`, no
    /// grants). Audit receipts are on (the default), in the SQLite store beside the
    /// configuration.
    pub fn start_gatehouse(
        &self,
        name: &str,
        upstream: &Upstream<'_>,
        servers: usize,
    ) -> Result<Running> {
        let folder = self.fresh_folder(name)?;
        let server_names = server_names(servers);
        let mut config = String::from("[gateway]\nlisten = \"127.0.0.1:0\"\n");
        config.push_str(&self.servers_config(&server_names, upstream));
        let config_path = write_config(&folder, &config)?;
        self.serve(name, &config_path, &server_names[0], Vec::new())
    }

    /// Starts an anonymous Gatehouse (no `[auth]`, no grants) in front of one demo server,
    /// with `extra` (an `[audit]` or `[store]` table) added to its configuration.
    pub fn start_anonymous_with(
        &self,
        name: &str,
        upstream: &Upstream<'_>,
        extra: &str,
    ) -> Result<Running> {
        let folder = self.fresh_folder(name)?;
        let server_names = server_names(1);
        let mut config = format!("[gateway]\nlisten = \"127.0.0.1:0\"\n\n{extra}");
        config.push_str(&self.servers_config(&server_names, upstream));
        let config_path = write_config(&folder, &config)?;
        self.serve(name, &config_path, &server_names[0], Vec::new())
    }

    /// Starts Gatehouse in front of one demo server with the governance path on: an API key
    /// issued by the CLI to the user `bench` on every request, a grant that lets that user
    /// call the demo's read-only tools, and audit receipts (on by default: intents durable
    /// in the store before forwarding, fail-closed).
    pub fn start_governed(&self, name: &str, upstream: &Upstream<'_>) -> Result<Running> {
        let folder = self.fresh_folder(name)?;
        let pepper = folder.join("pepper");
        write_private(&pepper, &random_hex(32)?)?;
        let server_names = server_names(1);
        let mut config = format!(
            "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth.api_keys]\npepper_file = {}\n\n{GRANT}",
            toml_string(&pepper.to_string_lossy())
        );
        config.push_str(&self.servers_config(&server_names, upstream));
        let config_path = write_config(&folder, &config)?;
        self.gatehouse_cli(&config_path, &["user", "add", BENCH_USER])?;
        let issued = self.gatehouse_cli(&config_path, &["key", "issue", BENCH_USER])?;
        // `key issue` prints what it did, then the key alone on the next line.
        let key = issued
            .lines()
            .map(str::trim)
            .find(|line| line.starts_with("gh_"))
            .with_context(|| format!("no key in the output of `key issue`: {issued}"))?
            .to_owned();
        let headers = vec![("Authorization".to_owned(), format!("Bearer {key}"))];
        self.serve(name, &config_path, &server_names[0], headers)
    }

    /// A `[servers.NAME]` table for each name, reaching the demo server through `upstream`.
    fn servers_config(&self, server_names: &[String], upstream: &Upstream<'_>) -> String {
        let mut config = String::new();
        for server in server_names {
            config.push_str(&format!("\n[servers.{server}]\n"));
            match upstream {
                Upstream::Http(url) => config.push_str(&format!("url = {}\n", toml_string(url))),
                Upstream::Stdio => config.push_str(&format!(
                    "command = {}\nargs = [\"demo-server\"]\n",
                    toml_string(&self.gatehouse.to_string_lossy())
                )),
            }
        }
        config
    }

    /// An empty folder `<logs>/<name>` for one gateway's configuration and store, so no run
    /// inherits the receipts, users or keys of the one before.
    fn fresh_folder(&self, name: &str) -> Result<PathBuf> {
        let folder = self.logs.join(name);
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .with_context(|| format!("cannot empty {}", folder.display()))?;
        }
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("cannot create {}", folder.display()))?;
        Ok(folder)
    }

    /// Runs one `gatehouse --config FILE ...` command to its end and returns what it printed.
    fn gatehouse_cli(&self, config: &Path, args: &[&str]) -> Result<String> {
        let output = std::process::Command::new(&self.gatehouse)
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .with_context(|| format!("cannot run {}", self.gatehouse.display()))?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "`gatehouse {}` failed ({}): {}{}",
                args.join(" "),
                output.status,
                stdout.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(stdout)
    }

    /// Starts `gatehouse serve` on `config` and waits for its address.
    fn serve(
        &self,
        name: &str,
        config: &Path,
        first_server: &str,
        headers: Vec<(String, String)>,
    ) -> Result<Running> {
        let mut process = Spawned::start(
            Launch {
                name,
                program: &self.gatehouse,
                args: vec![
                    "serve".to_owned(),
                    "--config".to_owned(),
                    config.to_string_lossy().into_owned(),
                ],
                env: Vec::new(),
                cwd: None,
            },
            &self.logs,
        )?;
        let url = process.wait_for_url("gatehouse listening on", START_TIMEOUT)?;
        Ok(Running {
            url,
            headers,
            tool: format!("{first_server}__echo"),
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

/// The user the governed gateways issue their API key to.
const BENCH_USER: &str = "bench";

/// The governed gateways' only grant: the bench user may call the demo's read-only tools
/// (echo is one).
const GRANT: &str =
    "[[grant]]\nid = \"bench\"\nto = [\"user:bench\"]\ntools = [\"demo__*\"]\naccess = \"read\"\n";

/// `demo` for one server, `s01`, `s02`, ... for several.
fn server_names(servers: usize) -> Vec<String> {
    if servers == 1 {
        vec!["demo".to_owned()]
    } else {
        (1..=servers).map(|n| format!("s{n:02}")).collect()
    }
}

/// Writes `gatehouse.toml` into `folder` (the store, `gatehouse.db`, goes beside it).
fn write_config(folder: &Path, text: &str) -> Result<PathBuf> {
    let path = folder.join("gatehouse.toml");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `bytes` random bytes from the system, as hexadecimal (twice as many characters).
fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read as _;
    let mut buffer = vec![0_u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut buffer))
        .context("cannot read /dev/urandom")?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A TOML basic string. JSON's escapes are a subset of TOML's, so a JSON string is one.
pub fn toml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A word for `sh -c`, quoted so spaces and quotes in paths survive.
pub fn shell_word(text: &Path) -> String {
    format!("'{}'", text.to_string_lossy().replace('\'', r"'\''"))
}
