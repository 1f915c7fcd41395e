//! Audit end to end: every exit path leaves its receipt, a call's intent is durable before it
//! is forwarded, a crash mid-call leaves an `unknown` outcome that still verifies, when the log
//! cannot be written the gateway refuses calls with 503 and forwards nothing, pruning (by the
//! operator or by retention) leaves a chain that verifies from a signed anchor, and a flood of
//! refusals costs a bounded number of receipts whose counts add up. Receipts reach an
//! OpenTelemetry collector as log records, and a collector that is down fails no call.
//!
//! Every scenario that does not depend on SQLite's file locking runs twice: on the default
//! SQLite file and on a PostgreSQL schema of its own (see `support::TestStore`).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
use serde_json::{Value, json};
use support::{Gateway, TestStore, demo_server, keyed_config, run_cli};

crate::on_both_stores! {
    every_exit_path_leaves_one_receipt_and_the_chain_verifies: exit_paths;
    a_gateway_killed_mid_call_leaves_an_unknown_outcome_that_verifies: killed_mid_call;
    every_kind_of_refusal_is_on_the_record: refusals;
    a_flood_of_refusals_costs_a_bounded_number_of_receipts_that_count_every_one: flood;
    pruning_by_the_operator_keeps_the_chain_verifiable: operator_prune;
    the_gateway_prunes_receipts_past_their_retention: retention;
}

fn receipts(gateway: &Gateway) -> Vec<Value> {
    receipts_in(gateway.dir())
}

/// Every receipt body in the store of the gateway configured in `dir`, oldest first.
fn receipts_in(dir: &Path) -> Vec<Value> {
    let (ok, out, err) = run_cli(dir, &["audit", "tail", "-n", "100000"]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(_, body)| serde_json::from_str(body).unwrap())
        .collect()
}

/// The sequence numbers of the receipts in the store of the gateway configured in `dir`.
fn seqs_in(dir: &Path) -> Vec<i64> {
    let (ok, out, err) = run_cli(dir, &["audit", "tail", "-n", "100000"]);
    assert!(ok, "{err}");
    out.lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(seq, _)| seq.parse().unwrap())
        .collect()
}

/// `gatehouse audit verify` in `dir`: whether it passed, and its output.
fn verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let (ok, out, err) = run_cli(dir, &args);
    (ok, format!("{out}{err}"))
}

/// A 2026-07-28 tools/call with `arguments`, and `authorization` when given.
fn call(
    gateway: &Gateway,
    tool: &str,
    arguments: Value,
    authorization: Option<&str>,
) -> support::Reply {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": tool, "arguments": arguments,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", tool),
    ];
    if let Some(authorization) = authorization {
        headers.push(("authorization", authorization));
    }
    gateway.post(&body.to_string(), &headers)
}

/// Writes a configuration with API keys, `alice` allowed to read `demo__*`, the demo server and
/// `store`, adds alice and returns her `Authorization` header value.
fn alice_config(dir: &Path, store: &TestStore) -> (String, String) {
    let grants = "[[grant]]\nid = \"alice-reads\"\nto = [\"user:alice\"]\ntools = [\"demo__*\"]\naccess = \"read\"\n";
    let config = keyed_config(
        dir,
        &format!("{grants}\n{}{}", demo_server("demo"), store.config()),
    );
    let (ok, _, err) = run_cli(dir, &["user", "add", "alice"]);
    assert!(ok, "{err}");
    let (ok, issued, err) = run_cli(dir, &["key", "issue", "alice"]);
    assert!(ok, "{err}");
    let key = issued.lines().nth(1).unwrap().trim().to_owned();
    (config, format!("Bearer {key}"))
}

/// A configuration without authentication: the demo server and `store`, then `extra`.
fn open_config(store: &TestStore, extra: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{}{}{extra}",
        demo_server("demo"),
        store.config()
    )
}

fn exit_paths(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let (config, authorization) = alice_config(dir.path(), store);
    let key = authorization.trim_start_matches("Bearer ").to_owned();
    let gateway = Gateway::start_in(dir, &config);
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
        all.iter().any(|r| r["method"] == "(unauthenticated)"
            && r["decision"]["verdict"] == "deny"
            && r["refusal"] == "authentication"),
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

fn killed_mid_call(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let config = open_config(store, "");
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

/// The receipts with `refusal` of this kind: (recorded one by one, counted in aggregates).
fn refusals_of(all: &[Value], kind: &str) -> (u64, u64) {
    let individual = all
        .iter()
        .filter(|r| r["refusal"] == kind && r["refusals"].is_null())
        .count() as u64;
    let counted = all
        .iter()
        .filter(|r| r["refusals"]["kind"] == kind)
        .map(|r| r["refusals"]["count"].as_u64().unwrap())
        .sum();
    (individual, counted)
}

fn refusals(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let (config, alice) = alice_config(dir.path(), store);
    let gateway = Gateway::start_in(dir, &config);
    let http = reqwest::blocking::Client::new();
    let base = gateway.url.trim_end_matches("/mcp").to_owned();
    let initialize = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#;
    // DNS rebinding, on the MCP endpoint and on every other route.
    for (path, header, value) in [
        ("/mcp", "host", "evil.example"),
        ("/mcp", "origin", "https://evil.example"),
        ("/healthz", "host", "evil.example"),
    ] {
        let response = http
            .post(format!("{base}{path}"))
            .header(header, value)
            .header("authorization", &alice)
            .body(initialize)
            .send()
            .unwrap();
        assert_eq!(response.status(), 403, "{path} {header}");
    }
    // Authentication, on POST and on GET.
    let get = http
        .get(&gateway.url)
        .header("authorization", "Bearer gh_nope")
        .header("mcp-session-id", "s")
        .send()
        .unwrap();
    assert_eq!(get.status(), 401);
    assert_eq!(
        call(
            &gateway,
            "demo__echo",
            json!({"text": "x"}),
            Some("Bearer gh_nope")
        )
        .status,
        401
    );
    // A header that disagrees with the body (SEP-2243), and a denial.
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "demo__add_note", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let mismatch = gateway.post(
        &body.to_string(),
        &[
            ("authorization", alice.as_str()),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "demo__echo"),
        ],
    );
    assert_eq!(mismatch.status, 400, "{:?}", mismatch.messages);
    let denied = call(
        &gateway,
        "demo__add_note",
        json!({"title": "t", "body": "b"}),
        Some(&alice),
    );
    assert_eq!(denied.error_code(), Some(-32003));

    let all = receipts(&gateway);
    let kinds: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|r| {
            (
                r["refusal"].as_str().unwrap_or("-"),
                r["method"].as_str().unwrap_or("-"),
                r["principal"]["user"].as_str().unwrap_or("-"),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("rebinding", "(rebinding)", "-"),
            ("rebinding", "(rebinding)", "-"),
            ("rebinding", "(rebinding)", "-"),
            ("authentication", "(unauthenticated)", "-"),
            ("authentication", "(unauthenticated)", "-"),
            ("header_mismatch", "tools/call", "alice"),
            ("denied", "tools/call", "alice"),
        ]
    );
    assert!(
        all.iter().take(5).all(|r| r["client"]["address"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")),
        "{all:?}"
    );
    let (ok, out) = verify(gateway.dir(), &[]);
    assert!(ok && out.contains("intact"), "{out}");
}

fn flood(store: &TestStore) {
    const FLOOD: u64 = 5_000;
    const THREADS: u64 = 4;
    const ALLOWED: usize = 10;
    const DENIED: u64 = 30;
    let dir = tempfile::tempdir().unwrap();
    let (config, alice) = alice_config(dir.path(), store);
    let gateway = Gateway::start_at(dir.path(), &config);
    let started = Instant::now();
    let flooders: Vec<_> = (0..THREADS)
        .map(|_| {
            let url = gateway.url.clone();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::new();
                let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}"#;
                for _ in 0..FLOOD / THREADS {
                    let response = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("authorization", "Bearer gh_not_a_key")
                        .body(body)
                        .send()
                        .unwrap();
                    assert_eq!(response.status(), 401);
                }
            })
        })
        .collect();
    // Meanwhile alice works, and is refused now and then.
    for _ in 0..ALLOWED {
        let reply = call(&gateway, "demo__echo", json!({"text": "hi"}), Some(&alice));
        assert_eq!(reply.status, 200, "{:?}", reply.messages);
        assert!(
            reply.response().get("result").is_some(),
            "{:?}",
            reply.messages
        );
    }
    for _ in 0..DENIED {
        let reply = call(
            &gateway,
            "demo__add_note",
            json!({"title": "t", "body": "b"}),
            Some(&alice),
        );
        assert_eq!(reply.error_code(), Some(-32003));
    }
    for flooder in flooders {
        flooder.join().unwrap();
    }
    let elapsed = started.elapsed();
    // Stopping the gateway writes the counts of the windows still open.
    drop(gateway);
    let all = receipts_in(dir.path());
    let (individual, counted) = refusals_of(&all, "authentication");
    assert_eq!(
        individual + counted,
        FLOOD,
        "every refused request is recorded or counted exactly once"
    );
    let windows = elapsed.as_secs() / 60 + 2;
    let aggregates = all.iter().filter(|r| !r["refusals"].is_null()).count() as u64;
    assert!(
        individual <= 20 * windows && aggregates <= 2 * windows,
        "{individual} receipts and {aggregates} aggregates for {FLOOD} refusals in {elapsed:?}"
    );
    let echoes = all
        .iter()
        .filter(|r| r["target"]["name"] == "demo__echo" && r["principal"]["user"] == "alice")
        .count();
    assert_eq!(echoes, 2 * ALLOWED, "alice's calls keep their receipts");
    let (denied_individual, denied_counted) = refusals_of(&all, "denied");
    assert_eq!(denied_individual + denied_counted, DENIED);
    assert_eq!(denied_individual, 20);
    assert!(
        all.iter()
            .filter(|r| r["refusals"]["kind"] == "denied")
            .all(|r| r["principal"]["user"] == "alice" && r["decision"]["verdict"] == "deny")
    );
    assert!(
        all.iter()
            .filter(|r| r["refusals"]["kind"] == "authentication")
            .all(|r| r["refusals"]["address"] == "127.0.0.1"
                && r["refusals"]["first"].as_i64() <= r["refusals"]["last"].as_i64())
    );
    eprintln!(
        "{FLOOD} refused requests in {elapsed:.2?} left {} receipts: {individual} recorded one by one, {aggregates} aggregates counting {counted}",
        all.len()
    );
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok && out.contains("intact"), "{out}");
}

fn operator_prune(store: &TestStore) {
    let dir = tempfile::tempdir().unwrap();
    let config = open_config(store, "");
    let gateway = Gateway::start_at(dir.path(), &config);
    let echo = |text: &str| {
        let reply = call(&gateway, "demo__echo", json!({"text": text}), None);
        assert!(
            reply.response().get("result").is_some(),
            "{:?}",
            reply.messages
        );
    };
    let settled = |count: usize| {
        gateway.eventually(Duration::from_secs(10), || {
            seqs_in(dir.path()).len() == count
        })
    };
    echo("one");
    echo("two");
    assert!(settled(4), "{:?}", seqs_in(dir.path()));
    // A call still running holds pruning back at its intent.
    let url = gateway.url.clone();
    let slow = std::thread::spawn(move || {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "demo__slow_count", "arguments": {"n": 30, "interval_ms": 100},
            "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
        reqwest::blocking::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .header("mcp-protocol-version", "2026-07-28")
            .header("mcp-method", "tools/call")
            .header("mcp-name", "demo__slow_count")
            .body(body.to_string())
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap()
            .status()
    });
    assert!(settled(5), "the slow call's intent was never recorded");
    echo("three");
    assert!(settled(7), "{:?}", seqs_in(dir.path()));
    let (ok, out, err) = run_cli(dir.path(), &["audit", "prune", "--before", "0d"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("deleted 4 receipts, through receipt 4")
            && out.contains("anchor: receipt 4 hash ")
            && out.contains("kept receipt 5 and everything after it"),
        "{out}"
    );
    assert_eq!(slow.join().unwrap(), 200);
    assert!(settled(4), "{:?}", seqs_in(dir.path()));
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        ok && out.contains("anchor: receipts up to 4") && out.contains("intact"),
        "{out}"
    );

    // Now everything goes; the chain continues from the anchor.
    let (ok, out, err) = run_cli(dir.path(), &["audit", "prune", "--before", "0d"]);
    assert!(
        ok && out.contains("deleted 4 receipts, through receipt 8"),
        "{out}{err}"
    );
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        ok && out.contains("receipts: 0,") && out.contains("intact"),
        "{out}"
    );
    echo("four");
    assert_eq!(seqs_in(dir.path()), [9, 10]);
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        ok && out.contains("anchor: receipts up to 8") && out.contains("intact"),
        "{out}"
    );

    // The export holds the anchor, and the exported checkpoints verify the log from outside.
    let (ok, exported, err) = run_cli(dir.path(), &["audit", "export"]);
    assert!(ok, "{err}");
    let checkpoints: Vec<&str> = exported
        .lines()
        .filter(|line| line.contains("\"head_hash\""))
        .collect();
    let first: Value = serde_json::from_str(checkpoints[0]).unwrap();
    assert_eq!(first["seq"], 8, "{exported}");
    let kept = dir.path().join("kept-checkpoints.jsonl");
    std::fs::write(&kept, checkpoints.join("\n")).unwrap();
    let (ok, out) = verify(dir.path(), &["--checkpoints", kept.to_str().unwrap()]);
    assert!(ok && out.contains("intact"), "{out}");
    let (ok, out, err) = run_cli(dir.path(), &["audit", "prune", "--before", "yesterday"]);
    assert!(
        !ok && err.contains("neither an RFC 3339 time") && out.is_empty(),
        "{out}{err}"
    );
    drop(gateway);

    // Deleting the head of the log without an anchor is caught, with or without the old one.
    store.tamper(dir.path(), "DELETE FROM receipts WHERE seq = 9");
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        !ok && out.contains("receipts 9 to 9 are missing and no signed anchor covers them"),
        "{out}"
    );
    store.tamper(dir.path(), "DELETE FROM checkpoints WHERE seq = 8");
    let (ok, out) = verify(dir.path(), &[]);
    assert!(
        !ok && out.contains("receipts 1 to 9 are missing and no signed anchor covers them"),
        "{out}"
    );
}

fn retention(store: &TestStore) {
    use gatehouse_audit::{
        Decision, NewReceipt, Receipt, ReceiptKind, ReceiptLog, Timestamp, Verdict,
    };
    let dir = tempfile::tempdir().unwrap();
    let config = open_config(store, "\n[audit]\nretain_days = 1\n");
    std::fs::write(dir.path().join("gatehouse.toml"), &config).unwrap();
    // Receipts from three days ago, among them a call lost to a crash, and one from now.
    let three_days_ago = Timestamp::now().saturating_sub(Duration::from_secs(3 * 86_400));
    let entry = |kind: ReceiptKind, time: Timestamp, id: &str| {
        let mut receipt = Receipt::new(id, "tools/call", Decision::new(Verdict::Allow));
        receipt.time = time;
        NewReceipt::new(kind, &receipt).unwrap()
    };
    let mut entries: Vec<NewReceipt> = (0..5)
        .map(|n| entry(ReceiptKind::Decision, three_days_ago, &format!("old-{n}")))
        .collect();
    entries.insert(3, entry(ReceiptKind::Intent, three_days_ago, "lost"));
    entries.push(entry(ReceiptKind::Decision, Timestamp::now(), "new"));
    let url = store.url(dir.path());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async {
            let opened = gatehouse_store::Store::open(&url).await.unwrap();
            let log = gatehouse_gateway::audit_log::StoreLog(opened.clone());
            let heads = log.append_receipts(&entries).await.unwrap();
            assert_eq!(heads.last().unwrap().seq, 7);
            opened.close().await;
        });

    let gateway = Gateway::start_at(dir.path(), &config);
    let pruned = gateway.eventually(Duration::from_secs(20), || {
        verify(dir.path(), &[])
            .1
            .contains("anchor: receipts up to 6")
    });
    assert!(pruned, "{}", gateway.log());
    assert_eq!(seqs_in(dir.path()), [7]);
    assert!(
        gateway
            .log()
            .contains("pruned calls whose outcome is unknown"),
        "{}",
        gateway.log()
    );
    let reply = call(&gateway, "demo__echo", json!({"text": "after"}), None);
    assert!(
        reply.response().get("result").is_some(),
        "{:?}",
        reply.messages
    );
    let (ok, out) = verify(dir.path(), &[]);
    assert!(ok && out.contains("intact"), "{out}");
    let (ok, exported, err) = run_cli(dir.path(), &["audit", "export"]);
    assert!(
        ok && exported.contains(r#"{"seq":6,"head_hash""#),
        "{exported}{err}"
    );
}
/// What a test collector was sent: log records, and the resource attributes as `key=value`.
#[derive(Default)]
struct Received {
    records: Mutex<Vec<LogRecord>>,
    resources: Mutex<Vec<String>>,
}

/// An OTLP/HTTP collector on 127.0.0.1 that keeps every log record posted to `/v1/logs`;
/// it stops when dropped.
struct Collector {
    url: String,
    received: Arc<Received>,
    _runtime: tokio::runtime::Runtime,
}

impl Collector {
    fn start() -> Self {
        let received = Arc::new(Received::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::clone(&received);
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let app = axum::Router::new()
                .route("/v1/logs", axum::routing::post(Self::receive))
                .with_state(state);
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            received,
            _runtime: runtime,
        }
    }

    async fn receive(
        axum::extract::State(received): axum::extract::State<Arc<Received>>,
        headers: axum::http::HeaderMap,
        body: axum::body::Bytes,
    ) -> (axum::http::StatusCode, Vec<u8>) {
        assert_eq!(
            headers.get("content-type").unwrap(),
            "application/x-protobuf"
        );
        assert_eq!(headers.get("x-collector-key").unwrap(), "test-key");
        let Ok(request) = ExportLogsServiceRequest::decode(body) else {
            return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
        };
        for resource_logs in request.resource_logs {
            for attribute in resource_logs.resource.unwrap_or_default().attributes {
                received.resources.lock().unwrap().push(format!(
                    "{}={}",
                    attribute.key,
                    text(attribute.value)
                ));
            }
            for scope_logs in resource_logs.scope_logs {
                received
                    .records
                    .lock()
                    .unwrap()
                    .extend(scope_logs.log_records);
            }
        }
        let answer = ExportLogsServiceResponse::default().encode_to_vec();
        (axum::http::StatusCode::OK, answer)
    }

    fn records(&self) -> Vec<LogRecord> {
        self.received.records.lock().unwrap().clone()
    }

    fn resources(&self) -> Vec<String> {
        self.received.resources.lock().unwrap().clone()
    }
}

/// A string or integer attribute value as text.
fn text(value: Option<AnyValue>) -> String {
    match value.and_then(|value| value.value) {
        Some(any_value::Value::StringValue(text)) => text,
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        other => format!("{other:?}"),
    }
}

fn attribute(record: &LogRecord, key: &str) -> Option<String> {
    record
        .attributes
        .iter()
        .find(|attribute| attribute.key == key)
        .map(|attribute| text(attribute.value.clone()))
}

/// The receipt lines of `gatehouse audit export` (checkpoint lines left out).
fn exported_receipts(gateway: &Gateway) -> Vec<Value> {
    let (ok, out, err) = run_cli(gateway.dir(), &["audit", "export"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|line| line.get("receipt").is_some())
        .collect()
}

fn echo(gateway: &Gateway, tool: &str) -> u16 {
    gateway
        .modern(
            "tools/call",
            json!({"name": tool, "arguments": {"text": "hello"}}),
        )
        .status
}

fn metric(gateway: &Gateway, name: &str) -> Option<u64> {
    let base = gateway.url.trim_end_matches("/mcp");
    let metrics = reqwest::blocking::get(format!("{base}/metrics"))
        .unwrap()
        .text()
        .unwrap();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn every_receipt_reaches_an_otlp_collector_as_a_log_record_matching_the_store() {
    const CALLS: usize = 5;
    let collector = Collector::start();
    let audit = format!(
        "[audit]\notlp_endpoint = {:?}\notlp_headers = {{ x-collector-key = \"test-key\" }}\n",
        collector.url
    );
    let gateway = Gateway::start_with("", &format!("{audit}\n{}", demo_server("demo")));
    for _ in 0..CALLS {
        assert_eq!(echo(&gateway, "demo__echo"), 200);
    }
    // A call the gateway refuses itself: its decision receipt is an error.
    echo(&gateway, "demo__no_such_tool");
    // A completion is written after the answer; wait until every intent has one and the
    // collector has a record for every receipt in the store.
    let mut stored = Vec::new();
    let complete = gateway.eventually(Duration::from_secs(20), || {
        stored = exported_receipts(&gateway);
        let kinds = |kind: &str| stored.iter().filter(|line| line["kind"] == kind).count();
        kinds("intent") == kinds("completion") && collector.records().len() == stored.len()
    });
    assert!(
        complete,
        "{} records for {} receipts: {stored:#?}",
        collector.records().len(),
        stored.len()
    );
    // An intent and a completion per call, and the refusal's receipts.
    assert!(stored.len() > 2 * CALLS, "{stored:?}");
    let records = collector.records();
    assert_eq!(records.len(), stored.len());
    for (record, line) in records.iter().zip(&stored) {
        let receipt = &line["receipt"];
        assert_eq!(
            attribute(record, "gatehouse.audit.seq"),
            Some(line["seq"].to_string())
        );
        assert_eq!(
            attribute(record, "gatehouse.audit.hash").as_deref(),
            line["hash"].as_str()
        );
        assert_eq!(
            attribute(record, "gatehouse.request.id").as_deref(),
            receipt["request_id"].as_str()
        );
        assert_eq!(
            attribute(record, "gatehouse.decision").as_deref(),
            receipt["decision"]["verdict"].as_str()
        );
        assert_eq!(
            attribute(record, "gatehouse.outcome").as_deref(),
            receipt["outcome"].as_str()
        );
        let body: Value = serde_json::from_str(&text(record.body.clone())).unwrap();
        assert_eq!(body["receipt"], *receipt);
        let went_well = receipt["decision"]["verdict"] == "allow"
            && (receipt["outcome"].is_null() || receipt["outcome"] == "ok");
        let expected = if went_well { "INFO" } else { "WARN" };
        assert_eq!(record.severity_text, expected, "{receipt}");
    }
    let echoed = records
        .iter()
        .filter(|record| attribute(record, "gatehouse.target").as_deref() == Some("demo__echo"))
        .filter(|record| attribute(record, "gatehouse.server").as_deref() == Some("demo"))
        .count();
    assert_eq!(echoed, 2 * CALLS);
    let completion = records
        .iter()
        .find(|record| attribute(record, "gatehouse.audit.kind").as_deref() == Some("completion"))
        .unwrap();
    assert!(attribute(completion, "gatehouse.latency_us").is_some());
    assert!(
        records.iter().any(|record| record.severity_text == "WARN"),
        "the refused call is a warning: {stored:#?}"
    );
    assert!(
        collector
            .resources()
            .contains(&"service.name=gatehouse".to_owned())
    );
    assert_eq!(
        metric(&gateway, "gatehouse_audit_export_failures_total"),
        Some(0)
    );
}

#[test]
fn a_collector_that_is_down_fails_no_call_and_its_failures_are_counted() {
    const CALLS: usize = 5;
    // A port nothing listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let audit = format!("[audit]\notlp_endpoint = {endpoint:?}\n");
    let gateway = Gateway::start_with("", &format!("{audit}\n{}", demo_server("demo")));
    for _ in 0..CALLS {
        assert_eq!(echo(&gateway, "demo__echo"), 200);
    }
    let counted = gateway.eventually(Duration::from_secs(20), || {
        metric(&gateway, "gatehouse_audit_export_failures_total").is_some_and(|n| n > 0)
    });
    assert!(counted, "export failures were not counted");
    assert!(gateway.log().contains("audit export failed"));
    // Every call's intent and completion are in the store (a completion is written after the
    // answer, so wait for the last one).
    let recorded = gateway.eventually(Duration::from_secs(20), || {
        exported_receipts(&gateway).len() == 2 * CALLS
    });
    assert!(recorded, "{:?}", exported_receipts(&gateway));
    let (ok, out, err) = run_cli(gateway.dir(), &["audit", "verify"]);
    assert!(ok && out.contains("intact"), "{out}{err}");
}

#[test]
fn with_receipts_off_calls_are_served_and_nothing_is_recorded() {
    let gateway = Gateway::start_with(
        "",
        &format!("[audit]\nenabled = false\n\n{}", demo_server("demo")),
    );
    for _ in 0..3 {
        assert_eq!(echo(&gateway, "demo__echo"), 200);
    }
    assert!(exported_receipts(&gateway).is_empty());
    assert_eq!(metric(&gateway, "gatehouse_audit_appended_total"), None);
    assert!(!gateway.dir().join("audit-signing-key.json").exists());
}
