//! Central credentials end to end: secrets stored sealed and listed without values, a wrong or
//! missing key refused by name, a service credential filled into an HTTP upstream's headers and
//! scrubbed from what comes back, each person's own credential reaching the upstream only for
//! them, and a rotation under a running call loop that fails no call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{Gateway, header_of, keyed_config, recording_upstream, run_cli, run_cli_with_input};

const VALUE: &str = "svc-canary-7Hq2xL9p";

fn write_config(dir: &Path, text: &str) {
    std::fs::write(dir.join("gatehouse.toml"), text).unwrap();
}

fn anonymous_config(upstream: &str, header: &str) -> String {
    format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[servers.up]\nurl = \"{upstream}\"\nheaders = {{ Authorization = \"{header}\" }}\n"
    )
}

fn set_secret(dir: &Path, args: &[&str], value: &str) {
    let mut full = vec!["secret", "set"];
    full.extend_from_slice(args);
    let (ok, out, err) = run_cli_with_input(dir, &full, &format!("{value}\n"));
    assert!(ok, "{out}{err}");
}

fn whoami_text(reply: &support::Reply) -> String {
    reply.result()["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Calls `up__whoami` (2026-07-28) with gateway API key `key`.
fn whoami_as(gateway: &Gateway, key: &str) -> support::Reply {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "up__whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}}});
    gateway.post(
        &body.to_string(),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "up__whoami"),
        ],
    )
}

#[test]
fn secrets_are_sealed_listed_without_values_and_need_their_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    write_config(
        path,
        &anonymous_config("http://127.0.0.1:9/mcp", "Bearer {secret:svc}"),
    );

    let (ok, _, err) = run_cli(path, &["validate"]);
    assert!(!ok);
    assert!(
        err.contains("secret `svc` is not set; set it with `gatehouse secret set svc`"),
        "{err}"
    );

    let (ok, out, err) = run_cli_with_input(
        path,
        &["secret", "set", "svc", "--description", "upstream token"],
        &format!("{VALUE}\n"),
    );
    assert!(ok, "{err}");
    assert!(err.contains("created the secrets key"), "{err}");
    assert!(out.contains("stored secret `svc` (version 1)"), "{out}");
    assert!(out.contains("used by: up"), "{out}");
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(path.join("secrets.key"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    let (ok, _, err) = run_cli_with_input(path, &["secret", "set", "svc"], "another-value-1\n");
    assert!(!ok);
    assert!(
        err.contains("already set; replace its value with `gatehouse secret rotate svc`"),
        "{err}"
    );
    let (ok, _, err) = run_cli_with_input(path, &["secret", "set", "tiny"], "abc\n");
    assert!(!ok);
    assert!(err.contains("shorter than 8 characters"), "{err}");

    std::fs::write(path.join("from-file"), "file-value-12345\n").unwrap();
    let (ok, _, err) = run_cli(path, &["secret", "set", "other", "--file", "from-file"]);
    assert!(ok, "{err}");
    let (ok, out, err) =
        run_cli_with_input(path, &["secret", "rotate", "svc"], "svc-second-value\n");
    assert!(ok, "{err}");
    assert!(out.contains("rotated secret `svc` to version 2"), "{out}");

    let (ok, list, err) = run_cli(path, &["secret", "list"]);
    assert!(ok, "{err}");
    let svc = list.lines().find(|line| line.starts_with("svc ")).unwrap();
    assert!(
        svc.contains(" 2 ") && svc.contains(" up ") && svc.ends_with("upstream token"),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|line| line.starts_with("other ") && line.trim_end().ends_with('-')),
        "{list}"
    );
    assert!(
        !list.contains("canary") && !list.contains("second-value") && !list.contains("file-value")
    );

    let (ok, out, err) = run_cli(path, &["validate"]);
    assert!(ok, "{out}{err}");

    // Only ciphertext reaches the store file.
    for file in ["gatehouse.db", "gatehouse.db-wal"] {
        if let Ok(bytes) = std::fs::read(path.join(file)) {
            for value in ["svc-canary", "svc-second-value", "file-value"] {
                assert!(
                    !bytes
                        .windows(value.len())
                        .any(|window| window == value.as_bytes()),
                    "{value} in {file}"
                );
            }
        }
    }

    // Another key is refused by name; so is a missing one.
    std::fs::rename(path.join("secrets.key"), path.join("secrets.key.saved")).unwrap();
    let (ok, _, err) = run_cli_with_input(path, &["secret", "rotate", "svc"], "svc-third-value\n");
    assert!(!ok);
    assert!(
        err.contains("holds secrets sealed with a key that is not here"),
        "{err}"
    );
    std::fs::write(
        path.join("secrets.key"),
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli_with_input(path, &["secret", "rotate", "svc"], "svc-third-value\n");
    assert!(!ok);
    assert!(
        err.contains("is not the key this store's secrets were sealed with"),
        "{err}"
    );
    let (ok, _, err) = run_cli(path, &["serve"]);
    assert!(!ok);
    assert!(
        err.contains("is not the key this store's secrets were sealed with"),
        "{err}"
    );

    std::fs::rename(path.join("secrets.key.saved"), path.join("secrets.key")).unwrap();
    let (ok, out, err) = run_cli(path, &["secret", "remove", "svc"]);
    assert!(ok, "{err}");
    assert!(out.contains("fail until it is set again: up"), "{out}");
}

#[test]
fn a_service_credential_reaches_the_upstream_and_never_the_client() {
    let (upstream, seen) = recording_upstream(64);
    let dir = tempfile::tempdir().unwrap();
    let config = anonymous_config(&upstream, "Bearer {secret:svc}");
    write_config(dir.path(), &config);
    set_secret(dir.path(), &["svc"], VALUE);
    let gateway = Gateway::start_in(dir, &config);

    let reply = gateway.modern("tools/call", json!({"name": "up__whoami", "arguments": {}}));
    assert_eq!(
        whoami_text(&reply),
        "you sent Bearer [redacted secret svc v1]"
    );
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|head| header_of(head, "authorization") == format!("Bearer {VALUE}"))
    );

    // The receipt names the credential and its version, never its value.
    let (ok, tail, err) = run_cli(gateway.dir(), &["audit", "tail", "-n", "50"]);
    assert!(ok, "{err}");
    assert!(
        tail.contains(r#""credential":{"id":"svc","version":1}"#),
        "{tail}"
    );
    assert!(!tail.contains(VALUE));
    assert!(!gateway.log().contains(VALUE));
}

#[test]
fn each_person_s_own_credential_reaches_the_upstream_for_them_alone() {
    let (upstream, seen) = recording_upstream(1000);
    let dir = tempfile::tempdir().unwrap();
    let grant = "[[grant]]\nid = \"all\"\nto = [\"*\"]\nservers = [\"*\"]\n";
    let config = keyed_config(
        dir.path(),
        &format!(
            "{grant}\n[servers.up]\nurl = \"{upstream}\"\nheaders = {{ Authorization = \"Bearer {{user_secret:tok}}\" }}\n"
        ),
    );
    let mut keys = Vec::new();
    for user in ["alice", "bob", "carol"] {
        assert!(run_cli(dir.path(), &["user", "add", user]).0);
        let (_, out, _) = run_cli(dir.path(), &["key", "issue", user]);
        keys.push(out.lines().nth(1).unwrap().trim().to_owned());
    }
    set_secret(dir.path(), &["--user", "alice", "tok"], "alice-token-0001");
    set_secret(dir.path(), &["--user", "bob", "tok"], "bob-token-0002");
    let gateway = Arc::new(Gateway::start_in(dir, &config));

    let threads: Vec<_> = (0..100)
        .map(|index| {
            let gateway = Arc::clone(&gateway);
            let (user, key) = if index % 2 == 0 {
                ("alice", keys[0].clone())
            } else {
                ("bob", keys[1].clone())
            };
            std::thread::spawn(move || (user, whoami_text(&whoami_as(&gateway, &key))))
        })
        .collect();
    for thread in threads {
        let (user, text) = thread.join().unwrap();
        assert_eq!(
            text,
            format!("you sent Bearer [redacted secret tok@{user} v1]")
        );
    }
    let recorded: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|head| header_of(head, "authorization"))
        .collect();
    let count = |value: &str| recorded.iter().filter(|header| *header == value).count();
    assert!(count("Bearer alice-token-0001") >= 50, "{recorded:?}");
    assert!(count("Bearer bob-token-0002") >= 50, "{recorded:?}");
    assert_eq!(
        count("Bearer alice-token-0001") + count("Bearer bob-token-0002"),
        recorded.len(),
        "every upstream request carries one of the two people's own tokens: {recorded:?}"
    );

    // Someone without their own credential is told how to store it; nothing is sent for them.
    let before = recorded.len();
    let reply = whoami_as(&gateway, &keys[2]);
    let message = reply.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("`carol` has not stored their own credential `tok`; they can set it with `gatehouse secret set --user carol tok`"),
        "{}",
        reply.response()
    );
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(seen.lock().unwrap().len(), before);
}

#[test]
fn a_rotation_under_load_fails_no_call_and_later_calls_carry_the_new_value() {
    let (upstream, seen) = recording_upstream(5000);
    let dir = tempfile::tempdir().unwrap();
    let config = anonymous_config(&upstream, "Bearer {secret:svc}");
    write_config(dir.path(), &config);
    set_secret(dir.path(), &["svc"], "first-value-0001");
    let gateway = Arc::new(Gateway::start_in(dir, &config));

    let rotated_at: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let gateway = Arc::clone(&gateway);
            std::thread::spawn(move || {
                let mut answers = Vec::new();
                for _ in 0..150 {
                    let started = Instant::now();
                    let reply = gateway
                        .modern("tools/call", json!({"name": "up__whoami", "arguments": {}}));
                    let text = reply
                        .response()
                        .pointer("/result/content/0/text")
                        .and_then(Value::as_str)
                        .map(str::to_owned);
                    answers.push((started, text, reply.response().clone()));
                }
                answers
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let (ok, _, err) = run_cli_with_input(
        gateway.dir(),
        &["secret", "rotate", "svc"],
        "second-value-0002\n",
    );
    assert!(ok, "{err}");
    *rotated_at.lock().unwrap() = Some(Instant::now());
    let rotated_at = rotated_at.lock().unwrap().unwrap();

    let mut old = 0;
    let mut new = 0;
    for worker in workers {
        let mut seen_new = false;
        for (started, text, response) in worker.join().unwrap() {
            let text = text.unwrap_or_else(|| panic!("a call failed: {response}"));
            if text.ends_with("[redacted secret svc v2]") {
                seen_new = true;
                new += 1;
            } else {
                assert_eq!(text, "you sent Bearer [redacted secret svc v1]");
                assert!(!seen_new, "a call went back to the old value");
                // The gateway learns of a rotation within its change-watch interval (200 ms);
                // the bound leaves room for a loaded machine.
                assert!(
                    started < rotated_at + Duration::from_secs(2),
                    "a call started {:?} after the rotation still used the old value",
                    started - rotated_at
                );
                old += 1;
            }
        }
    }
    assert!(old > 0 && new > 0, "old {old}, new {new}");
    let seen: Vec<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|head| header_of(head, "authorization"))
        .collect();
    assert!(
        seen.iter()
            .all(|header| header == "Bearer first-value-0001"
                || header == "Bearer second-value-0002")
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("Bearer second-value-0002")
    );
}

#[test]
fn a_client_credentials_token_is_fetched_once_for_the_upstream_alone() {
    let (issuer, token_requests) = support::authorization_server(64);
    let (upstream, seen) = recording_upstream(256);
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[servers.up]\nurl = \"{upstream}\"\n\n[servers.up.oauth]\ngrant = \"client_credentials\"\ntoken_url = \"{issuer}/token\"\nclient_id = \"gatehouse\"\nclient_secret = \"{{secret:as-client}}\"\nscopes = [\"read\"]\n"
    );
    write_config(dir.path(), &config);
    set_secret(dir.path(), &["as-client"], "client-secret-5v8q");
    let gateway = Gateway::start_in(dir, &config);

    for _ in 0..20 {
        let reply = gateway.modern("tools/call", json!({"name": "up__whoami", "arguments": {}}));
        let text = whoami_text(&reply);
        assert!(
            text.starts_with("you sent Bearer [redacted secret oauth.up v"),
            "{text}"
        );
    }
    let requests = token_requests.lock().unwrap();
    assert_eq!(requests.forms.len(), 1, "{requests:?}");
    let form = &requests.forms[0];
    assert_eq!(form["grant_type"], "client_credentials");
    assert_eq!(
        form["resource"], upstream,
        "RFC 8707: the token is for this upstream"
    );
    assert_eq!(form["scope"], "read");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|head| header_of(head, "authorization") == "Bearer service-token-1")
    );
    drop(requests);

    // The client secret is rotated: the next token request uses the new one, and no call fails.
    let (ok, _, err) = run_cli_with_input(
        gateway.dir(),
        &["secret", "rotate", "as-client"],
        "client-secret-new-7w2x\n",
    );
    assert!(ok, "{err}");
    let renewed = gateway.eventually(Duration::from_secs(5), || {
        let reply = gateway.modern("tools/call", json!({"name": "up__whoami", "arguments": {}}));
        assert!(whoami_text(&reply).starts_with("you sent Bearer [redacted secret oauth.up v"));
        token_requests.lock().unwrap().forms.len() == 2
    });
    assert!(renewed, "no token request with the rotated client secret");
    let basic = |index: usize| {
        let header = token_requests.lock().unwrap().authorizations[index].clone();
        let encoded = header.strip_prefix("Basic ").unwrap_or_default().to_owned();
        String::from_utf8(
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap(),
        )
        .unwrap()
    };
    assert_eq!(basic(0), "gatehouse:client-secret-5v8q");
    assert_eq!(basic(1), "gatehouse:client-secret-new-7w2x");
    assert!(!gateway.log().contains("service-token-1"));
    assert!(!gateway.log().contains("client-secret-5v8q"));
    assert!(!gateway.log().contains("client-secret-new-7w2x"));
}

#[test]
fn a_person_signs_in_once_and_100_concurrent_calls_refresh_once() {
    let (issuer, token_requests) = support::authorization_server(64);
    let (upstream, seen) = recording_upstream(1000);
    let dir = tempfile::tempdir().unwrap();
    // Before anyone connects, the tool's class is unknown (taken as `write`).
    let grant = "[[grant]]\nid = \"all\"\nto = [\"*\"]\nservers = [\"*\"]\naccess = \"write\"\n";
    let config = keyed_config(
        dir.path(),
        &format!(
            "{grant}\n[servers.up]\nurl = \"{upstream}\"\n\n[servers.up.oauth]\ngrant = \"authorization_code\"\ntoken_url = \"{issuer}/token\"\nauthorization_url = \"{issuer}/authorize\"\nclient_id = \"gatehouse\"\n"
        ),
    );
    assert!(run_cli(dir.path(), &["user", "add", "alice"]).0);
    let (_, out, _) = run_cli(dir.path(), &["key", "issue", "alice"]);
    let key = out.lines().nth(1).unwrap().trim().to_owned();
    let gateway = Arc::new(Gateway::start_in(dir, &config));

    // Not connected yet: the answer says where to sign in, and nothing reaches the upstream.
    let reply = whoami_as(&gateway, &key);
    let message = reply.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("`alice` has not connected their account to server `up`: open "),
        "{}",
        reply.response()
    );
    assert!(seen.lock().unwrap().is_empty());
    let sign_in = message
        .split_whitespace()
        .find(|word| word.starts_with(&format!("{issuer}/authorize?")))
        .unwrap()
        .to_owned();
    assert!(sign_in.contains("code_challenge_method=S256") && sign_in.contains("resource="));
    // A client that takes URL elicitations is sent to the same place in a structured error.
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "up__whoami", "arguments": {},
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"url": {}}}}}});
    let reply = gateway.post(
        &body.to_string(),
        &[
            ("authorization", &format!("Bearer {key}")),
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "up__whoami"),
        ],
    );
    assert_eq!(reply.error_code(), Some(-32042), "{}", reply.response());
    let elicitation = &reply.response()["error"]["data"]["elicitations"][0];
    assert_eq!(elicitation["mode"], "url");
    assert!(
        elicitation["url"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{issuer}/authorize?"))
    );
    // The browser: the authorization server approves and sends it back to the gateway.
    let landed = reqwest::blocking::get(&sign_in).unwrap();
    assert_eq!(landed.status(), 200);
    assert!(
        landed
            .text()
            .unwrap()
            .contains("`alice` is connected to server `up`")
    );

    // The token from the code expires at once: 100 concurrent calls share one refresh.
    let threads: Vec<_> = (0..100)
        .map(|_| {
            let gateway = Arc::clone(&gateway);
            let key = key.clone();
            std::thread::spawn(move || whoami_text(&whoami_as(&gateway, &key)))
        })
        .collect();
    for thread in threads {
        let text = thread.join().unwrap();
        assert!(
            text.starts_with("you sent Bearer [redacted secret oauth.up@alice v"),
            "{text}"
        );
    }
    let requests = token_requests.lock().unwrap();
    assert_eq!(requests.count("authorization_code"), 1, "{requests:?}");
    assert_eq!(
        requests.count("refresh_token"),
        1,
        "one refresh for 100 calls: {requests:?}"
    );
    assert!(
        requests
            .forms
            .iter()
            .all(|form| form.get("resource") == Some(&upstream))
    );
    let tokens: std::collections::BTreeSet<String> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|head| header_of(head, "authorization"))
        .collect();
    assert!(tokens.contains("Bearer person-token-2"), "{tokens:?}");
    assert!(
        tokens
            .iter()
            .all(|token| token.starts_with("Bearer person-token-")),
        "{tokens:?}"
    );
    // The grant is sealed in the store, not kept in plain text.
    let (ok, list, _) = run_cli(gateway.dir(), &["secret", "list"]);
    let grant = list
        .lines()
        .find(|line| line.starts_with("oauth.up@alice"))
        .unwrap_or_else(|| panic!("{list}"));
    assert!(
        ok && grant.contains(" up "),
        "the grant is used by server up: {list}"
    );
}

#[test]
fn a_signed_in_person_s_token_is_exchanged_and_never_reaches_the_upstream() {
    let identity = support::Issuer::start();
    let (issuer, token_requests) = support::authorization_server(64);
    let (upstream, seen) = recording_upstream(256);
    let dir = tempfile::tempdir().unwrap();
    let resource = "https://gatehouse.example/mcp";
    let config = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[auth]\nresource_url = \"{resource}\"\n\n[auth.oidc]\nissuer = \"{}\"\nuser_claim = \"preferred_username\"\n\n[[grant]]\nid = \"all\"\nto = [\"*\"]\nservers = [\"*\"]\naccess = \"write\"\n\n[servers.up]\nurl = \"{upstream}\"\n\n[servers.up.oauth]\ngrant = \"token_exchange\"\ntoken_url = \"{issuer}/token\"\nclient_id = \"gatehouse\"\naudience = \"up-api\"\n",
        identity.url
    );
    let gateway = Gateway::start_in(dir, &config);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jwt = identity.token(&json!({"iss": identity.url, "aud": resource, "sub": "u-1", "preferred_username": "alice", "iat": now, "exp": now + 300}));
    for _ in 0..10 {
        let text = whoami_text(&whoami_as(&gateway, &jwt));
        assert!(
            text.starts_with("you sent Bearer [redacted secret oauth.up@alice v"),
            "{text}"
        );
    }
    let requests = token_requests.lock().unwrap();
    assert_eq!(
        requests.forms.len(),
        1,
        "one exchange for ten calls: {requests:?}"
    );
    let form = &requests.forms[0];
    assert_eq!(
        form["grant_type"],
        "urn:ietf:params:oauth:grant-type:token-exchange"
    );
    assert_eq!(form["subject_token"], jwt);
    assert_eq!(form["audience"], "up-api");
    assert_eq!(form["resource"], upstream);
    for head in seen.lock().unwrap().iter() {
        assert_eq!(header_of(head, "authorization"), "Bearer exchanged-token-1");
        assert!(
            !head.contains(&jwt),
            "the person's own token reached the upstream"
        );
    }
}
