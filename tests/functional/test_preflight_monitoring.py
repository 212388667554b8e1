"""Every preflight message of the exporters and prometheus roles (the runner: tests/tools/preflight_cases.py).

Bad input of the monitoring tier fails before any change, naming the variable: an exporter port
used twice, an unknown severity, a rule that does not parse, a retention that is not a duration,
a target announced over plain http, a release tarball without its mirror or with a sha256 that
is not one. PromQL beyond bracket balance is promtool's job on the host (molecule/monitoring
checks that a rejected rule file never replaces the running one), and so is a sha256 that does
not match its download (molecule/tarball).
"""

from __future__ import annotations

import json
import sys

from preflight_cases import ROOT, PreflightCases, assert_argument_error, run_role_check_mode, run_role_preflight

SECRET = "monitoring-preflight-secret-7c1e"
EXPORTERS = {"exporters_basic_auth_password": SECRET}
# Each prometheus case reads only its own host's announcements.
PROMETHEUS = {
    "prometheus_web_password": SECRET,
    "prometheus_scrape_password": SECRET,
    "prometheus_target_hosts": ["{{ inventory_hostname }}"],
}


SHA256 = "9d3f0a5e1c2b4d6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f"
NODE_TARBALL = {
    "exporters_node_install_method": "tarball",
    "exporters_tarball_mirror": "https://mirror.example.com/prometheus",
    "exporters_node_version": "1.8.2",
    "exporters_node_tarball_sha256": SHA256,
}
PROMETHEUS_TARBALL = {
    "prometheus_install_method": "tarball",
    "prometheus_tarball_mirror": "https://mirror.example.com/prometheus",
    "prometheus_version": "2.53.2",
    "prometheus_tarball_sha256": SHA256,
}
APP_TARGET = {"job": "app", "port": 8001, "scheme": "https", "metrics_path": "/metrics"}


def rule(**changes):
    base = {"alert": "Extra", "expr": "up == 0", "labels": {"severity": "P2"}, "annotations": {"summary": "s"}}
    return {**base, **changes}


def rules(*items, name="extra"):
    return {"prometheus_extra_rules": [{"name": name, "rules": list(items)}]}


# host name: (role, host variables, the one expected message)
CASES: dict[str, tuple[str, dict, str]] = {
    "exporters_port_used_twice": (
        "exporters",
        {
            **EXPORTERS,
            "exporters_enabled": ["node", "redis"],
            "exporters_redis_port": 9100,
            "exporters_redis_password": SECRET,
        },
        "exporters_redis_port and exporters_node_port are both 9100 on this host",
    ),
    "exporters_port_out_of_range": (
        "exporters",
        {**EXPORTERS, "exporters_node_port": 70000},
        'exporters_node_port must be a TCP port (1-65535), not "70000"',
    ),
    "exporters_listed_twice": (
        "exporters",
        {**EXPORTERS, "exporters_enabled": ["node", "node"]},
        'exporters_enabled lists "node" more than once',
    ),
    "exporters_none_enabled": (
        "exporters",
        {**EXPORTERS, "exporters_enabled": []},
        "exporters_enabled is empty: list the exporters of this host",
    ),
    "exporters_without_password": ("exporters", {}, "exporters_basic_auth_password is empty: set it (from vault)"),
    "exporters_password_newline": (
        "exporters",
        {"exporters_basic_auth_password": SECRET + "\n"},
        "exporters_basic_auth_password must not contain control characters",
    ),
    "exporters_bad_username": (
        "exporters",
        {**EXPORTERS, "exporters_basic_auth_username": "pro metheus"},
        "exporters_basic_auth_username must be a user name",
    ),
    "exporters_relative_certificate": (
        "exporters",
        {**EXPORTERS, "exporters_tls_cert_file": "exporters.crt"},
        "exporters_tls_cert_file must be an absolute path",
    ),
    "exporters_postgres_without_password": (
        "exporters",
        {**EXPORTERS, "exporters_enabled": ["node", "postgres"]},
        "exporters_postgres_password is empty",
    ),
    "exporters_redis_without_password": (
        "exporters",
        {**EXPORTERS, "exporters_enabled": ["redis"]},
        "exporters_redis_password is empty",
    ),
    "exporters_redis_bad_address": (
        "exporters",
        {
            **EXPORTERS,
            "exporters_enabled": ["redis"],
            "exporters_redis_password": SECRET,
            "exporters_redis_address": "cache1:6379",
        },
        "exporters_redis_address must be a redis:// or rediss:// URL",
    ),
    "exporters_extra_arg_injection": (
        "exporters",
        {**EXPORTERS, "exporters_node_extra_args": ["--collector.systemd --web.config.file="]},
        "exporters_node_extra_args[0] must be one --flag[=value]",
    ),
    "exporters_probe_bad_url": (
        "exporters",
        {**EXPORTERS, "exporters_enabled": ["blackbox"], "exporters_blackbox_probes": [{"url": "edge1:443"}]},
        "exporters_blackbox_probes[0].url must be an http(s) URL",
    ),
    "exporters_probe_unknown_module": (
        "exporters",
        {
            **EXPORTERS,
            "exporters_enabled": ["blackbox"],
            "exporters_blackbox_probes": [{"url": "https://edge1/", "module": "icmp"}],
        },
        'exporters_blackbox_probes[0].module "icmp" is not a module',
    ),
    "prometheus_retention_words": (
        "prometheus",
        {**PROMETHEUS, "prometheus_retention": "30 days"},
        'prometheus_retention must be a Prometheus duration such as 30d, 2w, 12h or 1h30m, not "30 days"',
    ),
    "prometheus_alert_for_unknown": (
        "prometheus",
        {**PROMETHEUS, "prometheus_alert_for": {"McpDown": "1m"}},
        'prometheus_alert_for names "McpDown", which is not an alert of the platform rules: use one of InstanceDown,',
    ),
    "prometheus_alert_for_duration": (
        "prometheus",
        {**PROMETHEUS, "prometheus_alert_for": {"MCPEndpointDown": "a minute"}},
        'prometheus_alert_for.MCPEndpointDown must be a Prometheus duration such as 1m or 10m, not "a minute"',
    ),
    "prometheus_retention_zero": (
        "prometheus",
        {**PROMETHEUS, "prometheus_retention": "0d"},
        'prometheus_retention must be a Prometheus duration such as 30d, 2w, 12h or 1h30m, not "0d"',
    ),
    "prometheus_scrape_interval_number": (
        "prometheus",
        {**PROMETHEUS, "prometheus_scrape_interval": "30"},
        "prometheus_scrape_interval must be a Prometheus duration",
    ),
    "prometheus_unknown_severity": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(labels={"severity": "critical"}))},
        'prometheus_extra_rules[0].rules[0] (Extra): labels.severity must be one of P0, P1, P2, P3, not "critical"',
    ),
    "prometheus_severity_missing": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(labels={}))},
        'prometheus_extra_rules[0].rules[0] (Extra): labels.severity must be one of P0, P1, P2, P3, not ""',
    ),
    "prometheus_rule_does_not_parse": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(), rule(alert="Broken", expr="rate(up[5m] > 0"))},
        "prometheus_extra_rules[0].rules[1] (Broken): expr does not parse (unbalanced brackets)",
    ),
    "prometheus_rule_without_expr": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(expr=""))},
        "prometheus_extra_rules[0].rules[0] (Extra) has no expr",
    ),
    "prometheus_rule_alert_and_record": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(record="job:up:sum"))},
        "prometheus_extra_rules[0].rules[0] must have either alert or record",
    ),
    "prometheus_rule_without_summary": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(annotations={}))},
        "prometheus_extra_rules[0].rules[0] (Extra): annotations.summary is required",
    ),
    "prometheus_rule_bad_for": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(**{"for": "five minutes"}))},
        'prometheus_extra_rules[0].rules[0] (Extra): for must be a Prometheus duration such as 5m, not "five minutes"',
    ),
    "prometheus_rule_group_taken": (
        "prometheus",
        {**PROMETHEUS, **rules(rule(), name="corvid-hosts")},
        'prometheus_extra_rules[0].name "corvid-hosts" is taken',
    ),
    "prometheus_without_web_password": (
        "prometheus",
        {**PROMETHEUS, "prometheus_web_password": ""},
        "prometheus_web_password is empty: set it (from vault).",
    ),
    "prometheus_without_scrape_password": (
        "prometheus",
        {**PROMETHEUS, "prometheus_scrape_password": ""},
        "prometheus_scrape_password is empty: set it (from vault).",
    ),
    "prometheus_alertmanager_without_port": (
        "prometheus",
        {**PROMETHEUS, "prometheus_alertmanagers": ["mon1"], "prometheus_alertmanager_password": SECRET},
        'prometheus_alertmanagers[0] must be host:port (scraped over https), not "mon1"',
    ),
    "prometheus_alertmanager_without_password": (
        "prometheus",
        {**PROMETHEUS, "prometheus_alertmanagers": ["mon1:9093"]},
        "prometheus_alertmanager_password is empty: set it (from vault).",
    ),
    "prometheus_port_out_of_range": (
        "prometheus",
        {**PROMETHEUS, "prometheus_port": 0},
        "prometheus_port must be a TCP port (1-65535)",
    ),
    "prometheus_target_over_http": (
        "prometheus",
        {
            **PROMETHEUS,
            "app_prometheus_targets": [{"job": "app", "port": 8001, "scheme": "http", "metrics_path": "/metrics"}],
        },
        'prometheus_target_over_http: app_prometheus_targets[0] (app) has scheme "http": Prometheus scrapes over https',
    ),
    "prometheus_target_without_port": (
        "prometheus",
        {**PROMETHEUS, "app_prometheus_targets": [{"job": "app", "scheme": "https"}]},
        "prometheus_target_without_port: app_prometheus_targets[0] (app) needs a TCP port",
    ),
    "prometheus_target_unknown_credentials": (
        "prometheus",
        {**PROMETHEUS, "app_prometheus_targets": [{**APP_TARGET, "credentials": "root"}]},
        "app_prometheus_targets[0] (app) credentials must be scrape (prometheus_scrape_username) or alertmanager "
        '(prometheus_alertmanager_username), not "root"',
    ),
    "prometheus_scrapes_alertmanager_without_its_password": (
        "prometheus",
        {
            **PROMETHEUS,
            "alertmanager_prometheus_targets": [
                {"job": "alertmanager", "port": 9093, "scheme": "https", "credentials": "alertmanager"}
            ],
        },
        "prometheus_alertmanager_password is empty: set it (from vault).",
    ),
    "exporters_tarball_without_mirror": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_tarball_mirror": ""},
        "exporters_node_install_method is tarball but exporters_tarball_mirror is empty: set it to the URL of the "
        "directory that holds the exporters' release tarballs",
    ),
    "exporters_tarball_mirror_not_a_url": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_tarball_mirror": "mirror.example.com/prometheus"},
        "exporters_tarball_mirror is not an http(s) or file URL",
    ),
    "exporters_tarball_without_sha256": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_node_tarball_sha256": ""},
        "exporters_node_install_method is tarball but exporters_node_tarball_sha256 is empty: set the archive's sha256",
    ),
    "exporters_tarball_short_sha256": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_node_tarball_sha256": "abc123"},
        'exporters_node_tarball_sha256 must be 64 hexadecimal digits (a sha256, without "sha256:"), not "abc123"',
    ),
    "exporters_tarball_sha256_with_prefix": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_node_tarball_sha256": "sha256:" + SHA256},
        "exporters_node_tarball_sha256 must be 64 hexadecimal digits",
    ),
    "exporters_tarball_without_version": (
        "exporters",
        {**EXPORTERS, **NODE_TARBALL, "exporters_node_version": ""},
        'exporters_node_install_method is tarball but exporters_node_version is "": set the release to install',
    ),
    "prometheus_tarball_without_mirror": (
        "prometheus",
        {**PROMETHEUS, **PROMETHEUS_TARBALL, "prometheus_tarball_mirror": ""},
        "prometheus_install_method is tarball but prometheus_tarball_mirror is empty: set it to the URL of the "
        "directory that holds prometheus-VERSION.linux-ARCH.tar.gz",
    ),
    "prometheus_tarball_without_sha256": (
        "prometheus",
        {**PROMETHEUS, **PROMETHEUS_TARBALL, "prometheus_tarball_sha256": ""},
        "prometheus_install_method is tarball but prometheus_tarball_sha256 is empty",
    ),
    "prometheus_tarball_sha256_not_hex": (
        "prometheus",
        {**PROMETHEUS, **PROMETHEUS_TARBALL, "prometheus_tarball_sha256": "g" * 64},
        "prometheus_tarball_sha256 must be 64 hexadecimal digits",
    ),
}

# host name: (role, variables that pass)
GOOD: dict[str, tuple[str, dict]] = {
    "exporters_good": (
        "exporters",
        {
            **EXPORTERS,
            "exporters_enabled": ["node", "postgres", "redis", "nginx", "blackbox"],
            "exporters_postgres_password": SECRET,
            "exporters_redis_password": SECRET,
            "exporters_blackbox_probes": [{"url": "https://edge1/"}, {"url": "https://edge1:8443/", "module": "https"}],
            **NODE_TARBALL,
            "exporters_redis_install_method": "tarball",
            "exporters_redis_version": "1.62.0",
            "exporters_redis_tarball_sha256": SHA256.upper(),
        },
    ),
    "prometheus_good": (
        "prometheus",
        {
            **PROMETHEUS,
            **rules(rule(expr='sum by (job) (rate(http_requests_total{status=~"5.."}[5m])) > 1', **{"for": "5m"})),
            "prometheus_alertmanagers": ["mon1:9093"],
            "prometheus_alertmanager_password": SECRET,
            "app_prometheus_targets": [{"job": "app", "port": 8001, "scheme": "https", "metrics_path": "/metrics"}],
            "alertmanager_prometheus_targets": [
                {"job": "alertmanager", "port": 9093, "scheme": "https", "credentials": "alertmanager"}
            ],
            **PROMETHEUS_TARBALL,
        },
    ),
}

PREFLIGHT = PreflightCases(None, CASES, GOOD, secret=SECRET)
preflight = PREFLIGHT.fixture("preflight_monitoring")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_secret_values_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


def test_unknown_exporter_fails_in_the_argument_spec(tmp_path):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_preflight(tmp_path, "exporters", {"exporters_enabled": ["node", "mysql"], **EXPORTERS})
    assert_argument_error(process, failed, "exporters_enabled", "mysql")


def test_retention_fails_before_any_change(tmp_path):
    """The whole role on localhost in check mode: the first failure is the preflight, nothing ran before it."""
    process, failure = run_role_check_mode(
        tmp_path,
        "prometheus",
        {**PROMETHEUS, "prometheus_retention": "a month", "ansible_python_interpreter": sys.executable},
    )
    assert 'prometheus_retention must be a Prometheus duration such as 30d, 2w, 12h or 1h30m, not "a month"' in str(
        failure.get("msg")
    )
    plays = json.loads(process.stdout)["plays"]
    changed = [
        task["task"]["name"]
        for play in plays
        for task in play["tasks"]
        for r in task["hosts"].values()
        if r.get("changed")
    ]
    assert changed == []


def render_targets(hostvars: dict) -> dict:
    """roles/prometheus/templates/targets.j2 with Ansible's templating, over the given hostvars."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables = {
        "hostvars": hostvars,
        "prometheus_target_hosts": list(hostvars),
        "prometheus_tiers": ["database", "cache", "edge", "app", "monitoring", "mcp_checkers"],
    }
    source = (ROOT / "roles/prometheus/templates/targets.j2").read_text()
    return json.loads(Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source)))


NODE = {"job": "node", "port": 9100, "scheme": "https", "metrics_path": "/metrics"}
REDIS = {"job": "redis", "port": 9121, "scheme": "https", "metrics_path": "/metrics"}


def test_targets_come_from_every_hosts_announcements():
    hostvars = {
        "cache1": {"group_names": ["cache", "lab"], "exporters_prometheus_targets": [NODE, REDIS]},
        "mon1": {
            "group_names": ["lab", "mcp_checkers", "monitoring"],
            "exporters_prometheus_targets": [
                NODE,
                {
                    **NODE,
                    "job": "blackbox",
                    "port": 9115,
                    "metrics_path": "/probe",
                    "probes": [{"url": "https://edge1/", "module": "https_tls13"}],
                },
            ],
        },
        "acme1": {"group_names": ["lab_services"]},
    }
    jobs = render_targets(hostvars)
    assert jobs["node"] == [
        {"targets": ["cache1:9100"], "labels": {"tier": "cache", "host": "cache1", "__metrics_path__": "/metrics"}},
        {"targets": ["mon1:9100"], "labels": {"tier": "monitoring", "host": "mon1", "__metrics_path__": "/metrics"}},
    ]
    assert jobs["redis"] == [
        {"targets": ["cache1:9121"], "labels": {"tier": "cache", "host": "cache1", "__metrics_path__": "/metrics"}}
    ]
    assert jobs["blackbox"] == [
        {
            "targets": ["mon1:9115"],
            "labels": {
                "tier": "monitoring",
                "host": "mon1",
                "__metrics_path__": "/probe",
                "instance": "https://edge1/",
                "__param_target": "https://edge1/",
                "__param_module": "https_tls13",
            },
        }
    ]
    # A new host of a tier is a target on the next run, with no change to Prometheus's variables.
    hostvars["cache3"] = {"group_names": ["cache"], "exporters_prometheus_targets": [NODE]}
    assert {
        "targets": ["cache3:9100"],
        "labels": {"tier": "cache", "host": "cache3", "__metrics_path__": "/metrics"},
    } in render_targets(hostvars)["node"]
