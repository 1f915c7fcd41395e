//! The command line: init, validate, server add/list/remove, run against the built binary.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is the failure report"
)]

mod support;

use support::run_cli;

#[test]
fn init_validate_and_edit_servers_keep_the_file_valid_and_commented() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let (ok, out, _) = run_cli(path, &["init"]);
    assert!(ok && out.contains("wrote gatehouse.toml"), "{out}");
    let (ok, _, err) = run_cli(path, &["init"]);
    assert!(!ok && err.contains("already exists; pass --force"), "{err}");
    let (ok, out, _) = run_cli(path, &["validate"]);
    assert!(ok && out.contains("valid (1 server)"), "{out}");

    // Each step: arguments, whether it succeeds, and text expected in its output.
    let steps: &[(&[&str], bool, &str)] = &[
        (
            &[
                "server",
                "add",
                "time",
                "--env",
                "TZ=UTC",
                "--",
                "uvx",
                "mcp-server-time",
            ],
            true,
            "added server `time`",
        ),
        (
            &[
                "server",
                "add",
                "remote",
                "--url",
                "http://127.0.0.1:9/mcp",
                "--header",
                "X-Team: payments",
            ],
            true,
            "added server `remote`",
        ),
        (
            &["server", "add", "time", "--", "other"],
            false,
            "already exists",
        ),
        (
            &["server", "add", "bad__name", "--", "x"],
            false,
            "must not contain `__`",
        ),
        (
            &["server", "add", "both", "--url", "http://h/mcp", "--", "x"],
            false,
            "not both",
        ),
        (&["server", "add", "neither"], false, "give -- COMMAND"),
        (
            &[
                "server",
                "add",
                "webenv",
                "--url",
                "http://h/mcp",
                "--env",
                "A=B",
            ],
            false,
            "--env applies to stdio servers",
        ),
        (
            &["server", "list"],
            true,
            "the gateway is not running at 127.0.0.1:8080",
        ),
        (&["server", "remove", "time"], true, "removed server `time`"),
        (
            &["server", "remove", "time"],
            false,
            "there is no server named `time`",
        ),
        (&["validate"], true, "valid (2 servers)"),
    ];
    for (args, expect_ok, expect_text) in steps {
        let (ok, out, err) = run_cli(path, args);
        assert_eq!(
            ok, *expect_ok,
            "gatehouse {args:?}\nstdout: {out}\nstderr: {err}"
        );
        assert!(
            out.contains(expect_text) || err.contains(expect_text),
            "gatehouse {args:?}: expected {expect_text:?}\nstdout: {out}\nstderr: {err}"
        );
    }
    let (_, listing, _) = run_cli(path, &["server", "list"]);
    let remote = listing
        .lines()
        .find(|line| line.starts_with("remote "))
        .unwrap();
    assert!(
        remote.contains(" http ") && remote.contains("remote__*") && remote.contains("offline"),
        "{listing}"
    );
    assert!(remote.ends_with("http://127.0.0.1:9/mcp"), "{listing}");
    let (_, listing, _) = run_cli(path, &["server", "list"]);
    let remote = listing
        .lines()
        .find(|line| line.starts_with("remote "))
        .unwrap();
    assert!(
        remote.contains(" http ") && remote.contains("remote__*") && remote.contains("offline"),
        "{listing}"
    );
    assert!(remote.ends_with("http://127.0.0.1:9/mcp"), "{listing}");
    let text = std::fs::read_to_string(path.join("gatehouse.toml")).unwrap();
    assert!(
        text.contains("# The demo server bundled with Gatehouse"),
        "comments were lost:\n{text}"
    );
    assert!(
        text.contains("headers = { X-Team = \"payments\" }"),
        "{text}"
    );
}

#[test]
fn validate_names_every_problem_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("gatehouse.toml"),
        "[gateway]\nlisten = \"everywhere\"\n\n[servers.a]\ncommand = \"x\"\nurl = \"http://h\"\n\n[servers.b]\nurl = \"ftp://h\"\n",
    )
    .unwrap();
    let (ok, _, err) = run_cli(dir.path(), &["validate"]);
    assert!(!ok);
    for expected in [
        "3 problems in the configuration",
        "line 2: gateway.listen: `everywhere` is not an address and port",
        "line 4: servers.a: has both `command` and `url`",
        "line 9: servers.b.url: `ftp://h` must start with http:// or https://",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
    let (ok, _, err) = run_cli(dir.path(), &["validate", "--config", "missing.toml"]);
    assert!(
        !ok && err.contains("cannot read missing.toml; create one with `gatehouse init`"),
        "{err}"
    );
}

#[test]
fn the_shipped_example_configs_validate() {
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&examples).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        // In a folder of its own, with what the example expects beside it: a pepper file and
        // the service secrets it refers to.
        let dir = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(dir.path().join("gatehouse.toml"), &text).unwrap();
        std::fs::write(
            dir.path().join("pepper"),
            "a pepper of at least thirty-two bytes, for tests only",
        )
        .unwrap();
        for reference in text.split("{secret:").skip(1) {
            let name = reference.split('}').next().unwrap();
            let (ok, out, err) = support::run_cli_with_input(
                dir.path(),
                &["secret", "set", name],
                "an example value\n",
            );
            assert!(ok || err.contains("already set"), "{name}: {out}{err}");
        }
        let (ok, out, err) = run_cli(dir.path(), &["validate"]);
        assert!(ok, "{}: {out}{err}", path.display());
        checked += 1;
    }
    assert!(
        checked > 1,
        "example configs missing in {}",
        examples.display()
    );
}
