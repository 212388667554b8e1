"""Every preflight message of the pgbouncer role (the runner is tests/tools/preflight_cases.py)."""

from __future__ import annotations

import pytest
from preflight_cases import PreflightCases, assert_argument_error, run_role_preflight

SECRET = "preflight-secret-9c1e"
TLS = {
    "pgbouncer_client_tls_cert_file": "/etc/corvid/pki/db.fullchain.crt",
    "pgbouncer_client_tls_key_file": "/etc/corvid/pki/private/db.key",
}
DATABASE = {"name": "ai_agent_sdk"}
GOOD = {**TLS, "pgbouncer_databases": [DATABASE], "pgbouncer_auth_password": SECRET}


def case(**changes):
    return {**GOOD, **changes}


# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "pgbouncer_pool_size_zero": (
        case(pgbouncer_default_pool_size=0, pgbouncer_min_pool_size=0),
        "pgbouncer_default_pool_size must be between 1 and 10000",
    ),
    "pgbouncer_pool_size_huge": (
        case(pgbouncer_default_pool_size=20000, pgbouncer_max_client_conn=50000),
        "pgbouncer_default_pool_size must be between 1 and 10000",
    ),
    "pgbouncer_min_above_default": (
        case(pgbouncer_min_pool_size=30),
        "pgbouncer_min_pool_size (30) is larger than pgbouncer_default_pool_size (20)",
    ),
    "pgbouncer_min_negative": (case(pgbouncer_min_pool_size=-1), "pgbouncer_min_pool_size must be 0 or more"),
    "pgbouncer_reserve_negative": (
        case(pgbouncer_reserve_pool_size=-5),
        "pgbouncer_reserve_pool_size must be 0 or more",
    ),
    "pgbouncer_max_client_conn_zero": (
        case(pgbouncer_max_client_conn=0),
        "pgbouncer_max_client_conn must be between 1 and 100000",
    ),
    "pgbouncer_max_client_conn_below_pool": (
        case(pgbouncer_max_client_conn=10),
        "pgbouncer_max_client_conn (10) is smaller than pgbouncer_default_pool_size (20)",
    ),
    "pgbouncer_max_db_connections_below_min": (
        case(pgbouncer_max_db_connections=5),
        "pgbouncer_max_db_connections (5) is smaller than pgbouncer_min_pool_size (10)",
    ),
    "pgbouncer_query_wait_negative": (
        case(pgbouncer_query_wait_timeout=-1),
        "pgbouncer_query_wait_timeout must be 0 (wait forever) or more",
    ),
    "pgbouncer_port_out_of_range": (case(pgbouncer_listen_port=70000), "pgbouncer_listen_port must be a TCP port"),
    "pgbouncer_listen_as_a_string": (
        case(pgbouncer_listen_addresses="127.0.0.1"),
        "pgbouncer_listen_addresses must be a list",
    ),
    "pgbouncer_listen_injection": (
        case(pgbouncer_listen_addresses=["127.0.0.1\nauth_type = trust"]),
        "pgbouncer_listen_addresses[0] must be one address",
    ),
    "pgbouncer_relative_socket_dir": (
        case(pgbouncer_unix_socket_dir="run/postgresql"),
        "pgbouncer_unix_socket_dir must be an absolute directory path",
    ),
    "pgbouncer_database_bad_name": (
        case(pgbouncer_databases=[{"name": "app db"}]),
        'pgbouncer_databases[0].name "app db"',
    ),
    "pgbouncer_database_named_pgbouncer": (
        case(pgbouncer_databases=[{"name": "pgbouncer"}]),
        'pgbouncer_databases[0].name "pgbouncer"',
    ),
    "pgbouncer_database_host_injection": (
        case(pgbouncer_databases=[{"name": "app", "host": "db1 user=postgres"}]),
        'pgbouncer_databases[0] (app).host "db1 user=postgres" must be one host name',
    ),
    "pgbouncer_database_bad_port": (
        case(pgbouncer_databases=[{"name": "app", "port": 0}]),
        "pgbouncer_databases[0] (app).port must be a TCP port",
    ),
    "pgbouncer_database_pool_size_zero": (
        case(pgbouncer_databases=[{"name": "app", "pool_size": 0}]),
        "pgbouncer_databases[0] (app).pool_size must be between 1 and 10000",
    ),
    "pgbouncer_database_min_above_pool": (
        case(pgbouncer_databases=[{"name": "app", "pool_size": 5, "min_pool_size": 6}]),
        "pgbouncer_databases[0] (app).min_pool_size must be between 0 and the pool size (5)",
    ),
    "pgbouncer_database_duplicate": (
        case(pgbouncer_databases=[DATABASE, DATABASE]),
        'pgbouncer_databases names must be unique: "ai_agent_sdk"',
    ),
    "pgbouncer_auth_user_without_password": (
        case(pgbouncer_auth_password=""),
        "pgbouncer_auth_password is empty but pgbouncer_auth_user (pgbouncer_auth) must log in",
    ),
    "pgbouncer_auth_password_newline": (
        case(pgbouncer_auth_password=SECRET + "\n"),
        "pgbouncer_auth_password must not contain control characters",
    ),
    "pgbouncer_auth_user_postgres": (
        case(pgbouncer_auth_user="postgres"),
        "pgbouncer_auth_user must be a PostgreSQL role name of lower-case letters, digits and _"
        ' (not postgres nor pgbouncer), not "postgres"',
    ),
    "pgbouncer_auth_user_injection": (
        case(pgbouncer_auth_user='auth"; DROP ROLE app; --'),
        "pgbouncer_auth_user must be a PostgreSQL role name",
    ),
    "pgbouncer_admin_user_bad": (
        case(pgbouncer_admin_users=["Admin User"]),
        "pgbouncer_admin_users[0] must be a role name",
    ),
    "pgbouncer_tls_without_certificate": (
        case(pgbouncer_client_tls_cert_file="", pgbouncer_client_tls_key_file=""),
        "pgbouncer_client_tls_sslmode is require: set pgbouncer_client_tls_cert_file and pgbouncer_client_tls_key_file",
    ),
    "pgbouncer_tls_without_key": (
        case(pgbouncer_client_tls_key_file=""),
        "pgbouncer_client_tls_sslmode is require: set pgbouncer_client_tls_cert_file and pgbouncer_client_tls_key_file",
    ),
    "pgbouncer_verify_clients_without_ca": (
        case(pgbouncer_client_tls_sslmode="verify-full"),
        "pgbouncer_client_tls_sslmode is verify-full, which checks client certificates:"
        " set pgbouncer_client_tls_ca_file",
    ),
    "pgbouncer_tls_files_with_tls_off": (
        case(pgbouncer_client_tls_sslmode="disable"),
        "pgbouncer_client_tls_cert_file, pgbouncer_client_tls_key_file or pgbouncer_client_tls_ca_file is set but"
        " pgbouncer_client_tls_sslmode is disable",
    ),
    "pgbouncer_no_client_tls_protocol": (
        case(pgbouncer_client_tls_protocols=[]),
        "pgbouncer_client_tls_protocols is empty",
    ),
    "pgbouncer_server_verify_without_ca": (
        case(pgbouncer_server_tls_ca_file=""),
        "pgbouncer_server_tls_sslmode is verify-full: set pgbouncer_server_tls_ca_file",
    ),
    "pgbouncer_relative_certificate": (
        case(pgbouncer_client_tls_cert_file="pki/db.crt"),
        "pgbouncer_client_tls_cert_file must be an absolute path",
    ),
    "pgbouncer_extra_config_newline": (
        case(pgbouncer_extra_config={"server_lifetime": "3600\nauth_type = trust"}),
        'pgbouncer_extra_config "server_lifetime"',
    ),
}

# host name: variables that pass.
GOOD_HOSTS: dict[str, dict] = {
    "pgbouncer_good": GOOD,
    "pgbouncer_no_databases_no_password": TLS,
    "pgbouncer_tls_off": {"pgbouncer_client_tls_sslmode": "disable"},
}

PREFLIGHT = PreflightCases("pgbouncer", CASES, GOOD_HOSTS, secret=SECRET)
preflight = PREFLIGHT.fixture("preflight_pgbouncer")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_secret_stays_out_of_the_whole_output = PREFLIGHT.secret_test()


@pytest.mark.parametrize(
    ("variables", "name"),
    [
        ({"pgbouncer_pool_mode": "sometimes"}, "pgbouncer_pool_mode"),
        ({"pgbouncer_client_tls_protocols": ["tlsv1.3", "sslv3"]}, "pgbouncer_client_tls_protocols"),
        ({"pgbouncer_databases": [{"host": "127.0.0.1"}]}, "pgbouncer_databases"),
        ({"pgbouncer_databases": [{"name": "app", "pool_mode": "sometimes"}]}, "pool_mode"),
    ],
)
def test_argument_spec_names_the_variable(tmp_path, variables, name):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_preflight(tmp_path, "pgbouncer", {**GOOD, **variables})
    assert_argument_error(process, failed, name)
    assert SECRET not in process.stdout
