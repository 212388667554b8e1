"""Real state of the postgresql scenario: a primary and its streaming replica (Debian 13).

Clients run inside the scenario's containers (psql, openssl) and reach the servers by host
name on the scenario network, with TLS verified against the pki role's site CA. Passwords
come from the scenario's inventory (molecule.yml): test values only, handed to psql through
PGPASSWORD in the `sh -c` line testinfra runs; assertions compare outputs, not arguments.

The last tests run playbooks: a second converge (no change, no restart), converges that
change a setting of context user (reloaded) and one of context postmaster (restarted), then promote.yml,
which makes the replica writable, and a converge with postgresql_replica_reclone that
makes it a replica again, so the shared check-mode test that follows sees the converged state.
"""

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from recap import parse_recap

PRIMARY = "corvid-pg-primary"
REPLICA = "corvid-pg-replica"
CA = "/etc/corvid/pki/ca.crt"
SCENARIO = Path(__file__).parents[1]
ROOT = SCENARIO.parents[1]
VARS = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]["all"]
PASSWORDS = {user["name"]: user["password"] for user in VARS["postgresql_users"]}
PASSWORDS[VARS["postgresql_monitoring_user"]["name"]] = VARS["postgresql_monitoring_user"]["password"]

testinfra_hosts = [f"ansible://{PRIMARY}", f"ansible://{REPLICA}"]


def name_of(host):
    return host.backend.get_hostname()


def psql(host, sql, *, user="app", database="ai_agent_sdk", password=None, variables=None, **options):
    """Run SQL as USER over TCP (TLS verified unless options say otherwise). The SQL goes to psql
    on stdin, so :'name' reads psql variables (from `variables`)."""
    conninfo = {
        "host": name_of(host),
        "dbname": database,
        "user": user,
        "sslmode": "verify-full",
        "sslrootcert": CA,
        "connect_timeout": "5",
        **options,
    }
    settings = [f"--set={name}={value}" for name, value in (variables or {}).items()]
    return host.run(
        "printf '%%s\\n' %s | PGPASSWORD=%s psql -X -At -v ON_ERROR_STOP=1 "
        + " ".join(["%s"] * len(settings))
        + " %s -f -",
        sql,
        PASSWORDS.get(user, "") if password is None else password,
        *settings,
        " ".join(f"{key}={value}" for key, value in conninfo.items()),
    )


def local_sql(host, sql, database="postgres"):
    """Run one statement as postgres over the local socket (peer)."""
    return host.run("runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d %s -c %s", database, sql)


def wait_for(probe, timeout=20.0, interval=0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def ansible_playbook(playbook, *arguments):
    return subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], *arguments, str(playbook)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )


def once(host):
    """Tests about both hosts at once run with the primary's parameter only."""
    if name_of(host) != PRIMARY:
        pytest.skip("checks both hosts; runs once, with the primary's parameter")


@pytest.fixture(scope="module")
def primary(host):
    return host.get_host(f"ansible://{PRIMARY}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


@pytest.fixture(scope="module")
def replica(host):
    return host.get_host(f"ansible://{REPLICA}", ansible_inventory=os.environ["MOLECULE_INVENTORY_FILE"])


def test_service_running_enabled_listening(host):
    service = host.service("postgresql@17-main")
    assert service.is_running
    assert service.is_enabled
    assert host.socket("tcp://0.0.0.0:5432").is_listening


def test_scram_login_over_tls(host):
    run = psql(host, "SELECT current_user")
    assert (run.rc, run.stdout.strip()) == (0, "app"), run.stderr


def test_tls_1_3_negotiated(host):
    run = psql(host, "SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    assert (run.rc, run.stdout.strip()) == (0, "TLSv1.3"), run.stderr


def test_tls_1_2_refused(host):
    server = f"{name_of(host)}:5432"
    tls13 = host.run("openssl s_client -starttls postgres -connect %s -tls1_3 -CAfile %s </dev/null", server, CA)
    assert "TLSv1.3" in tls13.stdout and "Verify return code: 0 (ok)" in tls13.stdout, tls13.stdout
    tls12 = host.run("openssl s_client -starttls postgres -connect %s -tls1_2 </dev/null", server)
    assert tls12.rc != 0
    assert "Cipher is (NONE)" in tls12.stdout or "alert" in tls12.stderr, tls12.stdout + tls12.stderr


def test_plain_tcp_refused(host):
    run = psql(host, "SELECT 1", sslmode="disable")
    assert run.rc != 0
    assert "no encryption" in run.stderr, run.stderr


def test_password_and_md5_authentication_never_offered(host):
    """The server asks for SCRAM only: a client that accepts only md5 or a plain password fails."""
    for method in ("md5", "password"):
        run = psql(host, "SELECT 1", require_auth=method)
        assert run.rc != 0
        assert "server requested SASL authentication" in run.stderr, run.stderr


def test_md5_stored_password_refused(host, primary):
    """A role whose password is stored as an md5 hash cannot log in: hba demands scram-sha-256."""
    once(host)
    role = f"md5probe_{uuid.uuid4().hex[:8]}"
    probe = uuid.uuid4().hex
    created = local_sql(
        primary,
        f"SET password_encryption = 'md5'; CREATE ROLE {role} LOGIN PASSWORD '{probe}'; "
        f"GRANT CONNECT ON DATABASE ai_agent_sdk TO {role}",
    )
    assert created.rc == 0, created.stderr
    try:
        run = psql(primary, "SELECT 1", user=role, password=probe)
        assert run.rc != 0
        assert "password authentication failed" in run.stderr, run.stderr
    finally:
        local_sql(primary, f"REVOKE CONNECT ON DATABASE ai_agent_sdk FROM {role}; DROP ROLE {role}")


def test_wrong_password_refused(host):
    run = psql(host, "SELECT 1", password=uuid.uuid4().hex)
    assert run.rc != 0
    assert "password authentication failed" in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("user", "database", "allowed"),
    [
        ("app", "ai_agent_sdk", True),
        ("app", "other", False),
        ("app", "postgres", False),
        ("app", "template1", False),
        ("reporter", "ai_agent_sdk", True),
        ("reporter", "other", False),
        ("legacy", "other", True),
        ("legacy", "ai_agent_sdk", False),
    ],
)
def test_users_reach_only_their_databases(host, user, database, allowed):
    run = psql(host, "SELECT current_database()", user=user, database=database)
    if allowed:
        assert (run.rc, run.stdout.strip()) == (0, database), run.stderr
    else:
        assert run.rc != 0
        assert "permission denied for database" in run.stderr, run.stderr


def test_monitoring_user_has_pg_monitor(host):
    run = host.run(
        "PGPASSWORD=%s psql -X -At -h /var/run/postgresql -U postgres_exporter -d postgres -c %s",
        PASSWORDS["postgres_exporter"],
        "SELECT pg_has_role('pg_monitor', 'MEMBER')",
    )
    assert (run.rc, run.stdout.strip()) == (0, "t"), run.stderr


def test_schema_extension_and_privileges(host):
    run = psql(host, "SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'")
    assert run.stdout.strip() == "pgcrypto", run.stderr
    run = psql(host, "SELECT has_schema_privilege('agent', 'USAGE')", user="reporter")
    assert (run.rc, run.stdout.strip()) == (0, "t"), run.stderr


def test_hba_rejects_everything_else(host):
    lines = [
        line.split()
        for line in host.file("/etc/postgresql/17/main/pg_hba.conf").content_string.splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == ["local", "all", "postgres", "peer"]
    assert [line[:2] + line[-1:] for line in lines[-6:]] == [
        [kind, database, "reject"] for database in ("all", "replication") for kind in ("local", "hostssl", "hostnossl")
    ]
    # No plain `host` line at all; connections without TLS only ever meet a reject.
    assert {line[0] for line in lines} <= {"local", "hostssl", "hostnossl"}
    assert all(line[-1] == "reject" for line in lines if line[0] == "hostnossl")
    assert not {line[-1] for line in lines} & {"md5", "password", "trust"}


def test_configuration(host):
    config = host.file("/etc/postgresql/17/main/postgresql.conf").content_string
    assert config.rstrip().endswith("include_dir = 'conf.d'")
    settings = dict(
        line.split("|")
        for line in local_sql(
            host,
            "SELECT name, setting FROM pg_settings WHERE name IN ('password_encryption', 'ssl',"
            " 'ssl_min_protocol_version', 'log_destination', 'max_connections', 'shared_buffers')",
        ).stdout.split()
    )
    assert settings == {
        "password_encryption": "scram-sha-256",
        "ssl": "on",
        "ssl_min_protocol_version": "TLSv1.3",
        "log_destination": "jsonlog",
        "max_connections": "50",
        "shared_buffers": "16384",
    }


def test_json_log_written(host):
    logs = host.run("ls /var/log/postgresql/17-main/").stdout.split()
    assert any(name.endswith(".json") for name in logs), logs


def test_secrets_stay_private(host):
    passfile = host.file("/var/lib/postgresql/.pgpass-replication")
    assert (passfile.user, passfile.mode) == ("postgres", 0o600)
    config = host.file("/etc/postgresql/17/main/postgresql.conf").content_string
    assert all(password not in config for password in PASSWORDS.values())
    assert VARS["postgresql_replication_password"] not in config


def test_replica_streams_over_tls_from_its_slot(host, primary):
    once(host)
    run = local_sql(
        primary,
        "SELECT r.application_name, r.state, s.ssl, r.sync_state FROM pg_stat_replication r"
        " JOIN pg_stat_ssl s USING (pid)",
    )
    assert run.stdout.strip() == "corvid_corvid_pg_replica|streaming|t|async", run.stdout + run.stderr
    slot = local_sql(primary, "SELECT slot_name, active FROM pg_replication_slots")
    assert slot.stdout.strip() == "corvid_corvid_pg_replica|t"


def test_row_written_on_primary_is_read_on_replica(host, primary, replica):
    once(host)
    marker = uuid.uuid4().hex
    write = psql(
        primary,
        "CREATE TABLE IF NOT EXISTS agent.probe (marker text PRIMARY KEY, at timestamptz DEFAULT now());"
        " INSERT INTO agent.probe (marker) VALUES (:'marker')",
        variables={"marker": marker},
    )
    assert write.rc == 0, write.stderr
    start = time.monotonic()
    found = wait_for(
        lambda: (
            psql(
                replica, "SELECT count(*) FROM agent.probe WHERE marker = :'marker'", variables={"marker": marker}
            ).stdout.strip()
            == "1"
        ),
        timeout=10,
    )
    assert found, "the row did not reach the replica within 10 s"
    assert time.monotonic() - start < 10


def test_replica_is_read_only(host, replica):
    once(host)
    assert local_sql(replica, "SELECT pg_is_in_recovery()").stdout.strip() == "t"
    run = psql(replica, "CREATE TABLE agent.nope (id int)")
    assert run.rc != 0
    assert "read-only transaction" in run.stderr, run.stderr


def test_second_run_changes_nothing_and_never_restarts(host, primary, replica):
    """Another converge: no change, the same postmaster, and a file another role dropped in
    conf.d/ (e.g. pgbackrest.conf) is left alone."""
    once(host)
    started = {h: local_sql(h, "SELECT pg_postmaster_start_time()").stdout for h in (primary, replica)}
    foreign = "/etc/postgresql/17/main/conf.d/zz-other-role.conf"
    primary.run("echo '# written by another role' > %s", foreign)
    run = ansible_playbook(SCENARIO / "converge.yml")
    assert run.returncode == 0, run.stdout[-3000:]
    for row in parse_recap(run.stdout).values():
        assert (row["changed"], row["failed"]) == (0, 0), run.stdout[-3000:]
    assert {h: local_sql(h, "SELECT pg_postmaster_start_time()").stdout for h in (primary, replica)} == started
    assert primary.file(foreign).exists
    primary.run("rm -f %s", foreign)


def test_reload_or_restart_as_pg_settings_says(host, primary):
    """A changed setting of context user (work_mem) is applied by a reload, one of context
    postmaster (max_connections) by a restart, and the run says which. The converge of the
    next test puts the scenario's values back."""
    once(host)

    def converge(*extra):
        run = ansible_playbook(SCENARIO / "converge.yml", *extra)
        assert run.returncode == 0, run.stdout[-3000:]
        return " ".join(run.stdout.split())

    def started():
        return local_sql(primary, "SELECT pg_postmaster_start_time()").stdout

    before = started()
    output = converge("-e", "postgresql_work_mem=8MB")
    assert "changed: reloaded, no setting needs a restart" in output, output[-3000:]
    assert started() == before
    assert local_sql(primary, "SHOW work_mem").stdout.strip() == "8MB"

    output = converge("-e", "postgresql_work_mem=8MB", "-e", "postgresql_max_connections=60")
    assert "changed: restarted for max_connections (context postmaster)" in output, output[-3000:]
    assert started() != before
    assert local_sql(primary, "SHOW max_connections").stdout.strip() == "60"


def test_promote_makes_the_replica_writable_then_reclone(host, primary, replica):
    """promote.yml, then the replica is cloned back (postgresql_replica_reclone) for the next tests."""
    once(host)
    run = ansible_playbook(
        ROOT / "playbooks" / "promote.yml", "-e", f"promote_host={REPLICA}", "-e", "postgresql_promote_group=all"
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert local_sql(replica, "SELECT pg_is_in_recovery()").stdout.strip() == "f"
    write = psql(replica, "CREATE TABLE agent.after_promotion (id int); INSERT INTO agent.after_promotion VALUES (1)")
    assert write.rc == 0, write.stderr
    assert not replica.file("/var/lib/postgresql/17/main/standby.signal").exists

    # The inventory still names the old primary: a plain converge refuses to clone over it...
    refused = ansible_playbook(SCENARIO / "converge.yml")
    assert refused.returncode != 0
    # (ansible-core prints a task's failure on stderr)
    assert "it was promoted" in " ".join((refused.stdout + refused.stderr).split()), refused.stderr[-3000:]
    # ...and with postgresql_replica_reclone it becomes a fresh replica again.
    again = ansible_playbook(SCENARIO / "converge.yml", "-e", "postgresql_replica_reclone=true")
    assert again.returncode == 0, again.stdout[-4000:]
    assert local_sql(replica, "SELECT pg_is_in_recovery()").stdout.strip() == "t"
    assert psql(replica, "SELECT to_regclass('agent.after_promotion') IS NULL").stdout.strip() == "t"
