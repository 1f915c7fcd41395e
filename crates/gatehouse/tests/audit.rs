//! Audit end to end: every exit path leaves its receipt, a call's intent is durable before it
//! is forwarded, a crash mid-call leaves an `unknown` outcome that still verifies, and when the
//! log cannot be written the gateway refuses calls with 503 and forwards nothing.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::{Gateway, demo_server, keyed_config, run_cli};

fn receipts(gateway: &Gateway) -> Vec<Value> {
    let (ok, out, err) = run_cli(gateway.dir(), &["audit", "tail", "-n", "1000"]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[test]
fn every_exit_path_leaves_one_receipt_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let grants = "[[grant]]\nid = \"alice-reads\"\nto = [\"user:alice\"]\ntools = [\"demo__*\"]\naccess = \"read\"\n";
    let config = keyed_config(dir.path(), &format!("{grants}\n{}", demo_server("demo")));
    let (ok, _, err) = run_cli(dir.path(), &["user", "add", "alice"]);
    assert!(ok, "{err}");
    let (_, issued, _) = run_cli(dir.path(), &["key", "issue", "alice"]);
    let key = issued.lines().nth(1).unwrap().trim().to_owned();
    let gateway = Gateway::start_in(dir, &config);
    let authorization = format!("Bearer {key}");
    let call = |tool: &str, authorization: &str| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": {"text": "x", "title": "t", "body": "b"},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        gateway.post(
            &body.to_string(),
            &[
                ("authorization", authorization),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", tool),
            ],
        )
    };
    assert_eq!(call("demo__echo", &authorization).status, 200);
    assert_eq!(
        call("demo__add_note", &authorization).error_code(),
        Some(-32003)
    );
    assert_eq!(call("demo__echo", "Bearer gh_nope").status, 401);
    let all = receipts(&gateway);
    let verdicts: Vec<(String, String)> = all
        .iter()
        .map(|r| {
            (
                r["decision"]["verdict"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                r["method"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    // The allowed call: an intent and its completion; the denial and the failed login: one each.
    let allowed: Vec<&Value> = all
        .iter()
        .filter(|r| r["target"]["name"] == "demo__echo")
        .collect();
    assert_eq!(allowed.len(), 2, "{verdicts:?}");
    assert_eq!(allowed[1]["outcome"], "ok", "{:?}", allowed[1]);
    assert!(
        allowed[0]["arguments_digest"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
    assert_eq!(allowed[0]["decision"]["rule_ids"][0], "alice-reads");
    assert_eq!(allowed[0]["principal"]["user"], "alice");
    let denied: Vec<&Value> = all
        .iter()
        .filter(|r| r["decision"]["verdict"] == "deny" && r["method"] == "tools/call")
        .collect();
    assert_eq!(denied.len(), 1, "{verdicts:?}");
    assert!(
        all.iter()
            .any(|r| r["method"] == "(unauthenticated)" && r["decision"]["verdict"] == "deny"),
        "{verdicts:?}"
    );
    let text = serde_json::to_string(&all).unwrap();
    assert!(!text.contains(&key), "a key appeared in a receipt");
    let (ok, out, err) = run_cli(gateway.dir(), &["audit", "verify"]);
    assert!(ok && out.contains("intact"), "{out}{err}");
    let (ok, out, _) = run_cli(
        gateway.dir(),
        &[
            "audit",
            "query",
            "--user",
            "alice",
            "--decision",
            "deny",
            "--json",
        ],
    );
    assert!(
        ok && out.lines().count() == 1 && out.contains("demo__add_note"),
        "{out}"
    );
    let (ok, out, _) = run_cli(
        gateway.dir(),
        &[
            "audit",
            "query",
            "--since",
            "2000-01-01T00:00:00Z",
            "--until",
            "2000-01-02T00:00:00Z",
        ],
    );
    assert!(ok && out.is_empty(), "{out}");
    let base = gateway.url.trim_end_matches("/mcp");
    let metrics = reqwest::blocking::get(format!("{base}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    let appended: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("gatehouse_audit_appended_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap();
    assert!(appended >= 4, "{metrics}");
    assert!(
        metrics.contains("gatehouse_audit_queue_depth "),
        "{metrics}"
    );
    assert!(
        metrics.contains("gatehouse_upstream_processes{server=\"demo\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_gateway_killed_mid_call_leaves_an_unknown_outcome_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{}",
        demo_server("demo")
    );
    let first = Gateway::start_at(dir.path(), &config);
    let url = first.url.clone();
    let slow = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "demo__slow_count", "arguments": {"n": 100, "interval_ms": 100},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        let _ = reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "demo__slow_count")
            .body(body.to_string())
            .timeout(Duration::from_secs(20))
            .send();
    });
    let began = first.eventually(Duration::from_secs(10), || {
        receipts(&first)
            .iter()
            .any(|r| r["target"]["name"] == "demo__slow_count")
    });
    assert!(began, "the intent was never recorded");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(first.pid() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    slow.join().unwrap();
    drop(first);
    let second = Gateway::start_at(dir.path(), &config);
    let (ok, out, err) = run_cli(second.dir(), &["audit", "verify"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("unknown outcome") && out.contains("intact"),
        "{out}"
    );
}

#[test]
fn when_receipts_cannot_be_written_calls_are_refused_and_nothing_is_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{}",
        demo_server("demo")
    );
    let gateway = Gateway::start_at(dir.path(), &config);
    let call = |tool: &str, arguments: Value| {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments,
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        gateway.post(
            &body.to_string(),
            &[
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", tool),
            ],
        )
    };
    assert_eq!(call("demo__echo", json!({"text": "before"})).status, 200);
    // Another process takes the database's write lock and holds it: appends time out.
    let database = dir.path().join("gatehouse.db");
    let mut locker = std::process::Command::new("python3")
        .args(["-c", "import sqlite3, sys, time\nc = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\nc.execute('BEGIN EXCLUSIVE')\nprint('locked', flush=True)\ntime.sleep(30)\n"])
        .arg(&database)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(locker.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line.trim(), "locked");
    let refused = call(
        "demo__add_note",
        json!({"title": "during", "body": "outage"}),
    );
    let _ = locker.kill();
    let _ = locker.wait();
    assert_eq!(refused.status, 503, "{:?}", refused.messages);
    assert_eq!(refused.error_code(), Some(-32004));
    let notes = gateway.eventually(Duration::from_secs(15), || {
        call("demo__list_notes", json!({})).status == 200
    });
    assert!(
        notes,
        "the gateway did not recover once the log could be written again"
    );
    let listed = call("demo__list_notes", json!({}));
    let text = listed.result()["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !text.contains("during"),
        "a call was forwarded while its receipt could not be written: {text}"
    );
}
