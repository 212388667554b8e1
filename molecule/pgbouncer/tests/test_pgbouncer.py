"""Real state of the pgbouncer scenario: PgBouncer beside PostgreSQL on Debian 12 and 13.

Clients connect from inside each host with psql and openssl. Passwords come from the
scenario's inventory (molecule.yml) and reach psql through PGPASSWORD (they do sit in the
`sh -c` line testinfra runs through docker exec: test values only); assertions compare
outputs only, so a failure report does not print a password.
"""

import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

from recap import parse_recap

FIRST = "corvid-pgb-1"
PORT = 6432
CA = "/etc/corvid/pki/ca.crt"
SCENARIO = Path(__file__).parents[1]
VARIABLES = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]["all"]
APP_USER = VARIABLES["test_app_user"]
APP_PASSWORD = VARIABLES["test_app_password"]
AUTH_PASSWORD = VARIABLES["pgbouncer_auth_password"]
AUTH_USER = "pgbouncer_auth"
# Throwaway values made per run.
WRONG_PASSWORD = APP_PASSWORD[::-1]
SUPERUSER_PASSWORD = uuid.uuid4().hex


def name_of(host):
    return host.backend.get_hostname()


def psql(host, sql, *, password=APP_PASSWORD, user=APP_USER, dbname="ai_agent_sdk", sslmode="verify-full"):
    """Run SQL through PgBouncer over TCP as a client would; return (exit status, output)."""
    run = host.run(
        "PGCONNECT_TIMEOUT=10 PGPASSWORD=%s psql -X -At -v ON_ERROR_STOP=1 -c %s"
        " 'host=127.0.0.1 port=%s dbname=%s user=%s sslmode=%s sslrootcert=%s'",
        password,
        sql,
        str(PORT),
        dbname,
        user,
        sslmode,
        CA,
    )
    return run.rc, (run.stdout + run.stderr).strip()


def admin(host, command):
    """A SHOW command on PgBouncer's admin console, as the postgres system user over the unix
    socket; returns its rows as mappings of column name to value."""
    run = host.run(
        "runuser -u postgres -- psql -X -A -P footer=off -h /var/run/postgresql -p %s -U pgbouncer pgbouncer -c %s",
        str(PORT),
        command,
    )
    assert run.rc == 0, run.stderr
    header, *rows = [line.split("|") for line in run.stdout.splitlines()]
    return [dict(zip(header, row, strict=True)) for row in rows]


def show_config(host):
    return {row["key"]: row["value"] for row in admin(host, "SHOW CONFIG")}


def postgres(host, sql, dbname="ai_agent_sdk"):
    """SQL on the local PostgreSQL as postgres (peer over its socket)."""
    run = host.run("runuser -u postgres -- psql -X -At -d %s -c %s", dbname, sql)
    assert run.rc == 0, run.stderr
    return run.stdout.strip()


def main_pid(host):
    return host.run("systemctl show -p MainPID --value pgbouncer").stdout.strip()


def converge(*extra_vars):
    """The converge playbook on the first host, with extra variables; returns the process."""
    command = ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], "--limit", FIRST]
    for variables in extra_vars:
        command += ["--extra-vars", json.dumps(variables)]
    return subprocess.run(
        [*command, str(SCENARIO / "converge.yml")],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )


def test_service_running_and_enabled(host):
    service = host.service("pgbouncer")
    assert service.is_running
    assert service.is_enabled
    assert host.socket(f"tcp://127.0.0.1:{PORT}").is_listening
    assert host.process.get(comm="pgbouncer").user == "postgres"


def test_app_user_queries_through_pgbouncer_with_scram_over_tls(host):
    """verify-full against the site CA, SCRAM (the only auth_type), and the query returns the rows."""
    assert psql(host, "SELECT string_agg(name, ',' ORDER BY id) FROM items") == (0, "one,two,three")
    # The server side: PgBouncer's own connection to PostgreSQL is TLS 1.3 too.
    assert psql(host, "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()") == (0, "t|TLSv1.3")
    assert psql(host, "SELECT current_user, current_database()") == (0, f"{APP_USER}|ai_agent_sdk")


def test_client_side_negotiates_tls13_only(host):
    run = host.run("openssl s_client -starttls postgres -connect 127.0.0.1:%s -CAfile %s </dev/null", str(PORT), CA)
    assert "New, TLSv1.3" in run.stdout, run.stdout + run.stderr
    assert "Verify return code: 0 (ok)" in run.stdout
    old = host.run("openssl s_client -starttls postgres -tls1_2 -connect 127.0.0.1:%s </dev/null", str(PORT))
    assert old.rc != 0
    assert "New, TLSv1.2" not in old.stdout


def test_wrong_password_refused(host):
    rc, output = psql(host, "SELECT 1", password=WRONG_PASSWORD)
    assert rc != 0
    assert "authentication failed" in output


def test_client_without_tls_refused(host):
    rc, output = psql(host, "SELECT 1", sslmode="disable")
    assert rc != 0
    assert "SSL required" in output


def test_unknown_user_and_unlisted_database_refused(host):
    rc, output = psql(host, "SELECT 1", user="nobody")
    assert rc != 0
    assert "no such user" in output or "authentication failed" in output
    rc, output = psql(host, "SELECT 1", dbname="postgres")
    assert rc != 0
    assert "no such database" in output or "authentication failed" in output


def test_superuser_never_logs_in_through_pgbouncer(host):
    """The auth_query function does not return superusers' secrets, even with a password set."""
    postgres(host, f"ALTER ROLE postgres PASSWORD '{SUPERUSER_PASSWORD}'")
    try:
        rc, output = psql(host, "SELECT 1", user="postgres", password=SUPERUSER_PASSWORD)
    finally:
        postgres(host, "ALTER ROLE postgres PASSWORD NULL")
    assert rc != 0
    assert "no such user" in output or "authentication failed" in output


def test_transaction_pooling_in_effect(host):
    config = show_config(host)
    assert config["pool_mode"] == "transaction"
    assert config["auth_type"] == "scram-sha-256"
    assert (config["default_pool_size"], config["min_pool_size"], config["max_client_conn"]) == ("20", "10", "400")
    assert config["client_tls_sslmode"] == "require"
    assert config["client_tls_protocols"] == "tlsv1.3"
    assert config["server_tls_sslmode"] == "verify-full"
    assert psql(host, "SELECT 1")[0] == 0
    pools = {(row["database"], row["user"]): row for row in admin(host, "SHOW POOLS")}
    assert pools[("ai_agent_sdk", APP_USER)]["pool_mode"] == "transaction"
    # The per-database override: agent is session pooled with a pool of 5.
    databases = {row["name"]: row for row in admin(host, "SHOW DATABASES")}
    assert (databases["agent"]["database"], databases["agent"]["pool_size"]) == ("ai_agent_sdk", "5")
    assert databases["agent"]["pool_mode"] == "session"
    assert databases["ai_agent_sdk"]["pool_mode"] in {"", "transaction"}


def test_auth_file_holds_only_the_auth_user(host):
    auth_file = host.file("/etc/pgbouncer/userlist.txt")
    assert (auth_file.user, auth_file.group, auth_file.mode) == ("root", "postgres", 0o640)
    lines = auth_file.content_string.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f'"{AUTH_USER}" ')
    for path in ("/etc/pgbouncer/userlist.txt", "/etc/pgbouncer/pgbouncer.ini"):
        assert APP_PASSWORD not in host.file(path).content_string


def test_auth_function_is_private_to_the_auth_user(host):
    row = postgres(
        host,
        "SELECT p.prosecdef, pg_get_userbyid(p.proowner), p.proconfig::text,"
        " has_function_privilege('pgbouncer_auth', p.oid, 'EXECUTE'),"
        " has_function_privilege('app', p.oid, 'EXECUTE')"
        " FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace"
        " WHERE n.nspname = 'pgbouncer' AND p.proname = 'get_auth'",
    )
    assert row == 't|postgres|{"search_path=pg_catalog, pg_temp"}|t|f'
    rc, output = psql(host, "SELECT * FROM pgbouncer.get_auth('postgres')")
    assert rc != 0
    assert "permission denied" in output


def test_config_check_script_runs_by_hand(host):
    accepted = host.run("pgbouncer-config-check /etc/pgbouncer/pgbouncer.ini")
    assert accepted.rc == 0, accepted.stdout + accepted.stderr
    broken = host.run(
        "cp /etc/pgbouncer/pgbouncer.ini /tmp/broken.ini"
        " && sed -i 's/^pool_mode = .*/pool_mode = sometimes/' /tmp/broken.ini"
        " && pgbouncer-config-check /tmp/broken.ini; rc=$?; rm -f /tmp/broken.ini; exit $rc"
    )
    assert broken.rc == 1
    assert 'invalid value "sometimes" for parameter pool_mode' in broken.stdout + broken.stderr
    usage = host.run("pgbouncer-config-check")
    assert usage.rc == 2


def test_second_run_neither_restarts_nor_reloads(host):
    if name_of(host) != FIRST:
        pytest.skip("one host is enough")
    pid = main_pid(host)
    started = host.run("systemctl show -p ExecMainStartTimestampMonotonic --value pgbouncer").stdout
    run = converge()
    assert run.returncode == 0, run.stdout
    assert parse_recap(run.stdout)[FIRST]["changed"] == 0, run.stdout
    assert main_pid(host) == pid
    assert host.run("systemctl show -p ExecMainStartTimestampMonotonic --value pgbouncer").stdout == started


def test_pool_size_change_reloads_without_restart(host):
    if name_of(host) != FIRST:
        pytest.skip("one host is enough")
    pid = main_pid(host)
    run = converge({"pgbouncer_default_pool_size": 25})
    try:
        assert run.returncode == 0, run.stdout
        assert "RUNNING HANDLER [corvid.platform.pgbouncer : Reload pgbouncer]" in run.stdout
        assert show_config(host)["default_pool_size"] == "25"
        assert main_pid(host) == pid
    finally:
        restore = converge()
    assert restore.returncode == 0, restore.stdout
    assert show_config(host)["default_pool_size"] == "20"
    assert main_pid(host) == pid


def test_port_change_restarts(host):
    if name_of(host) != FIRST:
        pytest.skip("one host is enough")
    pid = main_pid(host)
    run = converge({"pgbouncer_listen_port": 6433})
    try:
        assert run.returncode == 0, run.stdout
        assert main_pid(host) != pid
        assert host.socket("tcp://127.0.0.1:6433").is_listening
    finally:
        restore = converge()
    assert restore.returncode == 0, restore.stdout
    assert host.socket(f"tcp://127.0.0.1:{PORT}").is_listening
    assert psql(host, "SELECT count(*) FROM items") == (0, "3")


def test_rejected_config_keeps_the_live_one(host):
    """A certificate PgBouncer cannot load fails the run and leaves the live file and process alone."""
    if name_of(host) != FIRST:
        pytest.skip("one host is enough")
    before = host.file("/etc/pgbouncer/pgbouncer.ini").sha256sum
    pid = main_pid(host)
    run = converge({"pgbouncer_client_tls_cert_file": "/etc/corvid/pki/missing.crt"})
    assert run.returncode != 0, run.stdout
    assert "Write the PgBouncer configuration" in run.stdout
    recap = parse_recap(run.stdout)[FIRST]
    assert (recap["changed"], recap["failed"]) == (0, 1), run.stdout
    output = run.stdout + run.stderr
    assert "missing.crt" in output and "TLS setup failed" in output, output
    assert AUTH_PASSWORD not in output
    assert host.file("/etc/pgbouncer/pgbouncer.ini").sha256sum == before
    assert main_pid(host) == pid
