"""The gateway relays real upstreams to the official Python SDK client, in every protocol mode.

`everything` is server-everything over stdio, `remote` the same server over Streamable HTTP, so
each feature is checked through both kinds of upstream. `time` is mcp-server-time over stdio.
"""

from __future__ import annotations

import json
from functools import partial

import anyio
import pytest

import scenarios
from conftest import EVERYTHING_DOCS, Gateway

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", scenarios.PROTOCOL_MODES)
UPSTREAMS = pytest.mark.parametrize("upstream", ["everything", "remote"])
# The gateway relays sampling and elicitation, so it declares both capabilities upstream, and
# server-everything registers its tools for them.
RELAYED_CONDITIONAL_TOOLS = frozenset({"trigger-sampling-request", "trigger-elicitation-request"})


def connect(gateway: Gateway, mode: str) -> scenarios.Connect:
    return partial(scenarios.open_client, gateway.url, mode)


@MODES
async def test_tools_of_every_server_are_listed_under_its_prefix(gateway: Gateway, mode: str) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        async with connect(gateway, mode)() as client:
            tools = await scenarios.list_all_tools(client)
    names = [tool.name for tool in tools]
    assert len(names) == len(set(names)), f"duplicate tool names: {sorted(names)}"
    strays = [name for name in names if not name.startswith(("everything__", "remote__", "time__"))]
    assert strays == [], f"tools without a configured server's prefix: {strays}"
    scenarios.assert_everything_tools(tools, "everything__", RELAYED_CONDITIONAL_TOOLS)
    scenarios.assert_everything_tools(tools, "remote__", RELAYED_CONDITIONAL_TOOLS)
    scenarios.assert_time_tools(tools, "time__")
    # Both upstreams are the same server, so they must list the same tools.
    everything = set(scenarios.tools_under_prefix(tools, "everything__"))
    remote = set(scenarios.tools_under_prefix(tools, "remote__"))
    assert everything == remote


@MODES
@UPSTREAMS
async def test_echo(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_echo(connect(gateway, mode), f"{upstream}__")


@MODES
@UPSTREAMS
async def test_progress_notifications_are_relayed(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_progress(connect(gateway, mode), f"{upstream}__")


@MODES
@UPSTREAMS
async def test_cancelled_call_ends_and_session_goes_on(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_cancellation(connect(gateway, mode), f"{upstream}__")


@MODES
@UPSTREAMS
async def test_sampling_round_trip(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_sampling(connect(gateway, mode), f"{upstream}__")


@MODES
@UPSTREAMS
async def test_elicitation_round_trip(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_elicitation(connect(gateway, mode), f"{upstream}__")


@MODES
async def test_read_static_resource_of_each_upstream(gateway: Gateway, mode: str) -> None:
    # One copy through `everything` (stdio), one through `remote` (HTTP).
    await scenarios.check_static_resource(connect(gateway, mode), 2, EVERYTHING_DOCS)


@MODES
async def test_read_resource_template_of_each_upstream(gateway: Gateway, mode: str) -> None:
    await scenarios.check_resource_template(connect(gateway, mode), 2)


@MODES
@UPSTREAMS
async def test_prompts(gateway: Gateway, mode: str, upstream: str) -> None:
    await scenarios.check_prompts(connect(gateway, mode), f"{upstream}__")


@MODES
async def test_time_server_over_stdio(gateway: Gateway, mode: str) -> None:
    await scenarios.check_current_time(connect(gateway, mode), "time__")


@MODES
async def test_configured_env_reaches_stdio_server(gateway: Gateway, mode: str) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        async with connect(gateway, mode)() as client:
            result = await client.call_tool("everything__get-env", {})
    [text] = scenarios.only_text(result)
    assert json.loads(text)["GATEHOUSE_E2E_MARKER"] == gateway.env_marker
