"""The grafana role's dashboards, checked without Grafana and without a network.

Every file is valid JSON with a unique uid; every panel and every target names the datasource
by the uid the role provisions (grafana_datasource_uid); every target has an expression whose
brackets balance, whose functions are PromQL's and whose metrics are ones an exporter or job of
the platform exposes. The MCP and backup metric names are read from the code that writes
them (the mcp_check module's metrics, the pgbackrest role's textfile script), so a renamed
metric fails here. tests/lab/test_dashboards.py runs every query against the lab's Prometheus.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles/grafana"
DASHBOARDS = sorted((ROLE / "files/dashboards").glob("*.json"))
DEFAULTS = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
UID = DEFAULTS["grafana_datasource_uid"]


def written_metrics(path: Path, prefix: str) -> set[str]:
    """The quoted metric names with `prefix` in the code that writes a textfile."""
    return set(re.findall(rf'"({prefix}_[a-z_]+)"', path.read_text()))


# What the exporters of Debian 12 and 13 expose (names checked against the packaged binaries:
# node_exporter 1.5/1.9, postgres_exporter 0.11/0.17, redis_exporter 1.45/1.69, nginx exporter
# 0.11/1.4, blackbox_exporter 0.23/0.26), Prometheus's own, and the app's.
EXPORTED = {
    "prometheus": {"up", "ALERTS"},
    "node": {
        "node_cpu_seconds_total",
        "node_memory_MemAvailable_bytes",
        "node_memory_MemTotal_bytes",
        "node_filesystem_avail_bytes",
        "node_filesystem_size_bytes",
    },
    "postgres": {
        "pg_up",
        "pg_stat_activity_count",
        "pg_settings_max_connections",
        "pg_replication_lag",  # 0.11 (Debian 12)
        "pg_replication_lag_seconds",  # 0.15 and later (Debian 13)
        "pg_database_size_bytes",
        "pg_stat_database_numbackends",
        "pg_stat_database_xact_commit",
        "pg_stat_database_xact_rollback",
        "pg_stat_database_blks_hit",
        "pg_stat_database_blks_read",
    },
    "redis": {
        "redis_up",
        "redis_connected_slaves",
        "redis_master_link_up",
        "redis_db_keys",
        "redis_memory_used_bytes",
        "redis_memory_max_bytes",
        "redis_connected_clients",
        "redis_commands_processed_total",
        "redis_keyspace_hits_total",
        "redis_keyspace_misses_total",
    },
    "nginx": {"nginx_up", "nginx_http_requests_total", "nginx_connections_active", "nginx_connections_waiting"},
    "blackbox": {
        "probe_success",
        "probe_duration_seconds",
        "probe_http_status_code",
        "probe_ssl_earliest_cert_expiry",
        "probe_tls_version_info",
    },
    "app": {"http_requests_total", "http_request_duration_seconds_bucket", "websocket_connections"},
    "mcp": written_metrics(ROOT / "plugins/module_utils/_mcp/metrics.py", "mcp"),
    "pgbackrest": written_metrics(ROOT / "roles/pgbackrest/files/pgbackrest_metrics.py", "pgbackrest"),
}
KNOWN_METRICS = set().union(*EXPORTED.values())
FUNCTIONS = {
    "rate", "irate", "increase", "delta", "sum", "avg", "min", "max", "count", "topk", "bottomk",
    "histogram_quantile", "time", "vector", "absent", "avg_over_time", "max_over_time", "min_over_time",
    "label_replace", "clamp_min", "clamp_max", "abs", "round", "scalar", "quantile",
}  # fmt: skip
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}
PAIRS = {")": "(", "]": "[", "}": "{"}


def panels_of(path: Path) -> list[dict]:
    return json.loads(path.read_text())["panels"]


def targets() -> list[tuple[str, str, dict]]:
    return [
        (path.stem, panel["title"], target)
        for path in DASHBOARDS
        for panel in panels_of(path)
        for target in panel.get("targets", [])
    ]


def balanced(expr: str) -> bool:
    stack: list[str] = []
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "([{":
            stack.append(char)
        elif char in PAIRS and (not stack or stack.pop() != PAIRS[char]):
            return False
    return not stack


def names_in(expr: str) -> tuple[set[str], set[str]]:
    """(functions, metrics) an expression uses: strings, label matchers, grouping label lists,
    ranges and numbers are removed first."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = re.sub(r"\b\d+(\.\d+)?(e[+-]?\d+)?\b", "", text)
    functions = set(re.findall(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*\(", text))
    words = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text))
    return functions, words - functions - KEYWORDS


def test_there_is_a_dashboard_per_tier_and_job():
    assert {path.stem for path in DASHBOARDS} == set(DEFAULTS["grafana_dashboards"])
    assert set(DEFAULTS["grafana_dashboards"]) >= {
        "platform-overview", "postgresql", "redis", "nginx", "app", "mcp-endpoints", "backups",
    }  # fmt: skip


def test_the_textfile_metrics_were_found():
    assert {"mcp_endpoint_up", "mcp_endpoint_latency_seconds", "mcp_check_last_run_timestamp_seconds"} <= EXPORTED[
        "mcp"
    ]
    assert {"pgbackrest_backup_last_size_bytes", "pgbackrest_info_success"} <= EXPORTED["pgbackrest"]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_a_dashboard_is_valid_json_with_panels(path):
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"] and len(dashboard["uid"]) <= 40
    assert dashboard["title"]
    assert dashboard["panels"], "a dashboard without panels"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_uids_and_titles_are_unique():
    dashboards = [json.loads(path.read_text()) for path in DASHBOARDS]
    assert len({d["uid"] for d in dashboards}) == len(dashboards)
    assert len({d["title"] for d in dashboards}) == len(dashboards)


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.stem)
def test_every_panel_and_target_uses_the_provisioned_datasource(path):
    for panel in panels_of(path):
        assert panel["datasource"] == {"type": "prometheus", "uid": UID}, panel["title"]
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target["datasource"] == {"type": "prometheus", "uid": UID}, panel["title"]


@pytest.mark.parametrize("dashboard,title,target", targets(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_target_has_a_sane_expression(dashboard, title, target):
    expr = target.get("expr", "")
    assert expr.strip(), f"{dashboard}: {title} has a target without expr"
    assert target["refId"]
    assert balanced(expr), f"{dashboard}: {title}: unbalanced brackets in {expr}"
    functions, metrics = names_in(expr)
    assert functions <= FUNCTIONS, f"{dashboard}: {title}: unknown functions {functions - FUNCTIONS}"
    assert metrics, f"{dashboard}: {title}: no metric in {expr}"
    assert metrics <= KNOWN_METRICS, f"{dashboard}: {title}: metrics no exporter exposes: {metrics - KNOWN_METRICS}"


def test_the_checks_catch_what_they_claim():
    assert not balanced("sum(rate(x[5m])")
    assert not balanced("sum(x]")
    assert balanced('count(x{a="(("}) or vector(0)')
    functions, metrics = names_in('sum by (instance) (rate(redis_up{job="redis"}[5m])) / on (instance) pg_up > bool 0')
    assert functions == {"sum", "rate"}
    assert metrics == {"redis_up", "pg_up"}
