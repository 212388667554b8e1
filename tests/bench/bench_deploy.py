#!/usr/bin/env python3
"""Deploy benchmark: how long a blue-green deploy takes per app host, and what the clients of the
edge see during it compared with steady state.

On the running lab (`make lab`; the edge is https://127.0.0.1:8443, Host edge1, the lab CA):

1. Steady state: the load generator (tests/tools/loadgen.py: API reads and writes and WebSocket
   sessions, 127.0.0.1 only) for --duration seconds.
2. The same load around `ansible-playbook -i inventories/lab playbooks/deploy.yml
   -e deploy_release=R`, R being the release that does not run now (v1 <-> v2, read from the
   app's state file on app1), or --release.
3. A table: per phase the requests, failed requests, p50/p99 latency and requests/s; the deploy's
   wall time and the seconds spent on each app host. JSON under .cache/bench/.

The exit status is 1 when the deploy failed or any request failed (in either phase).

Time per app host: a callback (tests/tools/benchkit.py) records every task result with the
value of the loop variable deploy.yml iterates the app hosts with (`__deploy_host`, found on the
include that runs the role's deploy entry point for that host): "deploy s" is the time from the
first to the last task run for a host (plan, start of the idle colour, smoke test, the traffic
steps and their holds, the drain, the old colour's stop); "on host s" is the same span over the
tasks delegated to the app host itself (its containers).

    .venv/bin/python tests/bench/bench_deploy.py                # about 8 minutes
    .venv/bin/python tests/bench/bench_deploy.py --duration 30 --deadline 23:00

Bounded: the load has its own end (time and requests), the playbook a timeout (stopped with
SIGINT, then SIGTERM), and --deadline (HH:MM UTC) refuses to start a phase that cannot end
before it. Only 127.0.0.1 is sent to (loadgen refuses anything else).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

import benchkit
from benchkit import BIN, ROOT, BenchError, log

from recap import parse_recap

APP = "agent-service"
STATE_FILE = f"/etc/corvid/apps/{APP}/state.json"
SWAP = {"v1": "v2", "v2": "v1"}


# --------------------------------------------------------------------------------------------
# Reading the results (pure functions: tested without a lab)


def per_host(timings: list[dict], app_hosts: list[str] | None = None) -> dict[str, dict]:
    """Seconds per app host: the span of the tasks run for it (for_host), and of the tasks
    delegated to it; task counts."""
    rows: dict[str, dict] = {}

    def span(row: dict, key: str, line: dict) -> None:
        if line.get("start") is None:
            return
        end = line["start"] + (line.get("seconds") or 0.0)
        first, last = row.get(key + "_first"), row.get(key + "_last")
        row[key + "_first"] = line["start"] if first is None else min(first, line["start"])
        row[key + "_last"] = end if last is None else max(last, end)

    for line in timings:
        target = line.get("for_host")
        if target:
            row = rows.setdefault(target, {"tasks": 0, "failed": 0})
            row["tasks"] += 1
            row["failed"] += line["status"] == "failed"
            span(row, "deploy", line)
        delegated = line.get("delegated_to")
        if delegated:
            row = rows.setdefault(delegated, {"tasks": 0, "failed": 0})
            row["delegated_tasks"] = row.get("delegated_tasks", 0) + 1
            span(row, "on_host", line)
    result = {}
    for host, row in rows.items():
        if app_hosts is not None and host not in app_hosts:
            continue
        out = {"tasks": row["tasks"], "failed": row["failed"], "delegated_tasks": row.get("delegated_tasks", 0)}
        for key in ("deploy", "on_host"):
            if row.get(key + "_first") is not None:
                out[key + "_seconds"] = round(row[key + "_last"] - row[key + "_first"], 2)
                out[key + "_started"] = round(row[key + "_first"], 3)
            else:
                out[key + "_seconds"] = None
        result[host] = out
    return dict(sorted(result.items(), key=lambda item: item[1].get("deploy_started") or 0))


def per_play(timings: list[dict]) -> list[dict]:
    """The plays in the order they ran: seconds from their first task's start to their last's end."""
    plays: dict[str, dict] = {}
    for line in timings:
        if line.get("start") is None:
            continue
        row = plays.setdefault(line.get("play") or "?", {"first": line["start"], "last": line["start"], "tasks": 0})
        row["first"] = min(row["first"], line["start"])
        row["last"] = max(row["last"], line["start"] + (line.get("seconds") or 0.0))
        row["tasks"] += 1
    return [
        {"play": name, "seconds": round(row["last"] - row["first"], 2), "task_results": row["tasks"]}
        for name, row in sorted(plays.items(), key=lambda item: item[1]["first"])
    ]


def phase_row(name: str, summary: dict) -> dict:
    latency = summary.get("latency_seconds") or {}
    ws = summary.get("websocket") or {}
    return {
        "phase": name,
        "seconds": summary.get("duration_seconds"),
        "requests": summary.get("requests", 0),
        "failed": summary.get("failed", 0),
        "failures_by_kind": summary.get("failures_by_kind", {}),
        "p50_seconds": latency.get("p50"),
        "p99_seconds": latency.get("p99"),
        "max_seconds": latency.get("max"),
        "requests_per_second": summary.get("requests_per_second"),
        "ws_sessions": ws.get("sessions", 0),
        "ws_abnormal": ws.get("ended_abnormally", 0),
        "served_by": summary.get("served_by", {}),
        "stopped_by": summary.get("stopped_by"),
    }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.1f}"


def format_table(result: dict) -> str:
    lines = [
        f"{'phase':16} {'seconds':>8} {'requests':>9} {'failed':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
        f" {'req/s':>7} {'ws abnormal':>11}"
    ]
    for row in result.get("phases", []):
        lines.append(
            f"{row['phase']:16} {row['seconds'] or 0:>8.1f} {row['requests']:>9} {row['failed']:>7} "
            f"{_ms(row['p50_seconds']):>8} {_ms(row['p99_seconds']):>8} {_ms(row['max_seconds']):>8} "
            f"{row['requests_per_second'] or 0:>7.2f} {row['ws_abnormal']:>11}"
        )
    for row in result.get("phases", []):
        if row["failed"]:
            lines.append(f"  {row['phase']}: failed requests by kind {row['failures_by_kind']}")
    deploy = result.get("deploy")
    if deploy:
        lines.append("")
        lines.append(
            f"deploy {deploy.get('from') or '?'} -> {deploy['release']}: {deploy['seconds']:.1f} s in all "
            f"(rc {deploy['rc']}{', stopped at the timeout' if deploy.get('timed_out') else ''})"
        )
        lines.append(f"  {'app host':10} {'deploy s':>9} {'on host s':>10} {'tasks':>6} {'failed':>7}")
        for host, row in deploy.get("per_host", {}).items():
            deploy_s = "-" if row["deploy_seconds"] is None else f"{row['deploy_seconds']:.1f}"
            on_host = "-" if row["on_host_seconds"] is None else f"{row['on_host_seconds']:.1f}"
            lines.append(f"  {host:10} {deploy_s:>9} {on_host:>10} {row['tasks']:>6} {row['failed']:>7}")
        if deploy.get("per_play"):
            lines.append(f"  {'play':60} {'seconds':>8} {'results':>8}")
            for row in deploy["per_play"]:
                lines.append(f"  {row['play'][:60]:60} {row['seconds']:>8.1f} {row['task_results']:>8}")
    if result.get("error"):
        lines.append("")
        lines.append(f"not measured / failed: {result['error']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The benchmark


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.inventory = (ROOT / args.inventory).resolve()
        self.out = (ROOT / args.out).resolve()
        self.work = self.out / "deploy"
        self.logs = self.work / "logs"
        self.deadline = benchkit.deadline_timestamp(args.deadline) if args.deadline else None
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = benchkit.timer_env(self.work, host_var=args.host_var)
        self.loadgen = importlib.import_module("loadgen")

    def left(self) -> float:
        return benchkit.seconds_left(self.deadline)

    def load_config(self, duration: float):
        return self.loadgen.LoadConfig(
            url=self.args.url,
            host=self.args.host,
            ca_file=str((ROOT / self.args.ca).resolve()),
            duration=duration,
            max_requests=int(self.args.rate * duration * 1.5) + 100,
            rate=self.args.rate,
            concurrency=self.args.concurrency,
            write_ratio=self.args.write_ratio,
            ws_sessions=self.args.ws_sessions,
            ws_interval=1.0,
            request_timeout=self.args.request_timeout,
            ids_file=None,
        )

    def app_release(self, host: str) -> tuple[str, str]:
        """(active colour, its release) from the app's state file on `host`."""
        run = subprocess.run(
            ["docker", "exec", self.args.container_prefix + host, "cat", STATE_FILE],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        if run.returncode:
            raise BenchError(f"cannot read {STATE_FILE} on {host}: {run.stderr.strip() or run.stdout.strip()}")
        state = json.loads(run.stdout)
        return state["active"], state["releases"].get(state["active"], "")

    def steady(self) -> dict:
        duration = float(self.args.duration)
        if self.left() < duration + 30:
            raise BenchError(f"the steady-state load ({duration:.0f} s) would end after the deadline")
        log(f"steady state: {duration:.0f} s at {self.args.rate}/s, {self.args.ws_sessions} WebSocket sessions")
        summary = asyncio.run(self.loadgen.LoadGenerator(self.load_config(duration)).run())
        log(f"steady state: {summary['requests']} requests, {summary['failed']} failed")
        return summary

    def deploy(self, release: str) -> tuple[dict, dict]:
        """deploy.yml under load; (the playbook's result, the load's summary)."""
        limit = self.args.deploy_timeout
        if self.deadline is not None:
            if self.left() < self.args.deploy_min_seconds + 30:
                raise BenchError(
                    f"the deploy was not started: less than --deploy-min-seconds ({self.args.deploy_min_seconds} s) "
                    f"before the deadline ({self.args.deadline} UTC)"
                )
            limit = min(limit, int(self.left() - 30))
        config = self.load_config(limit + 120.0)
        command = [
            str(BIN / "ansible-playbook"),
            "-i",
            str(self.inventory),
            str(ROOT / self.args.playbook),
            "-e",
            f"deploy_release={release}",
        ]
        with self.loadgen.background(config) as load:
            time.sleep(self.args.settle)  # sessions open and requests flowing before the change
            log(f"deploy: {' '.join(command[1:])} (at most {limit} s)")
            run = benchkit.run_timed("deploy", command, self.env, limit, self.logs)
            time.sleep(self.args.settle)
        summary = load.summary
        lines = run["timings"]
        log(f"deploy: rc {run['rc']} in {run['seconds']:.1f} s; load: {summary['requests']} requests")
        result = {
            "release": release,
            "rc": run["rc"],
            "timed_out": run["timed_out"],
            "seconds": run["seconds"],
            "per_host": per_host(lines, self.args.app_hosts),
            "per_play": per_play(lines),
            "recap": parse_recap(run["stdout"]),
            "tail": "" if run["rc"] == 0 else (run["stdout"][-3000:] + run["stderr"][-1500:]),
        }
        return result, summary

    def run(self) -> int:
        result: dict = {
            "started": benchkit.now_iso(),
            "target": f"{self.args.url} (Host {self.args.host})",
            "rate": self.args.rate,
            "ws_sessions": self.args.ws_sessions,
            "phases": [],
        }
        status = 0
        try:
            releases = {host: self.app_release(host) for host in self.args.app_hosts}
            result["before"] = {host: {"colour": c, "release": r} for host, (c, r) in releases.items()}
            current = releases[self.args.app_hosts[0]][1]
            release = self.args.release or SWAP.get(current)
            if not release:
                raise BenchError(
                    f"{self.args.app_hosts[0]} runs {current!r}, neither v1 nor v2: give the release with --release"
                )
            if release == current:
                log(f"note: {release} runs already; the deploy will change nothing")
            steady = self.steady()
            result["phases"].append(phase_row("steady state", steady))
            result["steady_summary"] = steady
            deploy, during = self.deploy(release)
            deploy["from"] = current
            result["deploy"] = deploy
            result["phases"].append(phase_row("during deploy", during))
            result["deploy_summary"] = during
            result["after"] = {
                host: dict(zip(("colour", "release"), self.app_release(host), strict=True))
                for host in self.args.app_hosts
            }
            problems = []
            if deploy["rc"]:
                problems.append(f"the deploy failed (rc {deploy['rc']}; see {self.logs / 'deploy.log'})")
            failed = {row["phase"]: row["failed"] for row in result["phases"] if row["failed"]}
            if failed:
                problems.append(f"failed requests: {failed}")
            if problems:
                result["error"] = "; ".join(problems)
                status = 1
        except BenchError as error:
            result["error"] = str(error)
            status = 1
        except KeyboardInterrupt:
            result["error"] = "interrupted"
            status = 130
        finally:
            benchkit.finish(self.out, "deploy", result, self.logs, lambda done: print(f"\n{format_table(done)}"))
        return status


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of steady-state load (default 60)")
    parser.add_argument("--rate", type=float, default=20.0, help="requests per second in all (default 20)")
    parser.add_argument("--concurrency", type=int, default=4, help="keep-alive connections (default 4)")
    parser.add_argument("--ws-sessions", type=int, default=3, help="WebSocket sessions (default 3)")
    parser.add_argument("--write-ratio", type=float, default=0.3, help="share of POSTs (default 0.3)")
    parser.add_argument("--request-timeout", type=float, default=5.0, help="seconds per request (default 5)")
    parser.add_argument("--release", help="the release to deploy (default: v1 or v2, whichever does not run)")
    parser.add_argument("--url", default="https://127.0.0.1:8443", help="the edge (loopback only)")
    parser.add_argument("--host", default="edge1", help="Host header and TLS server name")
    parser.add_argument("--ca", default=".cache/pki/lab/ca.crt", help="the lab CA")
    parser.add_argument("--inventory", default="inventories/lab")
    parser.add_argument("--playbook", default="playbooks/deploy.yml", help="run with -e deploy_release=RELEASE")
    parser.add_argument(
        "--app-hosts", default="app1,app2", type=lambda text: [h for h in text.split(",") if h], help="app1,app2"
    )
    parser.add_argument("--host-var", default="__deploy_host", help="deploy.yml's loop variable over the app hosts")
    parser.add_argument("--container-prefix", default="corvid-lab-", help="container name = prefix + host")
    parser.add_argument("--deploy-timeout", type=int, default=1200, help="seconds for deploy.yml (default 1200)")
    parser.add_argument(
        "--deploy-min-seconds",
        type=int,
        default=600,
        help="with --deadline: the deploy starts only if this much time is left (default 600)",
    )
    parser.add_argument("--settle", type=float, default=3.0, help="seconds of load before and after the deploy")
    parser.add_argument("--deadline", help="HH:MM UTC: no phase starts that could end after it")
    parser.add_argument("--out", default=".cache/bench")
    args = parser.parse_args(argv)
    benchkit.check_deadline(parser, args.deadline)
    if args.duration <= 0 or args.rate <= 0:
        parser.error("--duration and --rate must be more than 0")
    if not args.app_hosts:
        parser.error("--app-hosts: at least one host")
    if args.release is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", args.release):
        parser.error("--release: a tag such as v2")
    return args


def main(argv: list[str] | None = None) -> int:
    # Stopped from outside (kill PID): the playbook is stopped and the result written all the same.
    return benchkit.run_bench(Bench, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
