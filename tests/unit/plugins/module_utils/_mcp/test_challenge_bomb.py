"""A huge WWW-Authenticate (several headers of 65 KB each) is parsed in linear time, only its start, and
shown cut short: the check ends in time and its result stays small."""

from __future__ import annotations

import json
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import parse_www_authenticate
from mcp_scripted import check
from test_oauth import oauth

BOMB = "Bearer " + "xresource_metadata" * (65000 // 18)


def bomb_handler(request, conn):
    headers = f"WWW-Authenticate: {BOMB}\r\n" * 5
    conn.sendall(f"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n{headers}\r\n".encode())


def test_parsing_a_huge_challenge_takes_linear_time():
    value = ", ".join([BOMB] * 5)
    started = time.monotonic()
    assert parse_www_authenticate(value) is None
    assert time.monotonic() - started < 0.2
    # a resource_metadata near the start is still found; one past the first 8 KB is not looked for
    assert parse_www_authenticate('Bearer resource_metadata="https://a/m", ' + BOMB) == "https://a/m"
    assert parse_www_authenticate(BOMB + ', resource_metadata="https://a/m"') is None


def test_a_challenge_bomb_neither_stalls_the_check_nor_floods_the_result(scripted):
    server = scripted(bomb_handler)
    for options in ({}, {"oauth": oauth()}):
        started = time.monotonic()
        res = check(server.url(), timeout=3.0, **options)
        elapsed = time.monotonic() - started
        assert not res["up"] and res["failed_stage"] in ("initialize", "auth_discovery"), res
        assert elapsed < 1.5, (options, elapsed)
        assert len(res["www_authenticate"] or "") <= 1024
        assert len(res["error"]) < 2000 and all(len(failure) < 2000 for failure in res["failures"])
        assert len(json.dumps(res)) < 10000
