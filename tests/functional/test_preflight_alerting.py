"""Every preflight message of the alertmanager and grafana roles (the runner is
tests/tools/preflight_cases.py): each case fails with its own message, naming the variable,
before any change; secrets never appear in a message or in the output."""

from __future__ import annotations

from preflight_cases import (
    PreflightCases,
    assert_argument_error,
    assert_stopped_at_the_preflight,
    run_role_check_mode,
    run_role_preflight,
)

SECRET = "alerting-secret-7f3c"
USERS = {"alertmanager_web_users": [{"name": "prometheus", "password": SECRET}]}
WEBHOOK = {"name": "hook", "type": "webhook", "url": "https://hooks.example.com/alerts"}
SLACK = {"name": "chat", "type": "slack", "api_url": f"https://hooks.slack.com/services/{SECRET}"}
PAGER = {"name": "pager", "type": "pagerduty", "routing_key": SECRET}
MAIL = {"name": "mail", "type": "email", "to": "ops@example.com"}
SMTP = {"alertmanager_smtp_smarthost": "smtp.example.com:587", "alertmanager_smtp_from": "am@example.com"}
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFtest\n-----END PGP PUBLIC KEY BLOCK-----\n"
GRAFANA = {
    "grafana_apt_signing_key": KEY,
    "grafana_admin_password": SECRET,
    "grafana_secret_key": SECRET * 2,
    "grafana_datasource_password": SECRET,
}


TARBALL = {
    "alertmanager_install_method": "tarball",
    "alertmanager_tarball_mirror": "file:///srv/mirror/prometheus",
    "alertmanager_version": "0.27.0",
    "alertmanager_tarball_sha256": "4b1c2e3d5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c",
}


def am(**variables):
    return ("alertmanager", {**USERS, **variables})


def grafana(**variables):
    return ("grafana", {**GRAFANA, **variables})


# host name: ((role, host variables), the one expected message)
CASES: dict[str, tuple[tuple[str, dict], str]] = {
    "am_webhook_without_url": (
        am(alertmanager_receivers=[{"name": "hook", "type": "webhook"}]),
        "alertmanager_receivers[0] (hook): a webhook receiver needs url",
    ),
    "am_slack_without_api_url": (
        am(alertmanager_receivers=[WEBHOOK, {"name": "chat", "type": "slack", "channel": "#ops"}]),
        "alertmanager_receivers[1] (chat): a slack receiver needs api_url",
    ),
    "am_pagerduty_without_routing_key": (
        am(alertmanager_receivers=[{"name": "pager", "type": "pagerduty", "routing_key": ""}]),
        "alertmanager_receivers[0] (pager): a pagerduty receiver needs routing_key",
    ),
    "am_email_without_address": (
        am(alertmanager_receivers=[{"name": "mail", "type": "email"}], **SMTP),
        "alertmanager_receivers[0] (mail): a email receiver needs to",
    ),
    "am_email_without_smtp": (
        am(alertmanager_receivers=[MAIL], alertmanager_smtp_from="am@example.com"),
        "alertmanager_receivers has an email receiver but alertmanager_smtp_smarthost is not HOST:PORT",
    ),
    "am_slack_url_not_http": (
        am(alertmanager_receivers=[{**SLACK, "api_url": f"slack://{SECRET}"}]),
        "alertmanager_receivers[0] (chat): api_url must be an http(s) URL (the value is not shown)",
    ),
    "am_unknown_severity": (
        am(alertmanager_receivers=[WEBHOOK], alertmanager_severity_receivers={"P1": ["hook"], "P5": ["hook"]}),
        'alertmanager_severity_receivers: "P5" is not a severity: use P0, P1, P2, P3',
    ),
    "am_lower_case_severity": (
        am(alertmanager_receivers=[WEBHOOK], alertmanager_severity_receivers={"critical": ["hook"]}),
        'alertmanager_severity_receivers: "critical" is not a severity',
    ),
    "am_route_to_unknown_receiver": (
        am(alertmanager_receivers=[WEBHOOK], alertmanager_severity_receivers={"P0": ["hook", "pager"]}),
        'alertmanager_severity_receivers.P0[1]: receiver "pager" is not in alertmanager_receivers',
    ),
    "am_severity_receivers_not_a_list": (
        am(alertmanager_receivers=[WEBHOOK], alertmanager_severity_receivers={"P0": "hook"}),
        "alertmanager_severity_receivers.P0 must be a list of receiver names",
    ),
    "am_unknown_default_receiver": (
        am(alertmanager_receivers=[WEBHOOK], alertmanager_default_receiver="nobody"),
        'alertmanager_default_receiver: receiver "nobody" is not in alertmanager_receivers',
    ),
    "am_duplicate_receivers": (
        am(alertmanager_receivers=[WEBHOOK, WEBHOOK]),
        'alertmanager_receivers names must be unique: "hook"',
    ),
    "am_reserved_receiver_name": (
        am(alertmanager_receivers=[{**WEBHOOK, "name": "unrouted"}]),
        'alertmanager_receivers[0].name "unrouted"',
    ),
    "am_auth_without_users": (
        ("alertmanager", {}),
        "alertmanager_web_auth_enabled is true but alertmanager_web_users is empty",
    ),
    "am_user_without_password": (
        ("alertmanager", {"alertmanager_web_users": [{"name": "prometheus", "password": ""}]}),
        "alertmanager_web_users[0] (prometheus) has no password",
    ),
    "am_tls_without_certificate": (
        am(alertmanager_tls_cert_file=""),
        "alertmanager_tls_enabled is true but alertmanager_tls_cert_file is not an absolute path",
    ),
    "am_group_wait_not_a_duration": (
        am(alertmanager_group_wait="30 seconds"),
        'alertmanager_group_wait must be a duration such as 30s, 5m or 4h, not "30 seconds"',
    ),
    "am_retention_not_a_duration": (
        am(alertmanager_data_retention="5 days"),
        "alertmanager_data_retention must be a duration",
    ),
    "am_listen_without_port": (
        am(alertmanager_listen_address="mon1"),
        'alertmanager_listen_address must be HOST:PORT (e.g. 0.0.0.0:9093, 127.0.0.1:9093 or :9093), not "mon1"',
    ),
    "am_cluster_on_the_web_port": (
        am(alertmanager_cluster_listen_address="0.0.0.0:9093"),
        "alertmanager_cluster_listen_address and alertmanager_listen_address are both 0.0.0.0:9093",
    ),
    "am_flag_injection": (
        am(alertmanager_extra_flags=["--log.level=debug --web.config.file="]),
        "alertmanager_extra_flags[0] must be one --flag",
    ),
    "am_smtp_user_without_password": (
        am(alertmanager_smtp_auth_username="am"),
        "alertmanager_smtp_auth_username is set but alertmanager_smtp_auth_password is empty",
    ),
    "am_inhibit_rule_without_target": (
        am(alertmanager_inhibit_rules=[{"source_matchers": ['alertname="InstanceDown"']}]),
        "alertmanager_inhibit_rules[0] needs source_matchers and target_matchers",
    ),
    "am_bcrypt_cost_too_low": (am(alertmanager_bcrypt_cost=4), "alertmanager_bcrypt_cost must be between 10 and 16"),
    "grafana_without_admin_password": (
        grafana(grafana_admin_password=""),
        "grafana_admin_password is empty: set it (from vault)",
    ),
    "grafana_datasource_uid_mismatch": (
        grafana(grafana_datasource_uid="prom"),
        'grafana_datasource_uid is "prom" but the dashboards platform-overview, postgresql, redis, nginx, app,'
        ' mcp-endpoints, backups query datasource uid "prometheus"',
    ),
    "grafana_unknown_dashboard": (
        grafana(grafana_dashboards=["redis", "kafka"]),
        'grafana_dashboards[1]: "kafka" is not a dashboard of the role',
    ),
    "grafana_dashboard_path": (
        grafana(grafana_dashboards=["../../../etc/passwd"]),
        'grafana_dashboards[0]: "../../../etc/passwd" is not a dashboard of the role',
    ),
    "grafana_without_signing_key": (
        grafana(grafana_apt_signing_key=""),
        "grafana_apt_signing_key is empty: set it to Grafana's APT signing key",
    ),
    "grafana_key_not_armoured": (
        grafana(grafana_apt_signing_key="mQINBFtest"),
        "grafana_apt_signing_key must be an ASCII-armoured OpenPGP public key",
    ),
    "grafana_key_file_missing": (
        grafana(grafana_apt_signing_key="", grafana_apt_signing_key_file="/nonexistent/grafana.asc"),
        'grafana_apt_signing_key_file "/nonexistent/grafana.asc" is not a file on the controller',
    ),
    "grafana_short_secret_key": (
        grafana(grafana_secret_key="short"),
        "grafana_secret_key must be at least 16 characters",
    ),
    "grafana_datasource_without_password": (
        grafana(grafana_datasource_password=""),
        'grafana_datasource_username is "grafana" but grafana_datasource_password is empty',
    ),
    "grafana_datasource_url_not_http": (
        grafana(grafana_datasource_url="mon1:9090"),
        'grafana_datasource_url must be the http(s) URL of Prometheus (e.g. https://mon1:9090), not "mon1:9090"',
    ),
    "grafana_repository_url_not_http": (
        grafana(grafana_apt_repository_url="ftp://apt.grafana.com"),
        "grafana_apt_repository_url must be an http(s) URL",
    ),
    "grafana_ini_injection": (
        grafana(grafana_domain="mon1\n[auth.anonymous]\nenabled = true"),
        "grafana_domain must be one line without ; or # (grafana.ini)",
    ),
    "am_tarball_without_mirror": (
        am(**{**TARBALL, "alertmanager_tarball_mirror": ""}),
        "alertmanager_install_method is tarball but alertmanager_tarball_mirror is empty: set it to the URL of the "
        "directory that holds alertmanager-VERSION.linux-ARCH.tar.gz",
    ),
    "am_tarball_without_sha256": (
        am(**{**TARBALL, "alertmanager_tarball_sha256": ""}),
        "alertmanager_install_method is tarball but alertmanager_tarball_sha256 is empty: set the archive's sha256",
    ),
    "am_tarball_sha256_too_short": (
        am(**{**TARBALL, "alertmanager_tarball_sha256": TARBALL["alertmanager_tarball_sha256"][:63]}),
        "alertmanager_tarball_sha256 must be 64 hexadecimal digits",
    ),
    "am_tarball_without_version": (
        am(**{**TARBALL, "alertmanager_version": ""}),
        'alertmanager_install_method is tarball but alertmanager_version is "": set the release to install',
    ),
}

# host name: variables that pass.
GOOD: dict[str, tuple[str, dict]] = {
    "am_good_every_receiver_type": am(
        alertmanager_receivers=[WEBHOOK, SLACK, PAGER, MAIL],
        alertmanager_severity_receivers={"P0": ["pager", "chat"], "P1": ["pager"], "P2": ["chat"], "P3": ["mail"]},
        alertmanager_default_receiver="hook",
        alertmanager_smtp_auth_username="am",
        alertmanager_smtp_auth_password=SECRET,
        **SMTP,
    ),
    "am_good_without_tls_and_auth": (
        "alertmanager",
        {"alertmanager_tls_enabled": False, "alertmanager_web_auth_enabled": False},
    ),
    "am_good_from_a_tarball": am(**TARBALL),
    "grafana_good": grafana(),
    "grafana_good_without_datasource_auth": grafana(grafana_datasource_username="", grafana_datasource_password=""),
}

PREFLIGHT = PreflightCases(None, CASES, GOOD, secret=SECRET, check_ran=True)
preflight = PREFLIGHT.fixture("preflight_alerting")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_secrets_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


def test_a_receiver_without_its_url_fails_before_any_change(tmp_path):
    """The whole role in check mode on localhost: the first task that fails is the preflight,
    nothing before it changed, and nothing after it ran."""
    process, failure = run_role_check_mode(
        tmp_path, "alertmanager", {**USERS, "alertmanager_receivers": [{"name": "hook", "type": "webhook"}]}
    )
    assert "alertmanager_receivers[0] (hook): a webhook receiver needs url" in failure["msg"][0]
    assert_stopped_at_the_preflight(process)
    assert SECRET not in process.stdout + process.stderr


def test_an_unknown_receiver_type_fails_in_the_argument_spec(tmp_path):
    process, failed = run_role_preflight(
        tmp_path,
        "alertmanager",
        {**USERS, "alertmanager_receivers": [{"name": "pager", "type": "opsgenie", "url": "https://x.example"}]},
    )
    assert_argument_error(process, failed, "alertmanager_receivers", "opsgenie")
    assert SECRET not in process.stdout + process.stderr


def test_grafana_without_an_admin_password_fails_before_any_change(tmp_path):
    process, failure = run_role_check_mode(tmp_path, "grafana", {**GRAFANA, "grafana_admin_password": ""})
    assert failure["msg"] == [
        "grafana_admin_password is empty: set it (from vault); Grafana's default admin/admin is never used."
    ]
    assert_stopped_at_the_preflight(process)
    assert SECRET not in process.stdout + process.stderr
