#!/usr/bin/env python3
"""Backup benchmark: the pgbackrest role on the hosts of molecule scenario pgbackrest_standby
(an S3 object store, a PostgreSQL 17 primary and its streaming replica, which takes the
backups with backup-standby), recreated for the run and removed afterwards.

Measured: the first converge of the role and a second (no-change) one, with the tasks each host
ran; then, on a database generated with pgbench (scale 70 by default, about 1 GB), a full backup,
a differential backup after about 5 % of the rows changed, the bytes the object store received
for each (the sum of the objects listed in the repository, WAL included, and pgBackRest's own
count for the backup), and the restore of the full backup into a scratch cluster with
playbooks/restore.yml. Prints a table and writes .cache/bench/backup-<time>.json.

  python tests/bench/bench_backup.py            # as `make bench` does
  BENCH_BACKUP_SCALE=10 python tests/bench/bench_backup.py --keep   # smaller, keep the hosts
  python tests/bench/bench_backup.py --show .cache/bench/backup-....json  # a result's table again

A differential backup copies each changed data file whole (pgBackRest's unit is the file, up to
1 GB per segment): 5 % of the rows of pgbench_accounts changes its single segment, so the
differential is about as large as the full backup.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

from benchkit import BIN, ROOT, run_or_exit

from recap import parse_recap

SCENARIO = "pgbackrest_standby"
PRIMARY, STANDBY = "m8-primary", "m8-standby"
STANZA = "main"
PG_BIN = "/usr/lib/postgresql/17/bin"
DATABASE = "bench"
# About 5 % of the rows, one contiguous range (the rest of the table's pages stay as they were).
CHANGE = "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= (SELECT max(aid) / 20 FROM pgbench_accounts)"
ENV = {
    **os.environ,
    "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
    "ANSIBLE_FORCE_COLOR": "0",
    "PY_COLORS": "0",
}


def run(command: list[str], what: str) -> tuple[float, str]:
    return run_or_exit(command, what, ENV)


def molecule(action: str) -> tuple[float, str]:
    return run([str(BIN / "molecule"), action, "-s", SCENARIO], f"molecule {action}")


def on(host: str, script: str, user: str = "postgres") -> tuple[float, str]:
    return run(["docker", "exec", host, "runuser", "-u", user, "--", "sh", "-c", script], f"{host}: {script}")


def sql(host: str, query: str, database: str = DATABASE) -> str:
    return on(host, f'psql -XAtq -d {database} -c "{query}"')[1].strip()


def pgbackrest(*args: str) -> tuple[float, str]:
    return on(STANDBY, f"pgbackrest --stanza={STANZA} --log-level-file=off " + " ".join(args))


def repo_bytes(repo: int) -> int:
    """Bytes of every object of the repository (backups and WAL), as the object store lists them."""
    listing = json.loads(pgbackrest(f"--repo={repo}", "--output=json", "repo-ls", "--recurse")[1])
    return sum(entry.get("size", 0) for entry in listing.values() if entry["type"] == "file")


def newest_backup(repo: int) -> dict:
    stanzas = json.loads(pgbackrest(f"--repo={repo}", "--output=json", "info")[1])
    return next(item for item in stanzas if item["name"] == STANZA)["backup"][-1]


def wait_for_replay() -> None:
    target = sql(PRIMARY, "SELECT pg_current_wal_lsn()", "postgres")
    query = f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn"
    deadline = time.monotonic() + 600
    while sql(STANDBY, query, "postgres") != "t":
        if time.monotonic() > deadline:
            sys.exit("bench: the standby did not replay the load within 10 minutes")
        time.sleep(1)


def converge() -> dict:
    seconds, output = molecule("converge")
    recap = parse_recap(output)
    return {
        "seconds": round(seconds, 1),
        "hosts": {
            host: {"tasks": row["ok"] + row["skipped"], "ok": row["ok"], "changed": row["changed"]}
            for host, row in recap.items()
        },
    }


def backup(kind: str) -> dict:
    before = repo_bytes(1)
    seconds, _ = pgbackrest("--repo=1", f"--type={kind}", "backup")
    item = newest_backup(1)
    return {
        "label": item["label"],
        "seconds": round(seconds, 1),
        "database_bytes": item["info"]["size"],
        "backup_bytes_in_repository": item["info"]["repository"]["delta"],
        "object_store_bytes_written": repo_bytes(1) - before,
    }


def restore(label: str) -> dict:
    inventories = sorted(glob.glob(os.path.expanduser(f"~/.ansible/tmp/molecule.*.{SCENARIO}/inventory")))
    if not inventories:
        sys.exit("bench: no molecule inventory for the scenario")
    extra = {"restore_set": label, "restore_repo": 1, "restore_database": DATABASE, "restore_table": "pgbench_branches"}
    command = [str(BIN / "ansible-playbook"), "-i", inventories[-1], str(ROOT / "playbooks" / "restore.yml")]
    seconds, output = run([*command, "-l", STANDBY, "-e", json.dumps(extra)], "playbooks/restore.yml")
    rows = [line.split(":", 1)[1].strip() for line in output.splitlines() if line.strip().startswith("rows:")]
    return {"label": label, "seconds": round(seconds, 1), "pgbench_branches_rows": int(rows[0]) if rows else None}


def mib(value: int) -> str:
    return f"{value / 1048576:.1f} MiB"


def print_table(result: dict) -> None:
    scale, size = result["pgbench_scale"], mib(result["load"]["database_bytes"])
    print(f"\npgbackrest role on {result['scenario']} (pgbench scale {scale}, {size}, {result['cpus']} CPUs)")
    print(f"{'measure':44} {'seconds':>8}  detail")
    print(f"{'create and prepare the 3 hosts':44} {result['hosts_setup_seconds']:8.1f}  S3 store, primary, replica")
    for key, name in (("converge_first", "first converge"), ("converge_second", "second converge (no change)")):
        run = result[key]
        detail = "; ".join(
            f"{host}: {row['tasks']} tasks, {row['changed']} changed" for host, row in sorted(run["hosts"].items())
        )
        print(f"{name + ', both hosts':44} {run['seconds']:8.1f}  {detail}")
    print(f"{'pgbench load (primary)':44} {result['load']['seconds']:8.1f}  {size}")
    steps = (("backup_full", "full backup (standby, repo1)"), ("backup_diff", "diff backup after 5 % changed"))
    for key, name in steps:
        item = result[key]
        detail = (
            f"{item['label']}: backup {mib(item['backup_bytes_in_repository'])} in S3,"
            f" object store +{mib(item['object_store_bytes_written'])} (with WAL)"
        )
        print(f"{name:44} {item['seconds']:8.1f}  {detail}")
    item = result["restore_full"]
    detail = f"{item['label']}, pgbench_branches rows {item['pgbench_branches_rows']}"
    print(f"{'restore full into scratch (restore.yml)':44} {item['seconds']:8.1f}  {detail}")
    print(f"{'total':44} {result['total_seconds']:8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the scenario's hosts afterwards")
    parser.add_argument("--show", type=Path, help="print the table of a JSON result written before, and stop")
    options = parser.parse_args()
    if options.show:
        print_table(json.loads(options.show.read_text()))
        return
    scale = int(os.environ.get("BENCH_BACKUP_SCALE", "70"))
    result: dict = {"scenario": SCENARIO, "pgbench_scale": scale, "cpus": os.cpu_count()}
    started = time.monotonic()
    try:
        molecule("destroy")
        setup = molecule("create")[0] + molecule("prepare")[0]
        result["hosts_setup_seconds"] = round(setup, 1)
        result["converge_first"] = converge()
        result["converge_second"] = converge()

        on(PRIMARY, f"createdb {DATABASE}")
        seconds, _ = on(PRIMARY, f"{PG_BIN}/pgbench -i -I dtGvp -s {scale} -q {DATABASE}")
        wait_for_replay()
        size = int(sql(PRIMARY, f"SELECT pg_database_size('{DATABASE}')"))
        result["load"] = {"seconds": round(seconds, 1), "database_bytes": size}

        result["backup_full"] = backup("full")
        accounts = scale * 100000
        seconds, _ = on(PRIMARY, f"psql -XAtq -d {DATABASE} -c '{CHANGE}'")
        wait_for_replay()
        result["change"] = {"rows": accounts // 20, "of_rows": accounts, "seconds": round(seconds, 1)}
        result["backup_diff"] = backup("diff")
        result["restore_full"] = restore(result["backup_full"]["label"])
    finally:
        if not options.keep:
            molecule("destroy")
    result["total_seconds"] = round(time.monotonic() - started, 1)

    print_table(result)
    out = ROOT / ".cache" / "bench" / f"backup-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwritten: {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
