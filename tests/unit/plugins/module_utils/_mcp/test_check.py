"""_mcp/check.py: every stage and error path of one check against a scripted HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp import check as check_module
from ansible_collections.corvid.platform.plugins.module_utils._mcp import plumbing
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks
from mcp_scripted import (
    SESSION_ID,
    check,
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


def test_happy_path_json_with_session_and_headers(scripted):
    server = scripted(mcp_handler())
    res = check(server.url(), headers={"X-Api-Key": "k-123"}, bearer_token="tok-456")
    assert res["up"] and res["healthy"], res
    assert res["session"] is True
    assert res["transport"] == "streamable_http" and res["protocol_version"] == "2025-11-25"
    assert res["tools"] == ["echo", "add"] and res["ping_supported"] is True
    assert server.methods() == ["initialize", "notifications/initialized", "tools/list", "ping", "DELETE"]
    first, later = server.requests[0].headers, server.requests[2].headers
    assert first["accept"] == "application/json, text/event-stream"
    assert "mcp-session-id" not in first and "mcp-protocol-version" not in first
    assert later["mcp-session-id"] == SESSION_ID and later["mcp-protocol-version"] == "2025-11-25"
    assert later["authorization"] == "Bearer tok-456" and later["x-api-key"] == "k-123"
    assert server.requests[-1].headers["mcp-session-id"] == SESSION_ID
    assert "tok-456" not in json.dumps(res) and "k-123" not in json.dumps(res)
    assert server.connections == 1  # keep-alive reuse


def test_userinfo_becomes_basic_auth_and_is_not_returned(scripted):
    server = scripted(mcp_handler())
    res = check(server.url().replace("http://", "http://monitor:pa%40ss@"))
    assert res["healthy"]
    assert server.requests[0].headers["authorization"] == "Basic bW9uaXRvcjpwYUBzcw=="
    assert "pa%40ss" not in json.dumps(res) and "monitor" not in res["url"]


def test_sse_answer_with_notifications_server_requests_and_comments(scripted):
    def tools_list(request, conn):
        send_sse(
            conn,
            b": keep-alive\n\n",
            b"id: 1\ndata: \nretry: 100\n\n",
            sse_event({"jsonrpc": "2.0", "method": "notifications/message", "params": {"level": "info"}}, "message"),
            sse_event({"jsonrpc": "2.0", "id": "srv-1", "method": "sampling/createMessage", "params": {}}),
            sse_event({"jsonrpc": "2.0", "id": "srv-2", "method": "ping"}),
            sse_event({"jsonrpc": "2.0", "id": 999, "result": {}}),  # someone else's response
            b'data: {"jsonrpc": "2.0", "id": %d,\ndata:  "result": {"tools": [{"name": "x"}]}}\n\n' % request.rpc_id,
            headers={"Content-Type": "text/event-stream; charset=utf-8"},
        )

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url())
    assert res["healthy"], res
    assert res["tools"] == ["x"]
    replies = {r.json["id"]: r.json for r in server.requests if r.json and "method" not in r.json}
    assert replies["srv-1"]["error"]["code"] == -32601
    assert replies["srv-2"]["result"] == {}


def test_batch_json_answer(scripted):
    def tools_list(request, conn):
        send_json(conn, [{"jsonrpc": "2.0", "method": "notifications/x"}, result(request, {"tools": []})])

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["healthy"] and res["tools"] == []


@pytest.mark.parametrize(
    ("respond", "stage", "fragment"),
    [
        (lambda r, c: send_response(c, 500, b"boom", {"Content-Type": "text/plain"}), "initialize", "HTTP 500"),
        (
            lambda r, c: send_response(c, 200, b"{not json", {"Content-Type": "application/json"}),
            "initialize",
            "not valid JSON",
        ),
        (
            lambda r, c: send_json(c, {"jsonrpc": "2.0", "id": 4242, "result": {}}),
            "initialize",
            "does not contain a response with id",
        ),
        (
            lambda r, c: send_response(c, 200, b"<html>", {"Content-Type": "text/html"}),
            "initialize",
            "unexpected Content-Type 'text/html'",
        ),
        (lambda r, c: send_response(c, 202), "initialize", "HTTP 202 and no response"),
        (
            lambda r, c: send_json(c, result(r, init_result(version="2099-01-01"))),
            "initialize",
            "which this client does not speak",
        ),
        (
            lambda r, c: send_json(c, result(r, {"protocolVersion": "2025-06-18"})),
            "initialize",
            "no capabilities object",
        ),
        (
            lambda r, c: send_json(c, result(r, init_result()), headers={"Mcp-Session-Id": "bad id"}),
            "initialize",
            "outside visible ASCII",
        ),
        (
            lambda r, c: send_response(c, 307, b"", {"Location": "https://elsewhere.example/mcp?k=v"}),
            "initialize",
            "redirects to https://elsewhere.example/mcp?k=REDACTED",
        ),
        (lambda r, c: send_json(c, error(r, -32602, "bad params"), status=200), "initialize", "-32602"),
        (lambda r, c: send_sse(c, b"data: {]\n\n"), "initialize", "not valid JSON"),
        (lambda r, c: send_sse(c, b"data: [1]\n\n"), "initialize", "not a JSON-RPC message"),
        (lambda r, c: send_json(c, result(r, init_result()) | {"result": []}), "initialize", "not an object"),
    ],
)
def test_initialize_failures(scripted, respond, stage, fragment):
    server = scripted(mcp_handler(initialize=respond))
    res = check(server.url(), transport="streamable_http", protocol_version="2025-06-18")
    assert not res["up"] and not res["healthy"]
    assert res["failed_stage"] == stage
    assert fragment in res["error"], res["error"]


def test_jsonrpc_error_is_reported_with_code(scripted):
    server = scripted(mcp_handler(**{"tools/list": lambda r, c: send_json(c, error(r, -32603, "internal"))}))
    res = check(server.url())
    assert res["failed_stage"] == "list"
    assert res["jsonrpc_error"] == {"code": -32603, "message": "internal"}
    assert res["http_status"] == 200


def test_stream_ends_before_the_response(scripted):
    def tools_list(request, conn):
        send_sse(conn, b": nothing here\n\n", sse_event({"jsonrpc": "2.0", "method": "notifications/progress"}))

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["up"] is False and res["failed_stage"] == "list"
    assert "ended before the response to tools/list" in res["error"]


def test_connection_dropped_mid_chunk(scripted):
    def tools_list(request, conn):
        start_sse(conn)
        conn.sendall(b'40\r\ndata: {"jsonrpc"')  # announces 64 bytes, sends fewer, then closes
        return False

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["failed_stage"] == "list"
    assert "closed mid-stream" in res["error"] or "connection" in res["error"]


def test_connection_closed_without_answer(scripted):
    res = check(scripted(mcp_handler(**{"tools/list": lambda r, c: False})).url())
    assert res["failed_stage"] == "list"
    assert "tools/list" in res["error"]


@pytest.mark.parametrize("where", ["before headers", "mid-stream", "trickle"])
def test_hard_timeout(scripted, where):
    stop = threading.Event()

    def tools_list(request, conn):
        if where != "before headers":
            start_sse(conn)
        while not stop.wait(0.05):
            if where == "trickle":
                send_chunk(conn, b": still here\n\n")  # never-ending keep-alives must not defeat the deadline
        return False

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    started = time.monotonic()
    res = check(server.url(), timeout=0.6)
    elapsed = time.monotonic() - started
    stop.set()
    assert elapsed < 1.2, elapsed
    assert res["failed_stage"] == "list" and "timed out" in res["error"]
    assert res["latency_ms"]["total"] >= 550


def test_session_expiry_is_explained(scripted):
    def tools_list(request, conn):
        send_json(
            conn, {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "Session not found"}}, status=404
        )

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["failed_stage"] == "list" and res["http_status"] == 404
    assert res["jsonrpc_error"]["message"] == "Session not found"

    def plain_404(request, conn):
        send_response(conn, 404, b"gone")

    res = check(scripted(mcp_handler(**{"tools/list": plain_404})).url())
    assert "session expired" in res["error"]


def test_initialized_notification_not_202_is_a_warning(scripted):
    handler = mcp_handler(**{"notifications/initialized": lambda r, c: send_response(c, 200, b"")})
    res = check(scripted(handler).url())
    assert res["healthy"]
    assert any("not 202" in w for w in res["warnings"])


def test_delete_answers(scripted):
    res = check(scripted(mcp_handler(DELETE=lambda r, c: send_response(c, 405))).url())
    assert res["healthy"] and res["warnings"] == []
    res = check(scripted(mcp_handler(DELETE=lambda r, c: send_response(c, 500))).url())
    assert res["healthy"] and any("DELETE" in w for w in res["warnings"])


def test_no_session_means_no_delete(scripted):
    handler = mcp_handler(initialize=lambda r, c: send_json(c, result(r, init_result())))
    server = scripted(handler)
    res = check(server.url())
    assert res["healthy"] and res["session"] is False
    assert "DELETE" not in server.methods()
    assert all("mcp-session-id" not in r.headers for r in server.requests)


def test_pagination_and_cursor_loop(scripted):
    pages = {None: (["a", "b"], "p2"), "p2": (["c"], "p3"), "p3": (["d"], None)}

    def paged(request, conn):
        cursor = (request.json.get("params") or {}).get("cursor")
        names, nxt = pages[cursor]
        page = {"tools": [{"name": n} for n in names]}
        if nxt:
            page["nextCursor"] = nxt
        send_json(conn, result(request, page))

    res = check(scripted(mcp_handler(**{"tools/list": paged})).url())
    assert res["tools"] == ["a", "b", "c", "d"] and res["tool_count"] == 4

    def looping(request, conn):
        send_json(conn, result(request, {"tools": [{"name": "a"}], "nextCursor": "same"}))

    res = check(scripted(mcp_handler(**{"tools/list": looping})).url())
    assert res["failed_stage"] == "list" and "pagination loop" in res["error"]

    res = check(scripted(mcp_handler(**{"tools/list": lambda r, c: send_json(c, result(r, {}))})).url())
    assert "no tools list" in res["error"]


def test_without_tools_capability(scripted):
    handler = mcp_handler(initialize=lambda r, c: send_json(c, result(r, init_result(capabilities={}))))
    server = scripted(handler)
    res = check(server.url(), expected_tools=["echo"], list_resources=True)
    assert res["up"] and not res["healthy"]
    assert res["tools"] == [] and res["missing_tools"] == ["echo"]
    assert "tools/list" not in server.methods()
    assert res["resources"] == []


def test_ping_errors(scripted):
    res = check(scripted(mcp_handler(ping=lambda r, c: send_json(c, error(r, -32601, "nope")))).url())
    assert res["healthy"] and res["ping_supported"] is False
    res = check(scripted(mcp_handler(ping=lambda r, c: send_json(c, error(r, -32603, "broken")))).url())
    assert res["up"] and not res["healthy"] and res["failed_stage"] == "ping"
    res = check(scripted(mcp_handler()).url(), ping=False)
    assert res["ping_supported"] is None and res["latency_ms"]["ping"] is None


@pytest.mark.parametrize(
    ("answer", "spec", "fragment"),
    [
        ({"content": [{"type": "text", "text": "kaput"}], "isError": True}, {}, "error result: kaput"),
        ({"content": [], "resultType": "input_required"}, {}, "needs more input"),
        ({"content": [{"type": "text", "text": "hello"}]}, {"expected_text": "bye"}, "does not contain 'bye'"),
        ({"content": [], "structuredContent": {"n": 1}}, {"expected_structured": {"n": 2}}, "does not match"),
    ],
)
def test_call_tool_failures(scripted, answer, spec, fragment):
    handler = mcp_handler(**{"tools/call": lambda r, c: send_json(c, result(r, answer))})
    res = check(scripted(handler).url(), call_tool={"name": "echo", "arguments": {}, **spec})
    assert res["up"] and not res["healthy"] and res["failed_stage"] == "call"
    assert fragment in res["error"]


def test_call_tool_success_and_unlisted_tool(scripted):
    def call(request, conn):
        assert request.json["params"] == {"name": "add", "arguments": {"a": 1, "b": 2}}
        send_json(conn, result(request, {"content": [{"type": "text", "text": "3"}], "structuredContent": {"r": 3}}))

    server = scripted(mcp_handler(**{"tools/call": call}))
    spec = {"name": "add", "arguments": {"a": 1, "b": 2}, "expected_text": "3", "expected_structured": {"r": 3}}
    res = check(server.url(), call_tool=spec)
    assert res["healthy"], res
    assert res["call"] == {"tool": "add", "is_error": False, "text": "3", "structured": {"r": 3}}
    res = check(server.url(), call_tool={"name": "missing"})
    assert res["failed_stage"] == "call" and "not in the tools/list" in res["error"]


def test_assertions_min_version_and_latency(scripted):
    server = scripted(mcp_handler(initialize=lambda r, c: send_json(c, result(r, init_result("2024-11-05")))))
    res = check(server.url(), min_protocol_version="2025-03-26", max_latency_ms=0.001)
    assert res["up"] and not res["healthy"]
    assert res["failed_stage"] == "initialize"
    assert len(res["failures"]) == 2 and "max_latency_ms" in res["failures"][1]


def test_offered_version_is_sent(scripted):
    server = scripted(mcp_handler())
    check(server.url(), protocol_version="2025-03-26")
    assert server.requests[0].json["params"]["protocolVersion"] == "2025-03-26"
    assert server.requests[0].json["params"]["clientInfo"]["name"] == "corvid.platform.mcp_check"


def test_unauthorized(scripted):
    www = 'Bearer error="invalid_token", resource_metadata="http://127.0.0.1:1/.well-known/oauth-protected-resource"'
    server = scripted(mcp_handler(initialize=lambda r, c: send_response(c, 401, b"{}", {"WWW-Authenticate": www})))
    res = check(server.url())
    assert res["failed_stage"] == "initialize" and res["http_status"] == 401
    assert res["www_authenticate"] == www
    assert res["resource_metadata"] == "http://127.0.0.1:1/.well-known/oauth-protected-resource"
    assert server.methods() == ["initialize"]  # no fallback to the legacy transport on 401


def test_auto_fallback_reports_both_failures(scripted):
    def handler(request, conn):
        if request.method == "POST":
            send_response(conn, 405)
        else:
            send_response(conn, 200, b"hello", {"Content-Type": "text/plain"})

    res = check(scripted(handler).url())
    assert res["failed_stage"] == "initialize" and res["http_status"] == 405
    assert "legacy HTTP+SSE transport did not answer either" in res["error"]
    assert "text/plain" in res["error"]


def test_fixed_streamable_transport_does_not_fall_back(scripted):
    server = scripted(lambda r, c: send_response(c, 404))
    res = check(server.url(), transport="streamable_http")
    assert res["http_status"] == 404 and [r.method for r in server.requests] == ["POST"]


def test_tls_options_of_the_config_apply_without_a_prepared_context(tmp_path):
    res = check("https://127.0.0.1:1/mcp", ca_path=str(tmp_path / "missing.pem"))
    assert res["failed_stage"] == "tls" and "ca_path" in res["error"]


# --------------------------------------------------------------------------- faults a fault-injection run found


def test_a_header_value_http_client_refuses_never_reaches_the_error(scripted):
    """A token with a line break (a YAML block scalar) used to be quoted in the error; the module refuses it
    as an option error first, and should one get here, the error names the header only."""
    server = scripted(mcp_handler())
    res = check(server.url(), bearer_token="sekrit-tok-77\n")
    assert not res["up"] and res["failed_stage"] == "initialize"
    assert "header Authorization cannot be sent" in res["error"]
    assert "sekrit" not in json.dumps(res)
    assert server.requests == []  # nothing was sent


def echo_headers(status=500):
    """A server whose error page quotes the request headers, as some debug pages do."""

    def handler(request, conn):
        echoed = "".join(f"{name}: {value}\n" for name, value in request.headers.items())
        send_response(conn, status, ("Internal error. Your request:\n" + echoed).encode(), reason="Oops")

    return handler


@pytest.mark.parametrize(
    ("url_auth", "options", "secrets"),
    [
        ("alice:pa55-w0rd-42@", {}, ["pa55-w0rd-42", "YWxpY2U6cGE1NS13MHJkLTQy"]),  # base64 of alice:pa55-w0rd-42
        ("", {"bearer_token": "tok-0123456789"}, ["tok-0123456789"]),
        ("", {"headers": {"X-Api-Key": "key-abcdefghij"}}, ["key-abcdefghij"]),
    ],
)
def test_credentials_echoed_by_an_error_page_are_masked(scripted, url_auth, options, secrets):
    server = scripted(echo_headers())
    res = check(server.url().replace("http://", "http://" + url_auth), transport="streamable_http", **options)
    assert res["failed_stage"] == "initialize" and res["http_status"] == 500
    assert "Internal error" in res["error"] and "********" in res["error"], res["error"]
    dumped = json.dumps(res)
    for secret in secrets:
        assert secret not in dumped


def test_credentials_in_www_authenticate_and_rpc_errors_are_masked(scripted):
    token = "tok-zyxwvu98765"

    def handler(request, conn):
        if request.rpc_method == "initialize":
            send_json(conn, error(request, -32000, f"bad token {token}"))

    res = check(scripted(handler).url(), bearer_token=token, transport="streamable_http")
    assert res["jsonrpc_error"]["message"] == "bad token ********"
    assert token not in json.dumps(res)

    def unauthorized(request, conn):
        send_response(conn, 401, b"", {"WWW-Authenticate": f'Bearer error="invalid_token", token="{token}"'})

    res = check(scripted(unauthorized).url(), bearer_token=token)
    assert res["http_status"] == 401 and token not in json.dumps(res)


@pytest.mark.parametrize("content", [5, "text", {"type": "text", "text": "3"}, None])
def test_a_call_result_whose_content_is_not_a_list_fails_that_endpoint_only(scripted, content):
    def tools_call(request, conn):
        send_json(conn, result(request, {"content": content}))

    bad = scripted(mcp_handler(**{"tools/call": tools_call}))
    good = scripted(mcp_handler())
    results = run_checks(
        [
            {"url": bad.url(), "name": "bad", "timeout": 2, "call_tool": {"name": "echo", "expected_text": "3"}},
            {"url": good.url(), "name": "good", "timeout": 2},
        ]
    )
    assert results[0]["up"] and not results[0]["healthy"] and results[0]["failed_stage"] == "call"
    assert results[1]["healthy"]


def test_a_trickled_status_line_ends_at_the_deadline_as_a_timeout(scripted):
    stop = threading.Event()

    def trickle(request, conn):
        for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
            if stop.wait(0.05):
                break
            conn.sendall(bytes([byte]))
        return False

    server = scripted(trickle)
    started = time.monotonic()
    res = check(server.url(), timeout=0.5, transport="streamable_http")
    elapsed = time.monotonic() - started
    stop.set()
    assert elapsed < 0.8, elapsed
    assert res["failed_stage"] == "initialize" and "timed out" in res["error"], res["error"]
    assert "invalid HTTP" not in res["error"]


def test_a_stream_that_stays_busy_after_the_answer_costs_one_drain(scripted):
    stop = threading.Event()

    def tools_list(request, conn):
        send_sse(conn, sse_event(result(request, {"tools": [{"name": "echo"}]})), end=False)
        while not stop.wait(0.01):
            send_chunk(conn, b": busy\n\n")  # a comment every 10 ms, for ever
        return False

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url(), timeout=2)
    stop.set()
    assert res["healthy"], res["error"]
    assert res["latency_ms"]["list"] < 400, res["latency_ms"]


def test_a_hanging_session_delete_counts_in_the_total(scripted):
    stop = threading.Event()

    def hang(request, conn):
        stop.wait(5)
        return False

    server = scripted(mcp_handler(DELETE=hang))
    res = check(server.url(), timeout=0.6)
    stop.set()
    assert res["healthy"], res["error"]
    assert res["latency_ms"]["total"] >= 550, res["latency_ms"]
    assert any("closing the session" in warning for warning in res["warnings"]), res["warnings"]


def test_a_huge_list_of_empty_objects_is_refused_before_it_costs_memory(scripted, monkeypatch):
    monkeypatch.setattr(plumbing, "MAX_JSON_OBJECTS", 1000)
    monkeypatch.setattr(plumbing.decode_json, "__defaults__", (1000, plumbing.MAX_JSON_VALUES, False))

    def tools_list(request, conn):
        send_json(conn, result(request, {"tools": [{}] * 5000}))

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["failed_stage"] == "list" and "more than 1000 JSON objects" in res["error"], res["error"]


def test_tool_names_kept_are_capped_but_counted(scripted, monkeypatch):
    monkeypatch.setattr(check_module, "MAX_LISTED_NAMES", 3)

    def tools_list(request, conn):
        send_json(conn, result(request, {"tools": [{"name": f"t{n}"} for n in range(5)]}))

    res = check(scripted(mcp_handler(**{"tools/list": tools_list})).url())
    assert res["healthy"] and res["tool_count"] == 5 and res["tools"] == ["t0", "t1", "t2"]
    assert any("keeps the first 3 names" in warning for warning in res["warnings"])
