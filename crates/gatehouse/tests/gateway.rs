//! The gateway end to end: the built binary on 127.0.0.1 port 0 in front of real upstream
//! processes (the bundled demo server, spawned over stdio), driven over HTTP in both eras.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, child_pids, demo_server};

fn tool_names(result: &Value) -> Vec<String> {
    result["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

fn text(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn both_eras_list_and_call_under_stable_prefixed_names() {
    let gateway = Gateway::start(&format!("{}{}", demo_server("alpha"), demo_server("beta")));
    let session = gateway.initialize(json!({}));
    let legacy = gateway.legacy(&session, "tools/list", json!({}));
    let modern = gateway.modern("tools/list", json!({}));
    for names in [tool_names(legacy.result()), tool_names(modern.result())] {
        for expected in [
            "alpha__echo",
            "alpha__add_note",
            "beta__echo",
            "beta__delete_note",
        ] {
            assert!(
                names.contains(&expected.to_owned()),
                "{expected} missing from {names:?}"
            );
        }
    }
    assert_eq!(modern.result()["cacheScope"], "private");
    assert!(modern.result()["ttlMs"].is_u64());
    assert!(
        legacy.result().get("resultType").is_none(),
        "legacy clients never see resultType"
    );
    assert_eq!(modern.result()["resultType"], "complete");

    let echoed = gateway.legacy(
        &session,
        "tools/call",
        json!({"name": "alpha__echo", "arguments": {"text": "hi"}}),
    );
    assert_eq!(text(echoed.result()), "hi");
    let echoed = gateway.modern(
        "tools/call",
        json!({"name": "beta__echo", "arguments": {"text": "there"}}),
    );
    assert_eq!(text(echoed.result()), "there");

    // Same tool name on two servers: each call reaches exactly its own server.
    gateway.modern("tools/call", json!({"name": "alpha__add_note", "arguments": {"title": "t1", "body": "only on alpha"}})).result();
    let alpha = gateway.modern(
        "tools/call",
        json!({"name": "alpha__list_notes", "arguments": {}}),
    );
    let beta = gateway.modern(
        "tools/call",
        json!({"name": "beta__list_notes", "arguments": {}}),
    );
    assert!(text(alpha.result()).contains("t1"), "{}", alpha.result());
    assert!(!text(beta.result()).contains("t1"), "{}", beta.result());
}

#[test]
fn resources_prompts_and_completions_are_mapped_per_server() {
    let gateway = Gateway::start(&demo_server("demo"));
    let resources = gateway.modern("resources/list", json!({}));
    let uris: Vec<&str> = resources.result()["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert!(
        uris.contains(&"gatehouse://demo/demo://notes/readme"),
        "{uris:?}"
    );
    let read = gateway.modern(
        "resources/read",
        json!({"uri": "gatehouse://demo/demo://notes/readme"}),
    );
    assert_eq!(
        read.result()["contents"][0]["uri"],
        "gatehouse://demo/demo://notes/readme"
    );
    let templates = gateway.modern("resources/templates/list", json!({}));
    assert_eq!(
        templates.result()["resourceTemplates"][0]["uriTemplate"],
        "gatehouse://demo/demo://notes/{title}"
    );
    let prompts = gateway.modern("prompts/list", json!({}));
    assert_eq!(
        prompts.result()["prompts"][0]["name"],
        "demo__summarize_notes"
    );
    let prompt = gateway.modern(
        "prompts/get",
        json!({"name": "demo__summarize_notes", "arguments": {}}),
    );
    assert!(
        prompt.result()["messages"].is_array(),
        "{}",
        prompt.result()
    );
    let completion = gateway.modern(
        "completion/complete",
        json!({"ref": {"type": "ref/prompt", "name": "demo__summarize_notes"}, "argument": {"name": "style", "value": "s"}}),
    );
    assert_eq!(completion.result()["completion"]["values"][0], "short");
}

/// One row of the error table: case, body, headers, expected HTTP status, expected JSON-RPC code.
type Case<'a> = (&'a str, String, Vec<(&'a str, &'a str)>, u16, Option<i64>);

#[test]
fn bad_requests_get_a_clear_error_and_the_right_status() {
    let gateway = Gateway::start_with("max_body_bytes = 4096", &demo_server("demo"));
    let session = gateway.initialize(json!({}));
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let modern_call = |name: &str| {
        format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{name}","arguments":{{"text":"x"}},{meta}}}}}"#
        )
    };
    let modern_headers = |name: &'static str| {
        vec![
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", name),
        ]
    };
    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(8000)
    );
    // (case, body, headers, expected HTTP status, expected JSON-RPC error code)
    let cases: Vec<Case> = vec![
        ("not json", "{".into(), vec![], 400, Some(-32700)),
        ("duplicate keys", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","method":"ping"}"#.into(), vec![], 400, Some(-32700)),
        ("batch", r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#.into(), vec![], 400, Some(-32600)),
        ("not json-rpc", r#"{"hello":"world"}"#.into(), vec![], 400, Some(-32600)),
        ("legacy without session", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into(), vec![], 400, Some(-32600)),
        ("unknown session", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#.into(), vec![("mcp-session-id", "nope")], 404, Some(-32600)),
        ("body over the limit", big, vec![("mcp-session-id", &session)], 413, None),
        ("modern ok", modern_call("demo__echo"), modern_headers("demo__echo"), 200, None),
        ("modern base64 name", modern_call("demo__echo"), modern_headers("=?base64?ZGVtb19fZWNobw==?="), 200, None),
        ("modern name mismatch", modern_call("demo__delete_note"), modern_headers("demo__echo"), 400, Some(-32020)),
        ("modern missing method header", modern_call("demo__echo"), vec![("mcp-protocol-version", "2026-07-28"), ("mcp-name", "demo__echo")], 400, Some(-32020)),
        (
            "modern missing envelope",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#.into(),
            vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/list")],
            400,
            Some(-32602),
        ),
        (
            "modern unknown version",
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#.into(),
            vec![("mcp-method", "tools/list")],
            400,
            Some(-32022),
        ),
        (
            "modern removed method",
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{{meta}}}}}"#),
            vec![("mcp-protocol-version", "2026-07-28"), ("mcp-method", "ping")],
            404,
            Some(-32601),
        ),
        ("unknown tool", modern_call("demo__nope"), modern_headers("demo__nope"), 200, Some(-32602)),
        ("unrouted name", modern_call("nobody__echo"), modern_headers("nobody__echo"), 200, Some(-32602)),
        ("rebinding host", modern_call("demo__echo"), [modern_headers("demo__echo"), vec![("host", "evil.example")]].concat(), 403, Some(-32600)),
        ("rebinding origin", modern_call("demo__echo"), [modern_headers("demo__echo"), vec![("origin", "https://evil.example")]].concat(), 403, Some(-32600)),
        ("null origin", modern_call("demo__echo"), [modern_headers("demo__echo"), vec![("origin", "null")]].concat(), 403, Some(-32600)),
    ];
    for (case, body, headers, status, code) in cases {
        let reply = gateway.post(&body, &headers);
        assert_eq!(reply.status, status, "{case}: {:?}", reply.messages);
        assert_eq!(reply.error_code(), code, "{case}: {:?}", reply.messages);
    }
}

#[test]
fn sessions_end_on_delete_and_get_needs_one() {
    let gateway = Gateway::start(&demo_server("demo"));
    let session = gateway.initialize(json!({}));
    let http = reqwest::blocking::Client::new();
    let no_session = http
        .get(&gateway.url)
        .header("accept", "text/event-stream")
        .send()
        .unwrap();
    assert_eq!(no_session.status().as_u16(), 405);
    let deleted = http
        .delete(&gateway.url)
        .header("mcp-session-id", &session)
        .send()
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 200);
    let after = gateway.legacy(&session, "tools/list", json!({}));
    assert_eq!(after.status, 404);
}

#[test]
fn pagination_walks_the_merged_list_with_the_gateways_own_cursors() {
    let gateway = Gateway::start_with(
        "page_size = 2",
        &format!("{}{}", demo_server("a"), demo_server("b")),
    );
    let everything = {
        let wide = Gateway::start(&format!("{}{}", demo_server("a"), demo_server("b")));
        tool_names(wide.modern("tools/list", json!({})).result())
    };
    let mut walked = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..20 {
        let params = match &cursor {
            Some(cursor) => json!({"cursor": cursor}),
            None => json!({}),
        };
        let page = gateway.modern("tools/list", params);
        let names = tool_names(page.result());
        assert!(names.len() <= 2);
        walked.extend(names);
        cursor = page
            .result()
            .get("nextCursor")
            .and_then(Value::as_str)
            .map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(walked, everything);
    let bogus = gateway.modern("tools/list", json!({"cursor": "made-up"}));
    assert_eq!(bogus.error_code(), Some(-32602));
}

#[test]
fn progress_reaches_the_caller_with_its_own_token() {
    let gateway = Gateway::start(&demo_server("demo"));
    let session = gateway.initialize(json!({}));
    let reply = gateway.legacy(
        &session,
        "tools/call",
        json!({"name": "demo__slow_count", "arguments": {"n": 3, "interval_ms": 10}, "_meta": {"progressToken": "mine"}}),
    );
    let progress: Vec<&Value> = reply
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 3, "{:?}", reply.messages);
    assert!(
        progress
            .iter()
            .all(|m| m["params"]["progressToken"] == "mine")
    );
    assert!(reply.result()["isError"] != true);
}

#[test]
fn a_broken_server_is_reported_and_leaves_the_others_working() {
    let gateway = Gateway::start(&format!(
        "{}[servers.broken]\ncommand = \"/nonexistent/server\"\n",
        demo_server("demo")
    ));
    let listed = gateway.modern("tools/list", json!({}));
    let names = tool_names(listed.result());
    assert!(names.contains(&"demo__echo".to_owned()), "{names:?}");
    let unavailable = &listed.result()["_meta"]["io.gatehouse/unavailable"];
    assert_eq!(unavailable[0]["server"], "broken", "{}", listed.result());
    let call = gateway.modern(
        "tools/call",
        json!({"name": "broken__anything", "arguments": {}}),
    );
    assert_eq!(call.error_code(), Some(-32001));
    let message = call.response()["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("server `broken` could not be started"),
        "{message}"
    );
    let echo = gateway.modern(
        "tools/call",
        json!({"name": "demo__echo", "arguments": {"text": "still here"}}),
    );
    assert_eq!(text(echo.result()), "still here");
}

#[test]
fn a_server_killed_mid_call_fails_that_call_promptly_and_restarts_on_next_use() {
    let gateway = Gateway::start(&demo_server("demo"));
    gateway
        .modern(
            "tools/call",
            json!({"name": "demo__echo", "arguments": {"text": "warm"}}),
        )
        .result();
    let child = child_pids(gateway.pid());
    assert_eq!(child.len(), 1, "one demo process expected, found {child:?}");
    let url = gateway.url.clone();
    let slow = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "demo__slow_count", "arguments": {"n": 100, "interval_ms": 100},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        let started = std::time::Instant::now();
        let response = reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "demo__slow_count")
            .body(body.to_string())
            .send()
            .unwrap()
            .text()
            .unwrap();
        (response, started.elapsed())
    });
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child[0] as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let (response, elapsed) = slow.join().unwrap();
    assert!(response.contains("server `demo` exited"), "{response}");
    assert!(
        elapsed < Duration::from_secs(5),
        "the failure took {elapsed:?}"
    );
    let echo = gateway.modern(
        "tools/call",
        json!({"name": "demo__echo", "arguments": {"text": "back"}}),
    );
    assert_eq!(text(echo.result()), "back");
    let restarted = child_pids(gateway.pid());
    assert_eq!(restarted.len(), 1);
    assert_ne!(restarted, child);
}

#[test]
fn upstream_children_get_only_the_configured_environment() {
    let gateway = Gateway::start(&format!(
        "[servers.fixture]\ncommand = {:?}\nprefix = \"\"\nenv = {{ GIVEN = \"yes\" }}\n",
        support::fixture().display().to_string()
    ));
    gateway.modern("tools/list", json!({})).result();
    let child = child_pids(gateway.pid());
    let environ = std::fs::read(format!("/proc/{}/environ", child[0])).unwrap();
    let mut names: Vec<String> = environ
        .split(|b| *b == 0)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            String::from_utf8_lossy(entry)
                .split('=')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    names.sort();
    let allowed = ["GIVEN", "HOME", "PATH"];
    assert!(
        names.iter().all(|name| allowed.contains(&name.as_str())),
        "{names:?}"
    );
    assert!(names.contains(&"GIVEN".to_owned()));
}

fn demo_with(name: &str, settings: &str) -> String {
    format!("{}{settings}\n", demo_server(name))
}

#[test]
fn no_process_until_first_use_idle_ones_stop_and_listing_never_restarts_them() {
    let gateway = Gateway::start(&demo_with("demo", "idle_min_secs = 1\nidle_max_secs = 1"));
    assert!(
        child_pids(gateway.pid()).is_empty(),
        "serve must start no server"
    );
    gateway
        .modern(
            "tools/call",
            json!({"name": "demo__echo", "arguments": {"text": "x"}}),
        )
        .result();
    assert_eq!(child_pids(gateway.pid()).len(), 1);
    assert!(
        gateway.eventually(Duration::from_secs(10), || child_pids(gateway.pid())
            .is_empty()),
        "the idle server was not stopped"
    );
    let listed = gateway.modern("tools/list", json!({}));
    assert!(tool_names(listed.result()).contains(&"demo__echo".to_owned()));
    assert!(
        child_pids(gateway.pid()).is_empty(),
        "listing started the server"
    );
    let echo = gateway.modern(
        "tools/call",
        json!({"name": "demo__echo", "arguments": {"text": "again"}}),
    );
    assert_eq!(text(echo.result()), "again");
    assert_eq!(child_pids(gateway.pid()).len(), 1);
}

#[test]
fn catalogs_persist_so_a_restarted_gateway_lists_without_starting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{}",
        demo_server("demo")
    );
    let first = Gateway::start_at(dir.path(), &config);
    let listed = tool_names(first.modern("tools/list", json!({})).result());
    assert!(listed.contains(&"demo__echo".to_owned()));
    // The catalog is written in the background: wait until the store has it.
    let persisted = first.eventually(Duration::from_secs(10), || {
        let (_, out, _) = support::run_cli(dir.path(), &["tools"]);
        out.contains("demo__echo")
    });
    assert!(persisted, "the catalog never reached the store");
    drop(first);
    let second = Gateway::start_at(dir.path(), &config);
    let relisted = tool_names(second.modern("tools/list", json!({})).result());
    assert_eq!(relisted, listed);
    assert!(
        child_pids(second.pid()).is_empty(),
        "listing from the persisted catalog started a server"
    );
    let echo = second.modern(
        "tools/call",
        json!({"name": "demo__echo", "arguments": {"text": "cold"}}),
    );
    assert_eq!(text(echo.result()), "cold");
}

#[test]
fn shared_servers_serve_every_session_and_isolated_ones_keep_state_apart() {
    let config = format!(
        "{}{}",
        demo_server("shared"),
        demo_with("private", "isolation = \"per_session\"")
    );
    let gateway = Gateway::start(&config);
    let first = gateway.initialize(json!({}));
    let second = gateway.initialize(json!({}));
    for (session, server) in [(&first, "shared"), (&first, "private")] {
        let add = gateway.legacy(session, "tools/call", json!({"name": format!("{server}__add_note"), "arguments": {"title": "n", "body": "b"}}));
        add.result();
    }
    let shared_seen = gateway.legacy(
        &second,
        "tools/call",
        json!({"name": "shared__list_notes", "arguments": {}}),
    );
    let private_seen = gateway.legacy(
        &second,
        "tools/call",
        json!({"name": "private__list_notes", "arguments": {}}),
    );
    assert!(
        text(shared_seen.result()).contains('n'),
        "{}",
        shared_seen.result()
    );
    assert!(
        !text(private_seen.result()).contains("n\n")
            && !text(private_seen.result()).contains("\"n\""),
        "{}",
        private_seen.result()
    );
    // One shared process, and one isolated process per session.
    assert_eq!(child_pids(gateway.pid()).len(), 3);
}

#[test]
fn isolated_servers_stop_at_their_process_limit() {
    let gateway = Gateway::start(&demo_with(
        "solo",
        "isolation = \"per_session\"\nmax_processes = 1",
    ));
    let first = gateway.initialize(json!({}));
    let second = gateway.initialize(json!({}));
    gateway
        .legacy(
            &first,
            "tools/call",
            json!({"name": "solo__echo", "arguments": {"text": "a"}}),
        )
        .result();
    let refused = gateway.legacy(
        &second,
        "tools/call",
        json!({"name": "solo__echo", "arguments": {"text": "b"}}),
    );
    let message = refused.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("maximum of 1 processes"),
        "{}",
        refused.response()
    );
}

#[test]
fn a_failing_server_is_not_restarted_in_a_tight_loop() {
    let gateway = Gateway::start("[servers.broken]\ncommand = \"/nonexistent/server\"\n");
    let first = gateway.modern("tools/call", json!({"name": "broken__x", "arguments": {}}));
    let again = gateway.modern("tools/call", json!({"name": "broken__x", "arguments": {}}));
    let message = |reply: &support::Reply| {
        reply.response()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        message(&first).contains("did not start"),
        "{}",
        message(&first)
    );
    assert!(
        message(&again).contains("retried in"),
        "{}",
        message(&again)
    );
}

#[test]
fn server_list_shows_the_running_gateways_view() {
    let gateway = Gateway::start(&demo_server("demo"));
    gateway
        .modern(
            "tools/call",
            json!({"name": "demo__echo", "arguments": {"text": "x"}}),
        )
        .result();
    let address = gateway
        .url
        .trim_start_matches("http://")
        .trim_end_matches("/mcp")
        .to_owned();
    let config = gateway.dir().join("view.toml");
    std::fs::write(
        &config,
        format!("[gateway]\nlisten = \"{address}\"\n{}", demo_server("demo")),
    )
    .unwrap();
    let (ok, out, err) = support::run_cli(
        gateway.dir(),
        &["server", "list", "--config", config.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    let row = out
        .lines()
        .find(|line| line.starts_with("demo "))
        .unwrap_or_default();
    assert!(row.contains("running") && row.contains(" 1 "), "{out}");
}

/// A demo server over Streamable HTTP on 127.0.0.1 port 0, stopped by pid when dropped.
struct HttpDemo {
    child: std::process::Child,
    url: String,
}

impl HttpDemo {
    fn start() -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(support::gatehouse())
            .args(["demo-server", "--http", "127.0.0.1:0"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().trim_start_matches("listening on ").to_owned();
        assert!(url.starts_with("http://127.0.0.1:"), "{line}");
        Self { child, url }
    }
}

impl Drop for HttpDemo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_http_upstream_is_relayed_in_both_eras_with_progress() {
    let upstream = HttpDemo::start();
    let gateway = Gateway::start(&format!(
        "[servers.web]\nurl = \"{}\"\nheaders = {{ X-Team = \"t\" }}\n",
        upstream.url
    ));
    let modern = gateway.modern(
        "tools/call",
        json!({"name": "web__echo", "arguments": {"text": "over http"}}),
    );
    assert_eq!(text(modern.result()), "over http");
    let session = gateway.initialize(json!({}));
    let names = tool_names(gateway.legacy(&session, "tools/list", json!({})).result());
    assert!(names.contains(&"web__delete_note".to_owned()), "{names:?}");
    let counted = gateway.legacy(
        &session,
        "tools/call",
        json!({"name": "web__slow_count", "arguments": {"n": 2, "interval_ms": 10}, "_meta": {"progressToken": 5}}),
    );
    let progress: Vec<&Value> = counted
        .messages
        .iter()
        .filter(|m| m["method"] == "notifications/progress")
        .collect();
    assert_eq!(progress.len(), 2, "{:?}", counted.messages);
    assert!(progress.iter().all(|m| m["params"]["progressToken"] == 5));
}
