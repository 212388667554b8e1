"""_mcp/runner.py: many checks at once, bounded workers and the watchdog."""

from __future__ import annotations

import threading
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.check import EndpointCheck
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import Deadline
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks
from mcp_scripted import mcp_handler, result, send_json


def test_run_checks_keeps_order_and_bounds_workers(scripted):
    active = []
    peak = []
    lock = threading.Lock()

    def slow_list(request, conn):
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.05)
        with lock:
            active.pop()
        send_json(conn, result(request, {"tools": []}))

    server = scripted(mcp_handler(**{"tools/list": slow_list}))
    configs = [{"url": server.url(), "name": f"e{i}", "timeout": 5} for i in range(8)]
    results = run_checks(configs, workers=3)
    assert [r["name"] for r in results] == [f"e{i}" for i in range(8)]
    assert all(r["healthy"] for r in results)
    assert max(peak) <= 3
    assert run_checks([]) == []


def test_watchdog_gives_up_on_a_check_that_ignores_its_deadline(monkeypatch):
    release = threading.Event()
    original = EndpointCheck.run

    def stuck(self):
        if self.config["name"] == "stuck":
            self.stage = "connect"
            self.started = time.monotonic()
            self.deadline = Deadline(self.config["timeout"])
            release.wait(10)  # like a getaddrinfo that never returns
        return original(self)

    monkeypatch.setattr(EndpointCheck, "run", stuck)
    started = time.monotonic()
    results = run_checks(
        [
            {"url": "http://127.0.0.1:1/mcp", "name": "stuck", "timeout": 0.2},
            {"url": "http://127.0.0.1:1/mcp", "name": "after", "timeout": 0.2},
        ],
        workers=1,
        grace=0.1,
    )
    release.set()
    assert time.monotonic() - started < 2
    assert results[0]["failed_stage"] == "connect" and "did not stop" in results[0]["error"]
    assert results[1]["failed_stage"] == "connect" and "cannot connect" in results[1]["error"]


def test_a_check_that_raises_fails_its_endpoint_only(monkeypatch):
    original = EndpointCheck.run

    def broken(self):
        if self.config["name"] == "broken":
            self.stage = "list"
            self.started = time.monotonic()
            raise TypeError("'int' object is not iterable")
        return original(self)

    monkeypatch.setattr(EndpointCheck, "run", broken)
    results = run_checks(
        [
            {"url": "http://127.0.0.1:1/mcp", "name": "broken", "timeout": 1},
            {"url": "http://127.0.0.1:1/mcp", "name": "other", "timeout": 1},
        ],
        workers=1,
    )
    assert [r["name"] for r in results] == ["broken", "other"]
    assert results[0]["failed_stage"] == "list" and not results[0]["up"]
    assert "failed unexpectedly during list (TypeError)" in results[0]["error"]
    assert results[1]["failed_stage"] == "connect"
