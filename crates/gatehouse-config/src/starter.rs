//! The starter configuration written by `gatehouse init`.

/// The starter configuration, documented field by field, wired to the bundled demo server run
/// by the gatehouse executable at `gatehouse_executable`.
pub fn starter_config(gatehouse_executable: &str) -> String {
    let command = toml_edit::Value::from(gatehouse_executable).to_string();
    format!(
        r#"# Gatehouse configuration. `gatehouse validate` checks this file; `gatehouse serve` runs it.

[gateway]
# Address and port the MCP endpoint listens on; clients connect to http://ADDRESS/mcp.
# Keep 127.0.0.1 unless the gateway sits behind a proxy that terminates TLS.
listen = "127.0.0.1:8080"
# Host header values accepted besides localhost/127.0.0.1/[::1] (protection against DNS rebinding).
# allowed_hosts = ["gatehouse.example.com"]
# Browser Origin values accepted besides loopback origins.
# allowed_origins = ["https://console.example.com"]
# Largest request body in bytes.
# max_body_bytes = 4194304
# Deadline for one upstream call, in seconds.
# call_timeout_secs = 300
# A legacy (2025-11-25 and earlier) client session idle this long ends, in seconds.
# session_idle_secs = 1800
# Items per page when the gateway pages a merged list.
# page_size = 500

# Every decision leaves a hash-chained, signed receipt in the store; `gatehouse audit verify` checks them.
# [audit]
# `closed` refuses calls whose receipt cannot be written; `open` lets them through and records the gap.
# failure_mode = "closed"
# Delete receipts older than this many days, leaving a signed anchor so the rest still verifies.
# Without it receipts are kept forever.
# retain_days = 365

# Each [servers.NAME] is one upstream MCP server. Its tools and prompts appear to clients as
# NAME__tool (change with `prefix`, or set `prefix = ""` to keep the names as they are).
# A stdio server has `command`, `args`, `env` and `cwd`; it gets no other environment variables.
# An HTTP server has `url` and `headers`.
# Add more with `gatehouse server add NAME -- COMMAND ARGS...` or `gatehouse server add NAME --url URL`.

[servers.demo]
# The demo server bundled with Gatehouse: notes you can list, add and delete, a resource and a prompt.
command = {command}
args = ["demo-server"]
description = "Bundled demo server"
"#
    )
}
