"""Real state of the mcp_health_timer scenario: the scheduled MCP check on m10m-checker (Debian 12)
against the test MCP server on m10m-mcp (Debian 13).

The timer fires every five minutes; the tests start its service once instead of waiting (a
oneshot: `systemctl start` returns when the run is over) and read what the run wrote.
"""

import hashlib
import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
import yaml

testinfra_hosts = ["m10m-checker"]

SCENARIO = Path(__file__).resolve().parents[1]
PROJECT = SCENARIO.parents[1]
TOKEN = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]["all"][
    "mcp_test_token"
]
UNIT = "corvid-mcp-health"
CONFIG = "/etc/corvid/mcp-health.json"
TEXTFILE = "/var/lib/prometheus/node-exporter/mcp.prom"
PACKAGE = "/usr/local/lib/corvid-mcp-health/ansible_collections/corvid/platform/plugins/module_utils/_mcp"
ENDPOINT = "test-mcp"


def server_host():
    return testinfra.get_host("docker://m10m-mcp")


def samples(host, name):
    """The samples of metric `name` in the textfile: a list of (labels, value)."""
    found = []
    for line in host.file(TEXTFILE).content_string.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))), match.group(2)))
    return found


def run_once(host):
    """One run of the scheduled check, as the timer starts it; its exit status."""
    return host.run(f"systemctl start {UNIT}.service").rc


def test_the_timer_is_enabled_and_active_with_the_schedule(host):
    timer = host.service(f"{UNIT}.timer")
    assert timer.is_enabled
    assert timer.is_running  # systemctl is-active: "active" (waiting)
    # systemd's own normal form of the default "*:0/5" (every five minutes).
    normal = host.check_output("systemd-analyze calendar '*:0/5' | sed -n 's/^ *Normalized form: //p'")
    shown = host.check_output(f"systemctl show --property TimersCalendar --value {UNIT}.timer")
    assert f"OnCalendar={normal} " in shown
    assert host.check_output(f"systemctl show --property RandomizedDelayUSec --value {UNIT}.timer") == "20s"
    # The next run is due within the period plus the random delay.
    next_run = int(
        host.check_output(f"systemctl show --property NextElapseUSecRealtime --value {UNIT}.timer | date -f - +%s")
    )
    assert 0 < next_run - int(host.check_output("date +%s")) <= 300 + 20


def test_the_runner_uses_the_collections_own_mcp_client(host):
    shipped = sorted(Path(path).name for path in (PROJECT / "plugins/module_utils/_mcp").glob("*.py"))
    installed = host.check_output(f"ls {PACKAGE}").split()
    assert sorted(name for name in installed if name.endswith(".py")) == shipped
    for name in shipped:
        ours = hashlib.sha256((PROJECT / "plugins/module_utils/_mcp" / name).read_bytes()).hexdigest()
        assert host.check_output(f"sha256sum {PACKAGE}/{name}").split()[0] == ours, name
    service = host.file(f"/etc/systemd/system/{UNIT}.service").content_string
    assert "ExecStart=/usr/bin/python3 -sE /usr/local/lib/corvid-mcp-health/corvid_mcp_health.py" in service


def test_the_configuration_is_root_only(host):
    config = host.file(CONFIG)
    assert (config.user, config.group, config.mode) == ("root", "root", 0o600)
    assert json.loads(config.content_string)["endpoints"][0]["url"] == "http://m10m-mcp:8000/mcp"


def test_a_run_writes_the_textfile_with_the_endpoint_up(host):
    assert run_once(host) == 0
    metrics = host.file(TEXTFILE)
    assert metrics.mode == 0o644
    up = samples(host, "mcp_endpoint_up")
    assert up == [
        (
            {
                "checker": "m10m-checker",
                "environment": "molecule",
                "endpoint": ENDPOINT,
                "url": "http://m10m-mcp:8000/mcp",
                "transport": "streamable_http",
            },
            "1",
        )
    ]
    assert [value for _labels, value in samples(host, "mcp_endpoint_healthy")] == ["1"]
    assert [value for _labels, value in samples(host, "mcp_endpoint_tools")] == ["2"]
    assert samples(host, "mcp_endpoint_failure_info") == []
    ((_labels, stamp),) = samples(host, "mcp_check_last_run_timestamp_seconds")
    assert abs(float(stamp) - time.time()) < 120
    # Written atomically: no temporary file is left beside it.
    assert host.check_output("ls -A /var/lib/prometheus/node-exporter") == "mcp.prom"


def test_a_stopped_server_is_reported_down_with_the_reason(host):
    server = server_host()
    try:
        assert server.run("systemctl stop mcp-test-server").rc == 0
        assert run_once(host) != 0  # mcp_health_failure_policy: any fails the run, metrics written all the same
        assert host.run(f"systemctl is-failed {UNIT}.service").stdout.strip() == "failed"
        assert [value for _labels, value in samples(host, "mcp_endpoint_up")] == ["0"]
        assert [value for _labels, value in samples(host, "mcp_endpoint_healthy")] == ["0"]
        ((labels, value),) = samples(host, "mcp_endpoint_failure_info")
        assert (labels["endpoint"], labels["stage"], value) == (ENDPOINT, "connect", "1")
        log = host.check_output(f"journalctl --unit {UNIT}.service --no-pager --output cat --lines 5")
        assert f"{ENDPOINT}: DOWN at connect" in log
    finally:
        assert server.run("systemctl start mcp-test-server").rc == 0
    # Back up: the next run says so (and leaves the host as converge left it).
    for _attempt in range(10):
        if run_once(host) == 0:
            break
        time.sleep(1)
    assert [value for _labels, value in samples(host, "mcp_endpoint_up")] == ["1"]


def test_the_token_never_reaches_the_journal(host):
    journal = host.check_output(f"journalctl --unit {UNIT}.service --no-pager --output cat")
    assert "test-mcp: up" in journal
    assert TOKEN not in journal


def ansible_playbook(*extra):
    return subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--limit",
            "m10m-checker",
            *extra,
            str(SCENARIO / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )


BAD_INPUT = {
    "calendar": (
        {"mcp_health_timer_on_calendar": "every five minutes"},
        ["mcp_health_timer_on_calendar is not a systemd calendar expression"],
    ),
    "endpoints": (
        {
            "mcp_health_endpoints": [
                {"name": "a", "url": "http://m10m-mcp:8000/mcp", "bearer_token": TOKEN},
                {"name": "a", "url": "ftp://m10m-mcp/mcp", "bearer_tokn": TOKEN},
            ]
        },
        [
            "mcp_health_endpoints[1].url must be an http:// or https:// URL",
            "mcp_health_endpoints[1].bearer_tokn is not an option of corvid.platform.mcp_check",
            'mcp_health_endpoints[1] is named "a" like an endpoint before it',
        ],
    ),
    "no textfile": (
        {"mcp_health_textfile_path": ""},
        ["mcp_health_textfile_path is empty, but the scheduled check (mcp_health_schedule: timer)"],
    ),
    # Past the preflight: the runner's own check (the module's option checks) rejects it before
    # the file replaces the live configuration.
    "transport": (
        {
            "mcp_health_endpoints": [
                {"name": ENDPOINT, "url": "http://m10m-mcp:8000/mcp", "bearer_token": TOKEN, "transport": "pigeon"}
            ]
        },
        ["endpoints[0].transport: must be one of auto, streamable_http, sse"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_bad_input_fails_before_any_change(host, case):
    variables, messages = BAD_INPUT[case]
    before = host.file(CONFIG).content_string, host.file(f"/etc/systemd/system/{UNIT}.timer").content_string
    # The case that reaches the configuration file runs at -vvv with --diff: whatever Ansible
    # prints, never the token.
    verbose = ["-vvv", "--diff"] if case == "transport" else []
    run = ansible_playbook(*verbose, "-e", json.dumps(variables))
    assert run.returncode != 0
    output = " ".join((run.stdout + run.stderr).split())
    for message in messages:
        assert message in output, output[-3000:]
    assert "changed=0" in run.stdout.split("PLAY RECAP")[-1]
    assert TOKEN not in run.stdout + run.stderr
    after = host.file(CONFIG).content_string, host.file(f"/etc/systemd/system/{UNIT}.timer").content_string
    assert after == before


def test_schedule_none_removes_the_timer_and_a_converge_brings_it_back(host):
    removed = ansible_playbook("-e", json.dumps({"mcp_health_schedule": "none"}))
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert not host.file(f"/etc/systemd/system/{UNIT}.timer").exists
    assert not host.file(CONFIG).exists
    assert not host.file("/usr/local/lib/corvid-mcp-health").exists
    assert host.run(f"systemctl is-active {UNIT}.timer").stdout.strip() != "active"
    assert host.file(TEXTFILE).exists  # the last metrics stay: MCPCheckNotRunning tells they are old
    again = ansible_playbook("-e", json.dumps({"mcp_health_schedule": "none"}))
    assert again.returncode == 0
    assert "changed=0" in again.stdout.split("PLAY RECAP")[-1]

    restored = ansible_playbook()
    assert restored.returncode == 0, restored.stdout[-3000:]
    assert host.service(f"{UNIT}.timer").is_running
    assert run_once(host) == 0
