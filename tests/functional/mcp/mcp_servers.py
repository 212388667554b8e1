"""MCP servers built with the official ``mcp`` Python SDK, for the integration tests and the benchmark.

One process serves any number of server kinds, each on its own 127.0.0.1 port::

    python mcp_servers.py --kinds stateful_sse,stateless_json,legacy_sse [--cert-dir DIR]

Once every server accepts connections the process prints one JSON line on stdout,
``{"kind": port, ...}`` (a kind repeated as ``kind*3`` gets keys ``kind``, ``kind#1``, ``kind#2``),
and serves until it is terminated. Nothing listens anywhere but on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import socket
import ssl
import sys
import warnings
from pathlib import Path
from typing import Any

import uvicorn
from mcp import types
from mcp.server import Server
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.streamable_http import EventMessage, EventStore
from mcp.types.version import MODERN_PROTOCOL_VERSIONS

HOST = "127.0.0.1"
BEARER_TOKEN = "corvid-test-token-5f2c"  # the token the "bearer" server accepts
PAGE_SIZE = 10
PAGINATED_TOOLS = 25
SLOW_SECONDS = 60.0

KINDS = (
    "stateful_sse",  # sessions, SSE responses with event ids, retry and notifications
    "stateless_json",  # no sessions, plain JSON responses
    "stateful_json",  # sessions, plain JSON responses
    "legacy_sse",  # the 2024-11-05 HTTP+SSE transport
    "bearer",  # streamable HTTP behind bearer auth (401 + WWW-Authenticate + resource_metadata)
    "tls",  # stateless JSON over TLS with a test CA
    "tls12",  # as tls, but TLS 1.2 at most
    "mtls",  # TLS that requires a client certificate from the test CA
    "noping",  # low-level server without a ping handler
    "paginated",  # tools/list in pages of PAGE_SIZE
    "slow",  # tools/list never answers in time (SSE headers first, then silence)
    "drop",  # tools/list response cut off mid-stream
    "modern_only",  # only the 2026-07-28 revision: initialize is refused
    "resumable",  # closes the tools/list response stream early (retry 200 ms); GET with Last-Event-ID replays
    "unresumable",  # the same, but its event store forgets: a resumed stream never brings the answer
    "oauth_as",  # an OAuth authorization server (Authlib, client credentials, JWT access tokens) over TLS
    "oauth_mcp",  # streamable HTTP that wants the tokens of oauth_as for its own URL (the "resource")
    "oauth_nometa",  # the same, but its metadata names an authorization server whose metadata is missing
)
OAUTH_KINDS = ("oauth_as", "oauth_mcp", "oauth_nometa")
PORTS: dict[str, int] = {}  # every kind's port, known before any app is built
AUTHORIZATION_SERVERS: dict[str, Any] = {}
RESUME_RETRY_MS = 200


class MemoryEventStore(EventStore):
    """Minimal event store so SSE responses carry ``id:`` fields and a priming event."""

    def __init__(self) -> None:
        self._next = 0
        self._events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id, message):
        self._next += 1
        event_id = f"{stream_id}-{self._next}"
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):  # pragma: no cover - not exercised
        return None


class ReplayingEventStore(EventStore):
    """An event store that replays a stream's events after a Last-Event-ID (or, with ``forget``, nothing)."""

    def __init__(self, forget: bool = False) -> None:
        self.forget = forget
        self._events: list[tuple[str, str, Any]] = []

    async def store_event(self, stream_id, message):
        event_id = f"e{len(self._events) + 1}"
        self._events.append((event_id, stream_id, message))
        return event_id

    async def replay_events_after(self, last_event_id, send_callback):
        ids = [event_id for event_id, _stream, _message in self._events]
        if self.forget or last_event_id not in ids:
            return None
        index = ids.index(last_event_id)
        stream_id = self._events[index][1]
        for event_id, stream, message in self._events[index + 1 :]:
            if stream == stream_id and message is not None:
                await send_callback(EventMessage(message, event_id))
        return stream_id


def resumable_server(name: str) -> Server:
    """tools/list closes its response stream (the server asks the client to resume it), then answers."""
    tools = [types.Tool(name="echo", description="echo", input_schema={"type": "object"})]

    async def list_tools(ctx, params):
        if ctx.close_sse_stream is not None:
            await ctx.close_sse_stream()
        await asyncio.sleep(0.1)
        return types.ListToolsResult(tools=tools)

    return Server(name, version="0.9", on_list_tools=list_tools)


def standard_server(name: str, **kwargs: Any) -> MCPServer:
    """The MCPServer most kinds serve: three tools, one resource, one prompt."""
    mcp = MCPServer(
        name, version="1.2.3", instructions="Test server for corvid.platform.mcp_check", log_level="ERROR", **kwargs
    )

    @mcp.tool()
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @mcp.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @mcp.tool()
    async def chatty_echo(text: str, ctx: Context) -> str:
        """Send progress and log notifications before answering."""
        await ctx.report_progress(0.5, 1.0, "halfway")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            await ctx.info(f"echoing {text}")
        await ctx.report_progress(1.0, 1.0, "done")
        return text

    @mcp.tool()
    def fail() -> str:
        """Always fails."""
        raise ValueError("this tool always fails")

    @mcp.resource("corvid://status")
    def status() -> str:
        """A static resource."""
        return "ok"

    @mcp.prompt()
    def greet(name: str) -> str:
        """A prompt."""
        return f"Hello {name}"

    return mcp


def lowlevel_server(name: str, tool_count: int, page_size: int | None, *, ping: bool = True, delay: float = 0.0):
    """A low-level Server with ``tool_count`` tools, optionally paginated, optionally without ping."""
    tools = [
        types.Tool(name=f"tool_{i:03d}", description=f"tool number {i}", input_schema={"type": "object"})
        for i in range(tool_count)
    ]

    async def list_tools(ctx, params):
        if delay:
            await asyncio.sleep(delay)
        cursor = params.cursor if params is not None else None
        start = int(cursor) if cursor else 0
        if page_size is None:
            return types.ListToolsResult(tools=tools)
        end = start + page_size
        next_cursor = str(end) if end < len(tools) else None
        return types.ListToolsResult(tools=tools[start:end], next_cursor=next_cursor)

    async def call_tool(ctx, params):
        return types.CallToolResult(content=[types.TextContent(type="text", text=f"called {params.name}")])

    kwargs: dict[str, Any] = {"version": "0.9", "on_list_tools": list_tools, "on_call_tool": call_tool}
    if not ping:
        kwargs["on_ping"] = None
    return Server(name, **kwargs)


class StaticTokenVerifier:
    async def verify_token(self, token: str) -> AccessToken | None:
        if token == BEARER_TOKEN:
            return AccessToken(token=token, client_id="corvid-monitor", scopes=["mcp"])
        return None


async def _read_body(receive) -> tuple[bytes, list[dict[str, Any]]]:
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks), messages


def _replay(messages: list[dict[str, Any]], receive):
    queue = list(messages)

    async def replayed():
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed


class DropMidStream:
    """Pass everything to the SDK app, but cut the tools/list response off halfway and drop the connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body, messages = await _read_body(receive)
        try:
            method = json.loads(body).get("method")
        except (ValueError, AttributeError):
            method = None
        if method != "tools/list":
            await self.app(scope, _replay(messages, receive), send)
            return

        async def cutting_send(message):
            if message["type"] == "http.response.body" and message.get("body"):
                chunk = message["body"]
                await send({"type": "http.response.body", "body": chunk[: max(1, len(chunk) // 2)], "more_body": True})
                raise ConnectionAbortedError("dropping the connection mid-stream on purpose")
            await send(message)

        await self.app(scope, _replay(messages, receive), cutting_send)


class ModernOnly:
    """Serve only the 2026-07-28 revision: any request without its MCP-Protocol-Version is refused with -32022."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        requested = headers.get("mcp-protocol-version")
        if requested in MODERN_PROTOCOL_VERSIONS:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _respond(send, 405, b"", [(b"allow", b"POST")])
            return
        body, _ = await _read_body(receive)
        try:
            decoded = json.loads(body)
        except ValueError:
            decoded = {}
        if not isinstance(decoded, dict) or "id" not in decoded:
            await _respond(send, 400, b"")
            return
        if requested is None:
            requested = (decoded.get("params") or {}).get("protocolVersion", "")
        error = {
            "jsonrpc": "2.0",
            "id": decoded["id"],
            "error": {
                "code": -32022,
                "message": "Unsupported protocol version",
                "data": {"supported": list(MODERN_PROTOCOL_VERSIONS), "requested": requested},
            },
        }
        await _respond(send, 400, json.dumps(error).encode(), [(b"content-type", b"application/json")])


async def _respond(send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    all_headers = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


def oauth_app(kind: str, port: int, cert_dir: Path | None):
    """The authorization server, or an MCP server that wants its tokens (needs Authlib)."""
    from oauth_server import JwtVerifier, authorization_server_app

    issuer = f"https://{HOST}:{PORTS['oauth_as']}/"
    if kind == "oauth_as":
        app, server = authorization_server_app(cert_dir)
        server.issuer = issuer.rstrip("/")
        AUTHORIZATION_SERVERS[kind] = server
        return app
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auth = AuthSettings(
            issuer_url=issuer + ("nowhere" if kind == "oauth_nometa" else ""),
            resource_server_url=f"http://{HOST}:{port}/mcp",
            required_scopes=["mcp:read"],
            validate_token_resource=True,  # a token for another audience is refused
        )
    verifier = JwtVerifier(issuer.rstrip("/"))
    return standard_server(f"corvid-{kind}", auth=auth, token_verifier=verifier).streamable_http_app(
        stateless_http=True, json_response=True
    )


def build_app(kind: str, port: int, cert_dir: Path | None = None):
    """Return the ASGI app for one server kind."""
    if kind in OAUTH_KINDS:
        return oauth_app(kind, port, cert_dir)
    if kind == "stateful_sse":
        return standard_server("corvid-stateful").streamable_http_app(
            event_store=MemoryEventStore(), retry_interval=1500
        )
    if kind == "stateful_json":
        return standard_server("corvid-stateful-json").streamable_http_app(json_response=True)
    if kind == "stateless_json":
        return standard_server("corvid-stateless").streamable_http_app(stateless_http=True, json_response=True)
    if kind in ("tls", "tls12", "mtls"):
        return standard_server(f"corvid-{kind}").streamable_http_app(stateless_http=True, json_response=True)
    if kind == "legacy_sse":
        return standard_server("corvid-legacy-sse").sse_app()
    if kind == "bearer":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            auth = AuthSettings(
                issuer_url=f"http://{HOST}:{port}",
                resource_server_url=f"http://{HOST}:{port}/mcp",
                required_scopes=["mcp"],
                validate_token_resource=False,
            )
        server = standard_server("corvid-bearer", auth=auth, token_verifier=StaticTokenVerifier())
        return server.streamable_http_app()
    if kind == "noping":
        return lowlevel_server("corvid-noping", 3, None, ping=False).streamable_http_app(
            stateless_http=True, json_response=True
        )
    if kind == "paginated":
        return lowlevel_server("corvid-paginated", PAGINATED_TOOLS, PAGE_SIZE).streamable_http_app()
    if kind == "slow":
        return lowlevel_server("corvid-slow", 2, None, delay=SLOW_SECONDS).streamable_http_app()
    if kind == "drop":
        return DropMidStream(standard_server("corvid-drop").streamable_http_app())
    if kind == "modern_only":
        return ModernOnly(standard_server("corvid-modern").streamable_http_app(stateless_http=True))
    if kind in ("resumable", "unresumable"):
        return resumable_server(f"corvid-{kind}").streamable_http_app(
            event_store=ReplayingEventStore(forget=kind == "unresumable"), retry_interval=RESUME_RETRY_MS
        )
    raise SystemExit(f"unknown server kind {kind!r}; known: {', '.join(KINDS)}")


class Tls12Config(uvicorn.Config):
    """A uvicorn configuration whose TLS context offers TLS 1.2 at most."""

    def load(self) -> None:
        super().load()
        if self.ssl is not None:
            self.ssl.maximum_version = ssl.TLSVersion.TLSv1_2


def tls_kwargs(kind: str, cert_dir: Path | None) -> dict[str, Any]:
    if kind not in ("tls", "tls12", "mtls", "oauth_as"):
        return {}
    if cert_dir is None:
        raise SystemExit(f"server kind {kind!r} needs --cert-dir")
    kwargs: dict[str, Any] = {
        "ssl_certfile": str(cert_dir / "server.pem"),
        "ssl_keyfile": str(cert_dir / "server.key"),
    }
    if kind == "mtls":
        kwargs["ssl_ca_certs"] = str(cert_dir / "ca.pem")
        kwargs["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return kwargs


def expand_kinds(spec: str) -> list[tuple[str, str]]:
    """'a,b*3' -> [('a','a'), ('b','b'), ('b#1','b'), ('b#2','b')]"""
    result = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        kind, _, count = item.partition("*")
        for index in range(int(count or 1)):
            result.append((kind if index == 0 else f"{kind}#{index}", kind))
    return result


async def serve(kinds: list[tuple[str, str]], cert_dir: Path | None, log_level: str) -> None:
    servers, tasks, ports, sockets = [], [], {}, {}
    for key, _kind in kinds:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, 0))
        sockets[key] = sock
        PORTS.setdefault(key, sock.getsockname()[1])
    for key, kind in kinds:
        sock = sockets[key]
        port = sock.getsockname()[1]
        app = build_app(kind, port, cert_dir)
        config_class = Tls12Config if kind == "tls12" else uvicorn.Config
        config = config_class(
            app,
            host=HOST,
            port=port,
            log_level=log_level,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
            backlog=2048,
            **tls_kwargs(kind, cert_dir),
        )
        server = uvicorn.Server(config)
        servers.append(server)
        tasks.append(asyncio.create_task(server.serve(sockets=[sock])))
        ports[key] = port
    while not all(server.started for server in servers):
        if any(task.done() for task in tasks):
            for task in tasks:
                if task.done() and task.exception():
                    raise task.exception()
            raise SystemExit("a server stopped during start-up")
        await asyncio.sleep(0.02)
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    await asyncio.gather(*tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", required=True, help="comma-separated kinds, each optionally as kind*N")
    parser.add_argument("--cert-dir", type=Path, help="directory with ca.pem, server.pem and server.key")
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.log_level.lower() != "debug":
        # The "drop" server aborts responses on purpose; rendering those tracebacks would stall the event loop.
        logging.disable(logging.ERROR)
    asyncio.run(serve(expand_kinds(args.kinds), args.cert_dir, args.log_level))


if __name__ == "__main__":
    main()
