"""Real state of the alertmanager scenario: Alertmanager on Debian 12 and 13 behind TLS 1.3 and
basic auth, and a notification that reaches a receiver.

Probes run inside each host with python3 and openssl, against https://127.0.0.1:9093 with the
scenario's site CA. The webhook receiver (tests/tools/webhook_receiver.py) runs on the host's
loopback as a transient systemd unit; Alertmanager's P1 route posts to it. Only P1 alerts are
sent: the other severities route to integrations outside the test network.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import textwrap
import time
import uuid
from pathlib import Path

import pytest

CA = "/etc/corvid/pki/ca.crt"
URL = "https://127.0.0.1:9093"
USER, PASSWORD = "operator", "test-operator-secret"
SECRETS = ("test-alertmanager-secret", "test-operator-secret", "test-slack-secret", "test-pagerduty-secret")
RECEIVER = Path(__file__).resolve().parents[3] / "tests/tools/webhook_receiver.py"
RECEIVED = "/var/lib/corvid-webhook/alerts.jsonl"
GROUP_WAIT, GROUP_INTERVAL = 2, 5  # molecule.yml
SLACK = 10  # seconds for a POST, the pipeline and the poll

# A small HTTPS client run inside the host (standard library only).
CLIENT = textwrap.dedent(
    """
    import base64, json, ssl, sys, urllib.error, urllib.request
    ctx = ssl.create_default_context(cafile=%(ca)r)

    def call(method, path, body=None, auth=None):
        request = urllib.request.Request(%(url)r + path, method=method,
                                         data=None if body is None else json.dumps(body).encode())
        request.add_header("Content-Type", "application/json")
        if auth:
            request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
        try:
            with urllib.request.urlopen(request, context=ctx, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()
    """
) % {"ca": CA, "url": URL}


def api(host, method, path, body=None, auth=f"{USER}:{PASSWORD}"):
    script = CLIENT + f"print(json.dumps(call({method!r}, {path!r}, {body!r}, {auth!r})))"
    run = host.run("python3 -c %s", script)
    assert run.rc == 0, run.stderr
    status, text = json.loads(run.stdout)
    return status, text


def alert(name, host_label, instance, resolved=False):
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 1 if resolved else now + 3600))
    return {
        "labels": {"alertname": name, "severity": "P1", "host": host_label, "instance": instance, "job": "test"},
        "annotations": {"summary": f"{name} on {host_label}"},
        "endsAt": stamp,
    }


def received(host):
    run = host.run("cat %s 2>/dev/null", RECEIVED)
    return [json.loads(line)["body"] for line in run.stdout.splitlines() if line.strip()]


def wait_for(host, predicate, seconds):
    deadline = time.monotonic() + seconds
    while True:
        notifications = received(host)
        if any(predicate(n) for n in notifications) or time.monotonic() > deadline:
            return notifications
        time.sleep(0.5)


def for_host(label):
    def match(notification, status="firing"):
        return notification.get("status") == status and notification.get("commonLabels", {}).get("host") == label

    return match


@pytest.fixture(scope="module")
def webhook(host):
    """The receiver on 127.0.0.1:9099 of the host, started fresh for this module."""
    source = base64.b64encode(RECEIVER.read_bytes()).decode()
    host.run("systemctl stop corvid-webhook-test 2>/dev/null; systemctl reset-failed corvid-webhook-test 2>/dev/null")
    setup = host.run(
        "mkdir -p /var/lib/corvid-webhook && rm -f %s && echo %s | base64 -d > /var/lib/corvid-webhook/receiver.py"
        " && systemd-run --unit corvid-webhook-test python3 /var/lib/corvid-webhook/receiver.py"
        " --listen 127.0.0.1:9099 --output %s --max-file 1048576",
        RECEIVED,
        source,
        RECEIVED,
    )
    assert setup.rc == 0, setup.stderr
    for _ in range(50):
        if host.run("python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1:9099/')\"").rc == 0:
            break
        time.sleep(0.2)
    yield
    host.run("systemctl stop corvid-webhook-test")


def test_service_running_and_enabled(host):
    service = host.service("prometheus-alertmanager")
    assert service.is_running
    assert service.is_enabled


def test_amtool_accepts_the_live_configuration(host):
    run = host.run("amtool check-config /etc/prometheus/alertmanager.yml")
    assert run.rc == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout
    assert "2 inhibit rules" in run.stdout
    assert "5 receivers" in run.stdout  # the four of molecule.yml and "unrouted"


def test_secrets_stay_in_files_only_prometheus_reads(host):
    for path in ("/etc/prometheus/alertmanager.yml", "/etc/prometheus/alertmanager-web.yml"):
        config = host.file(path)
        assert (config.user, config.group, config.mode) == ("root", "prometheus", 0o640), path
    web = host.file("/etc/prometheus/alertmanager-web.yml").content_string
    assert "min_version: TLS13" in web
    assert "$2b$10$" in web
    assert not any(secret in web for secret in SECRETS)
    assert host.run("sudo -u prometheus test -r /etc/corvid/pki/private/alertmanager.key").rc == 0
    assert "test-pagerduty-secret" in host.file("/etc/prometheus/alertmanager.yml").content_string


def test_clustering_is_off_and_flags_are_set(host):
    assert not host.socket("tcp://0.0.0.0:9094").is_listening
    assert not host.socket("tcp://:::9094").is_listening
    args = host.file("/etc/default/prometheus-alertmanager").content_string
    assert "--web.config.file=/etc/prometheus/alertmanager-web.yml" in args


def test_tls13_handshake_verifies(host):
    run = host.run("openssl s_client -connect 127.0.0.1:9093 -CAfile %s -tls1_3 </dev/null 2>&1", CA)
    assert "Verify return code: 0 (ok)" in run.stdout, run.stdout
    assert "TLSv1.3" in run.stdout


def test_tls12_is_refused(host):
    run = host.run("openssl s_client -connect 127.0.0.1:9093 -tls1_2 </dev/null 2>&1")
    assert run.rc != 0, run.stdout
    assert "alert" in run.stdout.lower() or "Cipher is (NONE)" in run.stdout, run.stdout


def test_basic_auth_is_required(host):
    assert api(host, "GET", "/api/v2/status", auth=None)[0] == 401
    assert api(host, "GET", "/api/v2/status", auth=f"{USER}:wrong")[0] == 401
    assert api(host, "GET", "/-/healthy", auth=None)[0] == 401
    status, text = api(host, "GET", "/api/v2/status")
    assert status == 200, text
    assert json.loads(text)["cluster"]["status"] == "disabled"


def test_its_metrics_answer_the_user_prometheus_sends_alerts_as(host):
    """The role announces Alertmanager to Prometheus (job alertmanager, https, credentials
    alertmanager): Prometheus scrapes /metrics as its alert-sending user."""
    assert api(host, "GET", "/metrics", auth=None)[0] == 401
    status, text = api(host, "GET", "/metrics", auth="prometheus:test-alertmanager-secret")
    assert status == 200 and "alertmanager_build_info" in text


def test_an_alert_and_its_resolution_reach_the_webhook(host, webhook):
    label = f"molecule-{uuid.uuid4().hex[:8]}"
    instance = f"{label}:9100"
    sent = time.monotonic()
    status, text = api(host, "POST", "/api/v2/alerts", [alert("TestServiceDown", label, instance)])
    assert status == 200, text

    notifications = wait_for(host, for_host(label), GROUP_WAIT + SLACK)
    firing = [n for n in notifications if for_host(label)(n)]
    assert firing, f"no firing notification for {label} within {GROUP_WAIT + SLACK} s: {notifications}"
    assert time.monotonic() - sent <= GROUP_WAIT + SLACK
    assert firing[0]["receiver"] == "test-webhook"
    assert firing[0]["commonLabels"]["severity"] == "P1"
    assert firing[0]["alerts"][0]["labels"]["alertname"] == "TestServiceDown"

    status, text = api(host, "POST", "/api/v2/alerts", [alert("TestServiceDown", label, instance, resolved=True)])
    assert status == 200, text
    notifications = wait_for(host, lambda n: for_host(label)(n, "resolved"), GROUP_INTERVAL + SLACK)
    resolved = [n for n in notifications if for_host(label)(n, "resolved")]
    assert resolved, f"no resolved notification for {label}: {notifications}"
    assert resolved[0]["alerts"][0]["status"] == "resolved"


def test_a_host_down_alert_silences_the_services_of_that_host(host, webhook):
    label = f"molecule-{uuid.uuid4().hex[:8]}"
    instance = f"{label}:9100"
    status, text = api(
        host,
        "POST",
        "/api/v2/alerts",
        [alert("InstanceDown", label, instance), alert("TestServiceDown", label, instance)],
    )
    assert status == 200, text
    wait_for(host, for_host(label), GROUP_WAIT + SLACK)
    time.sleep(GROUP_WAIT + 3)  # the service alert's own group would have been sent by now
    names = [n["commonLabels"]["alertname"] for n in received(host) if for_host(label)(n)]
    assert names == ["InstanceDown"], names

    # The service alert is still there, only muted: Alertmanager says who inhibits it.
    status, text = api(host, "GET", f"/api/v2/alerts?filter=host%3D%22{label}%22")
    states = {a["labels"]["alertname"]: a["status"] for a in json.loads(text)}
    assert states["TestServiceDown"]["state"] == "suppressed"
    assert states["TestServiceDown"]["inhibitedBy"]
    assert states["InstanceDown"]["state"] == "active"


def ansible_playbook(*extra):
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    return subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], *extra, f"{scenario}/converge.yml"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )


def main_pid(host):
    return host.run("systemctl show --property MainPID --value prometheus-alertmanager").stdout.strip()


@pytest.mark.parametrize("only", ["corvid-alert-bookworm"])
def test_a_new_route_reloads_and_a_rejected_one_never_goes_live(host, only):
    if host.backend.get_hostname() != only:
        pytest.skip(f"runs on {only} only (a converge per case)")
    before, config = main_pid(host), host.file("/etc/prometheus/alertmanager.yml").content_string

    changed = ansible_playbook("--limit", only, "-e", json.dumps({"alertmanager_repeat_interval": "2h"}))
    assert changed.returncode == 0, changed.stdout[-3000:]
    assert 'repeat_interval: "2h"' in host.file("/etc/prometheus/alertmanager.yml").content_string
    assert main_pid(host) == before  # reloaded (SIGHUP), not restarted
    assert "Reload alertmanager" in changed.stdout and "Restart alertmanager" not in changed.stdout

    bad = {"alertmanager_inhibit_rules": [{"source_matchers": ['alertname=~"("'], "target_matchers": ['x="y"']}]}
    rejected = ansible_playbook("--limit", only, "-e", json.dumps(bad))
    assert rejected.returncode != 0
    assert "Write the Alertmanager configuration" in rejected.stdout
    assert not any(secret in rejected.stdout + rejected.stderr for secret in SECRETS)
    assert 'repeat_interval: "2h"' in host.file("/etc/prometheus/alertmanager.yml").content_string
    assert host.service("prometheus-alertmanager").is_running

    restored = ansible_playbook("--limit", only)
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert host.file("/etc/prometheus/alertmanager.yml").content_string == config
    assert main_pid(host) == before
