"""JSON that costs far more memory parsed than its bytes (millions of empty arrays, numbers, strings) is
refused before it is parsed, in a JSON body as in an event of a stream."""

from __future__ import annotations

import tracemalloc

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import MAX_JSON_VALUES
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ProtocolError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import count_json_values, decode_json
from mcp_scripted import check, mcp_handler, send_response, send_sse

MANY = MAX_JSON_VALUES * 4


def many_arrays_result(request_id) -> bytes:
    return b'{"jsonrpc":"2.0","id":%d,"result":{"tools":[' % request_id + b"[]," * MANY + b"[]]}}"


def test_counting_skips_strings():
    assert count_json_values('[1,"a,b:[\\"x,",{"k":[]}]') == 7
    assert 12 <= count_json_values("[" + "[]," * 10 + "[]]") <= 24
    assert count_json_values("5") == 1


@pytest.mark.parametrize(
    "element", [b"[]", b"0", b'""', b"null", b"1.5"], ids=["arrays", "ints", "strings", "nulls", "floats"]
)
def test_a_message_of_millions_of_small_values_is_refused_without_parsing_it(element):
    raw = b"[" + (element + b",") * MANY + element + b"]"
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match=f"more than {MAX_JSON_VALUES} JSON values"):
            decode_json(raw, "the body")
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 6 * len(raw), peak  # the text and a copy of it, not millions of objects


def test_a_tools_list_of_millions_of_arrays_fails_the_list_stage(scripted):
    def tools_list(request, conn):
        send_response(conn, 200, many_arrays_result(request.rpc_id), {"Content-Type": "application/json"})

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url(), timeout=10.0)
    assert res["failed_stage"] == "list", res
    assert f"more than {MAX_JSON_VALUES} JSON values" in res["error"]


def test_an_event_of_millions_of_arrays_fails_the_list_stage(scripted):
    def tools_list(request, conn):
        send_sse(conn, b"data: " + many_arrays_result(request.rpc_id) + b"\n\n")

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url(), timeout=10.0)
    assert res["failed_stage"] == "list", res
    assert f"more than {MAX_JSON_VALUES} JSON values" in res["error"]
