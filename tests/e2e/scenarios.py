"""What a client must see from server-everything and mcp-server-time, through Gatehouse or directly.

Each `check_*` function drives one feature with the official Python SDK client and asserts on
the exact result. They take a `Connect` (how to open a client in one protocol mode) and the name
prefix under which the server's tools and prompts appear: `everything__` through the gateway,
`""` when test_peers.py runs the same checks against the peer directly, which shows that the
expectations themselves match the real servers. Resources are found by their description,
since how a gateway maps resource URIs is its own choice.
"""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import mcp.types as types
from mcp import Client, StdioServerParameters
from mcp.client.session import ClientRequestContext, IncomingMessage

# Bounds for one request round and for one whole check; pytest-timeout (pytest.ini) bounds a test.
READ_TIMEOUT_SECONDS = 20.0
CHECK_TIMEOUT_SECONDS = 45.0
# Bounds the pagination walk of a list call, in case a server's cursor never ends.
MAX_LIST_PAGES = 50

PROTOCOL_MODES = ("auto", "legacy", "2026-07-28")

# Tools server-everything always registers, and every tool it can register depending on the
# capabilities its client declares (roots, sampling, elicitation, tasks).
EVERYTHING_BASE_TOOLS = frozenset(
    {
        "echo",
        "get-annotated-message",
        "get-env",
        "get-resource-links",
        "get-resource-reference",
        "get-structured-content",
        "get-sum",
        "get-tiny-image",
        "gzip-file-as-resource",
        "toggle-simulated-logging",
        "toggle-subscriber-updates",
        "trigger-long-running-operation",
    }
)
EVERYTHING_CONDITIONAL_TOOLS = frozenset(
    {
        "get-roots-list",
        "trigger-elicitation-request",
        "trigger-elicitation-request-async",
        "trigger-url-elicitation",
        "trigger-sampling-request",
        "trigger-sampling-request-async",
        "simulate-research-query",
    }
)
EVERYTHING_PROMPTS = frozenset({"simple-prompt", "args-prompt", "completable-prompt", "resource-prompt"})
TIME_TOOLS = frozenset({"get_current_time", "convert_time"})

Connect = Callable[..., AbstractAsyncContextManager[Client]]
"""`connect(sampling_callback=..., elicitation_callback=...)` opens a client in one mode."""


class TransportRecorder:
    """A `message_handler` that keeps the transport errors the SDK surfaces instead of raising."""

    def __init__(self) -> None:
        self.errors: list[Exception] = []

    async def __call__(self, message: IncomingMessage) -> None:
        if isinstance(message, Exception):
            self.errors.append(message)
        await anyio.lowlevel.checkpoint()


@asynccontextmanager
async def open_client(server: str | StdioServerParameters, mode: str, **callbacks: Any) -> AsyncIterator[Client]:
    """A client with no response cache (every call must reach the server) and bounded reads.

    On a clean exit it also asserts that the SDK saw no transport-level error on the way.
    """
    recorder = TransportRecorder()
    try:
        async with Client(
            server,
            mode=mode,
            read_timeout_seconds=READ_TIMEOUT_SECONDS,
            message_handler=recorder,
            cache=None,
            **callbacks,
        ) as client:
            yield client
    except BaseExceptionGroup as group:
        # The SDK's task groups wrap one failure in layers of groups; report the failure itself.
        leaves = leaf_exceptions(group)
        if len(leaves) != 1:
            raise
        raise leaves[0] from None
    assert recorder.errors == [], f"transport errors surfaced to the client: {recorder.errors!r}"


def leaf_exceptions(error: BaseException) -> list[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaf_exceptions(inner)]
    return [error]


# --- listing -------------------------------------------------------------------------------


async def list_all_tools(client: Client) -> list[types.Tool]:
    return await _walk_pages(client.list_tools, lambda page: page.tools)


async def list_all_resources(client: Client) -> list[types.Resource]:
    return await _walk_pages(client.list_resources, lambda page: page.resources)


async def list_all_resource_templates(client: Client) -> list[types.ResourceTemplate]:
    return await _walk_pages(client.list_resource_templates, lambda page: page.resource_templates)


async def list_all_prompts(client: Client) -> list[types.Prompt]:
    return await _walk_pages(client.list_prompts, lambda page: page.prompts)


async def _walk_pages(fetch: Callable[..., Any], items: Callable[[Any], list[Any]]) -> list[Any]:
    collected: list[Any] = []
    cursor: str | None = None
    for _ in range(MAX_LIST_PAGES):
        page = await fetch(cursor=cursor)
        collected.extend(items(page))
        cursor = page.next_cursor
        if cursor is None:
            return collected
    raise AssertionError(f"listing did not end within {MAX_LIST_PAGES} pages")


def tools_under_prefix(tools: list[types.Tool], prefix: str) -> dict[str, types.Tool]:
    """The tools whose names start with `prefix`, keyed by the name without it."""
    return {tool.name.removeprefix(prefix): tool for tool in tools if tool.name.startswith(prefix)}


def assert_everything_tools(tools: list[types.Tool], prefix: str, must_include: frozenset[str]) -> None:
    """server-everything's tools appear under `prefix`, unchanged: names, schema, annotations."""
    listed = tools_under_prefix(tools, prefix)
    names = set(listed)
    assert EVERYTHING_BASE_TOOLS | must_include <= names, (
        f"missing {prefix}* tools: {sorted((EVERYTHING_BASE_TOOLS | must_include) - names)}"
    )
    unknown = names - EVERYTHING_BASE_TOOLS - EVERYTHING_CONDITIONAL_TOOLS
    assert not unknown, f"{prefix}* tools that server-everything does not have: {sorted(unknown)}"

    echo = listed["echo"]
    assert echo.title == "Echo Tool"
    assert echo.description == "Echoes back the input string"
    assert echo.input_schema == {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {"message": {"type": "string", "description": "Message to echo"}},
        "required": ["message"],
    }
    assert echo.annotations is not None
    assert (
        echo.annotations.read_only_hint,
        echo.annotations.destructive_hint,
        echo.annotations.idempotent_hint,
        echo.annotations.open_world_hint,
    ) == (True, False, True, False)


def assert_time_tools(tools: list[types.Tool], prefix: str) -> None:
    """mcp-server-time's two tools appear under `prefix`, with their output schema."""
    listed = tools_under_prefix(tools, prefix)
    assert set(listed) == TIME_TOOLS
    get_time = listed["get_current_time"]
    assert get_time.input_schema["required"] == ["timezone"]
    assert get_time.input_schema["properties"]["timezone"]["type"] == "string"
    assert get_time.output_schema is not None
    assert get_time.output_schema["required"] == ["timezone", "datetime", "day_of_week", "is_dst"]


# --- tools ---------------------------------------------------------------------------------


def only_text(result: types.CallToolResult) -> list[str]:
    """The texts of a successful result whose content is all text."""
    assert result.is_error is False, f"tool returned an error: {result.content!r}"
    texts = []
    for block in result.content:
        assert isinstance(block, types.TextContent), f"expected text content, got {block!r}"
        texts.append(block.text)
    return texts


async def check_echo(connect: Connect, prefix: str) -> None:
    message = 'hello through gatehouse: ünïcode ✓, "quotes" and \\ backslash'
    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            result = await client.call_tool(f"{prefix}echo", {"message": message})
    assert only_text(result) == [f"Echo: {message}"]
    assert result.structured_content is None


async def check_progress(connect: Connect, prefix: str) -> None:
    """Every progress notification of a call arrives, in order, before its result."""
    updates: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        updates.append((progress, total, message))

    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            result = await client.call_tool(
                f"{prefix}trigger-long-running-operation",
                {"duration": 1, "steps": 4},
                progress_callback=on_progress,
            )
    assert only_text(result) == ["Long running operation completed. Duration: 1 seconds, Steps: 4."]
    assert updates == [(1, 4, None), (2, 4, None), (3, 4, None), (4, 4, None)]


async def check_cancellation(connect: Connect, prefix: str) -> None:
    """A cancelled long call ends at once, and the same session and backend keep working."""
    long_call = f"{prefix}trigger-long-running-operation"
    first_progress = anyio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first_progress.set()

    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:

            async def call_until_cancelled() -> None:
                # 30 s of work that the cancellation must cut short.
                outcome["result"] = await client.call_tool(
                    long_call, {"duration": 30, "steps": 60}, progress_callback=on_progress
                )

            async with anyio.create_task_group() as group:
                group.start_soon(call_until_cancelled)
                # The call is running upstream once its first progress notification is back.
                with anyio.fail_after(10):
                    await first_progress.wait()
                cancelled_at = time.monotonic()
                group.cancel_scope.cancel()
            assert time.monotonic() - cancelled_at < 2.0, "cancelling the call took longer than 2s"
            assert "result" not in outcome, f"a cancelled call returned a result: {outcome['result']!r}"

            after = await client.call_tool(f"{prefix}echo", {"message": "after cancel"})
            assert only_text(after) == ["Echo: after cancel"]
            short = await client.call_tool(long_call, {"duration": 0.2, "steps": 1})
            assert only_text(short) == ["Long running operation completed. Duration: 0.2 seconds, Steps: 1."]


async def check_sampling(connect: Connect, prefix: str) -> None:
    """The server's sampling request reaches this client's callback, and the answer gets back."""
    seen: list[types.CreateMessageRequestParams] = []

    async def on_sampling(
        context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult:
        seen.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text="sampled reply"),
            model="gatehouse-e2e-model",
            stop_reason="endTurn",
        )

    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect(sampling_callback=on_sampling) as client:
            result = await client.call_tool(f"{prefix}trigger-sampling-request", {"prompt": "ping", "maxTokens": 7})

    assert len(seen) == 1, f"sampling callback ran {len(seen)} times; the call returned {result!r}"
    params = seen[0]
    assert len(params.messages) == 1
    assert params.messages[0].role == "user"
    assert isinstance(params.messages[0].content, types.TextContent)
    assert params.messages[0].content.text == "Resource trigger-sampling-request context: ping"
    assert params.system_prompt == "You are a helpful test server."
    assert params.max_tokens == 7
    assert params.temperature == 0.7

    [text] = only_text(result)
    head = "LLM sampling result: \n"
    assert text.startswith(head), text
    assert json.loads(text[len(head) :]) == {
        "model": "gatehouse-e2e-model",
        "stopReason": "endTurn",
        "role": "assistant",
        "content": {"type": "text", "text": "sampled reply"},
    }


async def check_elicitation(connect: Connect, prefix: str) -> None:
    """The server's elicitation request reaches this client's callback, and the answer gets back."""
    seen: list[types.ElicitRequestParams] = []
    answer = {"name": "Ada Lovelace", "check": True}

    async def on_elicitation(context: ClientRequestContext, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.append(params)
        return types.ElicitResult(action="accept", content=answer)

    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect(elicitation_callback=on_elicitation) as client:
            result = await client.call_tool(f"{prefix}trigger-elicitation-request", {})

    assert len(seen) == 1, f"elicitation callback ran {len(seen)} times; the call returned {result!r}"
    params = seen[0]
    assert isinstance(params, types.ElicitRequestFormParams), f"expected a form elicitation, got {params!r}"
    assert params.message == "Please provide inputs for the following fields:"
    assert params.requested_schema["required"] == ["name"]
    assert params.requested_schema["properties"]["name"]["type"] == "string"

    texts = only_text(result)
    assert texts[:2] == [
        "✅ User provided the requested information!",
        "User inputs:\n- Name: Ada Lovelace\n- Agreed to terms: true",
    ]
    assert len(texts) == 3
    head = "\nRaw result: "
    assert texts[2].startswith(head), texts[2]
    assert json.loads(texts[2][len(head) :]) == {"action": "accept", "content": answer}


# --- resources and prompts -----------------------------------------------------------------


FEATURES_DESCRIPTION = "Static document file exposed from /docs: features.md"
TEXT_TEMPLATE_DESCRIPTION = (
    "Plaintext dynamic resource fabricated from the {resourceId} variable, which must be an integer."
)


async def check_static_resource(connect: Connect, copies: int, docs_dir: Path) -> None:
    """Each listed copy of server-everything's features.md reads back as the upstream file.

    Resources are found by their description, not by name or URI: how a gateway maps resource
    URIs is its own choice, but every server's copy must be listed under a URI of its own, and
    reading that URI must return the upstream's contents under the same URI.
    """
    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            resources = await list_all_resources(client)
            matching = [r for r in resources if r.description == FEATURES_DESCRIPTION]
            assert len(matching) == copies, (
                f"expected {copies} listed copies of features.md, listed: "
                f"{sorted((r.name, str(r.uri)) for r in resources)}"
            )
            assert len({str(r.uri) for r in matching}) == copies, f"URIs collide: {matching!r}"
            results = [(listed, await client.read_resource(str(listed.uri))) for listed in matching]

    expected_text = (docs_dir / "features.md").read_text()
    for listed, result in results:
        assert listed.name.endswith("features.md"), listed.name
        assert listed.mime_type == "text/markdown"
        assert len(result.contents) == 1
        [contents] = result.contents
        assert isinstance(contents, types.TextResourceContents), f"expected text contents, got {contents!r}"
        assert str(contents.uri) == str(listed.uri)
        assert contents.mime_type == "text/markdown"
        assert contents.text == expected_text


async def check_resource_template(connect: Connect, copies: int) -> None:
    """Each listed copy of server-everything's text template, filled in, reads back from its upstream."""
    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            templates = await list_all_resource_templates(client)
            matching = [t for t in templates if t.description == TEXT_TEMPLATE_DESCRIPTION]
            assert len(matching) == copies, (
                f"expected {copies} listed copies of the text template, listed: "
                f"{sorted((t.name, t.uri_template) for t in templates)}"
            )
            assert len({t.uri_template for t in matching}) == copies, f"templates collide: {matching!r}"
            results = []
            for resource_id, template in enumerate(matching, start=7):
                assert template.uri_template.count("{resourceId}") == 1, template.uri_template
                uri = template.uri_template.replace("{resourceId}", str(resource_id))
                results.append((resource_id, template, uri, await client.read_resource(uri)))

    for resource_id, template, uri, result in results:
        assert template.name.endswith("Dynamic Text Resource"), template.name
        assert template.mime_type == "text/plain"
        assert len(result.contents) == 1
        [contents] = result.contents
        assert isinstance(contents, types.TextResourceContents), f"expected text contents, got {contents!r}"
        assert str(contents.uri) == uri
        assert contents.mime_type == "text/plain"
        # The time is the server's local time in its locale's format.
        pattern = rf"Resource {resource_id}: This is a plaintext resource created at \S.*"
        assert re.fullmatch(pattern, contents.text), contents.text


async def check_prompts(connect: Connect, prefix: str) -> None:
    """server-everything's prompts are listed under `prefix` and render with their arguments."""
    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            prompts = await list_all_prompts(client)
            names = {p.name.removeprefix(prefix) for p in prompts if p.name.startswith(prefix)}
            assert names == EVERYTHING_PROMPTS
            simple = await client.get_prompt(f"{prefix}simple-prompt")
            with_args = await client.get_prompt(f"{prefix}args-prompt", {"city": "Paris", "state": "Texas"})

    assert [(m.role, m.content) for m in simple.messages] == [
        ("user", types.TextContent(type="text", text="This is a simple prompt without arguments."))
    ]
    assert [(m.role, m.content) for m in with_args.messages] == [
        ("user", types.TextContent(type="text", text="What's weather in Paris, Texas?"))
    ]


# --- mcp-server-time -----------------------------------------------------------------------


async def check_current_time(connect: Connect, prefix: str) -> None:
    """get_current_time answers with structured content and the same JSON as text."""
    with anyio.fail_after(CHECK_TIMEOUT_SECONDS):
        async with connect() as client:
            result = await client.call_tool(f"{prefix}get_current_time", {"timezone": "Europe/Paris"})
    [text] = only_text(result)
    structured = result.structured_content
    assert structured is not None
    assert json.loads(text) == structured
    assert set(structured) == {"timezone", "datetime", "day_of_week", "is_dst"}
    assert structured["timezone"] == "Europe/Paris"
    reported = datetime.datetime.fromisoformat(structured["datetime"])
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((reported - now).total_seconds()) < 120, f"{reported} is not now ({now})"
    assert reported.utcoffset() in (datetime.timedelta(hours=1), datetime.timedelta(hours=2))
    assert structured["day_of_week"] == reported.strftime("%A")
    assert structured["is_dst"] == (reported.utcoffset() == datetime.timedelta(hours=2))
