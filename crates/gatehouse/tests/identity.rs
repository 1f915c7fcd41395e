//! Identity end to end: API keys issued by the CLI, refused credentials, sessions bound to
//! their owner, and revocation that closes open streams within a second.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::json;
use support::{
    Gateway, Issuer, child_pids, demo_server, keyed_config, recording_upstream, run_cli,
};

/// A gateway with API keys on, and the keys of alice and bob.
fn gateway_with_keys() -> (Gateway, String, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let config = keyed_config(dir.path(), &demo_server("demo"));
    let mut keys = Vec::new();
    for user in ["alice", "bob"] {
        let (ok, _, err) = run_cli(dir.path(), &["user", "add", user]);
        assert!(ok, "{err}");
        let (ok, out, err) = run_cli(dir.path(), &["key", "issue", user, "--name", "laptop"]);
        assert!(ok, "{err}");
        let id = out.split_whitespace().nth(2).unwrap().to_owned();
        let key = out.lines().nth(1).unwrap().trim().to_owned();
        assert!(key.starts_with(&format!("gh_{id}_")), "{out}");
        keys.push((id, key));
    }
    let (_, listed, _) = run_cli(dir.path(), &["key", "list"]);
    assert!(
        !listed.contains(&keys[0].1),
        "a key value must never be listed"
    );
    let gateway = Gateway::start_in(dir, &config);
    let (alice_id, alice) = keys.remove(0);
    let (_, bob) = keys.remove(0);
    (gateway, alice_id, alice, bob)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[test]
fn only_valid_keys_get_in_and_sessions_stay_with_their_owner() {
    let (gateway, _, alice, bob) = gateway_with_keys();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let modern = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
    ];
    let forged = format!("{}x", &alice[..alice.len() - 1]);
    // (case, authorization header, expected status)
    let cases: Vec<(&str, Option<String>, u16)> = vec![
        ("no credential", None, 401),
        ("not a bearer", Some("Basic YWxpY2U6eA==".into()), 401),
        ("forged secret", Some(bearer(&forged)), 401),
        (
            "unknown key",
            Some(bearer(
                "gh_0000000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            )),
            401,
        ),
        ("alice", Some(bearer(&alice)), 200),
    ];
    for (case, authorization, status) in cases {
        let mut headers: Vec<(&str, &str)> = modern.to_vec();
        if let Some(value) = &authorization {
            headers.push(("authorization", value));
        }
        let reply = gateway.post(list, &headers);
        assert_eq!(reply.status, status, "{case}: {:?}", reply.messages);
        if status == 401 {
            assert!(
                reply
                    .header("www-authenticate")
                    .is_some_and(|v| v.starts_with("Bearer")),
                "{case}"
            );
        }
    }
    // A session belongs to the credential that opened it.
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let opened = gateway.post(&init.to_string(), &[("authorization", &bearer(&alice))]);
    let session = opened.header("mcp-session-id").unwrap();
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#;
    let own = gateway.post(
        call,
        &[
            ("authorization", &bearer(&alice)),
            ("mcp-session-id", &session),
        ],
    );
    assert_eq!(own.status, 200);
    let stolen = gateway.post(
        call,
        &[
            ("authorization", &bearer(&bob)),
            ("mcp-session-id", &session),
        ],
    );
    assert_eq!(stolen.status, 403, "{:?}", stolen.messages);
}

#[test]
fn revoking_a_key_refuses_the_next_request_and_closes_open_streams_within_a_second() {
    let (gateway, alice_id, alice, _) = gateway_with_keys();
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let opened = gateway.post(&init.to_string(), &[("authorization", &bearer(&alice))]);
    let session = opened.header("mcp-session-id").unwrap();
    let url = gateway.url.clone();
    let (key, id) = (alice.clone(), session.clone());
    let stream = std::thread::spawn(move || {
        let mut response = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap()
            .get(url)
            .header("accept", "text/event-stream")
            .header("authorization", format!("Bearer {key}"))
            .header("mcp-session-id", id)
            .send()
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let mut sink = Vec::new();
        let _ = response.read_to_end(&mut sink);
        Instant::now()
    });
    std::thread::sleep(Duration::from_millis(300));
    let (ok, out, err) = run_cli(gateway.dir(), &["key", "revoke", &alice_id]);
    assert!(ok, "{out}{err}");
    let revoked_at = Instant::now();
    let closed_at = stream.join().unwrap();
    let delay = closed_at.saturating_duration_since(revoked_at);
    assert!(
        delay < Duration::from_secs(1),
        "the stream closed {delay:?} after the revocation"
    );
    let after = gateway.post(
        r#"{"jsonrpc":"2.0","id":2,"method":"tools/list"}"#,
        &[
            ("authorization", &bearer(&alice)),
            ("mcp-session-id", &session),
        ],
    );
    assert_eq!(after.status, 401);
}

#[test]
fn offboarding_disables_the_person_and_revokes_every_key_in_one_step() {
    let (gateway, _, _, bob) = gateway_with_keys();
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let authorization = bearer(&bob);
    let headers = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/list"),
        ("authorization", authorization.as_str()),
    ];
    assert_eq!(gateway.post(list, &headers).status, 200);
    let (ok, out, err) = run_cli(gateway.dir(), &["user", "offboard", "bob"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("user disabled") && out.contains("revoked API key "),
        "{out}"
    );
    assert_eq!(gateway.post(list, &headers).status, 401);
    let (_, shown, _) = run_cli(gateway.dir(), &["user", "show", "bob"]);
    assert!(
        shown.contains("state:    disabled") && shown.contains("revoked"),
        "{shown}"
    );
}

#[test]
fn the_gateway_is_an_oauth_protected_resource() {
    let dir = tempfile::tempdir().unwrap();
    let pepper = dir.path().join("pepper");
    std::fs::write(
        &pepper,
        "a pepper of at least thirty-two bytes, for tests only",
    )
    .unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nresource_url = \"https://mcp.example.com/mcp\"\nauthorization_servers = [\"https://login.example.com\"]\n\n[auth.api_keys]\npepper_file = {:?}\n",
        pepper.display().to_string()
    );
    let gateway = Gateway::start_in(dir, &config);
    let refused = gateway.post(r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#, &[]);
    assert_eq!(refused.status, 401);
    let challenge = refused.header("www-authenticate").unwrap();
    assert!(
        challenge.contains(
            "resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
        ),
        "{challenge}"
    );
    let base = gateway.url.trim_end_matches("/mcp");
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let metadata: serde_json::Value = reqwest::blocking::get(format!("{base}{path}"))
            .unwrap()
            .json()
            .unwrap();
        assert_eq!(
            metadata["resource"], "https://mcp.example.com/mcp",
            "{path}"
        );
        assert_eq!(
            metadata["authorization_servers"][0], "https://login.example.com",
            "{path}"
        );
    }
}

/// A JWT with this header and payload and a junk signature.
fn forged_token(header: &serde_json::Value, claims: &serde_json::Value) -> String {
    use base64::Engine;
    let encode = |value: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value.to_string())
    };
    format!("{}.{}.c2lnbmF0dXJl", encode(header), encode(claims))
}

#[test]
fn bad_tokens_are_refused_before_any_server_is_started() {
    let dir = tempfile::tempdir().unwrap();
    // The issuer is never reachable: every token here must be refused without a key fetch.
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nresource_url = \"https://mcp.example.com/mcp\"\n\n[auth.oidc]\nissuer = \"http://127.0.0.1:9\"\n\n{}",
        demo_server("demo")
    );
    let gateway = Gateway::start_in(dir, &config);
    let claims = json!({"iss": "http://127.0.0.1:9", "aud": "https://mcp.example.com/mcp", "sub": "mallory", "exp": 4102444800u64});
    let tokens = [
        (
            "alg none",
            forged_token(&json!({"alg": "none", "typ": "JWT"}), &claims),
        ),
        (
            "hs256",
            forged_token(&json!({"alg": "HS256", "typ": "JWT", "kid": "k"}), &claims),
        ),
        (
            "string exp",
            forged_token(
                &json!({"alg": "RS256", "kid": "k"}),
                &json!({"sub": "mallory", "exp": "never"}),
            ),
        ),
        (
            "jku",
            forged_token(
                &json!({"alg": "RS256", "jku": "http://127.0.0.1:9/keys"}),
                &claims,
            ),
        ),
        ("not a jwt", "definitely-not-a-token".to_owned()),
    ];
    let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"demo__echo","arguments":{"text":"x"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    for (case, token) in tokens {
        let authorization = format!("Bearer {token}");
        let reply = gateway.post(
            call,
            &[
                ("authorization", &authorization),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/call"),
                ("mcp-name", "demo__echo"),
            ],
        );
        assert_eq!(reply.status, 401, "{case}: {:?}", reply.messages);
    }
    assert!(
        gateway
            .log()
            .matches("request refused: identity not accepted")
            .count()
            >= 5
    );
    let children = child_pids(gateway.pid()).len();
    assert_eq!(
        children, 0,
        "no server may be started for a refused request"
    );
}

#[test]
fn the_clients_credential_never_reaches_an_upstream() {
    let (upstream, seen) = recording_upstream(64);
    let dir = tempfile::tempdir().unwrap();
    let grant = "[[grant]]\nid = \"all\"\nto = [\"*\"]\nservers = [\"*\"]\n";
    let config = keyed_config(
        dir.path(),
        &format!(
            "{grant}\n[servers.capture]\nurl = \"{upstream}\"\nheaders = {{ X-Team = \"platform\" }}\n"
        ),
    );
    assert!(run_cli(dir.path(), &["user", "add", "alice"]).0);
    let (_, out, _) = run_cli(dir.path(), &["key", "issue", "alice"]);
    let key = out.lines().nth(1).unwrap().trim().to_owned();
    let gateway = Gateway::start_in(dir, &config);
    let authorization = format!("Bearer {key}");
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "capture__whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    let reply = gateway.post(
        &body.to_string(),
        &[
            ("authorization", &authorization),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "capture__whoami"),
            ("cookie", "session=secret"),
        ],
    );
    assert_eq!(reply.result()["content"][0]["text"], "you sent ");
    let heads = seen.lock().unwrap().clone();
    assert!(heads.len() >= 2, "{heads:?}");
    for head in &heads {
        let lower = head.to_ascii_lowercase();
        assert!(
            !lower.contains("authorization:") && !head.contains(&key),
            "client credential forwarded: {head}"
        );
        assert!(
            !lower.contains("cookie:"),
            "client cookie forwarded: {head}"
        );
        assert!(
            lower.contains("x-team: platform"),
            "configured header missing: {head}"
        );
    }
}

#[test]
fn tokens_from_the_identity_provider_are_accepted_only_when_every_check_passes() {
    let issuer = Issuer::start();
    let dir = tempfile::tempdir().unwrap();
    let resource = "https://mcp.example.com/mcp";
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nresource_url = \"{resource}\"\n\n[auth.oidc]\nissuer = \"{}\"\nuser_claim = \"preferred_username\"\ngroups_claim = \"groups\"\n\n[[grant]]\nid = \"ops\"\nto = [\"group:ops\"]\ntools = [\"demo__*\"]\n\n{}",
        issuer.url,
        demo_server("demo")
    );
    let gateway = Gateway::start_in(dir, &config);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = json!({"iss": issuer.url, "aud": resource, "sub": "u-7", "preferred_username": "carol", "groups": ["ops"], "iat": now, "nbf": now - 5, "exp": now + 300});
    let with = |changes: serde_json::Value| {
        let mut claims = good.clone();
        for (key, value) in changes.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    // (case, claims, expected status)
    let cases = [
        ("valid", good.clone(), 200),
        (
            "other audience",
            with(json!({"aud": "https://other.example.com/mcp"})),
            401,
        ),
        (
            "expired",
            with(json!({"exp": now - 120, "nbf": now - 600, "iat": now - 600})),
            401,
        ),
        ("not yet valid", with(json!({"nbf": now + 600})), 401),
        (
            "other issuer",
            with(json!({"iss": "https://evil.example.com"})),
            401,
        ),
        ("string expiry", with(json!({"exp": "never"})), 401),
    ];
    let list = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    for (case, claims, status) in cases {
        let authorization = format!("Bearer {}", issuer.token(&claims));
        let reply = gateway.post(
            list,
            &[
                ("authorization", &authorization),
                ("mcp-protocol-version", "2026-07-28"),
                ("mcp-method", "tools/list"),
            ],
        );
        assert_eq!(reply.status, status, "{case}: {:?}", reply.messages);
        if status == 200 {
            let names: Vec<&str> = reply.result()["tools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|t| t["name"].as_str().unwrap())
                .collect();
            assert!(
                names.contains(&"demo__echo"),
                "the token's groups grant the demo tools: {names:?}"
            );
        }
    }
    let receipts = run_cli(gateway.dir(), &["audit", "tail", "-n", "50"]).1;
    assert!(receipts.contains("\"user\":\"carol\""), "{receipts}");
}
