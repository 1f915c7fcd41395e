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

/// Runs `gatehouse ARGS` in `dir` with `input` on its standard input.
pub fn run_cli_with_input(dir: &Path, args: &[&str], input: &str) -> (bool, String, String) {
    use std::io::Write as _;
    let mut child = Command::new(gatehouse())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A 2026-07-28 MCP server over HTTP on 127.0.0.1 port 0, written for tests of what reaches an
/// upstream: it records the head (request line and headers) of every request, and its one
/// tool, `whoami`, answers with the `Authorization` header it received. It serves at most
/// `limit` connections, one thread each, then its accept loop ends.
pub fn recording_upstream(limit: usize) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(limit) {
            let Ok(mut stream) = stream else { continue };
            let record = std::sync::Arc::clone(&record);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; header_of(&head, "content-length").parse().unwrap_or(0)];
                let _ = reader.read_exact(&mut body);
                let authorization = header_of(&head, "authorization");
                record.lock().unwrap().push(head);
                let request: Value = serde_json::from_slice(&body).unwrap_or_default();
                let result = match request["method"].as_str() {
                    Some("server/discover") => {
                        json!({"supportedVersions": ["2026-07-28"], "capabilities": {"tools": {}}, "serverInfo": {"name": "recording", "version": "1"}})
                    }
                    Some("tools/list") => {
                        json!({"tools": [{"name": "whoami", "inputSchema": {"type": "object"}, "annotations": {"readOnlyHint": true}}]})
                    }
                    Some("tools/call") => {
                        json!({"content": [{"type": "text", "text": format!("you sent {authorization}")}]})
                    }
                    _ => json!({}),
                };
                let answer =
                    json!({"jsonrpc": "2.0", "id": request["id"], "result": result}).to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
            });
        }
    });
    (url, seen)
}

/// The value of header `name` (lower case) in a recorded request head; `""` when absent.
pub fn header_of(head: &str, name: &str) -> String {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(header, _)| header.trim().eq_ignore_ascii_case(name))
        .map(|(_, value)| value.trim().to_owned())
        .unwrap_or_default()
}

/// What the authorization server written for the tests has seen.
#[derive(Debug, Default)]
pub struct TokenRequests {
    /// Every token request's form parameters, in order.
    pub forms: Vec<std::collections::BTreeMap<String, String>>,
    /// Every token request's `Authorization` header (the client's credentials), in order.
    pub authorizations: Vec<String>,
}

impl TokenRequests {
    /// How many token requests had this `grant_type`.
    pub fn count(&self, grant_type: &str) -> usize {
        self.forms
            .iter()
            .filter(|form| form.get("grant_type").map(String::as_str) == Some(grant_type))
            .count()
    }
}

/// An OAuth authorization server on 127.0.0.1 port 0, written for tests: `/authorize`
/// approves at once (a 302 back to `redirect_uri` with a code and the `state`), and `/token`
/// issues tokens for the client credentials, authorization code, refresh token and token
/// exchange grants.
/// Tokens from a code live 1 s (so they are refreshed at first use); later ones an hour.
/// Refresh tokens rotate and a used one is refused. It serves at most `limit` connections.
pub fn authorization_server(
    limit: usize,
) -> (String, std::sync::Arc<std::sync::Mutex<TokenRequests>>) {
    use std::io::{BufRead, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(TokenRequests::default()));
    let record = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let live_refresh = std::sync::Arc::new(std::sync::Mutex::new(Option::<String>::None));
        for stream in listener.incoming().take(limit) {
            let Ok(mut stream) = stream else { continue };
            let record = std::sync::Arc::clone(&record);
            let issued = std::sync::Arc::clone(&issued);
            let live_refresh = std::sync::Arc::clone(&live_refresh);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; header_of(&head, "content-length").parse().unwrap_or(0)];
                let _ = reader.read_exact(&mut body);
                let target = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                let decode = |text: &str| -> std::collections::BTreeMap<String, String> {
                    url::form_urlencoded::parse(text.as_bytes())
                        .into_owned()
                        .collect()
                };
                let reply = |stream: &mut std::net::TcpStream,
                             status: &str,
                             extra: &str,
                             body: &str| {
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
                        body.len()
                    );
                };
                if let Some(query) = target.strip_prefix("/authorize?") {
                    let query = decode(query);
                    let location = format!(
                        "{}?code=code-{}&state={}",
                        query["redirect_uri"],
                        issued.load(std::sync::atomic::Ordering::SeqCst),
                        query["state"]
                    );
                    reply(
                        &mut stream,
                        "302 Found",
                        &format!("Location: {location}\r\n"),
                        "",
                    );
                    return;
                }
                let form = decode(&String::from_utf8_lossy(&body));
                {
                    let mut record = record.lock().unwrap();
                    record.forms.push(form.clone());
                    record
                        .authorizations
                        .push(header_of(&head, "authorization"));
                }
                let n = issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                let answer = match form.get("grant_type").map(String::as_str) {
                    Some("client_credentials") => {
                        json!({"access_token": format!("service-token-{n}"), "token_type": "Bearer", "expires_in": 3600})
                    }
                    Some("authorization_code") => {
                        *live_refresh.lock().unwrap() = Some(format!("refresh-{n}"));
                        json!({"access_token": format!("person-token-{n}"), "token_type": "Bearer", "expires_in": 1, "refresh_token": format!("refresh-{n}")})
                    }
                    Some("refresh_token") => {
                        let mut live = live_refresh.lock().unwrap();
                        if live.as_deref() != form.get("refresh_token").map(String::as_str) {
                            reply(
                                &mut stream,
                                "400 Bad Request",
                                "",
                                r#"{"error":"invalid_grant"}"#,
                            );
                            return;
                        }
                        *live = Some(format!("refresh-{n}"));
                        json!({"access_token": format!("person-token-{n}"), "token_type": "Bearer", "expires_in": 3600, "refresh_token": format!("refresh-{n}")})
                    }
                    Some("urn:ietf:params:oauth:grant-type:token-exchange") => {
                        json!({"access_token": format!("exchanged-token-{n}"), "token_type": "Bearer", "expires_in": 3600,
                               "issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
                    }
                    _ => json!({"error": "unsupported_grant_type"}),
                };
                reply(&mut stream, "200 OK", "", &answer.to_string());
            });
        }
    });
    (base, seen)
}

/// An OIDC issuer on 127.0.0.1 port 0: a discovery document and a JWKS with one P-256 key,
/// served by a thread that answers a bounded number of connections.
pub struct Issuer {
    /// Its issuer URL.
    pub url: String,
    encoding: jsonwebtoken::EncodingKey,
}

impl Issuer {
    /// Starts it.
    pub fn start() -> Self {
        use p256::pkcs8::EncodePrivateKey as _;
        use std::io::{BufRead, BufReader, Write as _};
        let secret = p256::SecretKey::random(&mut rsa::rand_core::OsRng);
        let pem = secret.to_pkcs8_pem(p256::pkcs8::LineEnding::LF).unwrap();
        let encoding = jsonwebtoken::EncodingKey::from_ec_pem(pem.as_bytes()).unwrap();
        let mut jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, jsonwebtoken::Algorithm::ES256)
                .unwrap();
        jwk.common.key_id = Some("k1".to_owned());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let discovery = json!({"issuer": url, "jwks_uri": format!("{url}/jwks")}).to_string();
        let jwks = json!({"keys": [jwk]}).to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(32) {
                let Ok(mut stream) = stream else { continue };
                let mut request_line = String::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let _ = reader.read_line(&mut request_line);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let body = if request_line.contains("/jwks") {
                    &jwks
                } else {
                    &discovery
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Self { url, encoding }
    }

    /// A token with `claims`, signed with its key.
    pub fn token(&self, claims: &serde_json::Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("k1".to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
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
