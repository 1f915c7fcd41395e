//! Policy end to end: two people with different grants see different tool lists through the
//! gateway, and every call the policy denies gets a clear error and never reaches the server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use serde_json::{Value, json};
use support::{Gateway, demo_server, keyed_config, run_cli};

const GRANTS: &str = r#"
[[grant]]
id = "alice-reads-demo"
to = ["user:alice"]
tools = ["demo__*"]
access = "read"

[[grant]]
id = "writers-write-demo"
to = ["group:writers"]
tools = ["demo__*"]
access = "destructive"

[[grant]]
id = "nobody-deletes"
effect = "deny"
to = ["*"]
tools = ["demo__delete_note"]
"#;

struct Setup {
    gateway: Gateway,
    alice: String,
    bob: String,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = keyed_config(dir.path(), &format!("{GRANTS}\n{}", demo_server("demo")));
    let cli = |args: &[&str]| {
        let (ok, out, err) = run_cli(dir.path(), args);
        assert!(ok, "gatehouse {args:?}: {out}{err}");
        out
    };
    cli(&["user", "add", "alice"]);
    cli(&["user", "add", "bob"]);
    cli(&["group", "add", "writers"]);
    cli(&["group", "add-member", "writers", "bob"]);
    let key = |user: &str| {
        cli(&["key", "issue", user])
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .to_owned()
    };
    let (alice, bob) = (key("alice"), key("bob"));
    Setup {
        gateway: Gateway::start_in(dir, &config),
        alice,
        bob,
    }
}

fn call(gateway: &Gateway, key: &str, method: &str, params: Value) -> support::Reply {
    let mut params = params;
    params["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}});
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let authorization = format!("Bearer {key}");
    let mut headers = vec![
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", method),
        ("authorization", authorization.as_str()),
    ];
    if let Some(name) = &name {
        headers.push(("mcp-name", name.as_str()));
    }
    gateway.post(&body, &headers)
}

fn names(reply: &support::Reply) -> Vec<String> {
    reply.result()["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn people_see_and_call_only_what_their_grants_allow() {
    let Setup {
        gateway,
        alice,
        bob,
    } = setup();
    let alice_sees = names(&call(&gateway, &alice, "tools/list", json!({})));
    let bob_sees = names(&call(&gateway, &bob, "tools/list", json!({})));
    assert_eq!(
        alice_sees,
        ["demo__echo", "demo__list_notes", "demo__slow_count"],
        "alice reads only"
    );
    assert!(
        bob_sees.contains(&"demo__add_note".to_owned()),
        "{bob_sees:?}"
    );
    assert!(
        !bob_sees.contains(&"demo__delete_note".to_owned()),
        "a deny beats an allow: {bob_sees:?}"
    );

    // (who, tool, arguments, allowed)
    let cases = [
        (&alice, "demo__echo", json!({"text": "hi"}), true),
        (
            &alice,
            "demo__add_note",
            json!({"title": "a", "body": "by alice"}),
            false,
        ),
        (
            &bob,
            "demo__add_note",
            json!({"title": "b", "body": "by bob"}),
            true,
        ),
        (&bob, "demo__delete_note", json!({"title": "b"}), false),
        (&alice, "DEMO__echo", json!({"text": "case variant"}), false),
        (
            &alice,
            "demo__ech\u{200b}o",
            json!({"text": "zero width"}),
            false,
        ),
    ];
    for (key, tool, arguments, allowed) in cases {
        let reply = call(
            &gateway,
            key,
            "tools/call",
            json!({"name": tool, "arguments": arguments}),
        );
        let response = reply.response();
        assert_eq!(
            response.get("result").is_some(),
            allowed,
            "{tool}: {response}"
        );
        if !allowed {
            assert!(
                response["error"]["code"].as_i64().is_some(),
                "{tool}: {response}"
            );
        }
    }
    let denied = call(
        &gateway,
        &alice,
        "tools/call",
        json!({"name": "demo__add_note", "arguments": {}}),
    );
    assert_eq!(denied.error_code(), Some(-32003));
    assert!(
        denied.response()["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("access denied"),
        "{}",
        denied.response()
    );

    // The denied calls never reached the server: only bob's note exists, not deleted.
    let notes = call(
        &gateway,
        &bob,
        "tools/call",
        json!({"name": "demo__list_notes", "arguments": {}}),
    );
    let text = notes.result()["content"][0]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(text.contains("by bob") || text.contains('b'), "{text}");
    assert!(!text.contains("by alice"), "{text}");
}

#[test]
fn policy_check_and_access_answer_for_humans() {
    let Setup { gateway, alice, .. } = setup();
    // Learn the catalog once so the commands know the tools and their classes.
    names(&call(&gateway, &alice, "tools/list", json!({})));
    let dir = gateway.dir();
    let learned = gateway.eventually(std::time::Duration::from_secs(10), || {
        run_cli(dir, &["tools"]).1.contains("demo__add_note")
    });
    assert!(learned);
    let (_, out, _) = run_cli(
        dir,
        &[
            "policy",
            "check",
            "--user",
            "bob",
            "--tool",
            "demo__delete_note",
        ],
    );
    assert!(
        out.starts_with("deny") && out.contains("rule nobody-deletes"),
        "{out}"
    );
    let (_, out, _) = run_cli(
        dir,
        &["policy", "check", "--user", "alice", "--tool", "demo__echo"],
    );
    assert!(
        out.starts_with("allow") && out.contains("rule alice-reads-demo"),
        "{out}"
    );
    let (_, out, _) = run_cli(dir, &["access", "alice"]);
    assert!(
        out.contains("demo__list_notes") && !out.contains("demo__add_note"),
        "{out}"
    );
    let (_, out, _) = run_cli(dir, &["access", "--tool", "demo__add_note"]);
    assert!(out.contains("bob") && !out.contains("alice"), "{out}");
    let table = dir.join("expectations.toml");
    std::fs::write(&table, "[[case]]\nuser = \"alice\"\ntool = \"demo__echo\"\nexpect = \"allow\"\n\n[[case]]\nuser = \"alice\"\ntool = \"demo__add_note\"\nexpect = \"deny\"\n").unwrap();
    let (ok, out, err) = run_cli(dir, &["policy", "test", table.to_str().unwrap()]);
    assert!(ok && out.contains("2 passed, 0 failed"), "{out}{err}");
}

#[test]
fn a_per_user_server_runs_one_process_per_person_and_keeps_their_state_apart() {
    let dir = tempfile::tempdir().unwrap();
    let grant = "[[grant]]\nid = \"everyone\"\nto = [\"*\"]\ntools = [\"private__*\"]\naccess = \"write\"\n";
    let server = format!("{}isolation = \"per_user\"\n", demo_server("private"));
    let config = keyed_config(dir.path(), &format!("{grant}\n{server}"));
    let mut keys = Vec::new();
    for user in ["alice", "bob"] {
        assert!(run_cli(dir.path(), &["user", "add", user]).0);
        let (_, out, _) = run_cli(dir.path(), &["key", "issue", user]);
        keys.push(out.lines().nth(1).unwrap().trim().to_owned());
    }
    let gateway = Gateway::start_in(dir, &config);
    let (alice, bob) = (&keys[0], &keys[1]);
    call(
        &gateway,
        alice,
        "tools/call",
        json!({"name": "private__add_note", "arguments": {"title": "mine", "body": "alice only"}}),
    )
    .result();
    call(&gateway, alice, "tools/call", json!({"name": "private__add_note", "arguments": {"title": "again", "body": "still alice"}})).result();
    let seen_by_bob = call(
        &gateway,
        bob,
        "tools/call",
        json!({"name": "private__list_notes", "arguments": {}}),
    );
    let seen_by_alice = call(
        &gateway,
        alice,
        "tools/call",
        json!({"name": "private__list_notes", "arguments": {}}),
    );
    let text = |reply: &support::Reply| {
        reply.result()["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        text(&seen_by_alice).contains("mine"),
        "{}",
        text(&seen_by_alice)
    );
    assert!(
        !text(&seen_by_bob).contains("mine"),
        "alice's state reached bob: {}",
        text(&seen_by_bob)
    );
    assert_eq!(
        support::child_pids(gateway.pid()).len(),
        2,
        "one process per person"
    );
}
