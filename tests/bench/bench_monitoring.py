#!/usr/bin/env python3
"""Monitoring benchmark: how long playbooks/monitoring.yml takes (first converge and no change),
and how long an alert takes from a stopped service to the notification at the receiver.

Parts (--parts, all by default):

  no-change  the no-change run of playbooks/monitoring.yml on the lab: wall time, task results
             and changed per host (a callback of tests/tools/benchkit.py times each task).
  first      the first converge of monitoring.yml on a fresh host: a copy of mon1 (mon1 plus
             --suffix, in group `monitoring` only, no published port) is added by an extra
             inventory under .cache/, created as a lab container (lab/lab.yml, its apt cache
             seeded from mon1's), given its certificates (playbooks/pki.yml, timed apart), then
             monitoring.yml limited to it is timed twice (first converge, then no change). The
             copy is removed whatever happens (container, apt cache, cached facts, inventory).
             The lab's own hosts are never in these runs (--limit).
  alert      Redis stopped on cache2 (systemctl in its container): seconds until the webhook
             receiver on mon1 (/var/lib/corvid-webhook/alerts.jsonl) holds RedisDown firing for
             it; Redis started: seconds until RedisDown resolved arrives. --runs runs (3), each
             bounded by the intervals of the running configuration (read from Prometheus and
             Alertmanager as tests/lab/test_monitoring.py does: scrape, evaluation, the rule's
             `for:`, group_wait, group_interval) plus --margin; the median and the max are
             printed (in the lab RedisDown has for: 2m: a run takes about 3 minutes). Redis is
             started again in a `finally`, whatever happens. A time is the receiver's own
             `received` stamp minus the moment systemctl returned.

    .venv/bin/python tests/bench/bench_monitoring.py                      # about 20 minutes
    .venv/bin/python tests/bench/bench_monitoring.py --parts no-change
    .venv/bin/python tests/bench/bench_monitoring.py --parts alert --runs 5 --deadline 23:30

The table is printed and written as JSON to .cache/bench/ (monitoring-*.json). Exit status 1
when a playbook failed, a notification did not arrive within its bound, or a part could not run.
Everything talks to loopback or to the lab's containers (docker exec) only.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import importlib
import json
import re
import ssl
import statistics
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

import benchkit
from benchkit import BIN, ROOT, BenchError, log

PARTS = ("no-change", "first", "alert")
RECEIVED = "/var/lib/corvid-webhook/alerts.jsonl"
# Prometheus's notification queue and the two POSTs (Prometheus to Alertmanager to the receiver)
# on top of the configured intervals, as in tests/lab/test_monitoring.py.
DELIVERY_SECONDS = 5
DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def seconds(duration: str | float | int) -> float:
    """A Prometheus/Alertmanager duration (10s, 1m30s, 5m; or a number of seconds) in seconds."""
    if isinstance(duration, (int, float)):
        return float(duration)
    if not re.fullmatch(r"(\d+(ms|s|m|h|d|w|y))+", duration):
        raise ValueError(f"not a duration: {duration!r}")
    return float(sum(int(number) * UNIT_SECONDS[unit] for number, unit in DURATION.findall(duration)))


def bounds(intervals: dict[str, float], rule_for: float, margin: float) -> tuple[float, float]:
    """(seconds to wait for the firing notification, for the resolved one).

    Firing: the next scrape sees the exporter report Redis down, the next evaluation makes the
    alert pending, `for:` passes, the evaluation after it fires; Alertmanager sends it after
    group_wait (a new group) or at the group's next flush (group_interval, when the group of an
    earlier run still exists). Resolved: the next scrape sees it up, an evaluation resolves it,
    Alertmanager sends it at the group's next flush."""
    scrape, evaluation = intervals["scrape"], intervals["evaluation"]
    fire = (
        scrape
        + 2 * evaluation
        + rule_for
        + max(intervals["group_wait"], intervals["group_interval"])
        + DELIVERY_SECONDS
        + margin
    )
    resolve = scrape + 2 * evaluation + intervals["group_interval"] + DELIVERY_SECONDS + margin
    return fire, resolve


def find_notification(lines: list[dict], alertname: str, instance: str, status: str) -> dict | None:
    """The first receiver line with `alertname` for `instance` in `status`."""
    for line in lines:
        body = line.get("body") if isinstance(line.get("body"), dict) else {}
        for alert in body.get("alerts", []):
            labels = alert.get("labels", {})
            if (
                labels.get("alertname") == alertname
                and labels.get("instance") == instance
                and alert.get("status") == status
            ):
                return line
    return None


def parse_jsonl(text: str) -> list[dict]:
    lines = []
    for raw in text.splitlines():
        with contextlib.suppress(ValueError):
            item = json.loads(raw)
            if isinstance(item, dict):
                lines.append(item)
    return lines


def spread(values: list[float]) -> dict:
    return {
        "median": round(statistics.median(values), 2) if values else None,
        "max": round(max(values), 2) if values else None,
        "min": round(min(values), 2) if values else None,
        "values": [round(value, 2) for value in values],
    }


class Api:
    """GET JSON from an HTTPS API of the lab with basic auth, verified with the lab CA."""

    def __init__(self, address: tuple[str, int], ca: Path, user: str, password: str) -> None:
        self.address = address
        self.context = ssl.create_default_context(cafile=str(ca))
        self.auth = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def get(self, path: str, **params: str) -> dict:
        connection = http.client.HTTPSConnection(*self.address, context=self.context, timeout=10)
        try:
            query = "?" + urllib.parse.urlencode(params) if params else ""
            connection.request("GET", path + query, headers={"Authorization": self.auth})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise BenchError(f"GET {path}: {response.status} {body[:300]!r}")
            return json.loads(body)
        finally:
            connection.close()


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.inventory = (ROOT / args.inventory).resolve()
        self.out = (ROOT / args.out).resolve()
        self.work = self.out / "monitoring"
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = benchkit.timer_env(self.work)
        # Two levels below the checkout, like inventories/lab: the lab's pki_ca_dir (from
        # inventory_dir) is the lab CA for the copy too.
        self.extra_inventory = ROOT / ".cache" / "bench-monitoring" / "extra.yml"
        self.copy = args.copy_of + args.suffix
        self.copy_created = False
        self.created_cache_dir: Path | None = None
        self.deadline = benchkit.deadline_timestamp(args.deadline) if args.deadline else None

    def left(self) -> float:
        return benchkit.seconds_left(self.deadline)

    def container(self, host: str) -> str:
        return self.args.container_prefix + host

    # -- ansible -------------------------------------------------------------------------------

    def playbook(self, name: str, playbook: str, *args: str, extra: bool = False) -> dict:
        """Run a playbook (bounded); wall time, rc, recap and the task timings."""
        inventories = ["-i", str(self.inventory)] + (["-i", str(self.extra_inventory)] if extra else [])
        limit = float(self.args.timeout)
        if self.deadline is not None:
            if self.left() < 60:
                raise BenchError(f"{name} not started: the deadline ({self.args.deadline} UTC) is too close")
            limit = min(limit, self.left() - 30)
        command = [str(BIN / "ansible-playbook"), *inventories, str(ROOT / playbook), *args]
        return benchkit.run_playbook(name, command, self.env, limit, self.logs)

    def summarise(self, run: dict) -> dict:
        summary = benchkit.summarise(run)
        summary["log"] = str(self.logs / f"{run['name']}.log")
        return summary

    # -- part 1: the no-change run on the lab ----------------------------------------------------

    def no_change(self) -> dict:
        return self.summarise(self.playbook("no-change", self.args.playbook))

    # -- part 2: the first converge on a copy of mon1 -------------------------------------------

    def check_copy_name_free(self) -> None:
        graph = benchkit.ansible_inventory(self.inventory, self.env, "--graph")
        if graph.returncode:
            raise BenchError(f"ansible-inventory --graph failed: {graph.stderr[-500:]}")
        names = {re.sub(r"^[\s|-]*", "", line).strip() for line in graph.stdout.splitlines()}
        if self.copy in names:
            raise BenchError(f"the copy's name {self.copy} is a host of the inventory: choose another --suffix")
        if self.args.copy_of not in names:
            raise BenchError(f"{self.args.copy_of} is not a host of {self.inventory}")
        exists = subprocess.run(
            ["docker", "container", "inspect", self.container(self.copy)], capture_output=True, timeout=60, check=False
        )
        if exists.returncode == 0:
            raise BenchError(
                f"a container {self.container(self.copy)} exists already (left by an earlier run?): "
                f"remove it with `docker rm -f {self.container(self.copy)}` or choose another --suffix"
            )

    def write_extra_inventory(self) -> None:
        self.extra_inventory.parent.mkdir(parents=True, exist_ok=True)
        inventory = {
            # Its own container: inventories/lab/zz-connection.yml names each lab host's, but does
            # not see the hosts of a later inventory source.
            "all": {
                "children": {
                    "monitoring": {
                        "hosts": {
                            self.copy: {"lab_published_ports": [], "ansible_host": self.container(self.copy)},
                        }
                    }
                }
            },
        }
        self.extra_inventory.write_text(
            "# Written by tests/bench/bench_monitoring.py for one run, removed after it: a fresh copy of "
            f"{self.args.copy_of}.\n" + json.dumps(inventory, indent=2) + "\n"
        )

    def seed_apt_cache(self) -> None:
        """The copy starts with its original's downloaded packages (hard links), as the lab's
        hosts do when they are rebuilt: the first converge measures the platform, not the mirror."""
        if not self.args.no_seed:
            self.created_cache_dir = benchkit.seed_apt_cache(self.args.copy_of, self.copy)

    def first_converge(self, result: dict) -> None:
        self.check_copy_name_free()
        self.write_extra_inventory()
        self.seed_apt_cache()
        limit = ["--limit", self.copy]
        self.copy_created = True  # from here on the cleanup removes the container
        create = self.playbook("copy-create", self.args.create_playbook, *limit, extra=True)
        result["create"] = {"seconds": create["seconds"], "rc": create["rc"], "tail": create["tail"]}
        if create["rc"]:
            raise BenchError(f"creating {self.copy} failed (see copy-create.log)")
        pki = self.playbook("copy-pki", self.args.pki_playbook, *limit, extra=True)
        result["pki"] = self.summarise(pki)
        if pki["rc"]:
            raise BenchError(f"pki.yml on {self.copy} failed (see copy-pki.log)")
        first = self.playbook("copy-first", self.args.playbook, *limit, extra=True)
        result["first"] = self.summarise(first)
        if first["rc"]:
            failed = sorted({line["task"] for line in first["timings"] if line["status"] == "failed"})
            raise BenchError(f"the first converge of {self.copy} failed ({'; '.join(failed)}; see copy-first.log)")
        if not self.args.no_second:
            second = self.playbook("copy-second", self.args.playbook, *limit, extra=True)
            result["second"] = self.summarise(second)
            if second["rc"]:
                raise BenchError(f"the second converge of {self.copy} failed (see copy-second.log)")

    def remove_copy(self) -> list[str]:
        report = []
        if self.copy_created:
            report.append(benchkit.remove_container(self.container(self.copy)))
        if self.created_cache_dir is not None:
            report.append(benchkit.remove_apt_cache(self.created_cache_dir))
        report += benchkit.remove_cached_facts(self.copy)
        if self.extra_inventory.exists():
            self.extra_inventory.unlink()
            report.append(f"inventory {self.extra_inventory.relative_to(ROOT)}: removed")
        return report

    # -- part 3: Redis stopped, the notification at the receiver --------------------------------

    def mon_settings(self) -> dict:
        """The monitoring tier's web users (vault included), read on the controller."""
        expr = (
            "{{ {'prometheus': [prometheus_web_username, prometheus_web_password],"
            " 'alertmanager': (alertmanager_web_users | selectattr('name', 'equalto', 'admin') | first).values()"
            " | list} | to_json }}"
        )
        run = subprocess.run(
            [
                str(BIN / "ansible"),
                self.args.monitoring_host,
                "-i",
                str(self.inventory),
                "-m",
                "ansible.builtin.debug",
                "-a",
                f"msg={expr}",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**self.env, "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
            timeout=300,
            check=False,
        )
        if run.returncode:
            raise BenchError(f"cannot read the monitoring users from the inventory: {run.stderr[-500:]}")
        host = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"][self.args.monitoring_host]
        return json.loads(host["msg"])

    def docker_exec(self, host: str, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["docker", "exec", self.container(host), *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def receiver_size(self) -> int:
        run = self.docker_exec(self.args.monitoring_host, "stat", "-c", "%s", RECEIVED)
        return int(run.stdout.strip()) if run.returncode == 0 and run.stdout.strip().isdigit() else 0

    def receiver_since(self, offset: int) -> list[dict]:
        run = self.docker_exec(self.args.monitoring_host, "tail", "-c", f"+{offset + 1}", RECEIVED)
        return parse_jsonl(run.stdout) if run.returncode == 0 else []

    def wait_notification(self, offset: int, status: str, since: float, bound: float) -> dict | None:
        """The receiver's line with RedisDown `status` for the instance, or None after `bound` s."""
        end = since + bound
        while True:
            line = find_notification(self.receiver_since(offset), "RedisDown", self.args.redis_instance, status)
            if line is not None:
                return line
            if time.time() > end:
                return None
            time.sleep(self.args.poll)

    def wait_redis_clear(self, prometheus: Api, bound: float) -> None:
        """Redis up in Prometheus and no RedisDown alert for it (pending or firing)."""
        end = time.monotonic() + bound
        instance = self.args.redis_instance
        while True:
            up = prometheus.get("/api/v1/query", query=f'redis_up{{instance="{instance}"}} == 1')["data"]["result"]
            alerts = [
                alert
                for alert in prometheus.get("/api/v1/alerts")["data"]["alerts"]
                if alert["labels"].get("alertname") == "RedisDown" and alert["labels"].get("instance") == instance
            ]
            if up and not alerts:
                return
            if time.monotonic() > end:
                raise BenchError(
                    f"Redis on {self.args.redis_host} is not up in Prometheus, or RedisDown is still active "
                    f"({[a['state'] for a in alerts]}), {bound:.0f} s after the start"
                )
            time.sleep(self.args.poll)

    def redis(self, action: str) -> float:
        run = self.docker_exec(self.args.redis_host, "systemctl", action, self.args.redis_unit, timeout=120)
        if run.returncode:
            raise BenchError(f"systemctl {action} {self.args.redis_unit} on {self.args.redis_host}: {run.stderr}")
        return time.time()

    def alert(self, result: dict) -> None:
        ca = (ROOT / self.args.ca).resolve()
        if not ca.is_file():
            raise BenchError(f"{ca} is missing: the lab's CA is made by `make lab`")
        settings = self.mon_settings()
        prometheus = Api(("127.0.0.1", self.args.prometheus_port), ca, *settings["prometheus"])
        alertmanager = Api(("127.0.0.1", self.args.alertmanager_port), ca, *settings["alertmanager"])
        prometheus_global = yaml_load(prometheus.get("/api/v1/status/config")["data"]["yaml"])["global"]
        route = yaml_load(alertmanager.get("/api/v2/status")["config"]["original"])["route"]
        intervals = {
            "scrape": seconds(prometheus_global["scrape_interval"]),
            "evaluation": seconds(prometheus_global["evaluation_interval"]),
            "group_wait": seconds(route.get("group_wait", "30s")),
            "group_interval": seconds(route.get("group_interval", "5m")),
        }
        rules = [
            rule
            for group in prometheus.get("/api/v1/rules")["data"]["groups"]
            for rule in group["rules"]
            if rule["name"] == "RedisDown"
        ]
        if not rules:
            raise BenchError("Prometheus has no rule RedisDown")
        rule_for = seconds(rules[0].get("duration", 0))
        fire_within, resolve_within = bounds(intervals, rule_for, self.args.margin)
        result.update(
            intervals=intervals,
            rule_for_seconds=rule_for,
            fire_bound_seconds=round(fire_within, 1),
            resolve_bound_seconds=round(resolve_within, 1),
            runs=[],
        )
        log(
            f"alert: RedisDown for {self.args.redis_instance}, for: {rule_for:.0f} s; bounds: fired within "
            f"{fire_within:.0f} s, resolved within {resolve_within:.0f} s"
        )
        for number in range(1, self.args.runs + 1):
            needed = fire_within + 2 * resolve_within + 30
            if self.left() < needed:
                result["skipped_runs"] = self.args.runs - number + 1
                log(f"alert: run {number} not started: it could end after the deadline ({needed:.0f} s needed)")
                break
            self.wait_redis_clear(prometheus, resolve_within)
            run: dict = {"run": number}
            result["runs"].append(run)
            try:
                offset = self.receiver_size()
                stopped = self.redis("stop")
                log(f"alert run {number}: {self.args.redis_unit} stopped on {self.args.redis_host}")
                fired = self.wait_notification(offset, "firing", stopped, fire_within)
                run["fired_seconds"] = None if fired is None else round(fired["received"] - stopped, 2)
                offset = self.receiver_size()
            finally:
                started = self.redis("start")
            log(f"alert run {number}: fired after {run['fired_seconds']} s; started again")
            if run["fired_seconds"] is None:
                raise BenchError(f"run {number}: no firing RedisDown at the receiver within {fire_within:.0f} s")
            resolved = self.wait_notification(offset, "resolved", started, resolve_within)
            run["resolved_seconds"] = None if resolved is None else round(resolved["received"] - started, 2)
            log(f"alert run {number}: resolved after {run['resolved_seconds']} s")
            if run["resolved_seconds"] is None:
                raise BenchError(f"run {number}: no resolved RedisDown at the receiver within {resolve_within:.0f} s")
        result["fired"] = spread([r["fired_seconds"] for r in result["runs"] if r.get("fired_seconds") is not None])
        result["resolved"] = spread(
            [r["resolved_seconds"] for r in result["runs"] if r.get("resolved_seconds") is not None]
        )

    # -- the benchmark -------------------------------------------------------------------------

    def run(self) -> int:
        result: dict = {
            "started": benchkit.now_iso(),
            "inventory": str(self.inventory),
            "playbook": self.args.playbook,
            "parts": self.args.parts,
            "errors": [],
        }
        status = 0
        try:
            for part in self.args.parts:
                try:
                    if part == "no-change":
                        result["no_change"] = self.no_change()
                        if result["no_change"]["rc"]:
                            raise BenchError(f"the no-change run failed (see {result['no_change']['log']})")
                    elif part == "first":
                        result["first_converge"] = {"copy": self.copy}
                        try:
                            self.first_converge(result["first_converge"])
                        finally:
                            cleanup = self.remove_copy()
                            result["first_converge"]["cleanup"] = cleanup
                            for line in cleanup:
                                log(f"  {line}")
                    elif part == "alert":
                        result["alert"] = {}
                        try:
                            self.alert(result["alert"])
                        finally:
                            # Whatever happened: Redis runs again.
                            with contextlib.suppress(Exception):
                                self.redis("start")
                except BenchError as error:
                    result["errors"].append(f"{part}: {error}")
                    log(f"bench: {part}: {error}")
                    status = 1
        except KeyboardInterrupt:
            result["errors"].append("interrupted")
            status = 130
        finally:
            benchkit.finish(self.out, "monitoring", result, self.logs, lambda done: print(f"\n{format_table(done)}"))
        return status


def yaml_load(text: str) -> dict:
    yaml = importlib.import_module("yaml")
    return yaml.safe_load(text)


def format_table(result: dict) -> str:
    lines = []
    copy = result.get("first_converge", {})
    rows = [
        ("no change (the lab)", result.get("no_change")),
        (f"first converge ({copy.get('copy', 'copy')}, fresh)", copy.get("first")),
        (f"no change ({copy.get('copy', 'copy')})", copy.get("second")),
    ]
    if any(run for _, run in rows):
        lines.append(
            f"{'monitoring.yml':36} {'hosts':>5} {'host-tasks':>10} {'changed':>7} {'wall s':>8} {'s/host-task':>11}"
        )
    for label, run in rows:
        if run:
            lines.append(
                f"{label:36} {run['hosts']:>5} {run['host_tasks']:>10} {run['changed']:>7} {run['seconds']:>8.1f} "
                f"{run['seconds_per_host_task'] or 0:>11.3f}" + ("" if run["rc"] == 0 else f"  rc {run['rc']}")
            )
    for key, label in (("create", "create the copy (lab/lab.yml)"), ("pki", "its certificates (pki.yml, first)")):
        if key in copy:
            lines.append(f"{label}: {copy[key]['seconds']:.1f} s (rc {copy[key]['rc']})")
    for label, run in rows:
        if not run:
            continue
        lines.append(f"\ntasks per host, {label}:")
        lines.append(f"  {'host':14} {'tasks':>6} {'skipped':>8} {'changed':>8} {'busy s':>8}")
        for host, row in run["per_host"].items():
            lines.append(
                f"  {host:14} {row['tasks']:>6} {row['skipped']:>8} {row['changed']:>8} {row['busy_seconds']:>8.1f}"
            )
    alert = result.get("alert") or {}
    if alert.get("runs"):
        lines.append("")
        lines.append(
            f"RedisDown, stop -> notification at the receiver ({len(alert['runs'])} runs; rule for: "
            f"{alert['rule_for_seconds']:.0f} s, scrape {alert['intervals']['scrape']:.0f} s, evaluation "
            f"{alert['intervals']['evaluation']:.0f} s, group_wait {alert['intervals']['group_wait']:.0f} s, "
            f"group_interval {alert['intervals']['group_interval']:.0f} s):"
        )
        lines.append(f"  {'':10} {'median s':>9} {'max s':>7} {'bound s':>8}   runs")
        for key, bound in (("fired", "fire_bound_seconds"), ("resolved", "resolve_bound_seconds")):
            values = alert.get(key) or spread(
                [r[key + "_seconds"] for r in alert["runs"] if r.get(key + "_seconds") is not None]
            )
            median = "-" if values["median"] is None else f"{values['median']:.1f}"
            maximum = "-" if values["max"] is None else f"{values['max']:.1f}"
            lines.append(
                f"  {key:10} {median:>9} {maximum:>7} {alert[bound]:>8.0f}   {', '.join(map(str, values['values']))}"
            )
    for error in result.get("errors", []):
        lines.append(f"\nnot measured / failed: {error}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        type=lambda text: [part for part in text.split(",") if part],
        help=f"which parts, in this order (default {','.join(PARTS)})",
    )
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--playbook", default="playbooks/monitoring.yml")
    parser.add_argument("--pki-playbook", default="playbooks/pki.yml", help="gives the copy its certificates")
    parser.add_argument("--create-playbook", default="lab/lab.yml", help="creates the copy (run with --limit)")
    parser.add_argument("--copy-of", default="mon1", help="the monitoring host the fresh copy is made from")
    parser.add_argument("--suffix", default="b", help="the copy's name is its original's plus this (default b)")
    parser.add_argument("--no-seed", action="store_true", help="do not seed the copy's apt cache from the original's")
    parser.add_argument("--no-second", action="store_true", help="skip the copy's second (no-change) run")
    parser.add_argument("--container-prefix", default="corvid-lab-", help="container name = prefix + host")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per ansible-playbook run (default 1800)")
    parser.add_argument("--runs", type=int, default=3, help="alert runs (default 3)")
    parser.add_argument("--margin", type=float, default=15.0, help="seconds added to each alert bound (default 15)")
    parser.add_argument("--poll", type=float, default=1.0, help="seconds between looks at the receiver's file")
    parser.add_argument("--redis-host", default="cache2")
    parser.add_argument("--redis-unit", default="redis-server")
    parser.add_argument("--redis-instance", default="cache2:9121", help="the instance label of its exporter")
    parser.add_argument("--monitoring-host", default="mon1", help="where Prometheus and the receiver run")
    parser.add_argument("--prometheus-port", type=int, default=9090, help="on 127.0.0.1")
    parser.add_argument("--alertmanager-port", type=int, default=9093, help="on 127.0.0.1")
    parser.add_argument("--ca", default=".cache/pki/lab/ca.crt")
    parser.add_argument("--deadline", help="HH:MM UTC: no run starts that could end after it")
    parser.add_argument("--out", default=".cache/bench")
    args = parser.parse_args(argv)
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--parts: a comma-separated list of {', '.join(PARTS)}, not {','.join(unknown) or 'nothing'}")
    if not re.fullmatch(r"[a-z0-9]+", args.suffix):
        parser.error("--suffix: lower-case letters and digits")
    if args.runs < 1:
        parser.error("--runs: at least 1")
    benchkit.check_deadline(parser, args.deadline)
    return args


def main(argv: list[str] | None = None) -> int:
    # Stopped from outside (kill PID): the copy is removed and Redis started all the same.
    return benchkit.run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
