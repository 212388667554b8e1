"""The lab's database tier, checked on the hosts: db1 the primary, db2 its streaming replica,
PgBouncer on both, pgBackRest backing db1 up to two buckets of objects1's object store.

Clients run on db2 (it has psql and trusts the lab CA) against db1 over the lab network;
passwords go through the environment of the command, never its arguments or the output.
"""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest
from conftest import BIN, INVENTORY, ROOT, lab_host

pytestmark = pytest.mark.lab

DSN = "host={host} port={port} dbname=ai_agent_sdk user=app sslmode={sslmode} sslrootcert=/etc/corvid/pki/ca.crt"


def psql(
    client, password: str, sql: str, *, host: str = "db1", port: int = 5432, sslmode: str = "verify-full", marker=""
):
    """Run SQL (read from stdin, `:'marker'` bound to `marker`) as the app user from `client`."""
    dsn = DSN.format(host=host, port=port, sslmode=sslmode)
    sql = sql.rstrip().removesuffix(";") + ";"
    return client.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAtq -v ON_ERROR_STOP=1 -v marker=%s %s -f - <<'SQL'\n"
        + sql
        + "\nSQL",
        password,
        marker,
        dsn,
    )


@pytest.fixture(scope="module")
def app_password(lab_secrets) -> str:
    return lab_secrets["vault_postgresql_app_password"]


def test_app_login_is_scram_over_tls13(app_password):
    cmd = psql(
        lab_host("db2"),
        app_password,
        "SELECT s.version || ' ' || a.usename FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE pid = pg_backend_pid()",
    )
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "TLSv1.3 app"


def test_plain_tcp_and_a_wrong_password_are_refused(app_password):
    client = lab_host("db2")
    plain = psql(client, app_password, "SELECT 1", sslmode="disable")
    assert plain.rc != 0
    assert "no pg_hba.conf entry" in plain.stderr or "rejects connection" in plain.stderr, plain.stderr
    wrong = psql(client, app_password + "x", "SELECT 1")
    assert wrong.rc != 0
    assert "password authentication failed" in wrong.stderr, wrong.stderr


def test_hba_has_no_weak_method():
    rules = lab_host("db1").run(
        "runuser -u postgres -- psql -XAtq -c \"SELECT type || ' ' || auth_method FROM pg_hba_file_rules\""
    )
    assert rules.rc == 0, rules.stderr
    lines = rules.stdout.split()
    assert lines, "pg_hba.conf has no rules"
    methods = {line.split()[-1] for line in rules.stdout.splitlines()}
    assert methods <= {"peer", "scram-sha-256", "reject"}, methods
    assert not any(line.startswith("host ") for line in rules.stdout.splitlines()), rules.stdout


def test_the_app_user_reaches_only_its_database(app_password):
    client = lab_host("db2")
    dsn = DSN.format(host="db1", port=5432, sslmode="verify-full").replace("dbname=ai_agent_sdk", "dbname=postgres")
    cmd = client.run("PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAtq %s -c 'SELECT 1'", app_password, dsn)
    assert cmd.rc != 0
    assert "permission denied for database" in cmd.stderr or "no pg_hba.conf entry" in cmd.stderr, cmd.stderr


def test_pgbouncer_pools_over_tls13(app_password):
    client = lab_host("db2")
    cmd = psql(client, app_password, "SELECT current_database()", port=6432)
    assert cmd.rc == 0, cmd.stderr
    assert cmd.stdout.strip() == "ai_agent_sdk"
    handshake = client.run(
        "openssl s_client -starttls postgres -connect db1:6432 -CAfile /etc/corvid/pki/ca.crt "
        "-verify_return_error -brief </dev/null"
    )
    assert "Protocol version: TLSv1.3" in handshake.stderr + handshake.stdout, handshake.stderr


def test_a_row_written_on_db1_is_read_on_db2_which_refuses_writes(app_password):
    client = lab_host("db2")
    marker = f"lab-{time.time_ns()}"
    setup = psql(
        client,
        app_password,
        "CREATE TABLE IF NOT EXISTS lab_probe (marker text PRIMARY KEY); INSERT INTO lab_probe VALUES (:'marker');",
        marker=marker,
    )
    assert setup.rc == 0, setup.stderr
    deadline = time.monotonic() + 15
    while True:
        read = psql(
            client, app_password, "SELECT count(*) FROM lab_probe WHERE marker = :'marker';", host="db2", marker=marker
        )
        if read.rc == 0 and read.stdout.strip() == "1":
            break
        assert time.monotonic() < deadline, f"not replicated within 15 s: {read.stdout} {read.stderr}"
        time.sleep(0.5)
    write = psql(client, app_password, "INSERT INTO lab_probe VALUES (:'marker');", host="db2", marker="on-the-replica")
    assert write.rc != 0
    assert "read-only transaction" in write.stderr, write.stderr


def playbook_json(playbook: str, *args: str) -> tuple[int, dict]:
    """Run a playbook on the lab with the JSON callback; return rc and the parsed output."""
    run = subprocess.run(
        [BIN / "ansible-playbook", "-i", INVENTORY, playbook, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=900,
        env={**os.environ, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )
    return run.returncode, json.loads(run.stdout) if run.stdout.startswith("{") else {"stdout": run.stdout[-3000:]}


def task_result(output: dict, name: str, host: str) -> dict:
    for play in output.get("plays", []):
        for task in play["tasks"]:
            if task["task"]["name"].endswith(name) and host in task["hosts"]:
                return task["hosts"][host]
    raise AssertionError(f"task {name!r} did not run on {host}: {str(output)[-2000:]}")


def as_postgres(sql: str, database: str = "ai_agent_sdk") -> str:
    cmd = lab_host("db1").run("runuser -u postgres -- psql -XAtq -d %s -c %s", database, sql)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


# The row count and checksum restore.yml reports for a table (roles/pgbackrest/tasks/restore.yml).
TABLE_DIGEST = (
    "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), ''))"
    " FROM public.lab_pitr AS t"
)


@pytest.fixture(scope="module")
def lab_backup():
    """A full backup of the cluster now, through playbooks/backup.yml, as an operator takes one:
    on db2, the backup host, which reads the data files from itself (backup-standby)."""
    as_postgres("CREATE TABLE IF NOT EXISTS public.lab_pitr (id int PRIMARY KEY, note text)")
    as_postgres(
        "TRUNCATE public.lab_pitr; INSERT INTO public.lab_pitr SELECT g, md5(g::text) FROM generate_series(1, 500) g"
    )
    rc, output = playbook_json("playbooks/backup.yml")
    assert rc == 0, str(output)[-3000:]
    return output


def test_db1_is_backed_up_to_both_repositories(lab_backup):
    info = lab_host("db1").run("runuser -u postgres -- pgbackrest --stanza=main --output=json info")
    assert info.rc == 0, info.stderr
    stanza = json.loads(info.stdout)[0]
    assert stanza["status"]["code"] == 0, stanza["status"]
    repos_with_backups = {backup["database"]["repo-key"] for backup in stanza["backup"]}
    assert repos_with_backups == {1, 2}, stanza["backup"]


def test_the_backup_metrics_file_names_the_last_backup(lab_backup):
    metrics = lab_host("db2").file("/var/lib/prometheus/node-exporter/pgbackrest.prom")
    assert metrics.exists
    lines = [line for line in metrics.content_string.splitlines() if line.startswith("pgbackrest_backup_last_success")]
    assert lines, metrics.content_string[:2000]
    newest = max(float(line.rsplit(" ", 1)[1]) for line in lines)
    assert time.time() - newest < 36 * 3600


def test_point_in_time_recovery_into_a_scratch_cluster(lab_backup):
    """Write more rows, note the time, delete rows by accident, restore to the noted time."""
    as_postgres("INSERT INTO public.lab_pitr SELECT g, md5(g::text) FROM generate_series(501, 800) g")
    expected = as_postgres(TABLE_DIGEST)
    assert expected.startswith("800 ")
    time.sleep(1.1)
    target = as_postgres("SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.1)
    as_postgres("DELETE FROM public.lab_pitr WHERE id > 20")
    # Close the WAL segment holding the deletion, so the archive reaches past the target.
    archived = int(as_postgres("SELECT archived_count FROM pg_stat_archiver", "postgres"))
    as_postgres("SELECT pg_switch_wal()", "postgres")
    deadline = time.monotonic() + 60
    while int(as_postgres("SELECT archived_count FROM pg_stat_archiver", "postgres")) <= archived:
        assert time.monotonic() < deadline, "the WAL segment was not archived within 60 s"
        time.sleep(0.5)
    rc, output = playbook_json(
        "playbooks/restore.yml",
        "-l",
        "db1",
        "-e",
        json.dumps(
            {"restore_target_time": target, "restore_table": "public.lab_pitr", "restore_database": "ai_agent_sdk"}
        ),
    )
    assert rc == 0, str(output)[-3000:]
    report = task_result(output, "Report what was restored", "db1")["ansible_facts"]["pgbackrest_restore_report"]
    assert report["recovery_finished"] in {True, "True"}, report
    assert f"{report['table']['rows']} {report['table']['md5']}" == expected, report
    assert as_postgres("SELECT count(*) FROM public.lab_pitr") == "20"
    assert not lab_host("db1").file("/var/lib/postgresql/pgbackrest-scratch").exists
