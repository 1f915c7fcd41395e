//! A running gateway for tests: started from the built binary on 127.0.0.1 port 0 with a
//! config written to a temporary folder, and stopped by its pid when dropped.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The gatehouse binary under test.
pub fn gatehouse() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gatehouse"))
}

/// The conformance fixture binary, built in the same target folder.
pub fn fixture() -> PathBuf {
    let binary = gatehouse().with_file_name("conformance-fixture");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --workspace` first",
        binary.display()
    );
    binary
}

/// Writes a pepper into `dir` and returns a configuration with API keys on, followed by
/// `rest` (grants, servers).
pub fn keyed_config(dir: &Path, rest: &str) -> String {
    let pepper = dir.join("pepper");
    std::fs::write(
        &pepper,
        "a pepper of at least thirty-two bytes, for tests only",
    )
    .unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth.api_keys]\npepper_file = {:?}\n\n{rest}",
        pepper.display().to_string()
    );
    std::fs::write(dir.join("gatehouse.toml"), &config).unwrap();
    config
}

/// Processes whose parent is `pid`.
pub fn child_pids(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(candidate) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{candidate}/stat")) else {
            continue;
        };
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let parent = after_name
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if parent == Some(pid) {
            children.push(candidate);
        }
    }
    children.sort();
    children
}

/// A `[servers.NAME]` entry running the bundled demo server over stdio.
pub fn demo_server(name: &str) -> String {
    format!(
        "[servers.{name}]\ncommand = {:?}\nargs = [\"demo-server\"]\n",
        gatehouse().display().to_string()
    )
}

/// A gateway process.
pub struct Gateway {
    child: Child,
    pub url: String,
    dir: PathBuf,
    _owned: Option<tempfile::TempDir>,
    http: reqwest::blocking::Client,
}

impl Gateway {
    /// Starts a gateway whose config is `[gateway] listen = 127.0.0.1:0` plus `servers`.
    pub fn start(servers: &str) -> Self {
        Self::start_with("", servers)
    }

    /// Starts a gateway with extra `[gateway]` settings.
    pub fn start_with(gateway_settings: &str, servers: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("[gateway]\nlisten = \"127.0.0.1:0\"\n{gateway_settings}\n{servers}");
        let path = dir.path().to_owned();
        let mut gateway = Self::start_at(&path, &text);
        gateway._owned = Some(dir);
        gateway
    }

    /// Starts a gateway on `config_text`, written as `gatehouse.toml` in `dir`; the folder is
    /// left in place.
    pub fn start_in(dir: tempfile::TempDir, config_text: &str) -> Self {
        let path = dir.path().to_owned();
        let mut gateway = Self::start_at(&path, config_text);
        gateway._owned = Some(dir);
        gateway
    }

    /// Starts a gateway in a folder the caller owns.
    pub fn start_at(dir: &Path, config_text: &str) -> Self {
        let config = dir.join("gatehouse.toml");
        std::fs::write(&config, config_text).unwrap();
        let mut child = Command::new(gatehouse())
            .args(["serve", "--config"])
            .arg(&config)
            .env("GATEHOUSE_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("gateway.log")).unwrap())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(
            url.starts_with("http://127.0.0.1:"),
            "unexpected first line: {line:?}"
        );
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        Self {
            child,
            url,
            dir: dir.to_owned(),
            _owned: None,
            http,
        }
    }

    /// The gateway's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// The folder holding its configuration, store and log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// POSTs a message with extra headers; returns status, headers and the JSON-RPC response
    /// (for SSE answers: every message, the response last).
    pub fn post(&self, body: &str, headers: &[(&str, &str)]) -> Reply {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().unwrap();
        Reply::read(response)
    }

    /// Opens a legacy session; returns its id.
    pub fn initialize(&self, capabilities: Value) -> String {
        let body = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": capabilities,
            "clientInfo": {"name": "test", "version": "1"}}});
        let reply = self.post(&body.to_string(), &[]);
        assert_eq!(reply.status, 200, "{:?}", reply.messages);
        let session = reply.header("mcp-session-id").expect("a session id");
        self.post(
            r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
            &[("mcp-session-id", &session)],
        );
        session
    }

    /// Sends a legacy request inside a session.
    pub fn legacy(&self, session: &str, method: &str, params: Value) -> Reply {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        self.post(
            &body.to_string(),
            &[
                ("mcp-session-id", session),
                ("mcp-protocol-version", "2025-11-25"),
            ],
        )
    }

    /// Sends a well-formed 2026-07-28 request (envelope and headers filled in).
    pub fn modern(&self, method: &str, params: Value) -> Reply {
        let mut params = params;
        params["_meta"] = json!({
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {}
        });
        let name = params
            .get("name")
            .or_else(|| params.get("uri"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let mut headers = vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", method),
        ];
        if let Some(name) = &name {
            headers.push(("mcp-name", name.as_str()));
        }
        self.post(&body.to_string(), &headers)
    }

    /// Waits until `check` holds, for at most `limit`.
    pub fn eventually(&self, limit: Duration, mut check: impl FnMut() -> bool) -> bool {
        let start = Instant::now();
        while start.elapsed() < limit {
            if check() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP answer from the gateway.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Every JSON message in the body, in order (one for a JSON answer).
    pub messages: Vec<Value>,
}

impl Reply {
    fn read(response: reqwest::blocking::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        let text = response.text().unwrap_or_default();
        let messages = if sse {
            text.lines()
                .filter_map(|line| line.strip_prefix("data:"))
                .filter_map(|data| serde_json::from_str(data.trim()).ok())
                .collect()
        } else {
            serde_json::from_str(&text)
                .map(|v| vec![v])
                .unwrap_or_default()
        };
        Self {
            status,
            headers,
            messages,
        }
    }

    /// A response header.
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The final message.
    pub fn response(&self) -> &Value {
        self.messages.last().unwrap_or(&Value::Null)
    }

    /// The result, or a panic naming the error.
    pub fn result(&self) -> &Value {
        let response = self.response();
        assert!(
            response.get("result").is_some(),
            "expected a result, got status {} {response}",
            self.status
        );
        &response["result"]
    }

    /// The JSON-RPC error code, if any.
    pub fn error_code(&self) -> Option<i64> {
        self.response()
            .pointer("/error/code")
            .and_then(Value::as_i64)
    }
}

/// Runs `gatehouse ARGS` in `dir`; returns (success, stdout, stderr).
pub fn run_cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(gatehouse())
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// The variable that names the PostgreSQL server for tests, as in the store's tests.
pub const POSTGRES_URL_VARIABLE: &str = "GATEHOUSE_TEST_POSTGRES_URL";

/// Where a test's gateway keeps its state: the default SQLite file beside its configuration, or
/// a fresh schema of its own in the PostgreSQL server named by `GATEHOUSE_TEST_POSTGRES_URL`,
/// so that tests running at once never see each other's receipts. The schema is dropped when
/// this is dropped, unless the test failed (it is left to look at).
pub struct TestStore {
    postgres: Option<PostgresSchema>,
}

struct PostgresSchema {
    server_url: String,
    schema: String,
}

impl TestStore {
    /// The default SQLite store.
    pub fn sqlite() -> Self {
        Self { postgres: None }
    }

    /// A fresh PostgreSQL schema, or `None` (after saying so) when no server is configured
    /// outside CI. In CI a missing server fails the test: the PostgreSQL half must run there.
    pub fn postgres() -> Option<Self> {
        let server_url = match std::env::var(POSTGRES_URL_VARIABLE) {
            Ok(url) if !url.is_empty() => url,
            _ => {
                let in_ci = std::env::var("CI").is_ok_and(|value| !value.is_empty());
                assert!(
                    !in_ci,
                    "{POSTGRES_URL_VARIABLE} is not set, but CI is: the PostgreSQL half of the \
                     audit tests must run in CI. Start a server with `url=$(scripts/postgres start DIR)`, \
                     export {POSTGRES_URL_VARIABLE}=$url, and stop it with `scripts/postgres stop DIR`"
                );
                eprintln!(
                    "NOT RUN on PostgreSQL: {POSTGRES_URL_VARIABLE} is not set (start one with scripts/postgres)"
                );
                return None;
            }
        };
        let schema = format!("gatehouse_test_{}", uuid::Uuid::new_v4().simple());
        run_sql(&server_url, &format!("CREATE SCHEMA {schema}"));
        Some(Self {
            postgres: Some(PostgresSchema { server_url, schema }),
        })
    }

    /// The `[store]` table for a configuration, empty for the default SQLite file.
    pub fn config(&self) -> String {
        match &self.postgres {
            None => String::new(),
            Some(_) => format!(
                "\n[store]\nurl = {}\n",
                toml::Value::String(self.url(Path::new("")))
            ),
        }
    }

    /// The store's URL for a gateway configured in `dir`.
    pub fn url(&self, dir: &Path) -> String {
        match &self.postgres {
            None => format!("sqlite://{}", dir.join("gatehouse.db").display()),
            Some(postgres) => {
                let separator = if postgres.server_url.contains('?') {
                    '&'
                } else {
                    '?'
                };
                format!(
                    "{}{separator}options[search_path]={}",
                    postgres.server_url, postgres.schema
                )
            }
        }
    }

    /// Runs `statements` on the store behind the gateway's back, to tamper with it.
    pub fn tamper(&self, dir: &Path, statements: &str) {
        run_sql(&self.url(dir), statements);
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(postgres) = &self.postgres
            && !std::thread::panicking()
        {
            run_sql(
                &postgres.server_url,
                &format!("DROP SCHEMA {} CASCADE", postgres.schema),
            );
        }
    }
}

/// Runs `statements` on the database at `url`, on a runtime of its own.
fn run_sql(url: &str, statements: &str) {
    use sqlx::Connection;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let mut connection = sqlx::AnyConnection::connect(url)
            .await
            .unwrap_or_else(|error| panic!("connect to the test database: {error}"));
        sqlx::raw_sql(statements)
            .execute(&mut connection)
            .await
            .unwrap_or_else(|error| panic!("{statements}: {error}"));
        connection.close().await.unwrap();
    });
}

/// `on_both_stores! { name: helper; ... }` makes a module `name` with two tests, `sqlite` and
/// `postgres`, each running `helper(&TestStore)` on a store of its own.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident: $helper:ident;)*) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$helper(&$crate::support::TestStore::sqlite());
            }

            #[test]
            fn postgres() {
                if let Some(store) = $crate::support::TestStore::postgres() {
                    super::$helper(&store);
                }
            }
        }
    )*};
}
