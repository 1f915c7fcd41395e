//! The generator against the canned responder on 127.0.0.1:0: it stops by itself at its call
//! count or at its deadline, in both eras, and opens sessions.

#![cfg(test)]

use std::time::Duration;

use gatehouse_bench::client::ClientOptions;
use gatehouse_bench::{Endpoint, Era, LoadSpec, open_sessions, run_load};
use serde_json::json;

async fn canned() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/mcp", listener.local_addr().unwrap());
    tokio::spawn(gatehouse_bench::canned::serve_canned(listener));
    url
}

fn spec(url: &str, era: Era, max_calls: u64, duration: Duration) -> LoadSpec {
    LoadSpec {
        endpoint: Endpoint::parse(url).unwrap(),
        era,
        tool: "echo".to_owned(),
        arguments: json!({ "text": "hi" }),
        clients: 4,
        max_calls,
        duration,
        warmup_calls: 2,
        warmup_duration: Duration::from_secs(1),
        options: ClientOptions::default(),
    }
}

#[tokio::test]
async fn a_run_stops_at_its_call_count_in_both_eras() {
    let url = canned().await;
    for era in Era::ALL {
        let report = run_load(&spec(&url, era, 300, Duration::from_secs(30)))
            .await
            .unwrap();
        assert_eq!((report.calls, report.errors), (300, 0), "{era}: {report:?}");
        assert_eq!(report.clients_started, 4);
        assert_eq!(report.warmup_calls, 8);
        assert!(report.latency_us.p50 > 0.0 && report.latency_us.max >= report.latency_us.p99);
    }
}

#[tokio::test]
async fn a_run_stops_at_its_deadline() {
    let url = canned().await;
    let report = run_load(&spec(
        &url,
        Era::Modern,
        u64::MAX,
        Duration::from_millis(300),
    ))
    .await
    .unwrap();
    assert!(report.calls > 0 && report.errors == 0, "{report:?}");
    assert!(report.seconds < 5.0, "{report:?}");
}

#[tokio::test]
async fn a_refused_port_is_reported_not_hung_on() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let error = run_load(&spec(&url, Era::Legacy, 10, Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("cannot connect"), "{error}");
}

#[tokio::test]
async fn sessions_are_opened_and_counted() {
    let url = canned().await;
    let report = open_sessions(
        Endpoint::parse(&url).unwrap(),
        50,
        8,
        ClientOptions::default(),
    )
    .await;
    assert_eq!((report.opened, report.errors), (50, 0), "{report:?}");
}
