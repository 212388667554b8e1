"""The lab's scheduled MCP check, end to end: mon1's timer (corvid.platform.mcp_health, tasks_from:
schedule) checks the agent service's MCP endpoint on each app host and writes mcp.prom; node_exporter
serves it, Prometheus scrapes it, and when an endpoint fails the MCP alert fires and reaches the lab's
webhook receiver through Alertmanager.

The fault: the colour of the agent service whose API port the check watches is stopped on app2
(`docker stop agent-service-COLOUR`, the app tier's container names); it is started again in a
`finally`, the check runs once more and Prometheus sees the endpoint up again before the test ends.
Every wait is bounded by the live configuration: the timer's schedule, and the rule's `for:`, the
scrape and evaluation intervals and Alertmanager's group_wait read from the APIs.
"""

from __future__ import annotations

import json
import time
import urllib.parse

import pytest
import test_monitoring as monitoring
import yaml
from conftest import lab_host

pytestmark = pytest.mark.lab

CHECKER = "mon1"
FAULTY_HOST = "app2"
UNIT = "corvid-mcp-health"
CONFIG = "/etc/corvid/mcp-health.json"
TEXTFILE = "/var/lib/prometheus/node-exporter/mcp.prom"
APP = "agent-service"
# The agent service's API port per colour (blue +0, green +100), where it serves POST /mcp.
COLOUR_OF_PORT = {8000: "blue", 8100: "green"}
# A run of the check: the service's own TimeoutStartSec bounds it; this is the lab's margin.
RUN_SECONDS = 60


@pytest.fixture(scope="module")
def settings() -> dict:
    if not monitoring.CA.is_file():
        pytest.skip(f"{monitoring.CA} is missing: the lab's site CA is made by `make lab`")
    return monitoring.mon1_settings()


@pytest.fixture(scope="module")
def prometheus(settings) -> monitoring.Api:
    return monitoring.Api(monitoring.PROMETHEUS, *settings["prometheus"])


@pytest.fixture(scope="module")
def alertmanager(settings) -> monitoring.Api:
    return monitoring.Api(monitoring.ALERTMANAGER, *settings["alertmanager"])


@pytest.fixture(scope="module")
def intervals(prometheus, alertmanager) -> dict[str, float]:
    """The running configuration's intervals, in seconds."""
    prometheus_global = yaml.safe_load(prometheus.get("/api/v1/status/config")["data"]["yaml"])["global"]
    route = yaml.safe_load(alertmanager.get("/api/v2/status")["config"]["original"])["route"]
    return {
        "scrape": monitoring.seconds(prometheus_global["scrape_interval"]),
        "evaluation": monitoring.seconds(prometheus_global["evaluation_interval"]),
        "group_wait": monitoring.seconds(route["group_wait"]),
    }


def mon1_endpoint() -> dict:
    """The endpoint of the scheduled check (mon1's root-only configuration) on the faulty host."""
    mon1 = lab_host(CHECKER)
    if not mon1.file(f"/etc/systemd/system/{UNIT}.timer").exists:
        pytest.fail(f"{CHECKER} has no {UNIT}.timer: set mcp_health_schedule: timer for mcp_checkers and run the lab")
    config = json.loads(mon1.check_output(f"cat {CONFIG}"))
    found = [e for e in config["endpoints"] if urllib.parse.urlsplit(e["url"]).hostname == FAULTY_HOST]
    assert len(found) == 1, f"expected one MCP endpoint on {FAULTY_HOST} in {CONFIG}, found {len(found)}"
    endpoint = found[0]
    return {"name": endpoint.get("name") or endpoint["url"], "url": endpoint["url"]}


def textfile_samples(name: str) -> dict[str, str]:
    """Endpoint name -> value of metric `name` in mon1's textfile (absent file: {})."""
    mon1 = lab_host(CHECKER)
    if not mon1.file(TEXTFILE).exists:
        return {}
    values = {}
    for line in mon1.file(TEXTFILE).content_string.splitlines():
        if line.startswith(name + "{"):
            labels, value = line[len(name) + 1 :].rsplit("} ", 1)
            endpoint = labels.split('endpoint="', 1)[1].split('"', 1)[0]
            values[endpoint] = value
    return values


def wait_for_the_scheduled_textfile(endpoint: str) -> None:
    """Until the timer has written the textfile with the endpoint, at most its next run away."""
    mon1 = lab_host(CHECKER)
    timer = f"{UNIT}.timer"
    assert mon1.service(timer).is_enabled and mon1.service(timer).is_running, f"{timer} is not active on {CHECKER}"
    next_run = int(
        mon1.check_output(f"systemctl show --property NextElapseUSecRealtime --value {timer} | date -f - +%s")
    )
    delay = int(mon1.check_output(f"sed -n 's/^RandomizedDelaySec=//p' /etc/systemd/system/{timer}") or 0)
    deadline = time.monotonic() + max(0, next_run - int(mon1.check_output("date +%s"))) + delay + RUN_SECONDS
    while endpoint not in textfile_samples("mcp_endpoint_up"):
        if time.monotonic() > deadline:
            pytest.fail(f"the scheduled check did not write {endpoint} into {CHECKER}:{TEXTFILE} by its next run")
        time.sleep(5)


def run_the_check_now() -> int:
    """One run of the timer's service (a oneshot: it returns when the run is over); its exit status."""
    return lab_host(CHECKER).run(f"systemctl start {UNIT}.service").rc


def wait_for_up(prometheus: monitoring.Api, endpoint: str, value: str, within: float) -> None:
    expr = f'mcp_endpoint_up{{endpoint="{endpoint}"}}'
    deadline = time.monotonic() + within
    while True:
        values = [sample["value"][1] for sample in monitoring.query(prometheus, expr)]
        if values == [value]:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"Prometheus has {expr} = {values}, not [{value}], after {within:.0f} s")
        time.sleep(2)


def the_mcp_down_rule(prometheus: monitoring.Api) -> dict:
    """The corvid-mcp rule that fires on mcp_endpoint_up == 0 (MCPEndpointDown)."""
    groups = prometheus.get("/api/v1/rules", type="alert")["data"]["groups"]
    rules = [
        rule
        for group in groups
        if group["name"] == "corvid-mcp"
        for rule in group["rules"]
        if rule["query"].replace(" ", "") == "mcp_endpoint_up==0"
    ]
    assert len(rules) == 1, "expected one corvid-mcp rule on mcp_endpoint_up == 0"
    return rules[0]


def firing(prometheus: monitoring.Api, alertname: str, endpoint: str) -> list[dict]:
    return [
        alert
        for alert in prometheus.get("/api/v1/alerts")["data"]["alerts"]
        if alert["labels"].get("alertname") == alertname
        and alert["labels"].get("endpoint") == endpoint
        and alert["state"] == "firing"
    ]


def notified(already: int, alertname: str, endpoint: str) -> bool:
    for line in monitoring.received_lines()[already:]:
        body = line["body"] if isinstance(line["body"], dict) else {}
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            if (
                labels.get("alertname") == alertname
                and labels.get("endpoint") == endpoint
                and alert["status"] == "firing"
            ):
                return True
    return False


def test_a_failing_mcp_endpoint_fires_the_mcp_alert(prometheus, intervals):
    endpoint = mon1_endpoint()
    name, port = endpoint["name"], urllib.parse.urlsplit(endpoint["url"]).port
    colour = COLOUR_OF_PORT.get(port)
    assert colour, f"{endpoint['url']}: not the agent service's API port of a colour ({sorted(COLOUR_OF_PORT)})"
    container = f"{APP}-{colour}"

    wait_for_the_scheduled_textfile(name)
    assert textfile_samples("mcp_endpoint_up")[name] == "1", (
        f"{name} ({endpoint['url']}) is not up before the test: is {container} the active colour on {FAULTY_HOST}? "
        "After a deploy, run playbooks/monitoring.yml so that the scheduled check follows the active colour."
    )
    scrape, evaluation = intervals["scrape"], intervals["evaluation"]
    wait_for_up(prometheus, name, "1", scrape + monitoring.DELIVERY_SECONDS)

    rule = the_mcp_down_rule(prometheus)
    # Stop -> the check's run writes 0 -> the next scrape -> the next evaluation makes the alert
    # pending -> `for` -> the evaluation that fires it.
    fire_within = scrape + evaluation + rule["duration"] + evaluation + monitoring.DELIVERY_SECONDS
    # Then Alertmanager's group_wait before the receiver has it.
    notify_within = intervals["group_wait"] + monitoring.DELIVERY_SECONDS
    app = lab_host(FAULTY_HOST)
    running = app.run("docker inspect --format '{{.State.Running}}' %s", container)
    assert running.stdout.strip() == "true", f"{container} is not running on {FAULTY_HOST}: {running.stderr}"
    already = len(monitoring.received_lines())
    try:
        stopped = app.run("docker stop %s", container)
        assert stopped.rc == 0, stopped.stderr
        assert run_the_check_now() != 0  # mcp_health_failure_policy any: the run fails, the metrics are written
        assert textfile_samples("mcp_endpoint_up")[name] == "0"
        assert textfile_samples("mcp_endpoint_failure_info").get(name) == "1"

        start = time.monotonic()
        while not firing(prometheus, rule["name"], name):
            if time.monotonic() - start > fire_within:
                pytest.fail(f"{rule['name']} for {name} not firing within {fire_within:.0f} s")
            time.sleep(5)
        fired = time.monotonic() - start
        while not notified(already, rule["name"], name):
            if time.monotonic() - start > fire_within + notify_within:
                pytest.fail(f"{rule['name']} for {name} fired but did not reach the webhook receiver on {CHECKER}")
            time.sleep(2)
        received = time.monotonic() - start
    finally:
        restarted = app.run("docker start %s", container)
    assert restarted.rc == 0, restarted.stderr
    # The endpoint back: the next run says so (the app may take a few seconds to listen again).
    deadline = time.monotonic() + RUN_SECONDS
    while run_the_check_now() != 0 and time.monotonic() < deadline:
        time.sleep(3)
    assert textfile_samples("mcp_endpoint_up")[name] == "1"
    wait_for_up(prometheus, name, "1", scrape + monitoring.DELIVERY_SECONDS)
    print(
        f"{rule['name']} fired after {fired:.0f} s (bound {fire_within:.0f} s), at the receiver after {received:.0f} s"
    )
