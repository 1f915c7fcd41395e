//! Audit end to end: every exit path leaves its receipt, a call's intent is durable before it
//! is forwarded, a crash mid-call leaves an `unknown` outcome that still verifies, and when the
//! log cannot be written the gateway refuses calls with 503 and forwards nothing. Receipts
//! reach an OpenTelemetry collector as log records, and a collector that is down fails no call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use prost::Message as _;
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
