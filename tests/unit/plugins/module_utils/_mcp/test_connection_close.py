"""Answers that end with the connection (HTTP/1.0, ``Connection: close``, no length) are read whole: the
socket stays open until the response is read, then the connection is not reused."""

from __future__ import annotations

import json

from mcp_scripted import TOOLS, check, init_result, mcp_handler, result, sse_event
from test_leaks import TokenWorld
from test_oauth import oauth


def closing(status: int, body: bytes, headers: dict[str, str], *, version="HTTP/1.1", length=True):
    """A response written whole, after which the server closes the connection."""
    lines = [f"{version} {status} OK", *(f"{name}: {value}" for name, value in headers.items())]
    if length:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def closing_mcp(version="HTTP/1.1", length=True, connection_close=True):
    def answer(request, conn):
        headers = {"Content-Type": "application/json"}
        if connection_close:
            headers["Connection"] = "close"
        if request.rpc_method == "initialize":
            message = result(request, init_result())
            headers["Mcp-Session-Id"] = "sess-0123"
        elif request.rpc_method == "tools/list":
            message = result(request, {"tools": TOOLS})
        elif request.rpc_method == "ping":
            message = result(request, {})
        elif request.method == "DELETE" or request.rpc_id is None:
            conn.sendall(closing(202 if request.method == "POST" else 200, b"", headers, version=version))
            return False
        else:
            message = {"jsonrpc": "2.0", "id": request.rpc_id, "error": {"code": -32601, "message": "no"}}
        conn.sendall(closing(200, json.dumps(message).encode(), headers, version=version, length=length))
        return False

    return answer


def test_an_http10_server_without_content_length_is_healthy(scripted):
    server = scripted(closing_mcp(version="HTTP/1.0", length=False, connection_close=False))
    res = check(server.url(), ping=True)
    assert res["healthy"], res
    assert res["tools"] == ["echo", "add"]
    assert server.connections >= 3  # a new connection for every request


def test_a_connection_close_server_is_healthy(scripted):
    server = scripted(closing_mcp())
    res = check(server.url(), ping=True)
    assert res["healthy"], res
    assert res["tools"] == ["echo", "add"]


def test_a_connection_close_answer_without_length_is_read_to_its_end(scripted):
    server = scripted(closing_mcp(length=False))
    res = check(server.url())
    assert res["healthy"], res


def test_an_event_stream_with_connection_close_is_resumed(scripted):
    state = {}

    def tools_list(request, conn):
        state["request"] = request
        body = b"id: s-1\nretry: 20\ndata: \n\n"
        conn.sendall(closing(200, body, {"Content-Type": "text/event-stream", "Connection": "close"}, length=False))
        return False

    def get(request, conn):
        body = b"id: s-2\n" + sse_event(result(state["request"], {"tools": TOOLS}))
        conn.sendall(closing(200, body, {"Content-Type": "text/event-stream", "Connection": "close"}, length=False))
        return False

    server = scripted(mcp_handler(**{"tools/list": tools_list, "GET": get}))
    res = check(server.url())
    assert res["healthy"] and res["resumptions"] == 1, res


class ClosingTokenWorld(TokenWorld):
    def handle(self, request, conn):
        if request.path == "/token":
            self.token_posts.append(request)
            token = "tok-closing-0123456789"
            self.accepted.add(token)
            body = json.dumps({"access_token": token, "token_type": "Bearer", "expires_in": 60}).encode()
            conn.sendall(closing(200, body, {"Content-Type": "application/json", "Connection": "close"}, length=False))
            return False
        return super().handle(request, conn)


def test_a_token_answer_without_content_length_is_read(scripted):
    world = ClosingTokenWorld(scripted)
    res = check(world.url, oauth=oauth())
    assert res["healthy"], res
