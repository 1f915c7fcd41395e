//! The other gateways, installed by `scripts/bench install` into `.peers/bench/`, each started
//! in front of the demo server over stdio on 127.0.0.1:
//!
//! - `mcp-proxy` (PyPI): one stdio child shared by every session.
//! - `supergateway` (npm), `--stateful`: one stdio child per session. It has no host option
//!   and would listen on every interface, so a `--require` preload makes Node listen on
//!   127.0.0.1, and the runner refuses to go on if the port is open anywhere else.
//! - ContextForge (PyPI `mcp-contextforge-gateway`): its `translate` bridge runs the demo
//!   server and exposes it over Streamable HTTP; the gateway registers the bridge, and a
//!   virtual server with the echo tool is what the load reaches, with a bearer token.

use std::fs;
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use bytes::Bytes;
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::process::{Launch, Spawned, free_port};
use crate::targets::{Context, Running, shell_word};

/// Python gateways import a lot before they listen.
const PEER_START_TIMEOUT: Duration = Duration::from_secs(60);
/// ContextForge also migrates its database on first start.
const CONTEXTFORGE_START_TIMEOUT: Duration = Duration::from_secs(240);
/// Deadline for one ContextForge admin request (registering a gateway contacts it).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Makes every `listen` of a Node process use 127.0.0.1, whatever the program asks for.
const FORCE_LOOPBACK_JS: &str = r#"// Keeps every server of this Node process on 127.0.0.1.
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0]))) {
    const rest = args.slice(1).filter((a) => typeof a !== 'string');
    return listen.call(this, Number(args[0]), '127.0.0.1', ...rest);
  }
  if (args[0] && typeof args[0] === 'object' && 'port' in args[0]) {
    args[0] = Object.assign({}, args[0], { host: '127.0.0.1' });
  }
  return listen.apply(this, args);
};
"#;

impl Context {
    /// The installed version of a peer (`mcp-proxy`, `supergateway`, `contextforge`), or a
    /// note that it is not installed.
    pub fn peer_version(&self, peer: &str) -> String {
        let found = match peer {
            "mcp-proxy" => python_package_version(&self.peers.join("mcp-proxy"), "mcp_proxy-"),
            "contextforge" => python_package_version(
                &self.peers.join("contextforge"),
                "mcp_contextforge_gateway-",
            ),
            "supergateway" => {
                let manifest = self
                    .peers
                    .join("node/node_modules/supergateway/package.json");
                fs::read_to_string(manifest)
                    .ok()
                    .and_then(|text| serde_json::from_str::<Value>(&text).ok())
                    .and_then(|json| json.get("version")?.as_str().map(str::to_owned))
            }
            _ => None,
        };
        found.unwrap_or_else(|| "(not installed)".to_owned())
    }

    fn demo_command(&self) -> String {
        format!("{} demo-server", shell_word(&self.gatehouse))
    }

    fn installed(&self, path: PathBuf, what: &str) -> Result<PathBuf> {
        if path.exists() {
            Ok(path)
        } else {
            bail!(
                "{what} is not installed (`scripts/bench install`; see {})",
                self.peers.join("install.log").display()
            )
        }
    }

    /// Starts `mcp-proxy` in front of the demo server over stdio.
    pub fn start_mcp_proxy(&self) -> Result<Running> {
        let program = self.installed(self.peers.join("mcp-proxy/bin/mcp-proxy"), "mcp-proxy")?;
        let port = free_port()?;
        let mut process = Spawned::start(
            Launch {
                name: "mcp-proxy",
                program: &program,
                args: vec![
                    "--host".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                    "--log-level".to_owned(),
                    "WARNING".to_owned(),
                    "--".to_owned(),
                    self.gatehouse.to_string_lossy().into_owned(),
                    "demo-server".to_owned(),
                ],
                env: Vec::new(),
                cwd: None,
            },
            &self.logs,
        )?;
        process.wait_for_port(loopback(port), PEER_START_TIMEOUT)?;
        Ok(Running {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers: Vec::new(),
            tool: String::new(),
            processes: vec![process],
        })
    }

    /// Starts `supergateway --stateful` in front of the demo server over stdio, kept on
    /// 127.0.0.1 by a preload.
    pub fn start_supergateway(&self) -> Result<Running> {
        let program = self.installed(
            self.peers.join("node/node_modules/.bin/supergateway"),
            "supergateway",
        )?;
        let preload = self.logs.join("force-loopback.cjs");
        fs::write(&preload, FORCE_LOOPBACK_JS)
            .with_context(|| format!("cannot write {}", preload.display()))?;
        let port = free_port()?;
        let mut process = Spawned::start(
            Launch {
                name: "supergateway",
                program: &program,
                args: vec![
                    "--stdio".to_owned(),
                    self.demo_command(),
                    "--outputTransport".to_owned(),
                    "streamableHttp".to_owned(),
                    "--stateful".to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                ],
                env: vec![(
                    "NODE_OPTIONS".to_owned(),
                    format!("--require {}", preload.to_string_lossy()),
                )],
                cwd: None,
            },
            &self.logs,
        )?;
        process.wait_for_port(loopback(port), PEER_START_TIMEOUT)?;
        let elsewhere: Vec<String> = listening_addresses(port)
            .into_iter()
            .filter(|address| !address.starts_with("127.") && address != "::1")
            .collect();
        if !elsewhere.is_empty() {
            process.stop();
            bail!(
                "supergateway listened on {elsewhere:?} despite the loopback preload; stopped it"
            );
        }
        Ok(Running {
            url: format!("http://127.0.0.1:{port}/mcp"),
            headers: Vec::new(),
            tool: String::new(),
            processes: vec![process],
        })
    }

    /// Starts ContextForge's translate bridge around the demo server and the gateway in
    /// front of it, registers the bridge and makes a virtual server with the echo tool.
    pub fn start_contextforge(&self) -> Result<Running> {
        let venv = self.peers.join("contextforge");
        let python = self.installed(venv.join("bin/python"), "ContextForge")?;
        let gateway = self.installed(venv.join("bin/mcpgateway"), "ContextForge")?;
        let state = self.peers.join("contextforge-state");
        fs::create_dir_all(&state)?;
        let env = contextforge_env(&state)?;

        let bridge_port = free_port()?;
        let mut bridge = Spawned::start(
            Launch {
                name: "contextforge-translate",
                program: &python,
                args: vec![
                    "-m".to_owned(),
                    "mcpgateway.translate".to_owned(),
                    "--stdio".to_owned(),
                    self.demo_command(),
                    "--expose-streamable-http".to_owned(),
                    "--host".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--port".to_owned(),
                    bridge_port.to_string(),
                ],
                env: env.clone(),
                cwd: Some(&state),
            },
            &self.logs,
        )?;
        bridge.wait_for_port(loopback(bridge_port), PEER_START_TIMEOUT)?;

        let port = free_port()?;
        let mut server = Spawned::start(
            Launch {
                name: "contextforge",
                program: &gateway,
                args: vec![
                    "--host".to_owned(),
                    "127.0.0.1".to_owned(),
                    "--port".to_owned(),
                    port.to_string(),
                ],
                env: env.clone(),
                cwd: Some(&state),
            },
            &self.logs,
        )?;
        server.wait_for_port(loopback(port), CONTEXTFORGE_START_TIMEOUT)?;

        let mut token_maker = Spawned::start(
            Launch {
                name: "contextforge-token",
                program: &python,
                args: vec![
                    "-m".to_owned(),
                    "mcpgateway.utils.create_jwt_token".to_owned(),
                    "--username".to_owned(),
                    "admin@example.com".to_owned(),
                    "--exp".to_owned(),
                    "120".to_owned(),
                    "--admin".to_owned(),
                ],
                env,
                cwd: Some(&state),
            },
            &self.logs,
        )?;
        // A JSON Web Token's header always encodes to `eyJ`.
        let token =
            token_maker.wait_for_line(|line| line.starts_with("eyJ"), PEER_START_TIMEOUT)?;
        token_maker.stop();

        let base = format!("http://127.0.0.1:{port}");
        let bridge_url = format!("http://127.0.0.1:{bridge_port}/mcp");
        let server_id = self
            .runtime
            .block_on(register(&base, &token, &bridge_url))?;
        Ok(Running {
            url: format!("{base}/servers/{server_id}/mcp"),
            headers: vec![("Authorization".to_owned(), format!("Bearer {token}"))],
            tool: String::new(),
            processes: vec![server, bridge],
        })
    }
}

/// Removes what earlier runs registered, registers the bridge, and returns the id of a new
/// virtual server offering its echo tool.
async fn register(base: &str, token: &str, bridge_url: &str) -> Result<String> {
    for kind in ["servers", "gateways"] {
        let listed = admin(Method::GET, &format!("{base}/{kind}"), token, None).await?;
        for item in items(&listed) {
            if let Some(id) = item.get("id").and_then(Value::as_str) {
                admin(Method::DELETE, &format!("{base}/{kind}/{id}"), token, None).await?;
            }
        }
    }
    let registration =
        json!({ "name": "bench-demo", "url": bridge_url, "transport": "STREAMABLEHTTP" });
    admin(
        Method::POST,
        &format!("{base}/gateways"),
        token,
        Some(registration),
    )
    .await?;
    let tools = admin(Method::GET, &format!("{base}/tools"), token, None).await?;
    let echo = items(&tools)
        .iter()
        .find(|tool| {
            tool.get("name")
                .and_then(Value::as_str)
                .is_some_and(|name| name.ends_with("echo"))
        })
        .and_then(|tool| tool.get("id").and_then(Value::as_str))
        .map(str::to_owned)
        .with_context(|| format!("ContextForge lists no echo tool: {tools}"))?;
    let server = json!({ "server": { "name": "bench", "associated_tools": [echo] } });
    let created = admin(
        Method::POST,
        &format!("{base}/servers"),
        token,
        Some(server),
    )
    .await?;
    created
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .with_context(|| format!("ContextForge made no server: {created}"))
}

/// A list answer, bare or wrapped in a page object.
fn items(listed: &Value) -> Vec<Value> {
    if let Some(array) = listed.as_array() {
        return array.clone();
    }
    ["items", "data", "tools", "servers", "gateways"]
        .iter()
        .find_map(|key| listed.get(*key).and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

/// One admin API request on a connection of its own.
async fn admin(method: Method, url: &str, token: &str, body: Option<Value>) -> Result<Value> {
    let uri: Uri = url.parse()?;
    let authority = uri.authority().context("no host in the admin URL")?.clone();
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(authority.as_str()).await?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
        let request = Request::builder()
            .method(method.clone())
            .uri(uri.path())
            .header(http::header::HOST, authority.as_str())
            .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body))?;
        let response = sender.send_request(request).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            bail!(
                "{method} {url}: {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
            );
        }
        Ok::<_, anyhow::Error>(serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    };
    tokio::time::timeout(ADMIN_TIMEOUT, exchange)
        .await
        .with_context(|| format!("{method} {url}: no answer within {ADMIN_TIMEOUT:?}"))?
}

/// ContextForge's settings: it refuses placeholder secrets, so random ones are made once and
/// kept beside its database; loopback upstreams, no rate limit, stateful upstream sessions.
fn contextforge_env(state: &Path) -> Result<Vec<(String, String)>> {
    let secrets_path = state.join("secrets.env");
    if !secrets_path.exists() {
        let mut text = String::new();
        for key in [
            "JWT_SECRET_KEY",
            "AUTH_ENCRYPTION_SECRET",
            "BASIC_AUTH_PASSWORD",
        ] {
            text.push_str(&format!("{key}={}\n", random_hex()?));
        }
        // Passwords must also pass its complexity check.
        for key in ["PLATFORM_ADMIN_PASSWORD", "DEFAULT_USER_PASSWORD"] {
            text.push_str(&format!("{key}=Aa1!{}\n", random_hex()?));
        }
        fs::write(&secrets_path, text)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&secrets_path, fs::Permissions::from_mode(0o600))?;
        }
    }
    let mut env: Vec<(String, String)> = fs::read_to_string(&secrets_path)?
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let database = state.join("contextforge.db");
    let settings = [
        (
            "DATABASE_URL",
            format!("sqlite:///{}", database.to_string_lossy()),
        ),
        ("PLATFORM_ADMIN_EMAIL", "admin@example.com".to_owned()),
        ("HOST", "127.0.0.1".to_owned()),
        ("SSRF_ALLOW_LOCALHOST", "true".to_owned()),
        ("RATE_LIMITING_ENABLED", "false".to_owned()),
        ("USE_STATEFUL_SESSIONS", "true".to_owned()),
        ("MCPGATEWAY_UI_ENABLED", "false".to_owned()),
        ("MCPGATEWAY_ADMIN_API_ENABLED", "true".to_owned()),
        ("LOG_LEVEL", "WARNING".to_owned()),
    ];
    env.extend(settings.into_iter().map(|(k, v)| (k.to_owned(), v)));
    Ok(env)
}

/// The version in the name of a package's `.dist-info` folder in a virtual environment.
fn python_package_version(venv: &Path, prefix: &str) -> Option<String> {
    for lib in fs::read_dir(venv.join("lib")).ok()?.flatten() {
        let site = lib.path().join("site-packages");
        for entry in fs::read_dir(site).ok()?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(version) = name
                .strip_prefix(prefix)
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(version.to_owned());
            }
        }
    }
    None
}

fn random_hex() -> Result<String> {
    let mut bytes = [0u8; 24];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The local addresses on which something listens on TCP `port`, read from `/proc/net`.
pub fn listening_addresses(port: u16) -> Vec<String> {
    let mut addresses = Vec::new();
    for (file, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        let Ok(table) = fs::read_to_string(file) else {
            continue;
        };
        for line in table.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // Field 3 is the state; 0A is LISTEN.
            let (Some(local), Some("0A")) = (fields.get(1), fields.get(3).copied()) else {
                continue;
            };
            let Some((address, port_hex)) = local.split_once(':') else {
                continue;
            };
            if u16::from_str_radix(port_hex, 16).ok() != Some(port) {
                continue;
            }
            addresses.push(decode_proc_address(address, v6));
        }
    }
    addresses
}

/// `/proc/net/tcp*` writes addresses as 32-bit words in host (little-endian) order.
fn decode_proc_address(hex: &str, v6: bool) -> String {
    let words: Vec<[u8; 4]> = (0..hex.len() / 8)
        .filter_map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16).ok())
        .map(|word| word.to_le_bytes())
        .collect();
    let bytes: Vec<u8> = words.into_iter().flatten().collect();
    if !v6 {
        return bytes.get(..4).map_or_else(
            || hex.to_owned(),
            |b| Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        );
    }
    let Ok(octets) = <[u8; 16]>::try_from(bytes.as_slice()) else {
        return hex.to_owned();
    };
    let address = std::net::Ipv6Addr::from(octets);
    match address.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_addresses_decode() {
        let cases = [
            ("0100007F", false, "127.0.0.1"),
            ("00000000", false, "0.0.0.0"),
            ("00000000000000000000000001000000", true, "::1"),
            ("00000000000000000000000000000000", true, "::"),
            ("0000000000000000FFFF00000100007F", true, "127.0.0.1"),
        ];
        for (hex, v6, expected) in cases {
            assert_eq!(decode_proc_address(hex, v6), expected, "{hex}");
        }
    }

    #[test]
    fn a_listener_of_this_process_is_found_on_loopback() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listening_addresses(port), vec!["127.0.0.1".to_owned()]);
    }
}
