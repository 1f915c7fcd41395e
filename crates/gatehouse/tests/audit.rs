//! Audit end to end: every exit path leaves its receipt, a call's intent is durable before it
//! is forwarded, a crash mid-call leaves an `unknown` outcome that still verifies, when the log
//! cannot be written the gateway refuses calls with 503 and forwards nothing, pruning (by the
//! operator or by retention) leaves a chain that verifies from a signed anchor, and a flood of
//! refusals costs a bounded number of receipts whose counts add up.
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
use std::time::{Duration, Instant};

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
