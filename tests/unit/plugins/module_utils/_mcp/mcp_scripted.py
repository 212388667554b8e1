"""A scripted HTTP/1.1 server on 127.0.0.1 for the error paths a real MCP server does not easily produce.

A test gives a handler ``handler(request, conn)`` that writes whatever bytes it likes (helpers below);
``mcp_handler`` builds one that behaves like a minimal MCP server unless a method is overridden.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

from ansible_collections.corvid.platform.plugins.module_utils._mcp.check import check_endpoint

PROTOCOL_VERSION = "2025-11-25"
SESSION_ID = "sess-0123"
TOOLS = [{"name": "echo", "inputSchema": {"type": "object"}}, {"name": "add", "inputSchema": {"type": "object"}}]


class Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        try:
            self.json = json.loads(body) if body else None
        except ValueError:
            self.json = None

    @property
    def rpc_method(self) -> str | None:
        return self.json.get("method") if isinstance(self.json, dict) else None

    @property
    def rpc_id(self) -> Any:
        return self.json.get("id") if isinstance(self.json, dict) else None


def _read_request(reader) -> Request | None:
    line = reader.readline()
    if not line:
        return None
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) != 3:
        return None  # not HTTP (a TLS ClientHello, say): hang up
    method, path, _version = parts
    headers = {}
    while True:
        header = reader.readline().decode("latin-1")
        if header in ("\r\n", "\n", ""):
            break
        name, _sep, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = reader.read(int(headers.get("content-length", "0") or 0))
    return Request(method, path, headers, body)


class ScriptedServer:
    """``ssl_context`` (a server-side SSLContext) makes it an HTTPS server."""

    def __init__(self, handler: Callable[[Request, socket.socket], Any], ssl_context: ssl.SSLContext | None = None):
        self.handler = handler
        self.ssl_context = ssl_context
        self.requests: list[Request] = []
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, path: str = "/mcp") -> str:
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def methods(self) -> list[str | None]:
        return [r.rpc_method if r.method == "POST" else r.method for r in self.requests]

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _address = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        if self.ssl_context is not None:
            try:
                conn.settimeout(5)
                conn = self.ssl_context.wrap_socket(conn, server_side=True)
                conn.settimeout(None)
            except (OSError, ssl.SSLError):
                conn.close()
                return
        reader = conn.makefile("rb")
        try:
            while not self.stop.is_set():
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                if self.handler(request, conn) is False:
                    return
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                conn.close()

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


def send_raw(conn: socket.socket, data: bytes) -> None:
    conn.sendall(data)


def send_response(conn, status: int, body: bytes = b"", headers: dict[str, str] | None = None, reason: str = "X"):
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


def send_json(conn, message: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
    send_response(
        conn, status, json.dumps(message).encode(), {"Content-Type": "application/json", **(headers or {})}, "OK"
    )


def start_sse(conn, status: int = 200, headers: dict[str, str] | None = None) -> None:
    headers = {"Content-Type": "text/event-stream", **(headers or {})}
    lines = [f"HTTP/1.1 {status} OK", "Transfer-Encoding: chunked"]
    for name, value in headers.items():
        lines.append(f"{name}: {value}")
    conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))


def send_chunk(conn, data: bytes) -> None:
    conn.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def end_chunks(conn) -> None:
    conn.sendall(b"0\r\n\r\n")


def sse_event(message: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return (head + "data: " + json.dumps(message) + "\n\n").encode()


def send_sse(conn, *events: bytes, headers: dict[str, str] | None = None, end: bool = True) -> None:
    start_sse(conn, headers=headers)
    for event in events:
        send_chunk(conn, event)
    if end:
        end_chunks(conn)


def result(request: Request, value: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.rpc_id, "result": value}


def error(request: Request, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request.rpc_id, "error": {"code": code, "message": message}}


def init_result(version: str = PROTOCOL_VERSION, capabilities: dict | None = None) -> dict[str, Any]:
    return {
        "protocolVersion": version,
        "capabilities": {"tools": {}} if capabilities is None else capabilities,
        "serverInfo": {"name": "scripted", "version": "0.0.1"},
    }


def mcp_handler(**overrides: Callable[[Request, socket.socket], Any]):
    """A minimal streamable-HTTP MCP server; ``overrides`` maps JSON-RPC methods (or "DELETE") to handlers."""

    def handler(request: Request, conn):
        key = request.rpc_method if request.method == "POST" else request.method
        if key in overrides:
            return overrides[key](request, conn)
        if request.method == "DELETE":
            send_response(conn, 200)
        elif key == "initialize":
            send_json(conn, result(request, init_result()), headers={"Mcp-Session-Id": SESSION_ID})
        elif key == "tools/list":
            send_json(conn, result(request, {"tools": TOOLS}))
        elif key == "ping":
            send_json(conn, result(request, {}))
        elif request.rpc_id is None:
            send_response(conn, 202)
        else:
            send_json(conn, error(request, -32601, "Method not found"))
        return None

    return handler


def check(url, **options):
    """Check one endpoint with a short timeout."""
    config = {"url": url, "timeout": 2.0}
    config.update(options)
    return check_endpoint(config)
