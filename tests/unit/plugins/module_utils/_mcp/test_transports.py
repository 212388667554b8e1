"""_mcp/transports.py: the legacy HTTP+SSE transport, 2026-07-28 servers and requests from the server."""

from __future__ import annotations

import json
import threading

import pytest
from mcp_scripted import (
    check,
    end_chunks,
    error,
    init_result,
    mcp_handler,
    result,
    send_chunk,
    send_json,
    send_response,
    send_sse,
    sse_event,
    start_sse,
)


def legacy_handler(endpoint=b"/messages/?session_id=abc", answer_in_post=False, before_endpoint=()):
    """A legacy HTTP+SSE server: GET opens the stream, POSTs to the endpoint are answered on it."""
    streams = []

    def handler(request, conn):
        if request.method == "GET":
            start_sse(conn)
            for event in before_endpoint:
                send_chunk(conn, event)
            if endpoint is not None:
                send_chunk(conn, b"event: endpoint\ndata: " + endpoint + b"\n\n")
                streams.append(conn)
                threading.Event().wait(5)  # keep the stream open; answers are written by the POST handler
            else:
                end_chunks(conn)
            return False
        message = request.json
        if "id" not in message or "method" not in message:
            send_response(conn, 202, b"Accepted")
            return None
        answers = {
            "initialize": init_result(),
            "tools/list": {"tools": [{"name": "find_symbol"}]},
            "ping": {},
        }
        reply = {"jsonrpc": "2.0", "id": message["id"], "result": answers.get(message["method"], {})}
        if answer_in_post:
            send_json(conn, reply)
        else:
            send_response(conn, 202, b"Accepted")
            send_chunk(streams[0], b"event: message\ndata: " + json.dumps(reply).encode() + b"\n\n")
        return None

    return handler


def test_legacy_sse_transport(scripted):
    server = scripted(legacy_handler(before_endpoint=[b": hello\n\n"]))
    res = check(server.url("/sse"), transport="sse")
    assert res["healthy"], res
    assert res["transport"] == "sse" and res["session"] is True
    assert server.requests[0].headers["accept"] == "text/event-stream"
    assert all(r.path == "/messages/?session_id=abc" for r in server.requests[1:])


def test_legacy_answers_in_the_post_body(scripted):
    res = check(scripted(legacy_handler(answer_in_post=True)).url("/sse"), transport="sse")
    assert res["healthy"], res


@pytest.mark.parametrize(
    ("endpoint", "fragment"),
    [
        (b"http://evil.example:80/messages", "another origin"),
        (None, "ended before the endpoint event"),
    ],
)
def test_legacy_bad_endpoint_events(scripted, endpoint, fragment):
    res = check(scripted(legacy_handler(endpoint=endpoint)).url("/sse"), transport="sse")
    assert res["failed_stage"] == "initialize" and fragment in res["error"]


def test_legacy_get_refused(scripted):
    server = scripted(lambda r, c: send_response(c, 401, b"", {"WWW-Authenticate": "Bearer"}))
    res = check(server.url(), transport="sse")
    assert res["http_status"] == 401 and res["failed_stage"] == "initialize"


def modern_handler(supported=("2026-07-28",)):
    def handler(request, conn):
        version = request.headers.get("mcp-protocol-version")
        body = request.json
        if body.get("method") == "initialize":
            reply = error(request, -32022, "Unsupported protocol version")
            send_json(conn, reply, status=400)
            return None
        assert version == "2026-07-28"
        meta = body["params"]["_meta"]
        assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
        assert request.headers["mcp-method"] == body["method"]
        if body["method"] == "server/discover":
            send_json(
                conn,
                result(
                    request,
                    {
                        "supportedVersions": list(supported),
                        "capabilities": {"tools": {}},
                        "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "modern", "version": "9"}},
                    },
                ),
            )
        elif body["method"] == "tools/list":
            send_json(conn, result(request, {"tools": [{"name": "echo"}]}))
        elif body["method"] == "tools/call":
            assert request.headers["mcp-name"] == "echo"
            send_json(conn, result(request, {"content": [{"type": "text", "text": "hi"}], "resultType": "complete"}))
        return None

    return handler


def test_modern_server_is_recognised(scripted):
    server = scripted(modern_handler())
    res = check(server.url(), call_tool={"name": "echo", "expected_text": "hi"})
    assert res["healthy"], res
    assert res["protocol_version"] == "2026-07-28" and res["era"] == "modern"
    assert res["session"] is False and res["ping_supported"] is False
    assert res["server_info"] == {"name": "modern", "version": "9"}
    assert "ping" not in server.methods() and "DELETE" not in server.methods()


def test_modern_server_without_our_version(scripted):
    res = check(scripted(modern_handler(supported=("2099-01-01",))).url(), protocol_version="2026-07-28")
    assert res["failed_stage"] == "initialize" and "does not list protocol version 2026-07-28" in res["error"]


def test_protocol_headers_given_by_the_user_are_ignored(scripted):
    server = scripted(mcp_handler())
    res = check(server.url(), headers={"Accept": "text/html", "User-Agent": "probe/1", "X-Trace": "1"})
    assert res["healthy"]
    assert server.requests[0].headers["accept"] == "application/json, text/event-stream"
    assert server.requests[0].headers["user-agent"] == "probe/1"
    assert server.requests[0].headers["x-trace"] == "1"
    assert any("Accept is set by the client" in w for w in res["warnings"])


def test_failed_answer_to_a_server_request_does_not_fail_the_check(scripted):
    def tools_list(request, conn):
        send_sse(
            conn,
            sse_event({"jsonrpc": "2.0", "id": "srv-1", "method": "roots/list"}),
            sse_event(result(request, {"tools": [{"name": "x"}]})),
        )

    def handler(request, conn):
        if request.json and "method" not in request.json:  # our answer to roots/list
            send_response(conn, 400, b"no thanks")
            return None
        return mcp_handler(**{"tools/list": tools_list})(request, conn)

    res = check(scripted(handler).url())
    assert res["healthy"], res


def test_legacy_messages_before_the_endpoint_event_are_bounded(scripted):
    """A server that floods the stream before naming the endpoint used to grow memory without a limit."""
    flood = [sse_event({"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}}) for n in range(500)]
    server = scripted(legacy_handler(before_endpoint=flood))
    res = check(server.url("/sse"), transport="sse")
    assert res["failed_stage"] == "initialize"
    assert "more than 100 messages" in res["error"], res["error"]


def test_legacy_messages_before_the_endpoint_event_within_the_bound_are_kept(scripted):
    early = [sse_event({"jsonrpc": "2.0", "method": "notifications/message", "params": {"n": n}}) for n in range(50)]
    res = check(scripted(legacy_handler(before_endpoint=early)).url("/sse"), transport="sse")
    assert res["healthy"], res["error"]
