"""Real state of the pgbackrest scenario: a PostgreSQL 15 primary archiving and backing up to two
buckets (two "regions") of an S3 store behind TLS 1.3 (lab/s3), and a point-in-time restore.

The restore test writes rows, backs up with playbooks/backup.yml, writes more, notes the time,
deletes rows by "accident", restores to the noted time into a scratch cluster with
playbooks/restore.yml and compares the restored table's row count and checksum with what they
were at that time, read from the scratch cluster itself.
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

DB = testinfra.get_host("docker://root@corvid-pbr-db")
OBJECTS = testinfra.get_host("docker://root@corvid-pbr-objects")
STANZA = "main"
REPOS = {1: "corvid-backups-primary", 2: "corvid-backups-copy"}
SCRATCH_DIR = "/var/lib/postgresql/pgbackrest-scratch"
SCRATCH_PORT = 5499
PLAYBOOKS = Path(os.environ.get("MOLECULE_PROJECT_DIRECTORY", Path(__file__).parents[3])) / "playbooks"
TABLE = "pitr_orders"
# Count and checksum of a table's contents, the same expression as the restore's report.
MEASURE = "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM pitr_orders t"


def psql(sql, port=5432, host=DB):
    run = host.run("runuser -u postgres -- psql -XAtq -p %s -c %s", str(port), sql)
    assert run.rc == 0, run.stderr
    return run.stdout.strip()


def pgbackrest_info(repo=None):
    option = f"--repo={repo} " if repo else ""
    run = DB.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} {option}--output=json --log-level-file=off info")
    assert run.rc == 0, run.stderr
    return next(item for item in json.loads(run.stdout) if item["name"] == STANZA)


def playbook(name, *extra):
    run = subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], str(PLAYBOOKS / name), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    return run, parse_recap(run.stdout)


def wait_for(probe, timeout=120.0, interval=1.0):
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def switch_and_archive():
    """Close the current WAL segment and wait until PostgreSQL has archived it; return its name."""
    segment = psql("SELECT pg_walfile_name(pg_switch_wal())")
    assert wait_for(lambda: psql("SELECT last_archived_wal FROM pg_stat_archiver") >= segment), segment
    return segment


@pytest.fixture(scope="module")
def pitr():
    """The whole point-in-time scenario, once; returns what the tests compare."""
    psql("DROP TABLE IF EXISTS pitr_orders; CREATE TABLE pitr_orders (id int PRIMARY KEY, item text, qty int)")
    psql("INSERT INTO pitr_orders SELECT g, 'item-' || g, g % 7 FROM generate_series(1, 500) g")
    started = time.monotonic()
    backup, backup_recap = playbook("backup.yml", "-e", "backup_type=full")
    backup_seconds = time.monotonic() - started
    assert backup.returncode == 0, backup.stdout + backup.stderr
    at_backup = psql(MEASURE)
    psql("INSERT INTO pitr_orders SELECT g, 'late-' || g, g % 5 FROM generate_series(501, 800) g")
    expected = psql(MEASURE)
    noted = psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'")
    time.sleep(1.5)
    psql("DELETE FROM pitr_orders WHERE id > 20")  # the "accident"
    switch_and_archive()
    started = time.monotonic()
    restore, _ = playbook(
        "restore.yml",
        "-e",
        json.dumps({"restore_target_time": noted, "restore_table": TABLE, "restore_keep": True}),
    )
    restore_seconds = time.monotonic() - started
    restored = psql(MEASURE, port=SCRATCH_PORT) if restore.returncode == 0 else None
    recovering = psql("SELECT pg_is_in_recovery()", port=SCRATCH_PORT) if restore.returncode == 0 else None
    DB.run(
        "runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D %s -m fast stop; rm -rf %s",
        SCRATCH_DIR,
        SCRATCH_DIR,
    )
    print(f"backup.yml {backup_seconds:.1f} s, restore.yml {restore_seconds:.1f} s")  # shown with -s or -rP
    return {
        "backup": backup,
        "backup_recap": backup_recap,
        "restore": restore,
        "expected": expected,
        "restored": restored,
        "recovering": recovering,
        "noted": noted,
        "at_backup": at_backup,
    }


def test_object_store_answers_tls13_only():
    probe = (
        "import socket, ssl, sys; c = ssl.create_default_context(cafile='/etc/corvid/pki/ca.crt');"
        "c.maximum_version = getattr(ssl.TLSVersion, sys.argv[1]);"
        "s = c.wrap_socket(socket.create_connection((sys.argv[2], 443)), server_hostname=sys.argv[2]);"
        "print(s.version())"
    )
    assert DB.run("python3 -c %s TLSv1_3 corvid-pbr-objects", probe).stdout.strip() == "TLSv1.3"
    assert DB.run("python3 -c %s TLSv1_2 corvid-pbr-objects", probe).rc != 0
    assert OBJECTS.service("corvid-moto").is_running
    assert OBJECTS.socket("tcp://127.0.0.1:5000").is_listening


def test_config_is_private():
    config = DB.file("/etc/pgbackrest/pgbackrest.conf")
    assert (config.user, config.group, config.mode) == ("root", "postgres", 0o640)


def test_archiving_is_on():
    assert psql("SHOW archive_mode") == "on"
    assert psql("SHOW archive_command") == f"pgbackrest --stanza={STANZA} archive-push %p"


def test_pgbackrest_check_passes():
    run = DB.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} check")
    assert run.rc == 0, run.stdout + run.stderr


def test_wal_reaches_both_repositories():
    psql("CREATE TABLE IF NOT EXISTS wal_probe (at timestamptz); INSERT INTO wal_probe VALUES (now())")
    segment = switch_and_archive()
    for repo in REPOS:
        archive = pgbackrest_info(repo)["archive"]
        assert any(entry["max"] >= segment for entry in archive), (repo, archive, segment)


def test_backup_playbook_reports_both_repositories(pitr):
    out = pitr["backup"].stdout
    assert pitr["backup_recap"]["corvid-pbr-db"]["failed"] == 0
    for bucket in REPOS.values():
        assert f"bucket: {bucket}" in out, out
    assert out.count("type: full") >= 2, out


def test_both_repositories_hold_the_backup(pitr):
    labels = re.findall(r"label: (\S+)", pitr["backup"].stdout)
    for repo in REPOS:
        held = [backup["label"] for backup in pgbackrest_info(repo)["backup"]]
        assert set(labels) & set(held), (repo, labels, held)


def test_point_in_time_restore_into_scratch(pitr):
    assert pitr["restore"].returncode == 0, pitr["restore"].stdout + pitr["restore"].stderr
    assert pitr["recovering"] == "f"
    assert pitr["restored"] == pitr["expected"]
    assert pitr["expected"].startswith("800 ")
    rows, checksum = pitr["expected"].split()
    assert f"md5: {checksum}" in pitr["restore"].stdout
    assert f"rows: {rows}" in pitr["restore"].stdout
    # The original still has the "accident": what came back came from the repositories.
    assert psql("SELECT count(*) FROM pitr_orders") == "20"


def test_bad_restore_requests_fail_before_any_change(pitr):
    oldest = min(backup["timestamp"]["stop"] for backup in pgbackrest_info()["backup"])
    before = time.strftime("%Y-%m-%d %H:%M:%S+00", time.gmtime(oldest - 3600))
    cases = {
        "restore_target_time": ({"restore_target_time": "2999-01-01 00:00:00+00"}, "is in the future"),
        "restore_target_time ": ({"restore_target_time": before}, "is before the oldest backup"),
        "restore_target_time  ": ({"restore_target_time": "yesterday"}, "must be a time with its zone"),
        "restore_set": ({"restore_set": "20000101-000000F"}, "is not a backup of stanza main"),
        "restore_confirm": ({"restore_into": "original"}, "must be true to restore into the original"),
    }
    for variable, (extra, message) in cases.items():
        run, recap = playbook("restore.yml", "-e", json.dumps(extra))
        assert run.returncode != 0
        output = " ".join((run.stdout + run.stderr).split())  # the failure is on stderr, wrapped
        assert variable.strip() in output and message in output, output
        assert recap["corvid-pbr-db"]["changed"] == 0, run.stdout
    assert not DB.file(SCRATCH_DIR).exists
    assert DB.service("postgresql@15-main").is_running


def test_metrics_file_names_the_last_backups(pitr):
    metrics = DB.file("/var/lib/prometheus/node-exporter/pgbackrest.prom")
    assert metrics.exists and metrics.mode == 0o644
    content = metrics.content_string
    newest = {}
    for backup in pgbackrest_info()["backup"]:
        key = (backup["database"]["repo-key"], backup["type"])
        newest[key] = max(newest.get(key, 0), backup["timestamp"]["stop"])
    for (repo, kind), stop in newest.items():
        labels = f'stanza="{STANZA}",repo="{repo}",type="{kind}"'
        assert f"pgbackrest_backup_last_success_timestamp_seconds{{{labels}}} {stop}" in content, content
    assert not [name for name in DB.file(metrics.path.rsplit("/", 1)[0]).listdir() if name.endswith(".tmp")]


def test_timers_scheduled():
    for kind in ("full", "diff"):
        timer = DB.service(f"corvid-pgbackrest-backup-{kind}.timer")
        assert timer.is_enabled and timer.is_running
    assert not DB.file("/etc/systemd/system/corvid-pgbackrest-backup-incr.timer").exists


def test_disaster_recovery_into_the_original(pitr):
    """Last, as it replaces the cluster: the full backup of the restore test, from the copy's repository."""
    label = [backup["label"] for backup in pgbackrest_info(2)["backup"] if backup["type"] == "full"][-1]
    extra = {"restore_into": "original", "restore_confirm": True, "restore_set": label, "restore_repo": 2}
    run, recap = playbook("restore.yml", "-e", json.dumps({**extra, "restore_table": TABLE}))
    assert run.returncode == 0, run.stdout + run.stderr
    assert recap["corvid-pbr-db"]["failed"] == 0
    assert DB.service("postgresql@15-main").is_running
    assert psql("SELECT pg_is_in_recovery()") == "f"
    assert psql(MEASURE) == pitr["at_backup"]
    assert pitr["at_backup"].startswith("500 ")
    # Archiving goes on from the new timeline.
    check = DB.run(f"runuser -u postgres -- pgbackrest --stanza={STANZA} check")
    assert check.rc == 0, check.stdout + check.stderr
