"""The SSE parser of _mcp/sse.py against the WHATWG event-stream rules."""

from __future__ import annotations

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.sse import SSEError, SSEParser


def parse(*chunks: bytes, parser: SSEParser | None = None):
    parser = parser or SSEParser()
    events = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return [(e.event, e.data, e.id, e.retry) for e in events]


def test_single_event_lf():
    assert parse(b"data: hello\n\n") == [("message", "hello", "", None)]


def test_crlf_and_lone_cr_line_endings():
    assert parse(b"data: a\r\n\r\ndata: b\r\rdata: c\n\n") == [
        ("message", "a", "", None),
        ("message", "b", "", None),
        ("message", "c", "", None),
    ]


def test_crlf_split_across_chunks_is_one_line_break():
    # "data: x\r" | "\n\r\n": the LF completes the CRLF, it is not an empty line of its own.
    assert parse(b"data: x\r", b"\n", b"data: y\r", b"\n\r\n") == [("message", "x\ny", "", None)]


def test_cr_at_chunk_end_then_blank_line():
    assert parse(b"data: x\r", b"\r") == [("message", "x", "", None)]


def test_multiline_data_joined_with_lf():
    assert parse(b"data: line one\ndata: line two\ndata:\n\n") == [("message", "line one\nline two\n", "", None)]


def test_only_one_leading_space_is_removed():
    assert parse(b"data:  two spaces\ndata:none\n\n") == [("message", " two spaces\nnone", "", None)]


def test_comments_are_counted_and_ignored():
    parser = SSEParser()
    assert parse(b": keep-alive\n\n: another\ndata: x\n\n", parser=parser) == [("message", "x", "", None)]
    assert parser.comments == 2


def test_event_type_id_and_retry():
    events = parse(b"event: endpoint\nid: 7\nretry: 1500\ndata: /messages/?session_id=1\n\ndata: next\n\n")
    assert events == [
        ("endpoint", "/messages/?session_id=1", "7", 1500),
        ("message", "next", "7", 1500),  # the last event id and retry persist
    ]


def test_id_with_nul_is_ignored_and_bad_retry_is_ignored():
    events = parse(b"id: 1\nretry: 10\ndata: a\n\nid: 2\x003\nretry: 1x\ndata: b\n\n")
    assert events == [("message", "a", "1", 10), ("message", "b", "1", 10)]


def test_priming_event_with_empty_data_is_dispatched():
    # MCP servers send "id: x / data: / retry: n" to hand out a resumption cursor.
    assert parse(b"id: 1-1\r\ndata: \r\nretry: 1500\r\n\r\n") == [("message", "", "1-1", 1500)]


def test_event_without_data_is_not_dispatched_and_resets_the_type():
    assert parse(b"event: lonely\n\ndata: x\n\n") == [("message", "x", "", None)]


def test_field_without_colon_and_unknown_fields():
    assert parse(b"data\nfoo: bar\n\n") == [("message", "", "", None)]


def test_bom_is_stripped_once():
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [("message", "x", "", None)]


def test_invalid_utf8_is_replaced_not_fatal():
    assert parse(b"data: \xff\n\n") == [("message", "\ufffd", "", None)]


def test_incomplete_event_at_end_of_stream_is_discarded():
    parser = SSEParser()
    assert parse(b"data: partial\n", parser=parser) == []
    parser.close()
    assert parse(b"\n", parser=parser) == []


def test_byte_by_byte_feeding_gives_the_same_events():
    stream = (
        b'\xef\xbb\xbf: hi\r\nevent: message\r\nid: 1\r\ndata: {"a":\r\ndata: 1}\r\n\r\n'
        b"data: two\rdata: lines\r\r: c\nretry: 5\ndata: z\n\n"
    )
    whole = parse(stream)
    assert whole == [
        ("message", '{"a":\n1}', "1", None),
        ("message", "two\nlines", "1", None),
        ("message", "z", "1", 5),
    ]
    assert parse(*[stream[i : i + 1] for i in range(len(stream))]) == whole


def test_event_size_limit():
    parser = SSEParser(max_event_bytes=16)
    with pytest.raises(SSEError, match="larger than 16 bytes"):
        parser.feed(b"data: 0123456789\ndata: 0123456789\n")


def test_line_length_limit_without_terminator():
    parser = SSEParser(max_event_bytes=8)
    with pytest.raises(SSEError, match="longer than 8 bytes"):
        parser.feed(b"data: 0123456789")
