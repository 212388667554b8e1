"""Real state of the pgbackrest_standby scenario: a PostgreSQL 17 primary and its streaming
replica (Debian 13); the replica is pgbackrest_backup_host with backup-standby, reaching the
primary's cluster through pgBackRest's TLS server (client certificates of the scenario's CA).

What pgBackRest itself says is the evidence: its log of the backup (the wait for replay on the
standby, the source host of each file copied), the backup's manifest in the repository
(option-backup-standby), `pgbackrest info`. The backup then restores into a scratch cluster
with the rows and checksum the primary had when it was taken.
"""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import testinfra

from recap import parse_recap

PRIMARY = testinfra.get_host("docker://root@m8-primary")
STANDBY = testinfra.get_host("docker://root@m8-standby")
OBJECTS = testinfra.get_host("docker://root@m8-objects")
STANZA = "main"
PG_DATA = "/var/lib/postgresql/17/main"
REPOS = {1: "corvid-backups-primary", 2: "corvid-backups-copy"}
TLS_PORT = 8432
PLAYBOOKS = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3])) / "playbooks"
MEASURE = (
    "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM standby_orders t"
)


def psql(sql, host=PRIMARY, port=5432):
    run = host.run("runuser -u postgres -- psql -XAtq -p %s -c %s", str(port), sql)
    assert run.rc == 0, run.stderr
    return run.stdout.strip()


def pgbackrest(host, *args):
    run = host.run("runuser -u postgres -- pgbackrest --stanza=%s " + " ".join(["%s"] * len(args)), STANZA, *args)
    assert run.rc == 0, run.stdout + run.stderr
    return run.stdout


def info(repo=None):
    extra = [f"--repo={repo}"] if repo else []
    out = pgbackrest(STANDBY, *extra, "--output=json", "--log-level-file=off", "info")
    return next(item for item in json.loads(out) if item["name"] == STANZA)


def playbook(name, *extra):
    run = subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], str(PLAYBOOKS / name), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    return run, parse_recap(run.stdout)


def wait_for(probe, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not (value := probe()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
def backup():
    """Rows on the primary, replayed on the standby, then playbooks/backup.yml on every database host."""
    psql("DROP TABLE IF EXISTS standby_orders; CREATE TABLE standby_orders (id int PRIMARY KEY, item text)")
    psql("INSERT INTO standby_orders SELECT g, 'item-' || g FROM generate_series(1, 5000) g")
    at_backup = psql(MEASURE)
    assert wait_for(lambda: psql("SELECT to_regclass('standby_orders') IS NOT NULL", host=STANDBY) == "t")
    assert wait_for(lambda: psql(MEASURE, host=STANDBY) == at_backup)
    before = {item["label"] for item in info()["backup"]}
    run, recap = playbook("backup.yml", "-e", "backup_type=full")
    assert run.returncode == 0, run.stdout + run.stderr
    labels = sorted({item["label"] for item in info()["backup"]} - before)
    log = STANDBY.file("/var/log/pgbackrest/main-backup.log").content_string
    return {"run": run, "recap": recap, "labels": labels, "at_backup": at_backup, "log": log}


def test_tls_server_runs_on_the_primary_only():
    assert PRIMARY.service("corvid-pgbackrest-server").is_running
    assert PRIMARY.service("corvid-pgbackrest-server").is_enabled
    assert PRIMARY.socket(f"tcp://0.0.0.0:{TLS_PORT}").is_listening
    assert PRIMARY.process.get(comm="pgbackrest", user="postgres")
    assert not STANDBY.file("/etc/systemd/system/corvid-pgbackrest-server.service").exists


def remote_stanza_create(host):
    """pgBackRest on HOST, with no configuration file, reaching the primary's cluster through the
    TLS server with HOST's certificate (a repository in a scratch directory of HOST)."""
    return host.run(
        "runuser -u postgres -- pgbackrest --config=/dev/null --stanza=%s --pg1-host=m8-primary --pg1-host-type=tls"
        " --pg1-host-port=%s --pg1-host-ca-file=/etc/corvid/pki/ca.crt"
        " --pg1-host-cert-file=/etc/corvid/pki/postgresql.fullchain.crt"
        " --pg1-host-key-file=/etc/corvid/pki/private/postgresql.key"
        " --pg1-path=%s --repo1-path=/tmp/tls-probe-repo --log-level-console=warn --log-level-file=off"
        " --no-online stanza-create; rc=$?; rm -rf /tmp/tls-probe-repo; exit $rc",
        STANZA,
        str(TLS_PORT),
        PG_DATA,
    )


def test_tls_server_admits_the_backup_host_only():
    """A certificate of the same CA with another common name (the primary's own) is refused."""
    refused = remote_stanza_create(PRIMARY)
    assert refused.rc != 0 and "access denied" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    admitted = remote_stanza_create(STANDBY)
    assert admitted.rc == 0, admitted.stdout + admitted.stderr


def test_timers_on_the_backup_host_only():
    for kind in ("full", "diff"):
        timer = STANDBY.service(f"corvid-pgbackrest-backup-{kind}.timer")
        assert timer.is_enabled and timer.is_running
        assert not PRIMARY.file(f"/etc/systemd/system/corvid-pgbackrest-backup-{kind}.timer").exists
    assert not PRIMARY.file("/etc/systemd/system/corvid-pgbackrest-backup@.service").exists


def test_primary_archives_and_standby_is_in_recovery():
    assert psql("SHOW archive_mode") == "on"
    assert psql("SELECT pg_is_in_recovery()") == "f"
    assert psql("SELECT pg_is_in_recovery()", host=STANDBY) == "t"


def test_check_from_the_backup_host_reaches_both_clusters():
    out = pgbackrest(STANDBY, "--log-level-console=detail", "check")
    assert "check command end: completed successfully" in out, out
    config = STANDBY.file("/etc/pgbackrest/pgbackrest.conf").content_string
    assert "pg2-host=m8-primary" in config and "pg2-host-type=tls" in config and "backup-standby=y" in config


def test_backup_playbook_runs_on_the_standby_only(backup):
    assert backup["recap"]["m8-primary"]["changed"] == 0
    assert backup["recap"]["m8-standby"]["failed"] == 0
    out = backup["run"].stdout
    for bucket in REPOS.values():
        assert f"bucket: {bucket}" in out, out
    assert len(backup["labels"]) == 2, backup["labels"]  # one in each repository


def test_backup_waited_for_replay_on_the_standby(backup):
    for label in backup["labels"]:
        section = backup["log"][: backup["log"].index(f"new backup label = {label}")]
        section = section[section.rindex("backup command begin") :]
        assert "--backup-standby" in section, section[:500]
        assert re.search(r"INFO: replay on the standby reached", section), section


def test_manifest_records_backup_standby(backup):
    for repo in REPOS:
        label = next(item["label"] for item in info(repo)["backup"] if item["label"] in backup["labels"])
        manifest = pgbackrest(STANDBY, f"--repo={repo}", "repo-get", f"backup/{STANZA}/{label}/backup.manifest")
        assert "option-backup-standby=true" in manifest, manifest[:2000]


def test_data_files_come_from_the_standby():
    """A backup at detail level: every file under base/ is read locally (the standby); the primary
    gives only the few files a standby cannot (pg_control, ...), prefixed with its host name."""
    psql("UPDATE standby_orders SET item = item || '+' WHERE id % 10 = 0")
    out = pgbackrest(STANDBY, "--repo=1", "--type=full", "--log-level-console=detail", "--log-level-file=off", "backup")
    copied = re.findall(r"DETAIL: backup file (\S+) \(", out)
    from_primary = [path for path in copied if path.startswith("m8-primary:")]
    local = [path for path in copied if path.startswith(PG_DATA + "/")]
    assert len(local) > 100 and [path for path in local if "/base/" in path], out[-3000:]
    assert not [path for path in from_primary if "/base/" in path], from_primary
    assert f"m8-primary:{PG_DATA}/global/pg_control" in from_primary, from_primary
    assert len(from_primary) < 20, from_primary


def test_backup_restores_into_a_scratch_cluster(backup):
    label = backup["labels"][0]
    repo = next(item["database"]["repo-key"] for item in info()["backup"] if item["label"] == label)
    extra = {"restore_set": label, "restore_repo": repo, "restore_table": "standby_orders"}
    run, recap = playbook("restore.yml", "-l", "m8-standby", "-e", json.dumps(extra))
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap["m8-standby"]["failed"] == 0
    rows, checksum = backup["at_backup"].split()
    assert rows == "5000"
    assert f"rows: {rows}" in run.stdout and f"md5: {checksum}" in run.stdout, run.stdout
    assert f"backup: {label}" in run.stdout
    assert not STANDBY.file("/var/lib/postgresql/pgbackrest-scratch").exists


def test_metrics_file_on_the_backup_host(backup):
    metrics = STANDBY.file("/var/lib/prometheus/node-exporter/pgbackrest.prom")
    assert metrics.exists and metrics.mode == 0o644
    content = metrics.content_string
    for label in backup["labels"]:
        item = next(item for item in info()["backup"] if item["label"] == label)
        labels = f'stanza="{STANZA}",repo="{item["database"]["repo-key"]}",type="full"'
        assert f"pgbackrest_backup_last_success_timestamp_seconds{{{labels}}}" in content, content
    assert not PRIMARY.file("/var/lib/prometheus/node-exporter/pgbackrest.prom").exists


def converge(**variables):
    scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
    return playbook(str(scenario / "converge.yml"), "-e", json.dumps(variables))


def test_emptied_backup_host_moves_the_backups_to_the_primary_and_back():
    """Last (it changes the layout, then restores it): with pgbackrest_backup_host emptied the
    primary holds the timers and backs itself up, the replica holds none and the TLS server is
    gone; named again, everything moves back."""
    run, recap = converge(pgbackrest_backup_host="", pgbackrest_backup_standby=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap["m8-primary"]["failed"] == 0
    assert PRIMARY.service("corvid-pgbackrest-backup-full.timer").is_enabled
    assert not PRIMARY.file("/etc/systemd/system/corvid-pgbackrest-server.service").exists
    assert not PRIMARY.socket(f"tcp://0.0.0.0:{TLS_PORT}").is_listening
    for name in (
        "corvid-pgbackrest-backup-full.timer",
        "corvid-pgbackrest-backup-diff.timer",
        "corvid-pgbackrest-backup@.service",
    ):
        assert not STANDBY.file(f"/etc/systemd/system/{name}").exists, name
    assert "pg2-host" not in STANDBY.file("/etc/pgbackrest/pgbackrest.conf").content_string
    out = pgbackrest(PRIMARY, "check")
    assert "check command end: completed successfully" in out, out

    run, recap = converge()
    assert run.returncode == 0, run.stdout + run.stderr
    assert PRIMARY.service("corvid-pgbackrest-server").is_running
    assert not PRIMARY.file("/etc/systemd/system/corvid-pgbackrest-backup-full.timer").exists
    assert STANDBY.service("corvid-pgbackrest-backup-full.timer").is_enabled
    out = pgbackrest(STANDBY, "check")
    assert "check command end: completed successfully" in out, out
