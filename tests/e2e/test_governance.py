"""Identity and policy through the official Python SDK: each person connects with their own
gateway API key, sees only the tools their grants allow, and every call the policy denies comes
back as a clear JSON-RPC error without reaching server-everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

import scenarios
from conftest import EVERYTHING_JS, NODE, gatehouse_cli, serving, toml_string

pytestmark = pytest.mark.anyio

MODES = pytest.mark.parametrize("mode", scenarios.PROTOCOL_MODES)

GRANTS = """
[[grant]]
id = "alice-echo"
to = ["user:alice"]
tools = ["everything__echo"]
access = "destructive"

[[grant]]
id = "ops-everything"
to = ["group:ops"]
tools = ["everything__*"]
access = "destructive"

[[grant]]
id = "no-echo-for-ops"
effect = "deny"
to = ["group:ops"]
tools = ["everything__echo"]
"""


@dataclass(frozen=True)
class GovernedGateway:
    url: str
    keys: dict[str, str]


def cli(config: Path, *args: str) -> str:
    return gatehouse_cli(config, *args)


@pytest.fixture
def governed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GovernedGateway]:
    """A gateway with API keys and grants in front of server-everything over stdio."""
    pepper = tmp_path / "pepper"
    pepper.write_text("a pepper of at least thirty-two bytes, for the e2e tests")
    config = tmp_path / "gatehouse.toml"
    config.write_text(
        f"""\
[gateway]
listen = "127.0.0.1:0"

[auth.api_keys]
pepper_file = {toml_string(str(pepper))}
{GRANTS}
[servers.everything]
command = {toml_string(str(NODE))}
args = [{toml_string(str(EVERYTHING_JS))}, "stdio"]
"""
    )
    keys = {}
    for user in ("alice", "bob"):
        cli(config, "user", "add", user)
        keys[user] = cli(config, "key", "issue", user).splitlines()[1].strip()
    cli(config, "group", "add", "ops")
    cli(config, "group", "add-member", "ops", "bob")
    with serving(request, config) as (url, _process):
        yield GovernedGateway(url=url, keys=keys)


@asynccontextmanager
async def as_person(gateway: GovernedGateway, user: str, mode: str):
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {gateway.keys[user]}"})
    async with http:
        async with Client(streamable_http_client(gateway.url, http_client=http), mode=mode, cache=None) as client:
            yield client


@MODES
async def test_each_person_sees_and_calls_only_what_their_grants_allow(governed: GovernedGateway, mode: str) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        async with as_person(governed, "alice", mode) as alice:
            alice_tools = [tool.name for tool in await scenarios.list_all_tools(alice)]
            echoed = await alice.call_tool("everything__echo", {"message": "hello"})
            with pytest.raises(Exception, match="access denied") as denied:
                await alice.call_tool("everything__get-sum", {"a": 1, "b": 2})
        async with as_person(governed, "bob", mode) as bob:
            bob_tools = [tool.name for tool in await scenarios.list_all_tools(bob)]
            summed = await bob.call_tool("everything__get-sum", {"a": 1, "b": 2})
            with pytest.raises(Exception, match="access denied"):
                await bob.call_tool("everything__echo", {"message": "hello"})
    assert alice_tools == ["everything__echo"]
    assert "everything__get-sum" in bob_tools and "everything__echo" not in bob_tools, bob_tools
    assert scenarios.only_text(echoed) == ["Echo: hello"]
    assert "3" in scenarios.only_text(summed)[0]
    assert "-32003" in str(denied.value) or "access denied" in str(denied.value)


class Issuer:
    """An OIDC issuer on a loopback port: discovery and a JWKS with one P-256 key, served by a
    thread that the fixture shuts down."""

    def __init__(self) -> None:
        import http.server
        import json
        import threading

        from cryptography.hazmat.primitives.asymmetric import ec
        from jwt.algorithms import ECAlgorithm

        self.key = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": "k1", "alg": "ES256", "use": "sig"})
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
                body = {"keys": [jwk]} if self.path.endswith("/jwks") else {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token(self, audience: str, user: str, groups: list[str]) -> str:
        import time

        import jwt

        now = int(time.time())
        claims = {"iss": self.url, "aud": audience, "sub": f"id-{user}", "preferred_username": user,
                  "groups": groups, "iat": now, "nbf": now - 5, "exp": now + 300}
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "k1"})

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def oidc_gateway(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, Issuer]]:
    """A gateway that accepts tokens from a loopback issuer, in front of server-everything."""
    issuer = Issuer()
    config = tmp_path / "gatehouse.toml"
    config.write_text(
        f"""\
[gateway]
listen = "127.0.0.1:0"

[auth]
resource_url = "https://mcp.example.com/mcp"

[auth.oidc]
issuer = {toml_string(issuer.url)}
user_claim = "preferred_username"
groups_claim = "groups"
{GRANTS}
[servers.everything]
command = {toml_string(str(NODE))}
args = [{toml_string(str(EVERYTHING_JS))}, "stdio"]
"""
    )
    try:
        with serving(request, config) as (url, _process):
            yield url, issuer
    finally:
        issuer.stop()


@MODES
async def test_a_person_signs_in_with_a_token_from_the_identity_provider(oidc_gateway: tuple[str, Issuer], mode: str) -> None:
    url, issuer = oidc_gateway
    token = issuer.token("https://mcp.example.com/mcp", "dana", ["ops"])
    wrong_audience = issuer.token("https://other.example.com/mcp", "dana", ["ops"])
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        http = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
        async with http:
            async with Client(streamable_http_client(url, http_client=http), mode=mode, cache=None) as client:
                tools = [tool.name for tool in await scenarios.list_all_tools(client)]
                summed = await client.call_tool("everything__get-sum", {"a": 2, "b": 3})
        refused = create_mcp_http_client(headers={"Authorization": f"Bearer {wrong_audience}"})
        async with refused:
            with pytest.raises(BaseException):
                async with Client(streamable_http_client(url, http_client=refused), mode=mode, cache=None) as client:
                    await client.list_tools()
    # The token's groups reach the policy: ops may use everything but echo.
    assert "everything__get-sum" in tools and "everything__echo" not in tools, tools
    assert "5" in scenarios.only_text(summed)[0]


async def test_a_client_without_a_key_is_refused(governed: GovernedGateway) -> None:
    with anyio.fail_after(scenarios.CHECK_TIMEOUT_SECONDS):
        with pytest.raises(BaseException):
            async with Client(governed.url, mode="legacy", cache=None) as client:
                await client.list_tools()
