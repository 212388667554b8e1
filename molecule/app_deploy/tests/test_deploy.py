"""playbooks/deploy.yml and rollback.yml on the app_deploy scenario, under load.

A load generator on the edge host (python3, 127.0.0.1:8090, the edge's plain-HTTP listener on
its loopback) calls /cgi-bin/items through the edge during each deploy and counts every
answer by status and by the release that served it. What is asserted is what the load saw,
what the app host runs (docker) and its state file, not what the playbook reported.
"""

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path

import testinfra

from recap import parse_recap

ROOT = Path(__file__).resolve().parents[3]
EDGE = testinfra.get_host("docker://m9b-dedge")
APP = testinfra.get_host("docker://m9b-dapp")
testinfra_hosts = ["m9b-dedge"]

LOAD = textwrap.dedent(
    """
    import collections, http.client, json, os, sys, time
    seconds = float(sys.argv[1])
    counts, served = collections.Counter(), collections.Counter()
    deadline = time.monotonic() + seconds
    connection = None
    while time.monotonic() < deadline and sum(counts.values()) < 100000 and not os.path.exists("/tmp/load.stop"):
        # A GET is idempotent: like any HTTP client, retry it once on a fresh connection when
        # the server closed an idle keep-alive connection (nginx does on a reload) just as
        # it was reused. A second failure, or any on a fresh connection, counts.
        for attempt in (1, 2):
            reused = connection is not None
            try:
                connection = connection or http.client.HTTPConnection("127.0.0.1", 8090, timeout=5)
                connection.request("GET", "/cgi-bin/items", headers={"Host": "agent.test"})
                answer = connection.getresponse()
                body = answer.read().decode().strip()
                counts[str(answer.status)] += 1
                served[body] += 1
                break
            except (OSError, http.client.HTTPException) as error:
                connection = None
                stale = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
                if reused and attempt == 1 and isinstance(error, stale):
                    counts["retried stale keep-alive"] += 1
                    continue
                counts["error " + type(error).__name__] += 1
                break
        time.sleep(0.01)
    print(json.dumps({"counts": counts, "served": served}))
    """
)


def playbook(name, *extra):
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            *extra,
            str(ROOT / "playbooks" / name),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    return run, parse_recap(run.stdout)


def start_load(seconds=300):
    """Start the load on the edge host; it runs until load_result() stops it (or `seconds`)."""
    EDGE.run(f"cat > /tmp/load.py <<'EOF'\n{LOAD}\nEOF")
    EDGE.run("rm -f /tmp/load.json /tmp/load.stop; nohup python3 /tmp/load.py %s > /tmp/load.json 2>&1 &", str(seconds))
    time.sleep(2)


def load_result(timeout=60):
    EDGE.run("touch /tmp/load.stop")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        content = EDGE.run("cat /tmp/load.json").stdout.strip()
        if content:
            return json.loads(content)
        time.sleep(1)
    raise AssertionError("the load generator did not finish")


def state():
    return json.loads(APP.file("/etc/corvid/apps/demo/state.json").content_string)


def running():
    return sorted(APP.check_output("docker ps --format '{{.Names}} {{.Image}}'").splitlines())


def test_deploy_v2_under_load_fails_no_request():
    start_load()
    started = time.monotonic()
    run, recap = playbook("deploy.yml", "-e", "deploy_release=v2")
    took = time.monotonic() - started
    result = load_result()
    assert recap["m9b-dedge"]["failed"] == 0, run.stdout[-4000:] + run.stderr[-2000:]
    print(f"deploy v1 -> v2 took {took:.0f} s; load: {result}")
    assert set(result["counts"]) <= {"200", "retried stale keep-alive"}, result
    assert any(body.startswith("v2 green") for body in result["served"]), result
    assert state() == {"active": "green", "releases": {"green": "v2"}, "previous": "v1"}
    assert running() == ["demo-green m9b-dedge:5000/corvid/demo:v2"]
    answer = EDGE.check_output(
        "python3 -c %s",
        "import urllib.request as u; print(u.urlopen('http://127.0.0.1:8090/cgi-bin/items').read().decode())",
    )
    assert answer.strip() == "v2 green"


def test_redeploying_the_running_release_changes_nothing():
    started_at = APP.check_output("docker inspect -f '{{.State.StartedAt}}' demo-green")
    run, recap = playbook("deploy.yml", "-e", "deploy_release=v2")
    assert all(row["failed"] == 0 and row["changed"] == 0 for row in recap.values()), run.stdout[-4000:]
    assert APP.check_output("docker inspect -f '{{.State.StartedAt}}' demo-green") == started_at


def test_unready_release_never_gets_traffic():
    start_load()
    run, recap = playbook("deploy.yml", "-e", "deploy_release=v3-unready", "-e", "app_containers_colour_deadline=10")
    result = load_result()
    assert recap["m9b-dedge"]["failed"] == 1
    assert "v3-unready rolled back" in run.stdout + run.stderr
    assert set(result["counts"]) <= {"200", "retried stale keep-alive"}, result
    assert not any("v3-unready" in body for body in result["served"]), result
    assert state() == {"active": "green", "releases": {"green": "v2"}, "previous": "v1"}
    assert running() == ["demo-green m9b-dedge:5000/corvid/demo:v2"]


def test_release_with_errors_trips_the_first_gate_and_rolls_back():
    start_load()
    run, recap = playbook("deploy.yml", "-e", "deploy_release=v4-errors")
    result = load_result()
    output = run.stdout + run.stderr
    assert recap["m9b-dedge"]["failed"] == 1
    assert "the 10 % step failed its gate" in output, output[-4000:]
    failures = result["counts"].get("500", 0)
    print(f"v4-errors: {failures} failed requests of {sum(result['counts'].values())} before the rollback")
    assert 0 < failures < 0.2 * sum(result["counts"].values()), result
    assert state() == {"active": "green", "releases": {"green": "v2"}, "previous": "v1"}
    assert running() == ["demo-green m9b-dedge:5000/corvid/demo:v2"]


def test_rollback_returns_to_the_previous_release():
    colour, release, previous = "blue", "v1", "v2"
    start_load()
    run, recap = playbook("rollback.yml")
    result = load_result()
    assert recap["m9b-dedge"]["failed"] == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert set(result["counts"]) <= {"200", "retried stale keep-alive"}, result
    assert state() == {"active": colour, "releases": {colour: release}, "previous": previous}
    assert running() == [f"demo-{colour} m9b-dedge:5000/corvid/demo:{release}"]
