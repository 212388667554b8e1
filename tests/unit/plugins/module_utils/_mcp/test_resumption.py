"""Streamable HTTP: a response stream that ends (or breaks) before its answer is resumed with GET and
Last-Event-ID, after the server's retry interval and within the deadline."""

from __future__ import annotations

import json
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.metrics import health_picture, render_metrics
from mcp_scripted import (
    TOOLS,
    check,
    end_chunks,
    mcp_handler,
    result,
    send_chunk,
    send_response,
    sse_event,
    start_sse,
)


def priming(event_id: str, retry: int | None = 50) -> bytes:
    return (f"id: {event_id}\n" + (f"retry: {retry}\n" if retry is not None else "") + "data: \n\n").encode()


def with_id(event_id: str, message) -> bytes:
    return f"id: {event_id}\n".encode() + sse_event(message)


class Resumable:
    """tools/list: a priming event, then the stream ends; every GET hands out the next of ``gets``."""

    def __init__(self, *gets, retry=50, abrupt=False):
        self.gets = list(gets)
        self.retry = retry
        self.abrupt = abrupt
        self.list_request = None

    def tools_list(self, request, conn):
        self.list_request = request
        start_sse(conn)
        send_chunk(conn, priming("s-1", self.retry))
        if self.abrupt:
            return False  # the connection closes without the last chunk
        end_chunks(conn)
        return None

    def get(self, request, conn):
        if not self.gets:
            send_response(conn, 405, headers={"Allow": "POST, DELETE"})
            return None
        return self.gets.pop(0)(self, request, conn)

    def handler(self):
        return mcp_handler(**{"tools/list": self.tools_list, "GET": self.get})


def answer(event_id="s-2"):
    def send(resumable, request, conn):
        start_sse(conn)
        send_chunk(conn, with_id(event_id, result(resumable.list_request, {"tools": TOOLS})))
        end_chunks(conn)

    return send


def nothing_new(resumable, request, conn):
    start_sse(conn)
    end_chunks(conn)


def a_notification(event_id):
    def send(resumable, request, conn):
        start_sse(conn)
        send_chunk(conn, with_id(event_id, {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}}))
        end_chunks(conn)

    return send


def gets_of(server):
    return [r for r in server.requests if r.method == "GET"]


def test_a_stream_that_ends_is_resumed_from_its_last_event_id(scripted):
    resumable = Resumable(answer())
    server = scripted(resumable.handler())
    started = time.monotonic()
    res = check(server.url())
    assert res["healthy"], res
    assert res["tools"] == ["echo", "add"] and res["resumptions"] == 1
    (get,) = gets_of(server)
    assert get.headers["last-event-id"] == "s-1"
    assert get.headers["accept"] == "text/event-stream" and "content-type" not in get.headers
    assert get.headers["mcp-session-id"] == "sess-0123" and get.headers["mcp-protocol-version"] == "2025-11-25"
    assert res["latency_ms"]["list"] >= 50  # the retry interval was honoured
    assert time.monotonic() - started < 1.5


def test_a_broken_stream_is_resumed_too(scripted):
    resumable = Resumable(answer(), abrupt=True)
    server = scripted(resumable.handler())
    res = check(server.url())
    assert res["healthy"] and res["resumptions"] == 1, res


def test_resuming_goes_on_from_the_newest_event_id(scripted):
    resumable = Resumable(a_notification("s-7"), answer("s-8"))
    server = scripted(resumable.handler())
    res = check(server.url())
    assert res["healthy"] and res["resumptions"] == 2, res
    assert [g.headers["last-event-id"] for g in gets_of(server)] == ["s-1", "s-7"]


def test_a_server_that_refuses_to_resume_is_down_with_the_reason(scripted):
    server = scripted(Resumable().handler())
    res = check(server.url())
    assert not res["up"] and res["failed_stage"] == "list", res
    assert "ended before the answer, and the server did not resume it" in res["error"]
    assert "GET with Last-Event-ID answered HTTP 405" in res["error"]
    assert res["resumptions"] == 1


def test_a_server_that_never_answers_on_resumed_streams_times_out_within_the_deadline(scripted):
    resumable = Resumable(*([nothing_new] * 1000))
    server = scripted(resumable.handler())
    started = time.monotonic()
    res = check(server.url(), timeout=1.0)
    elapsed = time.monotonic() - started
    assert not res["up"] and res["failed_stage"] == "list", res
    assert "timed out" in res["error"] and "the response stream was resumed" in res["error"], res["error"]
    assert 5 <= res["resumptions"] <= 25  # every 50 ms for a second
    assert elapsed < 1.5


def test_a_retry_interval_past_the_deadline_fails_at_once(scripted):
    server = scripted(Resumable(answer(), retry=5000).handler())
    started = time.monotonic()
    res = check(server.url(), timeout=1.0)
    assert not res["up"] and res["failed_stage"] == "list", res
    assert "asks to wait 5000 ms before resuming it" in res["error"]
    assert time.monotonic() - started < 0.5 and gets_of(server) == []


def test_a_stream_without_event_ids_is_not_resumed(scripted):
    def tools_list(request, conn):
        start_sse(conn)
        send_chunk(conn, b"data: \n\n")
        end_chunks(conn)

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url())
    assert not res["up"] and "ended before the response to tools/list" in res["error"]
    assert res["resumptions"] == 0 and gets_of(server) == []


def test_resumptions_are_a_metric_that_is_no_change_of_health(scripted):
    server = scripted(Resumable(answer()).handler())
    res = check(server.url())
    text = render_metrics([res])
    assert f'mcp_endpoint_stream_resumptions{{endpoint="{res["name"]}"}} 1' in text.splitlines()
    assert health_picture(text) == health_picture(render_metrics([dict(res, resumptions=0)]))
    assert "s-1" not in json.dumps(res)
