"""The same checks as test_gateway.py, run against the peers directly, without the gateway.

These show that the expectations in scenarios.py are what the real servers do, and that the
peers installed here work, so a failure in test_gateway.py points at the gateway. server-everything
speaks only the 2025 era, so it is checked in the `legacy` and `auto` modes; mcp-server-time
speaks both eras, so it is checked in all three.
"""

from __future__ import annotations

from functools import partial

import pytest
from mcp import StdioServerParameters

import scenarios
from conftest import EVERYTHING_DOCS, TIME_SERVER, EverythingHttp

pytestmark = pytest.mark.anyio

EVERYTHING_MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


def connect(everything_http: EverythingHttp, mode: str) -> scenarios.Connect:
    return partial(scenarios.open_client, everything_http.url, mode)


@EVERYTHING_MODES
async def test_everything_tools(everything_http: EverythingHttp, mode: str) -> None:
    # A client with sampling and elicitation callbacks declares both, as the gateway does upstream.
    async def unused(*args: object) -> None:
        raise AssertionError("no server-to-client request expected while listing")

    async with connect(everything_http, mode)(sampling_callback=unused, elicitation_callback=unused) as client:
        tools = await scenarios.list_all_tools(client)
    scenarios.assert_everything_tools(tools, "", frozenset({"trigger-sampling-request", "trigger-elicitation-request"}))


@EVERYTHING_MODES
async def test_everything_echo(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_echo(connect(everything_http, mode), "")


@EVERYTHING_MODES
async def test_everything_progress(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_progress(connect(everything_http, mode), "")


@EVERYTHING_MODES
async def test_everything_cancellation(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_cancellation(connect(everything_http, mode), "")


@EVERYTHING_MODES
async def test_everything_sampling(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_sampling(connect(everything_http, mode), "")


@EVERYTHING_MODES
async def test_everything_elicitation(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_elicitation(connect(everything_http, mode), "")


@EVERYTHING_MODES
async def test_everything_static_resource(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_static_resource(connect(everything_http, mode), 1, EVERYTHING_DOCS)


@EVERYTHING_MODES
async def test_everything_resource_template(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_resource_template(connect(everything_http, mode), 1)


@EVERYTHING_MODES
async def test_everything_prompts(everything_http: EverythingHttp, mode: str) -> None:
    await scenarios.check_prompts(connect(everything_http, mode), "")


@pytest.mark.parametrize("mode", scenarios.PROTOCOL_MODES)
async def test_time_server(mode: str) -> None:
    server = StdioServerParameters(command=str(TIME_SERVER), args=[])
    await scenarios.check_current_time(partial(scenarios.open_client, server, mode), "")
    tools_check = partial(scenarios.open_client, server, mode)
    async with tools_check() as client:
        scenarios.assert_time_tools(await scenarios.list_all_tools(client), "")
