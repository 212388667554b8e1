"""Real state of the monitoring scenario, read from Prometheus's HTTP API inside its container.

corvid-mon-prom (Debian 12) runs Prometheus and Alertmanager with node and blackbox exporters
(Prometheus scrapes Alertmanager as the user it sends alerts as); corvid-mon-target
(Debian 13) runs node and Redis exporters and two HTTPS test endpoints (TLS 1.3 on 8443, TLS 1.2
on 8442). Every request goes over https with the scenario's site CA, from inside a container
(python3 there; no curl in the images). Passwords are the scenario's throwaway test values;
they appear in the `docker exec` command line, never in an assertion message.
"""

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest
import testinfra
import yaml

from recap import parse_recap

PROM = "corvid-mon-prom"
TARGET = "corvid-mon-target"
SCENARIO = Path(__file__).parents[1]
ROOT = SCENARIO.parents[1]
INVENTORY = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]
WEB = ("admin", INVENTORY["monitoring"]["prometheus_web_password"])
SCRAPE = ("prometheus", INVENTORY["all"]["exporters_basic_auth_password"])
EXTRA_RULES = "/etc/prometheus/rules/extra.rules.yml"

ALERTMANAGER = ("prometheus", INVENTORY["monitoring"]["prometheus_alertmanager_password"])

# (job, instance) of every target the inventory announces (Alertmanager's too), and Prometheus itself.
EXPECTED_TARGETS = {
    ("prometheus", f"{PROM}:9090"),
    ("alertmanager", f"{PROM}:9093"),
    ("node", f"{PROM}:9100"),
    ("node", f"{TARGET}:9100"),
    ("redis", f"{TARGET}:9121"),
    ("blackbox", f"https://{TARGET}:8443/"),
    ("blackbox", f"https://{TARGET}:8442/"),
}
RULE_GROUPS = {
    "corvid-hosts",
    "corvid-postgresql",
    "corvid-redis",
    "corvid-edge",
    "corvid-app",
    "corvid-mcp",
    "molecule",
}

# Runs inside a container: GET a URL over https with the site CA and optional basic auth;
# prints the status and the body as JSON, or the TLS error.
FETCH = r"""
import base64, json, ssl, sys, urllib.error, urllib.request
url, user, password, max_tls = sys.argv[1:5]
context = ssl.create_default_context(cafile="/etc/corvid/pki/ca.crt")
if max_tls == "1.2":
    context.maximum_version = ssl.TLSVersion.TLSv1_2
request = urllib.request.Request(url)
if user:
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
try:
    with urllib.request.urlopen(request, context=context, timeout=10) as answer:
        print(json.dumps({"status": answer.status, "body": answer.read().decode()}))
except urllib.error.HTTPError as error:
    print(json.dumps({"status": error.code, "body": ""}))
except (ssl.SSLError, urllib.error.URLError) as error:
    print(json.dumps({"status": 0, "body": str(error)}))
"""


def host(name):
    return testinfra.get_host(f"docker://{name}")


def fetch(url, auth=("", ""), on=PROM, max_tls=""):
    run = host(on).run("python3 -c %s %s %s %s %s", FETCH, url, auth[0], auth[1], max_tls)
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)


def api(path):
    answer = fetch(f"https://{PROM}:9090/api/v1/{path}", WEB)
    assert answer["status"] == 200, answer["status"]
    return json.loads(answer["body"])["data"]


def query(expr):
    return api("query?query=" + quote(expr, safe=""))["result"]


def wait_for(probe, timeout=90.0, interval=2.0):
    """Poll probe() until it returns a truthy value or the timeout passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def targets():
    return api("targets?state=active")["activeTargets"]


def test_every_expected_target_is_up():
    def all_up():
        seen = {(t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in targets()}
        return seen if set(seen) == EXPECTED_TARGETS and set(seen.values()) == {"up"} else None

    assert wait_for(all_up), {(t["labels"]["job"], t["labels"]["instance"]): t["lastError"] for t in targets()}


def test_prometheus_scrapes_alertmanager_and_itself_over_https_with_basic_auth():
    up = {
        (t["labels"]["job"], t["scrapeUrl"]): t["health"]
        for t in targets()
        if t["labels"]["job"] in ("prometheus", "alertmanager")
    }
    assert up == {
        ("prometheus", f"https://{PROM}:9090/metrics"): "up",
        ("alertmanager", f"https://{PROM}:9093/metrics"): "up",
    }
    result = wait_for(lambda: query(f'alertmanager_build_info{{instance="{PROM}:9093"}}'))
    assert result and result[0]["metric"]["job"] == "alertmanager"
    # Alertmanager's metrics are behind the same basic auth as its API.
    assert fetch(f"https://{PROM}:9093/metrics")["status"] == 401
    assert fetch(f"https://{PROM}:9093/metrics", ALERTMANAGER)["status"] == 200


def test_prometheus_sends_alerts_to_alertmanager():
    active = wait_for(lambda: api("alertmanagers")["activeAlertmanagers"])
    assert [a["url"] for a in active] == [f"https://{PROM}:9093/api/v2/alerts"]


def test_targets_carry_their_tier():
    tiers = {(t["labels"]["job"], t["labels"]["instance"]): t["labels"].get("tier") for t in targets()}
    assert tiers[("node", f"{TARGET}:9100")] == "cache"
    assert tiers[("redis", f"{TARGET}:9121")] == "cache"
    assert tiers[("node", f"{PROM}:9100")] == "monitoring"


def test_no_scrape_over_plain_http():
    urls = [t["scrapeUrl"] for t in targets()]
    assert urls and all(url.startswith("https://") for url in urls), urls
    config = api("status/config")["yaml"]
    assert "http://" not in config.replace("https://", "")


@pytest.mark.parametrize(
    "url",
    [f"https://{TARGET}:9100/metrics", f"https://{TARGET}:9121/metrics", f"https://{PROM}:9115/metrics"],
)
def test_an_exporter_refuses_a_scrape_without_or_with_wrong_credentials(url):
    assert fetch(url)["status"] == 401
    assert fetch(url, ("prometheus", "wrong-password"))["status"] == 401
    assert fetch(url, SCRAPE)["status"] == 200


def test_exporters_and_prometheus_refuse_tls_1_2():
    for url in (f"https://{TARGET}:9100/metrics", f"https://{PROM}:9090/-/healthy"):
        answer = fetch(url, SCRAPE, max_tls="1.2")
        assert answer["status"] == 0, (url, answer["status"])


def test_prometheus_requires_authentication():
    assert fetch(f"https://{PROM}:9090/api/v1/targets")["status"] == 401


def test_redis_exporter_reads_redis_with_its_acl_user():
    result = wait_for(lambda: query(f'redis_up{{instance="{TARGET}:9121"}}'))
    assert result and result[0]["value"][1] == "1"


def test_retention_is_30_days():
    assert api("status/flags")["storage.tsdb.retention.time"] == "30d"


def test_every_rule_group_is_loaded_and_healthy():
    def healthy():
        groups = api("rules")["groups"]
        rules = [rule for group in groups for rule in group["rules"]]
        evaluated = all(rule["health"] == "ok" for rule in rules)
        return groups if {g["name"] for g in groups} == RULE_GROUPS and evaluated else None

    groups = wait_for(healthy)
    assert groups, [(r["name"], r["health"], r.get("lastError")) for g in api("rules")["groups"] for r in g["rules"]]
    for group in groups:
        for rule in group["rules"]:
            assert rule["labels"]["severity"] in {"P0", "P1", "P2", "P3"}, rule["name"]
            assert rule["annotations"]["summary"] and rule["annotations"]["runbook_url"], rule["name"]
            if group["name"] != "molecule":
                assert (ROOT / "docs" / "runbooks" / f"{rule['name']}.md").is_file(), rule["name"]


def test_blackbox_reports_tls_1_3_and_the_certificate_expiry():
    result = wait_for(lambda: query(f'probe_tls_version_info{{instance="https://{TARGET}:8443/"}}'))
    assert [r["metric"]["version"] for r in result] == ["TLS 1.3"]
    success = query(f'probe_success{{instance="https://{TARGET}:8443/"}}')
    assert success[0]["value"][1] == "1"
    expiry = query(f'probe_ssl_earliest_cert_expiry{{instance="https://{TARGET}:8443/"}} - time()')
    assert float(expiry[0]["value"][1]) > 14 * 86400


def test_a_tls_1_2_endpoint_fires_the_tls_alert():
    def firing():
        alerts = api("alerts")["alerts"]
        return [
            a
            for a in alerts
            if a["labels"]["alertname"] == "TLSVersionBelow13" and a["labels"]["instance"] == f"https://{TARGET}:8442/"
        ]

    alerts = wait_for(firing)
    assert alerts and alerts[0]["state"] == "firing" and alerts[0]["labels"]["version"] == "TLS 1.2"


def test_a_textfile_metric_reaches_prometheus():
    target = host(TARGET)
    value = str(int(time.time()))
    target.run(
        "printf 'corvid_molecule_textfile %s\\n' > /var/lib/prometheus/node-exporter/.m.tmp"
        " && mv /var/lib/prometheus/node-exporter/.m.tmp /var/lib/prometheus/node-exporter/molecule.prom",
        value,
    )
    try:
        result = wait_for(
            lambda: [
                r for r in query(f'corvid_molecule_textfile{{instance="{TARGET}:9100"}}') if r["value"][1] == value
            ]
        )
        assert result
    finally:
        target.run("rm -f /var/lib/prometheus/node-exporter/molecule.prom")


def test_the_rule_unit_tests_pass():
    source = ROOT / "roles" / "prometheus" / "files" / "tests" / "corvid.rules.test.yml"
    prom = host(PROM)
    subprocess.run(["docker", "cp", str(source), f"{PROM}:/root/corvid.rules.test.yml"], check=True)
    run = prom.run("promtool test rules /root/corvid.rules.test.yml")
    assert run.rc == 0, run.stdout + run.stderr


def test_a_bad_rule_never_replaces_the_good_ones():
    prom = host(PROM)
    before = prom.file(EXTRA_RULES).content_string
    bad = [
        {
            "name": "molecule",
            "rules": [
                {
                    "alert": "Broken",
                    "expr": "up ==== 0",
                    "labels": {"severity": "P3"},
                    "annotations": {"summary": "never loaded"},
                }
            ],
        }
    ]
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--extra-vars",
            json.dumps({"prometheus_extra_rules": bad}),
            str(SCENARIO / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert run.returncode != 0, run.stdout[-3000:]
    output = " ".join((run.stdout + run.stderr).split())  # failures go to stderr, wrapped
    assert "prometheus_extra_rules: promtool check rules rejected the candidate" in output, run.stdout[-3000:]
    assert "parse error" in output, run.stdout[-3000:]
    assert (
        hashlib.sha256(prom.file(EXTRA_RULES).content_string.encode()).hexdigest()
        == hashlib.sha256(before.encode()).hexdigest()
    )
    recap = parse_recap(run.stdout)
    assert recap[PROM]["changed"] == 0 and recap[TARGET]["changed"] == 0, run.stdout[-3000:]
    names = {rule["name"] for group in api("rules")["groups"] for rule in group["rules"]}
    assert "MoleculeWatchdog" in names and "Broken" not in names
