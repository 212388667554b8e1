"""Every preflight message of the postgresql role (the runner is tests/tools/preflight_cases.py).

Each case is one local host whose variables hold one mistake; its preflight task must fail
with that message alone. Two helper hosts act as primaries for the replica cases.
"""

from __future__ import annotations

from preflight_cases import SECRET, PreflightCases, assert_argument_error, run_role_preflight

TLS = {
    "postgresql_ssl_cert_file": "/etc/corvid/pki/postgresql.fullchain.crt",
    "postgresql_ssl_key_file": "/etc/corvid/pki/private/postgresql.key",
}
APP = {"name": "app", "password": SECRET}
DB = {"name": "ai_agent_sdk", "owner": "app"}

# Primaries the replica cases point at: one with TLS, one without. Both pass on their own.
PRIMARIES = {
    "postgresql_tls_primary": {**TLS, "postgresql_replication_password": SECRET},
    "postgresql_plain_primary": {"postgresql_replication_password": SECRET},
}

# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "postgresql_bad_database_name": (
        {"postgresql_databases": [{"name": "Agent-DB"}]},
        'postgresql_databases[0].name "Agent-DB" is not a valid database name',
    ),
    "postgresql_database_name_too_long": (
        {"postgresql_databases": [{"name": "d" * 64}]},
        "postgresql_databases[0].name",
    ),
    "postgresql_reserved_database": (
        {"postgresql_databases": [{"name": "template1"}]},
        'postgresql_databases[0].name "template1" is one of PostgreSQL\'s own databases',
    ),
    "postgresql_bad_user_name": (
        {"postgresql_users": [{"name": "1app", "password": SECRET}]},
        'postgresql_users[0].name "1app" is not a valid user name',
    ),
    "postgresql_user_name_injection": (
        {"postgresql_users": [{"name": "app; DROP ROLE x", "password": SECRET}]},
        "postgresql_users[0].name",
    ),
    "postgresql_reserved_user_prefix": (
        {"postgresql_users": [{"name": "pg_app", "password": SECRET}]},
        'postgresql_users[0].name "pg_app" is not a valid user name',
    ),
    "postgresql_user_is_replication_user": (
        {"postgresql_users": [{"name": "replicator", "password": SECRET}]},
        'postgresql_users[0].name "replicator" is managed by the role itself',
    ),
    "postgresql_user_without_password": (
        {"postgresql_users": [{"name": "app"}]},
        "postgresql_users[0] (app) has no password: set password (from vault)",
    ),
    "postgresql_duplicate_users": (
        {"postgresql_users": [APP, APP]},
        'postgresql_users names must be unique: "app"',
    ),
    "postgresql_unknown_role_attribute": (
        {"postgresql_users": [{**APP, "role_attr_flags": ["SUPERDUPER"]}]},
        'postgresql_users[0].role_attr_flags: "SUPERDUPER" is not a role attribute',
    ),
    "postgresql_owner_unknown": (
        {"postgresql_databases": [{"name": "ai_agent_sdk", "owner": "nobody"}]},
        'postgresql_databases[0] (ai_agent_sdk): owner "nobody" is not in postgresql_users',
    ),
    "postgresql_unknown_privilege": (
        {
            "postgresql_users": [APP],
            "postgresql_databases": [DB],
            "postgresql_privileges": [
                {"database": "ai_agent_sdk", "type": "table", "objs": "t", "roles": ["app"], "privs": "SELECT,SELEKT"}
            ],
        },
        'postgresql_privileges[0].privs: "SELEKT" is not a privilege on a table',
    ),
    "postgresql_privilege_of_another_type": (
        {
            "postgresql_users": [APP],
            "postgresql_databases": [DB],
            "postgresql_privileges": [
                {"database": "ai_agent_sdk", "type": "database", "roles": "app", "privs": ["SELECT"]}
            ],
        },
        'postgresql_privileges[0].privs: "SELECT" is not a privilege on a database',
    ),
    "postgresql_privilege_unknown_role": (
        {
            "postgresql_databases": [{"name": "ai_agent_sdk"}],
            "postgresql_privileges": [
                {"database": "ai_agent_sdk", "type": "database", "roles": ["ghost"], "privs": "CONNECT"}
            ],
        },
        'postgresql_privileges[0].roles: "ghost" is not in postgresql_users',
    ),
    "postgresql_privilege_unknown_database": (
        {
            "postgresql_privileges": [
                {"database": "nowhere", "type": "database", "roles": ["postgres"], "privs": "CONNECT"}
            ]
        },
        'postgresql_privileges[0].database "nowhere" is not in postgresql_databases',
    ),
    "postgresql_schema_unknown_database": (
        {"postgresql_schemas": [{"database": "nowhere", "name": "agent"}]},
        'postgresql_schemas[0].database "nowhere" is not in postgresql_databases',
    ),
    "postgresql_extension_bad_name": (
        {"postgresql_extensions": [{"database": "postgres", "name": "pgcrypto; DROP"}]},
        "postgresql_extensions[0].name",
    ),
    "postgresql_monitoring_user_without_password": (
        {"postgresql_monitoring_user": {"name": "postgres_exporter"}},
        "postgresql_monitoring_user has no password",
    ),
    "postgresql_replica_of_unknown_host": (
        {"postgresql_primary": "db9", "postgresql_replication_password": SECRET},
        'postgresql_primary "db9" is not a host of the inventory',
    ),
    "postgresql_replica_of_itself": (
        {"postgresql_primary": "postgresql_replica_of_itself", "postgresql_replication_password": SECRET},
        "postgresql_primary names this host itself",
    ),
    "postgresql_replica_without_password": (
        {"postgresql_primary": "postgresql_tls_primary"},
        "postgresql_replication_password is required on a replica",
    ),
    "postgresql_replica_of_primary_without_tls": (
        {"postgresql_primary": "postgresql_plain_primary", "postgresql_replication_password": SECRET},
        "postgresql_primary postgresql_plain_primary has no TLS",
    ),
    "postgresql_pgdg_unknown_version": (
        {"postgresql_source": "pgdg", "postgresql_version": "99"},
        'postgresql_version "99" is not a PostgreSQL major version PGDG publishes',
    ),
    "postgresql_pgdg_without_version": (
        {"postgresql_source": "pgdg"},
        "postgresql_version is empty but postgresql_source is pgdg",
    ),
    "postgresql_debian_other_version": (
        {"postgresql_version": "16"},
        'postgresql_version "16": Debian',
    ),
    "postgresql_port_out_of_range": ({"postgresql_port": 70000}, "postgresql_port must be a TCP port"),
    "postgresql_no_connections": ({"postgresql_max_connections": 0}, "postgresql_max_connections must be between"),
    "postgresql_bad_memory_size": (
        {"postgresql_shared_buffers": "lots"},
        "postgresql_shared_buffers must be a size such as 512MB or 2GB (kB, MB, GB, TB), or empty",
    ),
    "postgresql_certificate_without_key": (
        {"postgresql_ssl_cert_file": TLS["postgresql_ssl_cert_file"]},
        "postgresql_ssl_cert_file and postgresql_ssl_key_file go together",
    ),
    "postgresql_networks_without_tls": (
        {"postgresql_hba_networks": ["10.0.0.0/8"]},
        "postgresql_hba_networks and postgresql_hba_entries allow connections over TLS only",
    ),
    "postgresql_network_without_prefix": (
        {**TLS, "postgresql_hba_networks": ["10.0.0.1"]},
        "postgresql_hba_networks[0] must be an address with a prefix length",
    ),
    "postgresql_hba_md5": (
        {**TLS, "postgresql_hba_entries": [{"type": "hostssl", "address": "10.0.0.0/8", "method": "md5"}]},
        'postgresql_hba_entries[0].method "md5" is not allowed for hostssl',
    ),
    "postgresql_hba_trust_local": (
        {"postgresql_hba_entries": [{"type": "local", "method": "trust"}]},
        'postgresql_hba_entries[0].method "trust" is not allowed for local',
    ),
    "postgresql_setting_injection": (
        {"postgresql_settings": {"work_mem": "4MB\nlisten_addresses = '*'"}},
        'postgresql_settings "work_mem": the key must be a setting name and the value one line',
    ),
    "postgresql_bad_log_filename": (
        {"postgresql_log_filename": "../../etc/x.log"},
        "postgresql_log_filename must be a file name",
    ),
    "postgresql_replication_password_colon": (
        {"postgresql_replication_password": "a:b"},
        "postgresql_replication_password must not contain control characters",
    ),
}

# host name: variables that pass (the primaries too).
GOOD: dict[str, dict] = {
    "postgresql_good": {
        **TLS,
        "postgresql_hba_networks": ["10.0.0.0/8", "fd00::/8"],
        "postgresql_users": [APP, {"name": "reporter", "password": SECRET, "roles": ["pg_read_all_data"]}],
        "postgresql_databases": [DB],
        "postgresql_schemas": [{"database": "ai_agent_sdk", "name": "agent", "owner": "app"}],
        "postgresql_extensions": [{"database": "ai_agent_sdk", "name": "pgcrypto"}],
        "postgresql_privileges": [
            {
                "database": "ai_agent_sdk",
                "type": "database",
                "objs": "ai_agent_sdk",
                "roles": ["reporter"],
                "privs": "CONNECT",
            },
            {
                "database": "ai_agent_sdk",
                "type": "table",
                "schema": "agent",
                "objs": "ALL_IN_SCHEMA",
                "roles": "reporter",
                "privs": ["SELECT"],
            },
        ],
        "postgresql_monitoring_user": {"name": "postgres_exporter", "password": SECRET},
        "postgresql_shared_buffers": "2GB",
    },
    **PRIMARIES,
}

PREFLIGHT = PreflightCases("postgresql", CASES, GOOD, secret=SECRET)
preflight = PREFLIGHT.fixture("preflight_postgresql")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()
test_secret_values_stay_out_of_the_whole_output = PREFLIGHT.secret_test()


def test_unknown_hba_type_fails_in_the_argument_spec(tmp_path):
    """A plain `host` line is not even a choice: the role's argument spec names the variable."""
    process, failed = run_role_preflight(
        tmp_path,
        "postgresql",
        {"postgresql_hba_entries": [{"type": "host", "address": "0.0.0.0/0", "method": "scram-sha-256"}]},
    )
    assert_argument_error(process, failed, "postgresql_hba_entries", "host")
