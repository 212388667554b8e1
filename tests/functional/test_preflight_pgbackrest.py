"""Every preflight message of the pgbackrest role (the runner is tests/tools/preflight_cases.py).

The restore entry point's checks against the repositories (an unknown set, a target time in
the future or before the oldest backup) need real backups: molecule/pgbackrest tests them.
"""

from __future__ import annotations

import json

import pytest
from preflight_cases import PreflightCases, assert_argument_error, run_role_preflight

SECRET = "preflight-pgbackrest-secret-7f3c"
REPO = {"endpoint": "objects1", "bucket": "corvid-backups-primary", "key": SECRET, "secret": SECRET}
GOOD_VARIABLES = {"pgbackrest_repos": [REPO], "pgbackrest_cipher_pass": SECRET}


TLS = {
    "pgbackrest_tls_cert_file": "/etc/corvid/pki/postgresql.crt",
    "pgbackrest_tls_key_file": "/etc/corvid/pki/private/postgresql.key",
}


def with_changes(**changes):
    return {**GOOD_VARIABLES, **changes}


def repo(**changes):
    return {**REPO, **changes}


# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "pgbackrest_retention_zero": (
        with_changes(pgbackrest_retention_full=0),
        "pgbackrest_retention_full is 0: keep at least 1",
    ),
    "pgbackrest_repo_retention_zero": (
        with_changes(pgbackrest_repos=[repo(retention_full=0)]),
        "pgbackrest_repos[0].retention_full is 0",
    ),
    "pgbackrest_no_passphrase": (
        {"pgbackrest_repos": [REPO]},
        "pgbackrest_cipher_pass is empty but pgbackrest_cipher_type is aes-256-cbc",
    ),
    "pgbackrest_passphrase_newline": (
        with_changes(pgbackrest_cipher_pass=SECRET + "\n"),
        "pgbackrest_cipher_pass must be one line",
    ),
    "pgbackrest_no_repository": (with_changes(pgbackrest_repos=[]), "pgbackrest_repos is empty"),
    "pgbackrest_five_repositories": (
        with_changes(pgbackrest_repos=[REPO] * 5),
        "pgbackrest_repos has 5 entries",
    ),
    "pgbackrest_repo_without_endpoint": (
        with_changes(pgbackrest_repos=[REPO, repo(endpoint="")]),
        "pgbackrest_repos[1].endpoint is missing",
    ),
    "pgbackrest_repo_without_bucket": (
        with_changes(pgbackrest_repos=[repo(bucket="")]),
        "pgbackrest_repos[0].bucket is missing",
    ),
    "pgbackrest_repo_without_secret": (
        with_changes(pgbackrest_repos=[repo(secret="")]),
        "pgbackrest_repos[0].secret is missing: set it (from vault)",
    ),
    "pgbackrest_repo_endpoint_url": (
        with_changes(pgbackrest_repos=[repo(endpoint="https://objects1/")]),
        "pgbackrest_repos[0].endpoint must be a host name",
    ),
    "pgbackrest_repo_bad_bucket": (
        with_changes(pgbackrest_repos=[repo(bucket="Backups_1")]),
        "pgbackrest_repos[0].bucket must be an S3 bucket name",
    ),
    "pgbackrest_repo_relative_path": (
        with_changes(pgbackrest_repos=[repo(path="pgbackrest")]),
        "pgbackrest_repos[0].path must be absolute",
    ),
    "pgbackrest_repo_key_injection": (
        with_changes(pgbackrest_repos=[repo(region="us-east-1\nrepo1-path=/elsewhere")]),
        "pgbackrest_repos[0].region must be one line",
    ),
    "pgbackrest_bad_stanza": (with_changes(pgbackrest_stanza="my stanza"), "pgbackrest_stanza must be a name"),
    "pgbackrest_two_full_schedules": (
        with_changes(
            pgbackrest_schedules=[{"type": "full", "on_calendar": "daily"}, {"type": "full", "on_calendar": "weekly"}]
        ),
        'pgbackrest_schedules has more than one "full" entry',
    ),
    "pgbackrest_diff_without_full": (
        with_changes(pgbackrest_schedules=[{"type": "diff", "on_calendar": "daily"}]),
        "pgbackrest_schedules has no full backup",
    ),
    "pgbackrest_schedule_injection": (
        with_changes(pgbackrest_schedules=[{"type": "full", "on_calendar": "daily\nExecStart=/bin/true"}]),
        "pgbackrest_schedules[0].on_calendar must be one systemd calendar expression",
    ),
    "pgbackrest_bad_global_option": (
        with_changes(pgbackrest_global_options={"Log Level": "debug"}),
        'pgbackrest_global_options "Log Level"',
    ),
    "pgbackrest_bad_port": (with_changes(pgbackrest_pg_port=70000), "pgbackrest_pg_port must be a TCP port"),
    "pgbackrest_relative_metrics_file": (
        with_changes(pgbackrest_metrics_file="pgbackrest.prom"),
        "pgbackrest_metrics_file must be an absolute path",
    ),
    # Backups from the replica. A case host is its own backup host where the rule is the backup
    # host's; "pgbackrest_good" stands for a primary of the inventory.
    "pgbackrest_backup_host_unknown": (
        with_changes(pgbackrest_backup_host="db9", **TLS),
        'pgbackrest_backup_host "db9" is not a host of the inventory',
    ),
    "pgbackrest_standby_without_backup_host": (
        with_changes(pgbackrest_backup_standby=True),
        "pgbackrest_backup_standby is true but pgbackrest_backup_host is empty",
    ),
    "pgbackrest_standby_backup_host_not_replica": (
        with_changes(
            pgbackrest_backup_host="pgbackrest_standby_backup_host_not_replica", pgbackrest_backup_standby=True, **TLS
        ),
        "pgbackrest_backup_standby is true but the backup host pgbackrest_standby_backup_host_not_replica is not",
    ),
    "pgbackrest_backup_host_primary_unknown": (
        with_changes(pgbackrest_backup_host="pgbackrest_backup_host_primary_unknown", postgresql_primary="db9", **TLS),
        'pgbackrest_primary_host (or postgresql_primary) "db9" of the backup host',
    ),
    "pgbackrest_backup_host_primary_itself": (
        with_changes(
            pgbackrest_backup_host="pgbackrest_backup_host_primary_itself",
            pgbackrest_primary_host="pgbackrest_backup_host_primary_itself",
            **TLS,
        ),
        "of the backup host pgbackrest_backup_host_primary_itself is the host itself",
    ),
    "pgbackrest_backup_host_disagrees": (
        with_changes(pgbackrest_backup_host="pgbackrest_good", **TLS),
        'pgbackrest_backup_host is "pgbackrest_good" here but "" on pgbackrest_good',
    ),
    "pgbackrest_backup_host_without_certificate": (
        with_changes(
            pgbackrest_backup_host="pgbackrest_backup_host_without_certificate",
            postgresql_primary="pgbackrest_good",
            pgbackrest_tls_key_file=TLS["pgbackrest_tls_key_file"],
        ),
        "pgbackrest_tls_cert_file must be the absolute path of a PEM file",
    ),
    "pgbackrest_tls_server_port_of_postgresql": (
        with_changes(pgbackrest_tls_server_port=5432),
        "pgbackrest_tls_server_port must be a free TCP port",
    ),
    "pgbackrest_tls_client_cn_injection": (
        with_changes(pgbackrest_tls_client_cn="db2=main\ntls-server-auth=*"),
        "pgbackrest_tls_client_cn must be one line",
    ),
}

GOOD: dict[str, dict] = {
    "pgbackrest_good": GOOD_VARIABLES,
    "pgbackrest_good_two_regions": with_changes(
        pgbackrest_repos=[REPO, repo(bucket="corvid-backups-copy", region="eu-west-1")],
        pgbackrest_schedules=[{"type": "full", "on_calendar": "daily"}, {"type": "diff", "on_calendar": "hourly"}],
    ),
    "pgbackrest_good_unencrypted": {"pgbackrest_repos": [REPO], "pgbackrest_cipher_type": "none"},
    # A replica taking the backups with backup-standby, and a host running the TLS server for it.
    "pgbackrest_good_backup_standby": with_changes(
        pgbackrest_backup_host="pgbackrest_good_backup_standby",
        pgbackrest_backup_standby=True,
        postgresql_primary="pgbackrest_good_tls_server",
        **TLS,
    ),
    "pgbackrest_good_tls_server": with_changes(
        pgbackrest_backup_host="pgbackrest_good_backup_standby", pgbackrest_backup_standby=True, **TLS
    ),
}

PREFLIGHT = PreflightCases("pgbackrest", CASES, GOOD, secret=SECRET, check_ran=True)
preflight = PREFLIGHT.fixture("preflight_pgbackrest")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()


@pytest.mark.parametrize(
    ("variables", "variable", "value"),
    [
        ({"pgbackrest_retention_full_type": "forever"}, "pgbackrest_retention_full_type", "forever"),
        ({"pgbackrest_cipher_type": "des"}, "pgbackrest_cipher_type", "des"),
        ({"pgbackrest_repos": [repo(uri_style="virtual")]}, "uri_style", "virtual"),
    ],
)
def test_bad_choice_fails_in_the_argument_spec(tmp_path, variables, variable, value):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_preflight(tmp_path, "pgbackrest", {**GOOD_VARIABLES, **variables})
    assert_argument_error(process, failed, variable, value)
    assert SECRET not in json.dumps(failed)
