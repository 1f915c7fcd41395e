use crate::edit::{NewServer, add_server, remove_server};
use crate::{AuditSettings, ServerName, Transport, parse, starter_config};

/// Parses `text` and renders either a summary of the servers or the problems found.
fn check(text: &str) -> String {
    match parse(text) {
        Ok(config) => config
            .servers
            .iter()
            .map(|server| {
                let kind = match &server.transport {
                    Transport::Stdio { command, .. } => format!("stdio {command}"),
                    Transport::Http { url, .. } => format!("http {url}"),
                };
                format!("{} prefix={:?} {kind}", server.name, server.prefix)
            })
            .collect::<Vec<_>>()
            .join("\n"),
        Err(error) => error
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn table_of_configurations() {
    let cases: &[(&str, &str)] = &[
        ("", ""),
        (
            "[servers.a]\ncommand = \"x\"\n[servers.b]\nurl = \"http://127.0.0.1:1/mcp\"\nprefix = \"\"\n",
            "a prefix=Some(\"a\") stdio x\nb prefix=None http http://127.0.0.1:1/mcp",
        ),
        (
            "[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n",
            "line 1: servers.a: has both `command` and `url`; keep `command` for a stdio server or `url` for an HTTP server",
        ),
        (
            "[servers.a]\nargs = []\n",
            "line 1: servers.a: needs `command` (a stdio server to spawn) or `url` (a Streamable HTTP server)",
        ),
        (
            "[servers.a__b]\ncommand = \"x\"\n",
            "line 1: servers.a__b: server name `a__b` must not contain `__` or end with `_`: the separator must stay unambiguous",
        ),
        (
            "[servers.a]\ncommand = \"x\"\n\n[servers.b]\ncommand = \"y\"\nprefix = \"a\"\n",
            "line 6: servers.b.prefix: prefix `a` is already used by server `a`; names would collide, so give one of them another `prefix`",
        ),
        (
            "[servers.a]\ncommnd = \"x\"\n",
            "line 2: file: unknown field `commnd`, expected one of `command`, `args`, `env`, `cwd`, `url`, `headers`, `prefix`, `description`, `isolation`, `max_processes`, `idle_min_secs`, `idle_max_secs`, `always_on`, `environment`, `classes`, `oauth`",
        ),
        (
            "[gateway]\nlisten = \"nowhere\"\n[servers.a]\nurl = \"ftp://x\"\n",
            "line 2: gateway.listen: `nowhere` is not an address and port such as `127.0.0.1:8080`\nline 4: servers.a.url: `ftp://x` must start with http:// or https://",
        ),
        (
            "[gateway]\nlisten = \"0.0.0.0:8080\"\n",
            "line 2: gateway.listen: `0.0.0.0:8080` is not a loopback address and there is no [auth] table, so anyone who can reach it would be served anonymously; add [auth] or listen on 127.0.0.1",
        ),
        (
            "[gateway]\nlisten = \"0.0.0.0:8080\"\n[auth]\nresource_url = \"https://x/mcp\"\n",
            "",
        ),
        (
            "[servers.a]\ncommand = \"x\"\nisolation = \"per_tenant\"\nidle_min_secs = 10\nidle_max_secs = 5\n",
            "line 3: servers.a.isolation: `per_tenant` is not one of `shared`, `per_user`, `per_session`\nline 5: servers.a.idle_max_secs: must not be shorter than `idle_min_secs`",
        ),
        (
            "[store]\nurl = \"mysql://x\"\n",
            "line 2: store.url: must start with sqlite:// or postgres://",
        ),
        ("[audit]\nretain_days = 90\n", ""),
        ("[audit]\nretain_days = 36500\n", ""),
        (
            "[audit]\nretain_days = 0\n",
            "line 2: audit.retain_days: must be at least 1 day, not 0; leave `retain_days` out to keep receipts forever",
        ),
        (
            "[audit]\nretain_days = -7\n",
            "line 2: audit.retain_days: must be at least 1 day, not -7; leave `retain_days` out to keep receipts forever",
        ),
        (
            "[audit]\nretain_days = 36501\n",
            "line 2: audit.retain_days: must be at most 36500 days (a century), not 36501",
        ),
        (
            "[audit]\nfailure_mode = \"open\"\nretain_days = \"90d\"\n",
            "line 3: audit.retain_days: must be a whole number of days, such as `retain_days = 90`, not `\"90d\"`",
        ),
        (
            "[audit]\nretain_days = 1.5\n",
            "line 2: audit.retain_days: must be a whole number of days, such as `retain_days = 90`, not `1.5`",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(check(input), *expected, "input:\n{input}");
    }
}

/// Parses `[audit]` text and renders the audit settings, or the problems found.
fn check_audit(text: &str) -> String {
    match parse(text) {
        Ok(config) => match config.audit {
            AuditSettings::Off => "off".to_owned(),
            AuditSettings::Receipts(receipts) => {
                let mut line = format!("receipts fail_closed={}", receipts.fail_closed);
                if let Some(export) = &receipts.export {
                    line.push_str(&format!(" export={export}"));
                }
                if let Some(otlp) = &receipts.otlp {
                    line.push_str(&format!(
                        " otlp={} headers={:?}",
                        otlp.logs_url, otlp.headers
                    ));
                }
                line
            }
        },
        Err(error) => error
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[test]
fn table_of_audit_settings() {
    let cases: &[(&str, &str)] = &[
        ("", "receipts fail_closed=true"),
        (
            "[audit]\nfailure_mode = \"open\"\nexport = \"stdout\"\n",
            "receipts fail_closed=false export=stdout",
        ),
        (
            "[audit]\nfailure_mode = \"sometimes\"\n",
            "line 2: audit.failure_mode: `sometimes` is not `closed` or `open`",
        ),
        (
            "[audit]\notlp_endpoint = \"http://collector:4318\"\n",
            "receipts fail_closed=true otlp=http://collector:4318/v1/logs headers={}",
        ),
        (
            "[audit]\notlp_endpoint = \"https://otel.example.com/otlp/\"\notlp_headers = { api-key = \"k\" }\n",
            "receipts fail_closed=true otlp=https://otel.example.com/otlp/v1/logs headers={\"api-key\": \"k\"}",
        ),
        (
            "[audit]\notlp_endpoint = \"http://127.0.0.1:4318/v1/logs\"\n",
            "receipts fail_closed=true otlp=http://127.0.0.1:4318/v1/logs headers={}",
        ),
        (
            "[audit]\notlp_endpoint = \"collector:4317\"\n",
            "line 2: audit.otlp_endpoint: `collector:4317` must start with http:// or https:// (OTLP over HTTP; gRPC is not supported)",
        ),
        (
            "[audit]\notlp_endpoint = \"localhost\"\n",
            "line 2: audit.otlp_endpoint: `localhost` is not a URL (relative URL without a base); give the collector's OTLP/HTTP address, such as `http://127.0.0.1:4318`",
        ),
        (
            "[audit]\notlp_endpoint = \"http://user:secret@collector:4318\"\n",
            "line 2: audit.otlp_endpoint: `http://user:secret@collector:4318` must not hold credentials; put them in `otlp_headers`",
        ),
        (
            "[audit]\notlp_endpoint = \"http://collector:4318/?x=1\"\n",
            "line 2: audit.otlp_endpoint: `http://collector:4318/?x=1` must not have a query or fragment",
        ),
        (
            "[audit]\notlp_headers = { \"bad header\" = \"x\" }\n",
            "line 2: audit.otlp_headers: applies only with `otlp_endpoint`\nline 2: audit.otlp_headers.bad header: `bad header` is not a valid HTTP header",
        ),
        ("[audit]\nenabled = false\n", "off"),
        ("[audit]\nenabled = true\n", "receipts fail_closed=true"),
        (
            "[audit]\nenabled = false\nexport = \"stdout\"\n",
            "line 2: audit.enabled: is false, so `failure_mode`, `export`, `otlp_endpoint` and `retain_days` would have nothing to act on; remove them or the `enabled` line",
        ),
        (
            "[auth]\nresource_url = \"https://x/mcp\"\n[audit]\nenabled = false\n",
            "line 4: audit.enabled: receipts can be turned off only on a gateway with no [auth], no [[grant]] and no [policy] files: every decision about who may call what is recorded",
        ),
        (
            "[[grant]]\nid = \"g\"\n[audit]\nenabled = false\n",
            "line 4: audit.enabled: receipts can be turned off only on a gateway with no [auth], no [[grant]] and no [policy] files: every decision about who may call what is recorded",
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(check_audit(input), *expected, "input:\n{input}");
    }
}

#[test]
fn retention_is_kept_in_days() {
    let keep = |text: &str| match parse(text).unwrap().audit {
        crate::AuditSettings::Receipts(receipts) => receipts.retention,
        crate::AuditSettings::Off => None,
    };
    assert_eq!(keep(""), None);
    assert_eq!(
        keep("[audit]\nretain_days = 30\n"),
        Some(std::time::Duration::from_secs(30 * 86_400))
    );
}

#[test]
fn starter_config_validates() {
    let text = starter_config("/usr/local/bin/gatehouse");
    assert_eq!(
        check(&text),
        "demo prefix=Some(\"demo\") stdio /usr/local/bin/gatehouse"
    );
}

#[test]
fn add_and_remove_keep_comments() {
    let text = "# my comment\n[gateway]\nlisten = \"127.0.0.1:0\" # inline\n";
    let name = ServerName::new("time").unwrap();
    let server = NewServer::Stdio {
        command: "uvx".into(),
        args: vec!["mcp-server-time".into()],
        env: vec![("TZ".into(), "UTC".into())],
    };
    let added = add_server(text, &name, &server).unwrap();
    assert!(added.starts_with("# my comment\n[gateway]\nlisten = \"127.0.0.1:0\" # inline\n"));
    assert_eq!(check(&added), "time prefix=Some(\"time\") stdio uvx");
    let again = add_server(&added, &name, &server).unwrap_err();
    assert!(again.to_string().contains("already exists"));
    let removed = remove_server(&added, "time").unwrap();
    assert_eq!(check(&removed), "");
    assert!(removed.contains("# inline"));
    assert!(
        remove_server(&removed, "time")
            .unwrap_err()
            .to_string()
            .contains("no server named")
    );
}

#[test]
fn secret_references_are_checked_and_decide_isolation() {
    let config = parse(
        "[servers.a]\ncommand = \"x\"\nargs = [\"--token\", \"{secret:a-token}\"]\nenv = { KEY = \"{user_secret:jira}\" }\n[servers.b]\nurl = \"http://127.0.0.1:1/mcp\"\nheaders = { Authorization = \"Bearer {secret:b}\" }\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let a = &config.servers[0];
    assert_eq!(a.lifecycle.isolation, crate::Isolation::PerUser);
    assert!(a.uses_user_secrets());
    let names: Vec<String> = a.secrets().iter().map(ToString::to_string).collect();
    assert_eq!(names, ["{secret:a-token}", "{user_secret:jira}"]);
    assert!(!config.servers[1].uses_user_secrets());
    assert_eq!(
        check(
            "[servers.a]\ncommand = \"x\"\nisolation = \"shared\"\nenv = { KEY = \"{user_secret:jira}\" }\n[servers.b]\nurl = \"http://127.0.0.1:1/mcp\"\nheaders = { Authorization = \"Bearer {secret:b\" }\n"
        ),
        "line 3: servers.a.isolation: is `shared`, but the server takes `{user_secret:jira}`, each person's own credential, so one process cannot serve everyone: use `per_user` (or remove `isolation`)\nline 7: servers.b.headers.Authorization: value: `{secret:` is not closed; write `{secret:NAME}`"
    );
}

#[test]
fn oauth_tables_are_checked() {
    let config = parse(
        "[servers.a]\nurl = \"https://a.example/mcp\"\n[servers.a.oauth]\ngrant = \"authorization_code\"\ntoken_url = \"https://as.example/token\"\nauthorization_url = \"https://as.example/authorize\"\nclient_id = \"gh\"\nclient_secret = \"{secret:a-client}\"\n",
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let a = &config.servers[0];
    let oauth = a.oauth.as_ref().unwrap_or_else(|| panic!("no oauth"));
    assert_eq!(oauth.resource, "https://a.example/mcp");
    assert!(oauth.is_per_user() && a.uses_user_secrets());
    let names: Vec<String> = a.secrets().iter().map(ToString::to_string).collect();
    assert_eq!(names, ["{secret:a-client}"]);
    assert_eq!(
        check(
            "[servers.a]\ncommand = \"x\"\n[servers.a.oauth]\ngrant = \"client_credentials\"\n[servers.b]\nurl = \"https://b.example/mcp\"\nheaders = { Authorization = \"x\" }\n[servers.b.oauth]\ngrant = \"password\"\n[servers.c]\nurl = \"https://c.example/mcp\"\n[servers.c.oauth]\ngrant = \"authorization_code\"\ntoken_url = \"ftp://c\"\nclient_id = \"x\"\n"
        ),
        "line 3: servers.a.oauth: applies only to HTTP servers (`url`); give a stdio server its token with `env`\nline 7: servers.b.headers: sets `Authorization`, which `oauth` fills in; remove one of them\nline 9: servers.b.oauth.grant: `password` is not one of `client_credentials`, `authorization_code`, `token_exchange`\nline 14: servers.c.oauth.token_url: `ftp://c` must start with https:// (or http:// on loopback)\nline 12: servers.c.oauth.authorization_url: is required for `authorization_code`: where people are sent to sign in"
    );
}
