# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Many endpoint checks at once: a bounded pool of daemon threads and a watchdog that never waits past
each check's deadline.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import threading
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.check import EndpointCheck
from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import FAILED_STAGES
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import ms
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth import OAuthSession

WATCH_INTERVAL = 0.1


def _given_up(check, message):
    result = dict(check.result)
    result["latency_ms"] = dict(result["latency_ms"])
    result["up"] = False
    result["healthy"] = False
    result["failed_stage"] = check.stage if check.stage in FAILED_STAGES else "connect"
    result["error"] = message % result["failed_stage"]
    result["failures"] = [result["error"]]
    if check.started is not None:
        result["latency_ms"]["total"] = ms(time.monotonic() - check.started)
    return check.masked(result)


def timeout_result(check):
    """The result of a check the watchdog gave up on (it is still stuck, e.g. in name resolution)."""
    seconds = "%g" % check.config["timeout"]
    return _given_up(
        check, "timed out: the overall timeout of " + seconds + "s ran out during %s and the check did not stop"
    )


def crashed_result(check, exc):
    """The result of a check that raised instead of returning: this endpoint failed where it was."""
    what = exc.__class__.__name__
    return _given_up(check, "the check failed unexpectedly during %s (" + what + ")")


def run_checks(configs, workers=16, ssl_contexts=None, grace=1.0, oauth_session=None):
    """Check many endpoints concurrently with at most ``workers`` threads; results keep the input order.

    Every check carries its own deadline (``timeout``). A watchdog in the calling thread aborts the
    sockets of a check that overstays it and, should the check still not return (a thread stuck in
    name resolution, say), records a timeout result for it and replaces its worker. Worker threads
    are daemons, so a stuck one never holds up the end of the process. A check that raises gets a
    failed result of its own; it never costs the other endpoints theirs.

    The watchdog looks only at the running checks (at most ``workers`` plus the stuck ones), so its
    cost grows linearly with the number of endpoints.
    """
    ssl_contexts = ssl_contexts or {}
    if oauth_session is None and any(cfg.get("oauth") for cfg in configs):
        oauth_session = OAuthSession()  # one token per authorization server, client and resource for the run
    checks = [EndpointCheck(cfg, ssl_contexts.get(index), oauth_session) for index, cfg in enumerate(configs)]
    if not checks:
        return []
    results = [None] * len(checks)
    lock = threading.Lock()
    finished = threading.Event()
    state = {"next": 0, "left": len(checks)}
    running = {}

    def answer(index, result):
        """Record the result of check ``index`` unless it has one; call with ``lock`` held."""
        if results[index] is not None:
            return
        results[index] = result
        state["left"] -= 1
        if state["left"] == 0:
            finished.set()

    def worker():
        while True:
            with lock:
                index = state["next"]
                if index >= len(checks):
                    return
                state["next"] += 1
                running[index] = checks[index]
            check = checks[index]
            try:
                outcome = check.run()
            except Exception as exc:  # pylint: disable=broad-except
                outcome = crashed_result(check, exc)
            with lock:
                running.pop(index, None)
                answer(index, outcome)

    def start_worker():
        thread = threading.Thread(target=worker, name="mcp-check")
        thread.daemon = True
        thread.start()

    for _n in range(max(1, min(int(workers), len(checks)))):
        start_worker()

    aborted = set()
    while not finished.wait(WATCH_INTERVAL):
        now = time.monotonic()
        with lock:
            overdue = [
                (index, check)
                for index, check in running.items()
                if check.deadline is not None and now > check.deadline.end + grace
            ]
        for index, check in overdue:
            if index not in aborted:
                aborted.add(index)
                check.abort()
            elif now > check.deadline.end + 2 * grace:
                with lock:
                    if running.pop(index, None) is None:
                        continue
                    answer(index, timeout_result(check))
                start_worker()
    return results
