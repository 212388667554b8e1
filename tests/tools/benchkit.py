"""What the benchmarks in tests/bench/ share: progress lines, deadlines, bounded commands, the
callback that times every task on every host, and the reading of what a playbook run left.

The scripts run as `python tests/bench/NAME.py` and put tests/tools on sys.path themselves.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from recap import RECAP

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The recap with every count ansible-playbook prints (recap.RECAP stops at skipped).
FULL_RECAP = re.compile(RECAP.pattern + r"\s+rescued=(?P<rescued>\d+)\s+ignored=(?P<ignored>\d+)", re.M)
DEADLINE = re.compile(r"([01]?\d|2[0-3]):[0-5]\d")  # HH:MM, UTC
TIMER = "corvid_bench_timer"

# A notification callback (enabled beside the default output): one JSON line per task result to
# the file named by CORVID_BENCH_TIMINGS, with the host, the play, the task, when it started on
# that host and how long it took, the host it was delegated to, and the value of the variable
# named by CORVID_BENCH_HOST_VAR on the task or any include above it (bench_deploy.py: deploy.yml's
# loop over the app hosts).
CALLBACK = '''
from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: corvid_bench_timer
type: aggregate
short_description: time of each task on each host, as JSON lines
description: Writes one line per task result to the file named by CORVID_BENCH_TIMINGS.
"""


def _scoped_value(task, name):
    node, seen = task, 0
    while node is not None and seen < 100:
        found = getattr(node, "vars", None)
        if isinstance(found, dict) and isinstance(found.get(name), str) and "{" not in found[name]:
            return found[name]
        node, seen = getattr(node, "_parent", None), seen + 1
    return None


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "corvid_bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = {}
        self._play = None
        self._var = os.environ.get("CORVID_BENCH_HOST_VAR", "")
        path = os.environ.get("CORVID_BENCH_TIMINGS")
        self._out = open(path, "a", encoding="utf-8") if path else None

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name()

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.time()

    def _done(self, result, status):
        if self._out is None:
            return
        host, task = result.host.get_name(), result.task
        start = self._started.pop((host, task._uuid), None)
        end = time.time()
        delegated = result.result.get("_ansible_delegated_vars") or {}
        # ansible-core 2.21 names the delegated host; 2.20 keeps only its connection variables,
        # so the task's own delegate_to stands in when it is a plain name.
        to = delegated.get("ansible_delegated_host") or delegated.get("ansible_host")
        named = getattr(task, "delegate_to", None)
        if not to and isinstance(named, str) and "{" not in named:
            to = named
        line = {
            "host": host,
            "play": self._play,
            "task": task.get_name(),
            "action": task.action,
            "status": status,
            "start": start,
            "seconds": None if start is None else end - start,
            "delegated_to": to,
            "for_host": _scoped_value(task, self._var) if self._var else None,
        }
        self._out.write(json.dumps(line) + "\\n")
        self._out.flush()

    def v2_runner_on_ok(self, result, **kwargs):
        self._done(result, "changed" if result.result.get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._done(result, "ignored" if ignore_errors else "failed")

    def v2_runner_on_skipped(self, result):
        self._done(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._done(result, "unreachable")
'''


class BenchError(Exception):
    """A measure that cannot be taken: reported in the result, the rest of the run goes on or ends."""


def log(message: str) -> None:
    print(f"[{datetime.datetime.now(datetime.UTC):%H:%M:%S}] {message}", flush=True)


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


# -- deadlines and signals ---------------------------------------------------------------------


def deadline_timestamp(text: str, now: datetime.datetime | None = None) -> float:
    """HH:MM (UTC) of today as a timestamp; stops the script when that time has passed."""
    now = now or datetime.datetime.now(datetime.UTC)
    hour, minute = (int(part) for part in text.split(":"))
    end = now.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if end <= now:
        raise SystemExit(f"bench: the deadline {text} UTC has passed")
    return end.timestamp()


def check_deadline(parser: argparse.ArgumentParser, text: str | None) -> None:
    """The usage error unless --deadline is absent or HH:MM (UTC)."""
    if text and not DEADLINE.fullmatch(text):
        parser.error("--deadline: HH:MM (UTC)")


def seconds_left(deadline: float | None) -> float:
    return float("inf") if deadline is None else deadline - time.time()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def stop_on_sigterm() -> None:
    """Stopped from outside (kill PID), a script cleans up as after Ctrl-C."""
    signal.signal(signal.SIGTERM, _interrupt)


def run_bench(bench: type, args: object) -> int:
    """A script's Bench(args).run(), SIGTERM handled as Ctrl-C (its cleanup runs all the same)."""
    stop_on_sigterm()
    return bench(args).run()


# -- commands ----------------------------------------------------------------------------------


def as_text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def run_or_exit(command: list, what: str, env: dict | None = None) -> tuple[float, str]:
    """Run a command to its end; its wall time and output (stdout, then stderr). If it fails the
    script stops, with `what` and the end of that output."""
    start = time.monotonic()
    command = [str(part) for part in command]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    elapsed = time.monotonic() - start
    if done.returncode:
        sys.exit(f"bench: {what} failed:\n{done.stdout[-4000:]}{done.stderr[-3000:]}")
    return elapsed, done.stdout + done.stderr


def _stop_group(process: subprocess.Popen, steps: tuple[tuple[int, float], ...]) -> tuple[str, str]:
    """Signal the process group step after step until it ends; what it wrote meanwhile."""
    for sig, grace in steps:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            more_out, more_err = process.communicate(timeout=grace)
            return as_text(more_out), as_text(more_err)
        except subprocess.TimeoutExpired:
            continue
    return "", ""


def run_bounded(command: list[str], env: dict | None, limit: float, cwd: Path = ROOT) -> dict:
    """Run a command for at most `limit` seconds; past it SIGINT to its process group
    (ansible-playbook ends its tasks), then SIGTERM, then SIGKILL. Interrupted itself (Ctrl-C, or
    SIGTERM after stop_on_sigterm()), the script stops the command the same way, sooner."""
    start = time.monotonic()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=limit)
    except subprocess.TimeoutExpired:
        timed_out = True
        stdout, stderr = _stop_group(process, ((signal.SIGINT, 30), (signal.SIGTERM, 15), (signal.SIGKILL, 15)))
        stderr += f"\n(stopped after {limit:.0f} s)"
    except BaseException:
        _stop_group(process, ((signal.SIGINT, 10), (signal.SIGTERM, 5), (signal.SIGKILL, 5)))
        raise
    return {
        "rc": process.returncode if not timed_out else (process.returncode or -1),
        "timed_out": timed_out,
        "seconds": round(time.monotonic() - start, 2),
        "stdout": stdout,
        "stderr": stderr,
    }


# -- ansible-playbook with the timing callback -------------------------------------------------


def ansible_inventory(inventory: Path, env: dict, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`ansible-inventory -i INVENTORY ARGS` (at most 5 minutes), its output captured."""
    command = [str(BIN / "ansible-inventory"), "-i", str(inventory), *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300, check=check)


def timer_env(work: Path, host_var: str = "") -> dict[str, str]:
    """Write the timing callback to WORK/callback_plugins; the environment that enables it beside
    the default output (the repository's ansible.cfg, no colours)."""
    callbacks = work / "callback_plugins"
    callbacks.mkdir(parents=True, exist_ok=True)
    (callbacks / f"{TIMER}.py").write_text(CALLBACK)
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_PLUGINS": str(callbacks),
        "ANSIBLE_CALLBACKS_ENABLED": TIMER,
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "CORVID_BENCH_HOST_VAR": host_var,
    }


def parse_full_recap(output: str) -> dict[str, dict[str, int]]:
    """Counts per host, rescued and ignored included."""
    return {
        match["host"]: {key: int(value) for key, value in match.groupdict().items() if key != "host"}
        for match in FULL_RECAP.finditer(output)
    }


def run_timed(name: str, command: list[str], env: dict, limit: float, logs: Path) -> dict:
    """run_bounded() with the callback writing to LOGS/NAME.timings.jsonl; the output goes to
    LOGS/NAME.log. run_bounded()'s result plus "timings", the callback's lines."""
    timings = logs / f"{name}.timings.jsonl"
    timings.unlink(missing_ok=True)
    timings.touch()
    run = run_bounded(command, {**env, "CORVID_BENCH_TIMINGS": str(timings)}, limit)
    (logs / f"{name}.log").write_text(run["stdout"] + "\n--- stderr ---\n" + run["stderr"])
    run["timings"] = [json.loads(line) for line in timings.read_text().splitlines() if line.strip()]
    return run


def run_playbook(name: str, command: list[str], env: dict, limit: float, logs: Path) -> dict:
    """Run one ansible-playbook command, stopped after `limit` seconds (rc -1 then); its wall
    time, rc, recap and task timings (the output goes to LOGS/NAME.log)."""
    log(f"{name}: {' '.join(command[1:])} (at most {limit:.0f} s)")
    run = run_timed(name, command, env, limit, logs)
    rc = -1 if run["timed_out"] else run["rc"]
    log(f"{name}: rc {rc} in {run['seconds']:.1f} s")
    return {
        "name": name,
        "rc": rc,
        "seconds": run["seconds"],
        "recap": parse_full_recap(run["stdout"]),
        "timings": run["timings"],
        "tail": "" if rc == 0 else (run["stdout"][-2500:] + run["stderr"][-1500:]),
    }


def summarise(run: dict) -> dict:
    """Per host: task results, changed, busy seconds; overall: wall time per host-task."""
    hosts: dict[str, dict] = {}
    for line in run["timings"]:
        row = hosts.setdefault(line["host"], {"tasks": 0, "changed": 0, "skipped": 0, "busy_seconds": 0.0})
        row["tasks"] += 1
        row["changed"] += line["status"] == "changed"
        row["skipped"] += line["status"] == "skipped"
        row["busy_seconds"] += line["seconds"] or 0.0
    for row in hosts.values():
        row["busy_seconds"] = round(row["busy_seconds"], 2)
        row["seconds_per_task"] = round(row["busy_seconds"] / row["tasks"], 3) if row["tasks"] else None
    host_tasks = sum(row["tasks"] for row in hosts.values())
    slowest: dict[str, float] = {}
    for line in run["timings"]:
        slowest[line["task"]] = slowest.get(line["task"], 0.0) + (line["seconds"] or 0.0)
    return {
        "rc": run["rc"],
        "seconds": run["seconds"],
        "hosts": len([host for host in hosts if host != "localhost"]),
        "host_tasks": host_tasks,
        "seconds_per_host_task": round(run["seconds"] / host_tasks, 3) if host_tasks else None,
        "changed": sum(row["changed"] for row in hosts.values()),
        "per_host": dict(sorted(hosts.items())),
        "slowest_tasks": [
            {"task": task, "seconds": round(seconds, 2)}
            for task, seconds in sorted(slowest.items(), key=lambda item: -item[1])[:10]
        ],
        "recap": run["recap"],
        "tail": run["tail"],
    }


# -- copies of lab hosts -----------------------------------------------------------------------


def lab_cache_dir() -> Path:
    if os.environ.get("CORVID_LAB_CACHE"):
        return Path(os.environ["CORVID_LAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "corvid-lab"


def seed_apt_cache(original: str, copy: str) -> Path | None:
    """The copy's apt cache starts with its original's downloaded packages (hard links, no lock
    files); the directory made, or None when there was nothing to do."""
    apt = lab_cache_dir() / "apt"
    source, target = apt / original, apt / copy
    if target.exists() or not source.is_dir():
        return None
    target.mkdir(parents=True)
    for deb in source.glob("*.deb"):
        with contextlib.suppress(OSError):
            os.link(deb, target / deb.name)
    return target


def remove_container(container: str) -> str:
    run = subprocess.run(["docker", "rm", "-f", container], capture_output=True, text=True, check=False)
    return f"container {container}: {'removed' if run.returncode == 0 else run.stderr.strip()}"


def remove_apt_cache(directory: Path) -> str:
    shutil.rmtree(directory, ignore_errors=True)
    return f"apt cache {directory}: removed"


def remove_cached_facts(host: str) -> list[str]:
    """The host's files in the fact cache (.cache/facts), by its name or with it as the suffix."""
    facts = ROOT / ".cache" / "facts"
    report = []
    if facts.is_dir():
        for cached in facts.iterdir():
            if cached.name == host or re.fullmatch(r"[A-Za-z0-9_.-]*_" + re.escape(host), cached.name):
                cached.unlink(missing_ok=True)
                report.append(f"cached facts {cached.name}: removed")
    return report


# -- results -----------------------------------------------------------------------------------


def save_result(out: Path, kind: str, result: dict) -> Path:
    """OUT/KIND-<time>.json and OUT/KIND-latest.json; the first's path."""
    path = out / f"{kind}-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}.json"
    text = json.dumps(result, indent=2) + "\n"
    path.write_text(text)
    (out / f"{kind}-latest.json").write_text(text)
    return path


def finish(out: Path, kind: str, result: dict, logs: Path, show: Callable[[dict], None]) -> Path:
    """The end of every run, measured or not: the time, the JSON files (save_result), the table
    (`show`), then where the JSON and the logs are."""
    result["finished"] = now_iso()
    path = save_result(out, kind, result)
    show(result)
    print(f"\nJSON: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}; logs: {logs}")
    return path
