"""Central credentials through the official Python SDK and server-everything.

A secret stored with `gatehouse secret set` is filled into server-everything's environment
(stdio) and into the headers sent to server-everything over HTTP. `get-env` shows the child got
it, and what the client reads in its place is the scrub marker. A rotation replaces the running
process without failing a call. The canary test runs the scenarios with the gateway logging at
TRACE and then searches every place a value could leak: the log, every response, the receipts,
the CLI's output and the store file.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import pytest

import scenarios
from conftest import (
    EVERYTHING_JS,
    NODE,
    EverythingHttp,
    child_env,
    gatehouse_cli,
    serving,
    toml_string,
)
from processes import ManagedProcess

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", scenarios.PROTOCOL_MODES)
ROTATION_LIMIT_SECONDS = 10.0


@dataclass
class VaultedGateway:
    url: str
    config: Path
    folder: Path
    process: ManagedProcess
    canary: str


def cli(config: Path, *args: str, stdin: str | None = None) -> str:
    return gatehouse_cli(config, *args, stdin=stdin)


@pytest.fixture
def vaulted(request: pytest.FixtureRequest, tmp_path: Path, everything_http: EverythingHttp) -> Iterator[VaultedGateway]:
    """A gateway logging at TRACE whose upstreams take the secret `canary`."""
    canary = f"canary-{secrets.token_hex(12)}"
    config = tmp_path / "gatehouse.toml"
    config.write_text(
        f"""\
[gateway]
listen = "127.0.0.1:0"

[servers.everything]
command = {toml_string(str(NODE))}
args = [{toml_string(str(EVERYTHING_JS))}, "stdio"]
env = {{ UPSTREAM_TOKEN = "{{secret:canary}}" }}

[servers.remote]
url = {toml_string(everything_http.url)}
headers = {{ Authorization = "Bearer {{secret:canary}}" }}
"""
    )
    cli(config, "secret", "set", "canary", "--description", "e2e canary", stdin=f"{canary}\n")
    env = child_env()
    env["GATEHOUSE_LOG"] = "trace"
    with serving(request, config, env) as (url, process):
        yield VaultedGateway(url=url, config=config, folder=tmp_path, process=process, canary=canary)


def connect(gateway: VaultedGateway, mode: str) -> scenarios.Connect:
    return partial(scenarios.open_client, gateway.url, mode)


async def child_environment(gateway: VaultedGateway, mode: str) -> dict[str, str]:
    async with connect(gateway, mode)() as client:
        result = await client.call_tool("everything__get-env", {})
    [text] = scenarios.only_text(result)
    return json.loads(text)


@MODES
async def test_the_secret_reaches_the_child_and_the_client_sees_the_marker(vaulted: VaultedGateway, mode: str) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        environment = await child_environment(vaulted, mode)
    assert environment["UPSTREAM_TOKEN"] == "[redacted secret canary v1]"
    assert vaulted.canary not in json.dumps(environment)


async def test_rotation_replaces_the_process_without_a_failed_call(vaulted: VaultedGateway) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        before = await child_environment(vaulted, "2026-07-28")
    assert before["UPSTREAM_TOKEN"] == "[redacted secret canary v1]"
    seen: list[str] = []
    rotated = anyio.Event()
    rotated_at: list[float] = []
    # Set at the rotation: how long callers may take to reach the new value.
    deadline = [float("inf")]

    async def caller() -> None:
        # A bounded loop of calls, running while the secret is rotated: every call must
        # succeed, and each caller must reach the new value.
        async with connect(vaulted, "legacy")() as client:
            while time.monotonic() < deadline[0]:
                result = await client.call_tool("everything__get-env", {})
                [text] = scenarios.only_text(result)
                seen.append(json.loads(text)["UPSTREAM_TOKEN"])
                if rotated.is_set() and seen[-1] == "[redacted secret canary v2]":
                    return

    async def rotate() -> None:
        await anyio.sleep(0.5)
        await anyio.to_thread.run_sync(
            lambda: cli(vaulted.config, "secret", "rotate", "canary", stdin=f"{vaulted.canary}-rotated\n")
        )
        rotated_at.append(time.monotonic())
        deadline[0] = rotated_at[0] + ROTATION_LIMIT_SECONDS
        rotated.set()

    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(caller)
            group.start_soon(rotate)
    assert set(seen) <= {"[redacted secret canary v1]", "[redacted secret canary v2]"}, seen
    assert seen.count("[redacted secret canary v2]") >= 4, seen
    assert "[redacted secret canary v1]" in seen, "no call ran before the rotation"
    # The watcher sees the rotation within 200 ms; the rest is starting a new process.
    assert time.monotonic() - rotated_at[0] < ROTATION_LIMIT_SECONDS


async def test_the_canary_appears_nowhere(vaulted: VaultedGateway) -> None:
    responses: list[str] = []
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS * 2):
        for mode in scenarios.PROTOCOL_MODES:
            async with connect(vaulted, mode)() as client:
                tools = await scenarios.list_all_tools(client)
                responses.append(repr(tools))
                responses.append(repr(await client.call_tool("everything__get-env", {})))
                for prefix in ("everything__", "remote__"):
                    responses.append(repr(await client.call_tool(f"{prefix}echo", {"message": "hello"})))
                    responses.append(repr(await scenarios.list_all_resources(client)))
                    responses.append(repr(await client.call_tool(f"{prefix}get-sum", {"a": 1, "b": 2})))
                    # An unknown tool: whatever comes back (an error or a tool error) is searched too.
                    try:
                        responses.append(repr(await client.call_tool(f"{prefix}no-such-tool", {})))
                    except Exception as failed:  # noqa: BLE001
                        responses.append(repr(failed))
    outputs = [
        cli(vaulted.config, "audit", "export"),
        cli(vaulted.config, "audit", "tail", "-n", "1000"),
        cli(vaulted.config, "secret", "list"),
        cli(vaulted.config, "server", "list"),
        cli(vaulted.config, "tools"),
    ]
    vaulted.process.stop()
    log = vaulted.process.stderr_path.read_text(errors="replace") + vaulted.process.stdout_path.read_text(errors="replace")
    assert " TRACE " in log, "the gateway did not log at TRACE"
    assert "[redacted secret canary v1]" in "".join(responses), "the scenarios never touched the secret"
    for place, text in [("log", log), ("responses", "".join(responses)), ("cli", "".join(outputs))]:
        assert text.count(vaulted.canary) == 0, f"the canary leaked into the {place}"
    for store_file in vaulted.folder.glob("gatehouse.db*"):
        assert vaulted.canary.encode() not in store_file.read_bytes(), f"the canary is in {store_file.name}"


@pytest.fixture
def per_person(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A gateway with API keys whose stdio server-everything takes each person's own token."""
    pepper = tmp_path / "pepper"
    pepper.write_text("a pepper of at least thirty-two bytes, for the e2e tests")
    config = tmp_path / "gatehouse.toml"
    config.write_text(
        f"""\
[gateway]
listen = "127.0.0.1:0"

[auth.api_keys]
pepper_file = {toml_string(str(pepper))}

[[grant]]
id = "everyone"
to = ["*"]
servers = ["everything"]

[servers.everything]
command = {toml_string(str(NODE))}
args = [{toml_string(str(EVERYTHING_JS))}, "stdio"]
env = {{ UPSTREAM_TOKEN = "{{user_secret:tok}}" }}
"""
    )
    keys = {}
    for user in ("alice", "bob"):
        cli(config, "user", "add", user)
        keys[user] = cli(config, "key", "issue", user).splitlines()[1].strip()
        cli(config, "secret", "set", "--user", user, "tok", stdin=f"{user}-{secrets.token_hex(8)}\n")
    with serving(request, config) as (url, _process):
        yield url, keys, config


@MODES
async def test_each_person_s_process_gets_their_own_token(
    per_person: tuple[str, dict[str, str], Path], mode: str
) -> None:
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared._httpx_utils import create_mcp_http_client

    url, keys, config = per_person
    seen = {}
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        for user, key in keys.items():
            http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
            async with http:
                async with Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:
                    result = await client.call_tool("everything__get-env", {})
            [text] = scenarios.only_text(result)
            seen[user] = json.loads(text)["UPSTREAM_TOKEN"]
    assert seen == {user: f"[redacted secret tok@{user} v1]" for user in keys}
    log = (config.parent / "gatehouse.stderr").read_text(errors="replace")
    assert log.count("upstream started server=everything") == 2, "one process per person expected"
