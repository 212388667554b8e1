#!/usr/bin/env python3
"""Scaling benchmark: how the no-change run of playbooks/site.yml grows with the number of hosts.

1. The lab as it is: playbooks/preflight.yml (the median of a few runs) and one no-change run of
   playbooks/site.yml, timed, with the time of every task on every host.
2. Every tier doubled: a copy of each host of the tier groups (db1 -> db1x, ...) is added by an
   extra inventory file under .cache/bench/ and created as a lab container (lab/lab.yml, the same
   images, limited to the copies), converged once with playbooks/site.yml limited to the copies
   (not timed: the lab's own hosts are not in that run), then the whole doubled inventory once
   (not timed: the lab's edge, monitoring and database hosts take the copies in), then the same
   measures on the whole doubled inventory.
3. The lab is converged again without the copies in the inventory (its edge pools, scrape
   targets and database clients as before), while they still run; then the copies are removed
   whatever happens (containers, their apt cache directories and cached facts, the object store
   prefix their backups went to), and the table is printed and written as JSON to .cache/bench/.

The copies are a second set of the same tiers beside the lab's own:
  - a copy keeps its original's host variables, with every reference to another lab host turned
    into that host's copy (cache2x replicates from cache1x, never from cache1);
  - database copies are separate primaries (no postgresql_primary): a replica would make the
    lab's primary allow and count it; their pgBackRest repositories get a path of their own
    (/corvid-bench/<host>) in the same buckets;
  - no published port is copied.

    make bench                                      # (proposed) the lab; about 20 to 30 min
    .venv/bin/python tests/bench/bench_scale.py --help

Time per host per task: a callback (tests/tools/benchkit.py) records when each task starts and ends on each
host; "s/host-task" is the run's wall time divided by the number of task results (one per task per
host, skipped ones included), "busy s" a host's summed task durations.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

import benchkit
from benchkit import BIN, ROOT, BenchError, log

TIERS = ["database", "cache", "edge", "app", "monitoring", "mcp_checkers"]
EXTRA_GROUP = "bench_extra"
BENCH_REPO_PATH = "/corvid-bench"


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.inventory = (ROOT / args.inventory).resolve()
        self.out = (ROOT / args.out).resolve()
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = self.out / "scale"
        self.work.mkdir(exist_ok=True)
        self.env = benchkit.timer_env(self.work)
        # Two levels below the checkout, like inventories/lab: the lab's group_vars find the lab CA
        # from inventory_dir (pki_ca_dir), which is the copies' own inventory's directory.
        self.extra_inventory = ROOT / ".cache" / "bench-inventory" / "extra.yml"
        self.extra_inventory.parent.mkdir(parents=True, exist_ok=True)
        self.copies: dict[str, str] = {}  # original -> copy
        self.lab_touched = False  # the lab's own hosts were converged with the copies in the inventory
        self.created_cache_dirs: list[Path] = []
        self.deadline = benchkit.deadline_timestamp(args.deadline) if args.deadline else None
        self.logs = self.work / "logs"
        self.logs.mkdir(exist_ok=True)

    # -- running ansible -----------------------------------------------------------------------

    def playbook(self, name: str, playbook: str, *args: str, extra: bool = False, cleanup: bool = False) -> dict:
        """Run a playbook; its wall time, rc, recap and task timings (the output goes to a log file).
        A cleanup run is not held to the deadline (the cleanup margin is kept for it)."""
        inventories = ["-i", str(self.inventory)] + (["-i", str(self.extra_inventory)] if extra else [])
        command = [str(BIN / "ansible-playbook"), *inventories, str(ROOT / playbook), *args]
        limit = self.args.timeout
        if self.deadline is not None and not cleanup:
            left = self.deadline - time.time() - self.args.cleanup_margin
            if left < 30:
                raise BenchError(f"{name} not started: the deadline ({self.args.deadline} UTC) is too close")
            limit = min(limit, int(left))
        return benchkit.run_playbook(name, command, self.env, limit, self.logs)

    def preflight(self, name: str, extra: bool) -> dict:
        runs = [self.playbook(f"{name}-{i}", self.args.preflight, extra=extra) for i in range(self.args.preflight_runs)]
        return {
            "median_seconds": round(statistics.median(run["seconds"] for run in runs), 2),
            "seconds": [run["seconds"] for run in runs],
            "rc": [run["rc"] for run in runs],
            "tasks": len(runs[-1]["timings"]),
        }

    def inventory_export(self) -> dict:
        run = benchkit.ansible_inventory(self.inventory, self.env, "--list", "--export", check=True)
        return json.loads(run.stdout, object_hook=_plain)

    # -- the copies ----------------------------------------------------------------------------

    def build_extra_inventory(self) -> None:
        """The extra inventory: a copy of every tier host, in the same groups."""
        data = self.inventory_export()
        hostvars = data.get("_meta", {}).get("hostvars", {})

        def members(group: str) -> list[str]:
            found = list(data.get(group, {}).get("hosts", []))
            for child in data.get(group, {}).get("children", []):
                found += members(child)
            return found

        def group_var(name: str, group: str) -> object:
            return data.get(group, {}).get("vars", {}).get(name)

        tier_hosts = {tier: sorted(set(members(tier))) for tier in self.args.tiers}
        originals = sorted(set().union(*tier_hosts.values()))
        self.copies = {host: host + self.args.suffix for host in originals}
        clash = [name for name in self.copies.values() if name in hostvars]
        if clash:
            sys.exit(f"bench: the copies' names are taken in the inventory: {', '.join(clash)}")

        def rename(value: object) -> object:
            if isinstance(value, str):
                return self.copies.get(value, value)
            if isinstance(value, list):
                return [rename(item) for item in value]
            if isinstance(value, dict):
                return {key: rename(item) for key, item in value.items()}
            return value

        groups: dict[str, dict] = {tier: {"hosts": {}} for tier in self.args.tiers}
        groups[EXTRA_GROUP] = {"hosts": {}}
        for original, name in self.copies.items():
            own = copy.deepcopy(hostvars.get(original, {}))
            own.pop("lab_published_ports", None)
            own = rename(own)
            if original in set(members("database")):
                # A separate primary: a replica of the lab's primary would change its pg_hba and
                # replication slots. Its backups go to a path of its own.
                own.pop("postgresql_primary", None)
                repos = group_var("pgbackrest_repos", "database")
                if repos:
                    own["pgbackrest_repos"] = [
                        {**repo, "path": f"{BENCH_REPO_PATH}/{name}"} for repo in repos if isinstance(repo, dict)
                    ]
            own["lab_published_ports"] = []
            # Its own container (inventories/lab/zz-connection.yml names each host's; that file
            # does not see hosts of a later inventory source).
            own["ansible_host"] = f"corvid-lab-{name}"
            for tier, hosts in tier_hosts.items():
                if original in hosts:
                    groups[tier]["hosts"][name] = None
            groups[EXTRA_GROUP]["hosts"][name] = own
        text = (
            "# Written by tests/bench/bench_scale.py for one run, removed after it: a copy of every\n"
            "# tier host (see the script's docstring).\n" + json.dumps({"all": {"children": groups}}, indent=2) + "\n"
        )
        self.extra_inventory.write_text(text)
        log(f"copies: {', '.join(self.copies.values())}")

    def seed_apt_caches(self) -> None:
        """Each copy starts with its original's downloaded packages (hard links, no lock files)."""
        for original, name in self.copies.items():
            created = benchkit.seed_apt_cache(original, name)
            if created is not None:
                self.created_cache_dirs.append(created)

    def remove_copies(self) -> list[str]:
        report = [benchkit.remove_container(self.args.container_prefix + name) for name in self.copies.values()]
        report += [benchkit.remove_apt_cache(directory) for directory in self.created_cache_dirs]
        for name in self.copies.values():
            report += benchkit.remove_cached_facts(name)
        report += self.remove_bench_backups()
        self.extra_inventory.unlink(missing_ok=True)
        return report

    def remove_bench_backups(self) -> list[str]:
        """The objects the database copies' pgBackRest wrote under /corvid-bench in the lab's buckets."""
        if not self.args.s3_url:
            return []
        try:
            import boto3
        except ImportError:
            return ["object store: boto3 missing, objects under corvid-bench/ left in place"]
        ca = ROOT / ".cache" / "pki" / "lab" / "ca.crt"
        client = boto3.client(
            "s3",
            endpoint_url=self.args.s3_url,
            region_name="us-east-1",
            aws_access_key_id="corvid-lab",
            aws_secret_access_key="corvid-lab",
            verify=str(ca) if ca.exists() else True,
        )
        report = []
        try:
            for bucket in client.list_buckets().get("Buckets", []):
                keys = []
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=bucket["Name"], Prefix=BENCH_REPO_PATH.strip("/") + "/"
                ):
                    keys += [item["Key"] for item in page.get("Contents", [])]
                for start in range(0, len(keys), 1000):
                    chunk = keys[start : start + 1000]
                    client.delete_objects(Bucket=bucket["Name"], Delete={"Objects": [{"Key": key} for key in chunk]})
                if keys:
                    report.append(f"object store {bucket['Name']}: {len(keys)} objects under corvid-bench/ removed")
        except Exception as error:  # reported; the rest of the cleanup goes on
            report.append(f"object store: cleanup failed: {error}")
        return report

    # -- the benchmark -------------------------------------------------------------------------

    def run(self) -> int:
        result: dict = {
            "started": benchkit.now_iso(),
            "inventory": str(self.inventory),
            "playbook": self.args.playbook,
            "preflight": self.args.preflight,
            "sizes": {},
        }
        status = 0
        try:
            result["sizes"]["as is"] = {
                "preflight": self.preflight("preflight-as-is", extra=False),
                "no_change": benchkit.summarise(self.playbook("site-as-is", self.args.playbook)),
            }
            self.build_extra_inventory()
            log(inotify_report())
            self.seed_apt_caches()
            doubled: dict = {}
            result["sizes"]["tiers doubled"] = doubled
            create = self.playbook("create-copies", self.args.create_playbook, "--limit", EXTRA_GROUP, extra=True)
            doubled["create"] = {"seconds": create["seconds"], "rc": create["rc"], "tail": create["tail"]}
            if create["rc"]:
                raise BenchError(f"creating the copies failed (see create-copies.log); {inotify_report()}")
            converge = self.playbook("converge-copies", self.args.playbook, "--limit", EXTRA_GROUP, extra=True)
            doubled["converge_copies"] = benchkit.summarise(converge)
            if converge["rc"]:
                failed = sorted(
                    {f"{line['host']}: {line['task']}" for line in converge["timings"] if line["status"] == "failed"}
                )
                raise BenchError(
                    f"the first converge of the copies failed ({'; '.join(failed) or 'rc ' + str(converge['rc'])};"
                    " see converge-copies.log)"
                )
            # The lab's own hosts take the copies in (the edge's pools, the scrape targets, the
            # MCP checks, the database's clients): one converge of the whole doubled inventory.
            self.lab_touched = True
            whole = self.playbook("converge-doubled", self.args.playbook, extra=True)
            doubled["converge_doubled"] = benchkit.summarise(whole)
            if whole["rc"]:
                raise BenchError(f"the doubled inventory's converge failed (rc {whole['rc']}, converge-doubled.log)")
            doubled["preflight"] = self.preflight("preflight-doubled", extra=True)
            doubled["no_change"] = benchkit.summarise(self.playbook("site-doubled", self.args.playbook, extra=True))
        except BenchError as error:
            result["error"] = str(error)
            log(f"bench: {error}")
            status = 1
        except KeyboardInterrupt:
            result["error"] = "interrupted"
            status = 130
        finally:
            if self.lab_touched:
                # Back to the lab as it was, while the copies still run: the lab's own hosts
                # forget them first (the edge's new pools are tested with nginx -t, which must
                # still resolve every name the old pool files hold), then the copies go.
                restore = self.playbook("restore", self.args.playbook, cleanup=True)
                result["restore"] = {"seconds": restore["seconds"], "rc": restore["rc"], "tail": restore["tail"]}
                log(f"restore: the lab converged without the copies, rc {restore['rc']} in {restore['seconds']:.0f} s")
                if restore["rc"]:
                    status = status or 1
            if self.copies:
                log("removing the copies")
                result["cleanup"] = self.remove_copies()
                for line in result["cleanup"]:
                    log(f"  {line}")
            benchkit.finish(self.out, "scale", result, self.logs, print_table)
        return status


def inotify_report() -> str:
    """systemd in every container needs inotify instances, all counted against root's one limit:
    when they run out a new container's systemd does not finish booting (or exits)."""
    try:
        limit = int(Path("/proc/sys/fs/inotify/max_user_instances").read_text())
    except OSError:
        return "inotify: limit unknown"
    used = 0
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        with contextlib.suppress(OSError):
            used += sum(1 for fd in fd_dir.iterdir() if os.readlink(fd) == "anon_inode:inotify")
    return f"inotify descriptors open on the machine: {used} (fs.inotify.max_user_instances, per user: {limit})"


def _plain(value: dict):
    return value["__ansible_unsafe"] if value.keys() == {"__ansible_unsafe"} else value


def print_table(result: dict) -> None:
    print()
    print(
        f"{'no-change site.yml':33} {'hosts':>5} {'host-tasks':>10} {'changed':>7} {'wall s':>8} {'s/host-task':>11}"
        f" {'preflight s':>11}"
    )
    for label, size in result["sizes"].items():
        run = size.get("no_change")
        preflight = size.get("preflight", {}).get("median_seconds")
        if not run:
            continue
        print(
            f"{label:33} {run['hosts']:>5} {run['host_tasks']:>10} {run['changed']:>7} "
            f"{run['seconds']:>8.1f} {run['seconds_per_host_task'] or 0:>11.3f} {preflight or '-':>11}"
        )
    doubled = result["sizes"].get("tiers doubled", {})
    for key, label in (
        ("create", "create the copies"),
        ("converge_copies", "first converge of the copies"),
        ("converge_doubled", "converge of the doubled inventory"),
    ):
        if key in doubled:
            print(f"{label}: {doubled[key]['seconds']:.1f} s (rc {doubled[key]['rc']})")
    for label, size in result["sizes"].items():
        run = size.get("no_change")
        if not run:
            continue
        print(f"\nper host, no-change run ({label}):")
        print(f"  {'host':14} {'tasks':>6} {'skipped':>8} {'changed':>8} {'busy s':>8} {'s/task':>7}")
        for host, row in run["per_host"].items():
            print(
                f"  {host:14} {row['tasks']:>6} {row['skipped']:>8} {row['changed']:>8} {row['busy_seconds']:>8.1f} "
                f"{row['seconds_per_task'] or 0:>7.3f}"
            )
    if "restore" in result:
        restore = result["restore"]
        print(f"\nthe lab converged again without the copies: {restore['seconds']:.1f} s (rc {restore['rc']})")
    if result.get("error"):
        print(f"\nnot measured: {result['error']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--playbook", default="playbooks/site.yml")
    parser.add_argument("--preflight", default="playbooks/preflight.yml")
    parser.add_argument("--preflight-runs", type=int, default=3)
    parser.add_argument("--tiers", default=",".join(TIERS), type=lambda text: [t for t in text.split(",") if t])
    parser.add_argument("--create-playbook", default="lab/lab.yml", help="creates the copies (run with --limit)")
    parser.add_argument("--suffix", default="x", help="a copy's name is its original's plus this")
    parser.add_argument("--container-prefix", default="corvid-lab-", help="container name = prefix + host")
    parser.add_argument("--out", default=".cache/bench")
    parser.add_argument(
        "--s3-url",
        default="https://localhost:9000",
        help="the lab's object store, to remove the copies' backups ('' to leave them)",
    )
    parser.add_argument("--timeout", type=int, default=3600, help="seconds per ansible-playbook run")
    parser.add_argument("--deadline", help="HH:MM UTC: no run goes past it (minus --cleanup-margin); then clean up")
    parser.add_argument("--cleanup-margin", type=int, default=90, help="seconds kept for the cleanup")
    args = parser.parse_args()
    if not re.fullmatch(r"[a-z0-9]+", args.suffix):
        parser.error("--suffix: lower-case letters and digits")
    benchkit.check_deadline(parser, args.deadline)
    # Stopped from outside (kill PID): the copies are removed all the same.
    return benchkit.run_bench(Bench, args)


if __name__ == "__main__":
    sys.exit(main())
