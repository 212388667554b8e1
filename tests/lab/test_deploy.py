"""Blue-green deploys of the agent service on the lab, under load through the edge.

A load generator on the machine (tests/tools/loadgen.py: 127.0.0.1 only, bounded in time and
requests) sends API reads and writes and keeps WebSocket sessions open through the edge
(https://127.0.0.1:8443) while playbooks/deploy.yml and playbooks/rollback.yml run:

- v1 -> v2: no failed request, every WebSocket session continues or is closed cleanly
  (1000/1001) by the drain, every item written during the deploy is in PostgreSQL on db1;
- v2 again: nothing changes, no container restarts;
- v3-unready (fails readiness): the deploy fails naming readiness, the new colour never gets a
  request (the edge's access log), it is removed, v2 serves, no failed request;
- rollback.yml: back to the previous release, no failed request;
- v4-errors (answers 500 to half of the API): the first traffic step's gate trips, the deploy
  rolls back, v2 serves; the failed requests are bounded by that step.

The tests run in this order and each checks the state it starts from. The registry pushed
v1, v2, v3-unready and v4-errors (`make lab`, lab/app/build-push).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import time
from pathlib import Path

import loadgen
import pytest
import yaml
from conftest import ROOT, lab_host, run_playbook
from test_app import (
    API_PORT,
    APP,
    APP_HOSTS,
    CA,
    EDGE,
    EDGE_HOST,
    OFFSETS,
    WS_PORT,
    active,
    app_state,
    containers,
    edge_request,
    inventory_value,
    missing_items,
)

pytestmark = pytest.mark.lab

LOAD_RATE = 10.0  # requests per second through the edge, all connections together
LOAD_CONNECTIONS = 4
WS_SESSIONS = 3
LOAD_MAX_SECONDS = 1800  # the load's own bound: longer than any deploy here
LOAD_MAX_REQUESTS = int(LOAD_RATE * LOAD_MAX_SECONDS)
ACCESS_LOG = "/var/log/nginx/access.log"
# The playbook's defaults (playbooks/deploy.yml) where the inventory sets nothing.
DEPLOY_DEFAULTS = {"steps": [10, 50, 100], "step_seconds": 30, "drain_seconds": 15}


# --------------------------------------------------------------------------------------------
# Helpers


@pytest.fixture(scope="module")
def deploy_settings() -> dict:
    """The lab's deploy settings and the edge limits the load must fit in, from the inventory."""
    if not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")
    nginx = yaml.safe_load((ROOT / "roles" / "nginx" / "defaults" / "main.yml").read_text())
    edge = inventory_value(
        EDGE_HOST,
        "{'per_minute': nginx_rate_limit_per_minute | default("
        + str(nginx["nginx_rate_limit_per_minute"])
        + ") | int}",
    )
    needed = int(LOAD_RATE * 60 * 2)
    assert edge["per_minute"] >= needed, (
        f"the edge limits each client to {edge['per_minute']} requests a minute; the deploy tests send "
        f"{LOAD_RATE:.0f} a second from one address, so the edge would answer 429. Expected "
        f"nginx_rate_limit_per_minute >= {needed} in inventories/lab/group_vars/edge/main.yml"
    )
    deploy = inventory_value(
        EDGE_HOST,  # deploy.yml reads its settings on the edge hosts
        "{'steps': deploy_traffic_steps | default(" + json.dumps(DEPLOY_DEFAULTS["steps"]) + "), "
        "'step_seconds': deploy_step_seconds | default(" + str(DEPLOY_DEFAULTS["step_seconds"]) + ") | int, "
        "'drain_seconds': deploy_drain_seconds | default(" + str(DEPLOY_DEFAULTS["drain_seconds"]) + ") | int}",
    )
    return {**deploy, "edge_per_minute": edge["per_minute"]}


def load_config(ids_file: Path) -> loadgen.LoadConfig:
    return loadgen.LoadConfig(
        url=f"https://{EDGE[0]}:{EDGE[1]}",
        host=EDGE_HOST,
        ca_file=str(CA),
        duration=LOAD_MAX_SECONDS,
        max_requests=LOAD_MAX_REQUESTS,
        rate=LOAD_RATE,
        concurrency=LOAD_CONNECTIONS,
        write_ratio=0.4,
        ws_sessions=WS_SESSIONS,
        ws_interval=1.0,
        request_timeout=5.0,
        ids_file=str(ids_file),
    )


@contextlib.contextmanager
def under_load(ids_file: Path):
    """Load through the edge while the block runs; yields the running load (`.summary` after)."""
    with loadgen.background(load_config(ids_file)) as load:
        time.sleep(3)  # the WebSocket sessions are open and requests flow before the change starts
        yield load


def deploy(release: str) -> tuple:
    return run_playbook("playbooks/deploy.yml", "-e", f"deploy_release={release}")


def tail(run) -> str:
    return (run.stdout[-4000:] + run.stderr[-1500:]).strip()


def failure_text(run) -> str:
    """What the failed play said: from the first failed task to the recap."""
    out = run.stdout
    start = min((i for i in (out.find("FAILED!"), out.find("fatal:")) if i >= 0), default=-1)
    if start < 0:
        return ""
    end = out.find("PLAY RECAP", start)
    return out[start : end if end > 0 else None]


def versions(summary: dict) -> set[str]:
    """Releases that answered the load's GET /version (served_by is "VERSION/COLOUR")."""
    return {key.split("/")[0] for key in summary["served_by"]}


def assert_no_failed_request(summary: dict, what: str) -> None:
    assert summary["stopped_by"] == "stop", (
        f"{what}: expected the load to run until the playbook ended, it stopped by {summary['stopped_by']}"
    )
    assert summary["requests"] > 0 and summary["failed"] == 0, (
        f"{what}: expected 0 failed requests, saw {summary['failed']} of {summary['requests']}: "
        f"{summary['failures_by_kind']}, statuses {summary['statuses']}, first errors {summary['errors'][:5]}"
    )


def assert_websockets_continued_or_closed_cleanly(summary: dict, what: str, not_before: float = 0.0) -> None:
    ws = summary["websocket"]
    assert ws["ended_abnormally"] == 0, (
        f"{what}: expected every WebSocket session to continue or close with 1000/1001, saw "
        f"{ws['ended_abnormally']} abnormal ({ws['abnormal_by_kind']}): {summary['errors'][:5]}"
    )
    assert set(ws["close_codes"]) <= {"1000", "1001"}, f"{what}: close codes {ws['close_codes']}"
    assert ws["continued"] == WS_SESSIONS, (
        f"{what}: expected {WS_SESSIONS} sessions open when the load stopped, saw {ws['continued']}"
    )
    assert ws["sessions"] == ws["continued"] + ws["ended_cleanly"], ws
    assert ws["echo_failures"] == 0 and ws["echoes"] > 0, f"{what}: echoes {ws['echoes']}, {ws['echo_failures']} lost"
    early = [e for e in ws["events"] if e["outcome"] == "clean" and e["ended_at"] < not_before]
    assert not early, f"{what}: expected no session closed by the server before the drain window, saw {early}"


def assert_items_in_postgresql(summary: dict, ids_file: Path, what: str) -> None:
    ids = [int(line) for line in ids_file.read_text().split()]
    assert len(ids) == summary["ids_written"] > 0, (
        f"{what}: expected the load to have written items, saw {summary['ids_written']} (file: {len(ids)})"
    )
    missing = missing_items(ids)
    assert not missing, f"{what}: expected all {len(ids)} items written through the edge in db1, missing {missing[:20]}"


def states() -> dict[str, dict]:
    return {host: app_state(host) for host in APP_HOSTS}


def container_identity(host: str) -> dict[str, tuple]:
    return {
        name: (c["Id"], c["State"]["StartedAt"], c["RestartCount"], c["Config"]["Image"])
        for name, c in containers(host).items()
    }


def edge_log_size() -> int:
    return int(lab_host(EDGE_HOST).check_output(f"stat -c %s {ACCESS_LOG}"))


def edge_log_since(offset: int) -> list[dict]:
    out = lab_host(EDGE_HOST).check_output(f"tail -c +{offset + 1} {ACCESS_LOG}")
    entries = []
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            entries.append(json.loads(line))
    return entries


def address_on_edge(host: str) -> str:
    """The address nginx on the edge sends `host`'s traffic to (its upstream_addr)."""
    return lab_host(EDGE_HOST).check_output(f"getent ahostsv4 {host}").split()[0]


def serves_only(release: str, what: str) -> None:
    """A short load after the change: no failed request, every answer from `release`."""
    config = dataclasses.replace(load_config(Path("unused")), ids_file=None, duration=8.0, ws_sessions=1)
    summary = asyncio.run(loadgen.LoadGenerator(config).run())
    assert summary["failed"] == 0 and summary["requests"] > 0, (
        f"{what}: expected the edge to answer every request, saw {summary['failures_by_kind']} {summary['errors'][:3]}"
    )
    assert versions(summary) == {release}, f"{what}: expected only {release} to answer, saw {summary['served_by']}"
    for _ in range(4):
        status, body = edge_request("GET", "/version")
        assert status == 200 and body["version"] == release, f"{what}: expected {release}, saw {status} {body}"


# --------------------------------------------------------------------------------------------
# The sequence


def test_the_lab_starts_on_v1(deploy_settings):
    """`make lab` brings up v1 on both app hosts; on a lab that ran these tests before, v1 is
    deployed first (without load) so that the sequence starts from it."""
    if {active(host)[1] for host in APP_HOSTS} != {"v1"}:
        run, _ = deploy("v1")
        assert run.returncode == 0, f"expected a deploy of v1 to succeed, saw:\n{tail(run)}"
    releases = {host: active(host)[1] for host in APP_HOSTS}
    assert releases == dict.fromkeys(APP_HOSTS, "v1"), f"expected v1 on every app host, saw {releases}"


def test_deploy_v1_to_v2_under_load(deploy_settings, tmp_path):
    before = states()
    ids = tmp_path / "ids"
    with under_load(ids) as load:
        deploy_began = load.snapshot()["duration_seconds"]
        run, recap = deploy("v2")
    summary = load.summary
    assert run.returncode == 0, f"expected the deploy of v2 to succeed, saw:\n{tail(run)}"
    assert all(counts["failed"] == 0 and counts["unreachable"] == 0 for counts in recap.values()), recap

    for host in APP_HOSTS:
        state = app_state(host)
        old = before[host]["active"]
        assert state["active"] != old and state["releases"].get(state["active"]) == "v2", (
            f"{host}: expected v2 active on the colour that was idle (not {old}), saw {state}"
        )
        assert state["previous"] == "v1", f"{host}: expected previous release v1, saw {state}"
        running = {name for name, c in containers(host).items() if c["State"]["Running"]}
        assert running == {f"{APP}-{state['active']}"}, f"{host}: expected only the new colour running, saw {running}"

    what = "deploy v1 -> v2"
    assert_no_failed_request(summary, what)
    assert {"v1", "v2"} <= versions(summary), f"{what}: expected answers from v1, then v2, saw {summary['served_by']}"
    assert_websockets_continued_or_closed_cleanly(
        summary, what, not_before=deploy_began + deploy_settings["drain_seconds"]
    )
    assert_items_in_postgresql(summary, ids, what)
    print(f"{what}: {json.dumps({k: summary[k] for k in ('requests', 'failed', 'latency_seconds', 'served_by')})}")


def test_redeploying_v2_changes_nothing(deploy_settings):
    before_states = states()
    before = {host: container_identity(host) for host in APP_HOSTS}
    assert {host: s["releases"][s["active"]] for host, s in before_states.items()} == dict.fromkeys(APP_HOSTS, "v2")
    run, recap = deploy("v2")
    assert run.returncode == 0, f"expected a redeploy of v2 to succeed, saw:\n{tail(run)}"
    changed = {host: counts["changed"] for host, counts in recap.items() if counts["changed"]}
    assert not changed, f"expected changed=0 on every host, saw {changed}:\n" + "\n".join(
        line for line in run.stdout.splitlines() if line.startswith("changed:")
    )
    after = {host: container_identity(host) for host in APP_HOSTS}
    assert after == before, f"expected the same containers, not restarted: before {before}, after {after}"
    assert states() == before_states


def test_a_release_that_fails_readiness_never_gets_traffic(deploy_settings, tmp_path):
    before = states()
    idle_ports = {
        host: {port + OFFSETS["green" if state["active"] == "blue" else "blue"] for port in (API_PORT, WS_PORT)}
        for host, state in before.items()
    }
    offset = edge_log_size()
    ids = tmp_path / "ids"
    with under_load(ids) as load:
        run, _ = deploy("v3-unready")
    summary = load.summary
    what = "deploy v3-unready"

    reason = failure_text(run)
    assert run.returncode != 0, f"{what}: expected the deploy to fail, it succeeded:\n{tail(run)}"
    assert "v3-unready" in reason and re.search(r"read(y|iness)", reason, re.I), (
        f"{what}: expected the failure to name the release and its readiness, saw:\n{reason[-3000:] or tail(run)}"
    )
    assert states() == before, f"{what}: expected the app hosts' state unchanged, saw {states()} (was {before})"
    for host in APP_HOSTS:
        images = {name: c["Config"]["Image"] for name, c in containers(host).items()}
        assert not [image for image in images.values() if image.endswith(":v3-unready")], (
            f"{host}: expected the v3-unready container removed, saw {images}"
        )

    served = [entry for entry in edge_log_since(offset) if entry.get("upstream")]
    assert served, f"{what}: expected the edge to have logged the load's requests"
    unready = {f"{address_on_edge(host)}:{port}" for host, ports in idle_ports.items() for port in ports}
    leaked = [entry for entry in served if unready & {part.strip() for part in entry["upstream"].split(",")}]
    assert not leaked, f"{what}: expected no request to reach the unready colour, the edge sent {leaked[:5]}"

    assert_no_failed_request(summary, what)
    assert versions(summary) == {"v2"}, f"{what}: expected only v2 to answer, saw {summary['served_by']}"
    assert_websockets_continued_or_closed_cleanly(summary, what)
    assert_items_in_postgresql(summary, ids, what)
    serves_only("v2", f"after {what}")


def test_rollback_returns_to_the_previous_release(deploy_settings, tmp_path):
    before = states()
    assert all(s["previous"] == "v1" and s["releases"][s["active"]] == "v2" for s in before.values()), before
    ids = tmp_path / "ids"
    with under_load(ids) as load:
        run, _ = run_playbook("playbooks/rollback.yml")
    summary = load.summary
    what = "rollback v2 -> v1"
    assert run.returncode == 0, f"expected rollback.yml to succeed, saw:\n{tail(run)}"
    for host, state in states().items():
        assert (state["releases"][state["active"]], state["previous"]) == ("v1", "v2"), (
            f"{host}: expected v1 active and v2 previous after the rollback, saw {state}"
        )
    assert_no_failed_request(summary, what)
    assert "v1" in versions(summary), f"{what}: expected v1 to answer, saw {summary['served_by']}"
    assert_websockets_continued_or_closed_cleanly(summary, what)
    assert_items_in_postgresql(summary, ids, what)
    serves_only("v1", f"after {what}")

    # back to v2 for what follows
    run, _ = deploy("v2")
    assert run.returncode == 0, f"expected a deploy of v2 after the rollback to succeed, saw:\n{tail(run)}"
    assert {host: active(host)[1] for host in APP_HOSTS} == dict.fromkeys(APP_HOSTS, "v2")


def test_a_release_that_answers_errors_is_rolled_back_by_the_first_step_gate(
    deploy_settings, tmp_path, record_property
):
    before = states()
    assert {host: s["releases"][s["active"]] for host, s in before.items()} == dict.fromkeys(APP_HOSTS, "v2"), before
    first_step = deploy_settings["steps"][0]
    ids = tmp_path / "ids"
    with under_load(ids) as load:
        run, _ = deploy("v4-errors")
    summary = load.summary
    what = "deploy v4-errors"

    reason = failure_text(run)
    assert run.returncode != 0, f"{what}: expected the error-rate gate to fail the deploy, it succeeded:\n{tail(run)}"
    assert "v4-errors" in reason and re.search(r"error.rate", reason, re.I), (
        f"{what}: expected the failure to name the release and its error rate, saw:\n{reason[-3000:] or tail(run)}"
    )
    assert re.search(rf"\b{first_step} ?%", reason), (
        f"{what}: expected the {first_step} % step to trip:\n{reason[-3000:]}"
    )
    assert states() == before, f"{what}: expected v2 still active everywhere, saw {states()} (was {before})"
    for host in APP_HOSTS:
        images = {name: c["Config"]["Image"] for name, c in containers(host).items()}
        assert not [image for image in images.values() if image.endswith(":v4-errors")], (
            f"{host}: expected the v4-errors container removed, saw {images}"
        )

    # The errors the clients saw: 500s from the new colour during the first step, nothing else.
    failed = summary["failed"]
    record_property("v4_errors_failed_requests", failed)
    record_property("v4_errors_requests", summary["requests"])
    print(f"{what}: {failed} failed of {summary['requests']} requests ({summary['failures_by_kind']})")
    assert set(summary["failures_by_kind"]) <= {"status_5xx"}, (
        f"{what}: expected only 5xx answers from the bad release, saw {summary['failures_by_kind']}: "
        f"{summary['errors'][:5]}"
    )
    assert failed > 0, f"{what}: expected the load to meet the bad release during the {first_step} % step, it never did"
    bound = summary["requests"] * first_step / 100
    assert failed <= bound, (
        f"{what}: expected at most {first_step} % of the requests ({bound:.0f}) to fail, "
        f"saw {failed} of {summary['requests']}"
    )
    assert_websockets_continued_or_closed_cleanly(summary, what)
    assert_items_in_postgresql(summary, ids, what)
    serves_only("v2", f"after {what}")
