#!/usr/bin/python3
"""A small MCP server over Streamable HTTP, Python standard library only, for the scheduled-check test.

It speaks the parts of the 2025-06-18 and 2025-03-26 revisions a health check uses: ``initialize``
(version negotiation, an ``Mcp-Session-Id``), ``notifications/initialized``, ``ping``, ``tools/list``
and ``tools/call`` with read-only tools, session deletion (``DELETE``); every answer is plain JSON
(a server may answer a POST with ``application/json`` instead of an event stream). Requests need
``Authorization: Bearer <token>`` when a token file is given.

    mcp_test_server.py --bind ADDRESS --port 8000 [--token-file FILE]
"""

import argparse
import hmac
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSIONS = ("2025-06-18", "2025-03-26")
SERVER_INFO = {"name": "corvid-test-mcp", "version": "1.0.0"}
TOOLS = [
    {
        "name": "echo",
        "description": "Returns its text.",
        "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    },
    {
        "name": "version",
        "description": "The server's version.",
        "inputSchema": {"type": "object", "properties": {}},
    },
]
MAX_BODY = 1024 * 1024


class Sessions:
    def __init__(self):
        self.lock = threading.Lock()
        self.ids = set()

    def new(self):
        session = uuid.uuid4().hex
        with self.lock:
            self.ids.add(session)
        return session

    def known(self, session):
        with self.lock:
            return session in self.ids

    def drop(self, session):
        with self.lock:
            self.ids.discard(session)


SESSIONS = Sessions()


def result(ident, value):
    return {"jsonrpc": "2.0", "id": ident, "result": value}


def error(ident, code, message):
    return {"jsonrpc": "2.0", "id": ident, "error": {"code": code, "message": message}}


def answer(message):
    """The JSON-RPC answer to one request (a dict), or None for a notification."""
    method, ident, params = message.get("method"), message.get("id"), message.get("params") or {}
    if ident is None:
        return None
    if method == "initialize":
        asked = params.get("protocolVersion")
        return result(
            ident,
            {
                "protocolVersion": asked if asked in VERSIONS else VERSIONS[0],
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": SERVER_INFO,
            },
        )
    if method == "ping":
        return result(ident, {})
    if method == "tools/list":
        return result(ident, {"tools": TOOLS})
    if method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments") or {}
        if name == "echo":
            return result(ident, {"content": [{"type": "text", "text": str(arguments.get("text", ""))}]})
        if name == "version":
            return result(ident, {"content": [{"type": "text", "text": SERVER_INFO["version"]}]})
        return error(ident, -32602, f"unknown tool {name!r}")
    return error(ident, -32601, f"method not found: {method}")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "corvid-test-mcp/1.0"
    token = None

    def log_message(self, *args):
        pass

    def send(self, status, body=None, headers=()):
        data = b"" if body is None else json.dumps(body).encode("utf-8")
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def authorised(self):
        if self.token is None:
            return True
        given = self.headers.get("Authorization", "")
        if hmac.compare_digest(given.encode("utf-8"), ("Bearer " + self.token).encode("utf-8")):
            return True
        self.send(401, {"error": "invalid_token"}, [("WWW-Authenticate", 'Bearer realm="mcp"')])
        return False

    def on_mcp_path(self):
        if self.path.split("?", 1)[0] != "/mcp":
            self.send(404, {"error": "not found"})
            return False
        return True

    def do_GET(self):
        # No server-initiated stream: 405, as the transport allows.
        if self.on_mcp_path() and self.authorised():
            self.send(405, None, [("Allow", "POST, DELETE")])

    def do_DELETE(self):
        if self.on_mcp_path() and self.authorised():
            SESSIONS.drop(self.headers.get("Mcp-Session-Id"))
            self.send(200)

    def do_POST(self):
        if not (self.on_mcp_path() and self.authorised()):
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.send(413, error(None, -32600, "request too large"))
            return
        try:
            message = json.loads(self.rfile.read(length))
        except ValueError:
            self.send(400, error(None, -32700, "parse error"))
            return
        if not isinstance(message, dict) or message.get("jsonrpc") != "2.0":
            self.send(400, error(None, -32600, "one JSON-RPC 2.0 message per request"))
            return
        if "application/json" not in self.headers.get("Accept", ""):
            self.send(406, error(message.get("id"), -32600, "Accept must include application/json"))
            return
        session = self.headers.get("Mcp-Session-Id")
        if message.get("method") == "initialize":
            self.send(200, answer(message), [("Mcp-Session-Id", SESSIONS.new())])
            return
        if not session:
            self.send(400, error(message.get("id"), -32600, "Mcp-Session-Id is required after initialize"))
            return
        if not SESSIONS.known(session):
            self.send(404, error(message.get("id"), -32001, "unknown session"))
            return
        reply = answer(message)
        if reply is None:
            self.send(202)
        else:
            self.send(200, reply)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--bind", required=True, help="the address to listen on")
    parser.add_argument("--token-file")
    args = parser.parse_args()
    if args.token_file:
        with open(args.token_file, encoding="utf-8") as handle:
            Handler.token = handle.read().strip()
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
