"""The lab's monitoring tier, through the APIs an operator uses: Prometheus on mon1 (published on
https://127.0.0.1:9090) and Alertmanager (https://127.0.0.1:9093), both verified with the lab CA
(.cache/pki/lab/ca.crt) and basic auth from the lab inventory; exporters probed from mon1.

Alertmanager routes every severity to the lab's webhook receiver on mon1 (lab/monitoring/
webhook.yml: 127.0.0.1:9099, one JSON line per notification in RECEIVED). Every wait is bounded
by the intervals the running configuration declares, read from the APIs, not by a fixed time.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.parse

import pytest
import yaml
from conftest import BIN, INVENTORY, ROOT, lab_host

pytestmark = pytest.mark.lab

CA = ROOT / ".cache/pki/lab/ca.crt"
PROMETHEUS = ("127.0.0.1", 9090)
ALERTMANAGER = ("127.0.0.1", 9093)
EDGE = ("127.0.0.1", 8443)
RECEIVED = "/var/lib/corvid-webhook/alerts.jsonl"
PROBED_URL = "https://edge1/health"

WATCHED_HOSTS = ["db1", "db2", "cache1", "cache2", "registry1", "edge1", "mon1", "app1", "app2"]
# Every target Prometheus must scrape in the lab: job -> instances (host:port; the probed URL for
# blackbox), one per host and exporter. Deliberately absent:
#   redis on cache1 and nginx on edge1: both run Debian 12, whose redis_exporter (1.45) and nginx
#     exporter (0.11) cannot require basic auth; the exporters role keeps them on 127.0.0.1 and
#     does not announce them. cache2 (Debian 13) is the scraped Redis; the edge is watched by the
#     blackbox probe from mon1.
# The app's metrics (job app) depend on which colours run, so they are added when the test runs
# (expected_targets()).
EXPECTED_TARGETS = {
    "prometheus": {"mon1:9090"},
    "alertmanager": {"mon1:9093"},
    "node": {f"{host}:9100" for host in WATCHED_HOSTS},
    "postgres": {"db1:9187", "db2:9187"},
    "redis": {"cache2:9121"},
    "blackbox": {PROBED_URL},
}
EXPECTED_RULE_GROUPS = {"corvid-hosts", "corvid-postgresql", "corvid-redis", "corvid-edge", "corvid-app", "corvid-mcp"}
# Time for Prometheus's notification queue and the two HTTP POSTs (Prometheus to Alertmanager,
# Alertmanager to the receiver) on the lab network, on top of the configured intervals.
DELIVERY_SECONDS = 5
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str) -> float:
    """A Prometheus/Alertmanager duration (10s, 1m30s, 5m) in seconds."""
    assert re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", duration), duration
    return sum(int(number) * UNIT_SECONDS[unit] for number, unit in DURATION.findall(duration))


def mon1_settings() -> dict:
    """The monitoring tier's web users of the lab inventory (vault included), read on the controller."""
    expr = (
        "{{ {'prometheus': [prometheus_web_username, prometheus_web_password],"
        " 'alertmanager': (alertmanager_web_users | selectattr('name', 'equalto', 'admin') | first).values() | list"
        "} | to_json }}"
    )
    run = subprocess.run(
        [BIN / "ansible", "mon1", "-i", INVENTORY, "-m", "ansible.builtin.debug", "-a", f"msg={expr}"],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )
    assert run.returncode == 0, f"could not read mon1's variables from the lab inventory: {run.stderr[-500:]}"
    return json.loads(json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["mon1"]["msg"])


class Api:
    """GET JSON from an HTTPS API of the lab with basic auth, verified with the lab CA."""

    def __init__(self, address: tuple[str, int], user: str, password: str) -> None:
        self.address = address
        self.context = ssl.create_default_context(cafile=str(CA))
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def get(self, path: str, **params: str) -> dict:
        connection = http.client.HTTPSConnection(*self.address, context=self.context, timeout=10)
        try:
            query = "?" + urllib.parse.urlencode(params) if params else ""
            connection.request("GET", path + query, headers={"Authorization": self.auth})
            response = connection.getresponse()
            body = response.read()
            assert response.status == 200, f"GET {path}: {response.status} {body[:300]!r}"
            return json.loads(body)
        finally:
            connection.close()


@pytest.fixture(scope="module")
def settings() -> dict:
    if not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")
    return mon1_settings()


@pytest.fixture(scope="module")
def prometheus(settings) -> Api:
    return Api(PROMETHEUS, *settings["prometheus"])


@pytest.fixture(scope="module")
def alertmanager(settings) -> Api:
    return Api(ALERTMANAGER, *settings["alertmanager"])


@pytest.fixture(scope="module")
def intervals(prometheus, alertmanager) -> dict[str, float]:
    """The running configuration's intervals, in seconds."""
    prometheus_global = yaml.safe_load(prometheus.get("/api/v1/status/config")["data"]["yaml"])["global"]
    route = yaml.safe_load(alertmanager.get("/api/v2/status")["config"]["original"])["route"]
    return {
        "scrape": seconds(prometheus_global["scrape_interval"]),
        "evaluation": seconds(prometheus_global["evaluation_interval"]),
        "group_wait": seconds(route["group_wait"]),
        "group_interval": seconds(route["group_interval"]),
    }


def query(prometheus: Api, expr: str) -> list[dict]:
    answer = prometheus.get("/api/v1/query", query=expr)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def active_targets(prometheus: Api) -> list[dict]:
    return prometheus.get("/api/v1/targets", state="active")["data"]["activeTargets"]


APP_METRICS_PORT = 8001
COLOUR_OFFSETS = {"blue": 0, "green": 100}


def expected_targets() -> dict[str, set[str]]:
    """EXPECTED_TARGETS and the metrics port of every colour running on each app host (its state
    file: the colours of `releases`; blue +0, green +100)."""
    app = set()
    for host in ("app1", "app2"):
        state = json.loads(lab_host(host).file("/etc/corvid/apps/agent-service/state.json").content_string)
        app |= {f"{host}:{APP_METRICS_PORT + COLOUR_OFFSETS[colour]}" for colour in state["releases"]}
    return {**EXPECTED_TARGETS, "app": app}


def test_every_expected_target_is_scraped_and_up(prometheus, intervals):
    # A target added by the last converge may not have been scraped yet: two intervals at most.
    deadline = time.monotonic() + 2 * intervals["scrape"] + DELIVERY_SECONDS
    while True:
        targets = active_targets(prometheus)
        if all(target["health"] != "unknown" for target in targets) or time.monotonic() > deadline:
            break
        time.sleep(1)
    found: dict[str, set[str]] = {}
    for target in targets:
        found.setdefault(target["labels"]["job"], set()).add(target["labels"]["instance"])
    assert found == expected_targets()
    down = {
        f"{target['labels']['job']} {target['labels']['instance']}": target["lastError"]
        for target in targets
        if target["health"] != "up"
    }
    assert down == {}


def test_no_target_is_scraped_over_plain_http(prometheus):
    targets = active_targets(prometheus)
    assert targets
    plain = [target["scrapeUrl"] for target in targets if not target["scrapeUrl"].startswith("https://")]
    assert plain == []
    config = yaml.safe_load(prometheus.get("/api/v1/status/config")["data"]["yaml"])
    schemes = {job["job_name"]: job.get("scheme", "http") for job in config["scrape_configs"]}
    assert {job: scheme for job, scheme in schemes.items() if scheme != "https"} == {}
    alertmanagers = config["alerting"]["alertmanagers"]
    assert [am["scheme"] for am in alertmanagers] == ["https"] * len(alertmanagers)


def exporter_urls() -> list[str]:
    """Every scraped exporter's metrics URL (the blackbox exporter's is /probe)."""
    urls = [
        f"https://{instance}/metrics"
        for job, instances in EXPECTED_TARGETS.items()
        if job not in ("prometheus", "blackbox")
        for instance in sorted(instances)
    ]
    return [*urls, "https://mon1:9115/probe?module=https_tls13&target=" + urllib.parse.quote(PROBED_URL, safe="")]


@pytest.mark.parametrize("url", exporter_urls())
def test_an_exporter_refuses_unauthenticated_and_plain_http_scrapes(url):
    mon1 = lab_host("mon1")
    curl = "curl --silent --output /dev/null --write-out %%{http_code} --max-time 10 --cacert /etc/corvid/pki/ca.crt %s"
    unauthenticated = mon1.run(curl, url)
    assert unauthenticated.stdout == "401", (unauthenticated.stdout, unauthenticated.stderr)
    # The same port over plain HTTP: Go's TLS listener answers 400 and never serves the metrics.
    plain = mon1.run(curl, "http://" + url.removeprefix("https://"))
    assert plain.stdout in ("000", "400"), (plain.stdout, plain.stderr)


def test_every_rule_group_is_loaded_and_healthy(prometheus):
    groups = prometheus.get("/api/v1/rules")["data"]["groups"]
    assert {group["name"] for group in groups} == EXPECTED_RULE_GROUPS
    unhealthy = {
        f"{group['name']}/{rule['name']}": rule.get("lastError", "")
        for group in groups
        for rule in group["rules"]
        if rule["health"] != "ok"
    }
    assert unhealthy == {}
    for group in groups:
        assert all(rule["labels"]["severity"] in {"P0", "P1", "P2", "P3"} for rule in group["rules"]), group["name"]
        assert all(rule["annotations"]["runbook_url"] for rule in group["rules"]), group["name"]


def test_the_blackbox_probe_of_the_edge_reports_tls13_and_the_certificate_expiry(prometheus):
    selector = f'{{job="blackbox",instance="{PROBED_URL}"}}'
    assert [sample["value"][1] for sample in query(prometheus, f"probe_success{selector}")] == ["1"]
    versions = query(prometheus, f"probe_tls_version_info{selector} == 1")
    assert [sample["metric"]["version"] for sample in versions] == ["TLS 1.3"]
    # The expiry Prometheus reports is that of the edge's own certificate (the chain's earliest).
    context = ssl.create_default_context(cafile=str(CA))
    with context.wrap_socket(socket.create_connection(EDGE, timeout=10), server_hostname="localhost") as tls:
        not_after = ssl.cert_time_to_seconds(tls.getpeercert()["notAfter"])
    expiry = query(prometheus, f"probe_ssl_earliest_cert_expiry{selector}")
    assert [float(sample["value"][1]) for sample in expiry] == [not_after]


def received_lines() -> list[dict]:
    mon1 = lab_host("mon1")
    if not mon1.file(RECEIVED).exists:
        return []
    return [json.loads(line) for line in mon1.file(RECEIVED).content_string.splitlines() if line.strip()]


def wait_for_notification(already: int, alertname: str, instance: str, status: str, timeout: float) -> float:
    """Seconds until the receiver got `alertname` for `instance` with `status`; fails after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        for line in received_lines()[already:]:
            body = line["body"] if isinstance(line["body"], dict) else {}
            for alert in body.get("alerts", []):
                labels = alert.get("labels", {})
                if (
                    labels.get("alertname") == alertname
                    and labels.get("instance") == instance
                    and alert["status"] == status
                ):
                    return time.monotonic() - start
        time.sleep(2)
    pytest.fail(f"no {status} {alertname} for {instance} at the webhook receiver within {timeout:.0f} s")


def test_redis_down_on_cache2_reaches_the_receiver_and_resolves(prometheus, intervals):
    rule = next(
        rule
        for group in prometheus.get("/api/v1/rules")["data"]["groups"]
        for rule in group["rules"]
        if rule["name"] == "RedisDown"
    )
    scrape, evaluation = intervals["scrape"], intervals["evaluation"]
    # Stop -> the next scrape sees redis_up 0 -> the next evaluation makes the alert pending -> `for`
    # -> the evaluation that fires it -> Alertmanager's group_wait -> the receiver.
    fire_within = scrape + evaluation + rule["duration"] + evaluation + intervals["group_wait"] + DELIVERY_SECONDS
    # Start -> the next scrape sees redis_up 1 -> the next evaluation resolves it -> Alertmanager
    # sends the resolved notification at the group's next flush (group_interval).
    resolve_within = scrape + 2 * evaluation + intervals["group_interval"] + DELIVERY_SECONDS
    instance = next(iter(EXPECTED_TARGETS["redis"]))
    assert query(prometheus, f'redis_up{{instance="{instance}"}} == 1'), "Redis on cache2 is not up before the test"
    cache2 = lab_host("cache2")
    already = len(received_lines())
    try:
        assert cache2.run("systemctl stop redis-server").rc == 0
        fired = wait_for_notification(already, "RedisDown", instance, "firing", fire_within)
        already = len(received_lines())
    finally:
        started = cache2.run("systemctl start redis-server")
    assert started.rc == 0, started.stderr
    resolved = wait_for_notification(already, "RedisDown", instance, "resolved", resolve_within)
    print(f"RedisDown fired after {fired:.0f} s (bound {fire_within:.0f} s),", end=" ")
    print(f"resolved after {resolved:.0f} s (bound {resolve_within:.0f} s)")
