"""Every query of every Grafana dashboard returns data from the lab's Prometheus.

The grafana role's dashboards (roles/grafana/files/dashboards/) are checked offline in
tests/unit/test_dashboards.py; here each target's expression runs against the lab's Prometheus
on mon1 (published on https://127.0.0.1:9090, verified with the lab CA .cache/pki/lab/ca.crt,
basic auth as prometheus_web_username of the lab inventory), so that no panel is decoration.
The module skips, with the reason, while that Prometheus does not answer.

A panel without data fails, unless its metrics come from a source the lab does not have yet
(NOT_IN_LAB: the reason is reported as an expected failure) and Prometheus holds no series of
that source at all. Once the source lands, its panels must have data like the others.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import ssl
import subprocess
import urllib.parse

import pytest
from conftest import BIN, INVENTORY, ROOT

PROMETHEUS = ("127.0.0.1", 9090)
CA = ROOT / ".cache/pki/lab/ca.crt"
DASHBOARDS = sorted((ROOT / "roles/grafana/files/dashboards").glob("*.json"))
# Metric families the lab does not serve yet: (pattern of the metric names in an expression,
# the selector of that whole family in Prometheus, why the lab has none).
NOT_IN_LAB = [
    (
        r"\bnginx_",
        '{__name__=~"nginx_.*"}',
        "edge1 runs Debian 12, whose nginx exporter (0.11) cannot require basic auth: it listens on "
        "127.0.0.1 only and is not scraped (the blackbox probe watches the edge)",
    ),
    (
        r"\bmcp_endpoint_failure_info\b",
        '{__name__="mcp_endpoint_failure_info"}',
        "no MCP endpoint fails now: the failure series exists only while one does",
    ),
]


def queries() -> list[tuple[str, str, str]]:
    return [
        (f"{path.stem}: {panel['title']} ({target['refId']})", target["expr"], target.get("legendFormat", ""))
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel["targets"]
    ]


def lab_credentials() -> tuple[str, str]:
    """Prometheus's web user of the lab inventory (vault included), read on the controller."""
    run = subprocess.run(
        [
            BIN / "ansible",
            "mon1",
            "-i",
            INVENTORY,
            "-m",
            "ansible.builtin.debug",
            "-a",
            "msg={{ [prometheus_web_username | default(''), prometheus_web_password | default('')] | to_json }}",
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
    )
    if run.returncode != 0:
        pytest.skip(f"could not read mon1's variables from the lab inventory: {run.stderr.strip()[-300:]}")
    result = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["mon1"]
    return tuple(json.loads(result["msg"]))


@pytest.fixture(scope="module")
def prometheus():
    """A function running one instant query; skips the module while the lab's Prometheus is not up."""
    if not CA.is_file():
        pytest.skip(f"no lab CA at {CA}: run `make lab` first")
    context = ssl.create_default_context(cafile=str(CA))
    user, password = lab_credentials()
    if not user or not password:
        pytest.skip("the lab inventory sets no prometheus_web_username/prometheus_web_password for mon1 yet")
    auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def query(expr: str) -> dict:
        connection = http.client.HTTPSConnection(*PROMETHEUS, context=context, timeout=10)
        try:
            path = "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            connection.request("GET", path, headers={"Authorization": auth})
            response = connection.getresponse()
            return {"http_status": response.status, **json.loads(response.read() or b"{}")}
        finally:
            connection.close()

    try:
        query("up")
    except (OSError, ValueError) as error:
        pytest.skip(f"the lab's Prometheus does not answer at https://127.0.0.1:9090 ({error}): monitoring is not up")
    return query


@pytest.mark.parametrize("name,expr,legend", queries(), ids=[name for name, _, _ in queries()])
def test_every_dashboard_query_returns_data(prometheus, name, expr, legend):
    answer = prometheus(expr)
    assert answer["status"] == "success", answer
    if not answer["data"]["result"]:
        for pattern, family, reason in NOT_IN_LAB:
            if re.search(pattern, expr) and not prometheus(f"count({family})")["data"]["result"]:
                pytest.xfail(f"{name}: no data, {reason}")
    assert answer["data"]["result"], f"{name}: no data for {expr}"
