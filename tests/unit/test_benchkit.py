"""benchkit, the benchmarks' shared part: deadlines, bounded commands, the timing callback in a
real ansible-playbook run on localhost, and the summary the tables are made of."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import benchkit
import pytest

NOW = datetime.datetime(2026, 11, 29, 22, 30, 15, tzinfo=datetime.UTC)
ON_LOCALHOST = ["-i", "localhost,", "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}"]


def test_deadline_later_today() -> None:
    end = benchkit.deadline_timestamp("23:05", now=NOW)
    assert end == datetime.datetime(2026, 11, 29, 23, 5, tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("text", ["22:30", "07:00", "0:00"])
def test_deadline_passed_stops(text: str) -> None:
    with pytest.raises(SystemExit, match=f"the deadline {text} UTC has passed"):
        benchkit.deadline_timestamp(text, now=NOW)


@pytest.mark.parametrize(("text", "valid"), [("23:30", True), ("7:05", True), ("24:00", False), ("12:60", False)])
def test_deadline_format(text: str, valid: bool) -> None:
    assert bool(benchkit.DEADLINE.fullmatch(text)) is valid


def test_check_deadline_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench")
    benchkit.check_deadline(parser, None)
    benchkit.check_deadline(parser, "23:30")
    with pytest.raises(SystemExit) as stopped:
        benchkit.check_deadline(parser, "23h30")
    assert stopped.value.code == 2
    assert capsys.readouterr().err.endswith("bench: error: --deadline: HH:MM (UTC)\n")


def test_seconds_left() -> None:
    assert benchkit.seconds_left(None) == float("inf")
    assert 99 < benchkit.seconds_left(time.time() + 100) <= 100


def test_run_or_exit_returns_the_time_and_both_outputs() -> None:
    seconds, output = benchkit.run_or_exit(["sh", "-c", "echo out; echo err >&2"], "echo")
    assert output == "out\nerr\n"
    assert 0 <= seconds < 30


def test_run_or_exit_stops_the_script_naming_the_step_and_the_output() -> None:
    with pytest.raises(SystemExit) as stopped:
        benchkit.run_or_exit(["sh", "-c", "echo the-reason >&2; exit 3"], "the seed step")
    assert str(stopped.value) == "bench: the seed step failed:\nthe-reason\n"


def test_run_bounded_stops_a_command_past_its_limit(tmp_path: Path) -> None:
    started = time.monotonic()
    run = benchkit.run_bounded(["sleep", "30"], None, 1, cwd=tmp_path)
    assert time.monotonic() - started < 10  # SIGINT ends sleep at once
    assert run["timed_out"] is True
    assert run["rc"] != 0
    assert run["stderr"].endswith("(stopped after 1 s)")


def test_run_bounded_stops_the_command_when_interrupted(tmp_path: Path) -> None:
    """Ctrl-C or SIGTERM (made an exception) while it waits: the command does not outlive it."""

    def interrupt(signum: int, frame: object) -> None:
        raise RuntimeError("interrupted")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 1.0)
    try:
        with pytest.raises(RuntimeError, match="interrupted"):
            benchkit.run_bounded(["sh", "-c", "echo $$ > pid; exec sleep 30"], None, 60, cwd=tmp_path)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert not Path(f"/proc/{(tmp_path / 'pid').read_text().strip()}").exists()


def test_run_bounded_within_its_limit(tmp_path: Path) -> None:
    run = benchkit.run_bounded(["sh", "-c", "pwd; echo oops >&2; exit 3"], None, 30, cwd=tmp_path)
    assert run == {
        "rc": 3,
        "timed_out": False,
        "seconds": run["seconds"],
        "stdout": f"{tmp_path}\n",
        "stderr": "oops\n",
    }


def test_full_recap() -> None:
    output = (
        "PLAY RECAP ****\n"
        "cache1                     : ok=6    changed=1    unreachable=0    failed=0    skipped=2    rescued=0    "
        "ignored=1   \n"
    )
    assert benchkit.parse_full_recap(output) == {
        "cache1": {"ok": 6, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 2, "rescued": 0, "ignored": 1}
    }


def test_summarise() -> None:
    run = {
        "rc": 0,
        "seconds": 10.0,
        "recap": {},
        "tail": "",
        "timings": [
            {"host": "db1", "task": "a", "status": "ok", "seconds": 1.0},
            {"host": "db1", "task": "b", "status": "changed", "seconds": 3.0},
            {"host": "db2", "task": "a", "status": "skipped", "seconds": None},
            {"host": "localhost", "task": "c", "status": "ok", "seconds": 0.5},
        ],
    }
    summary = benchkit.summarise(run)
    assert summary["hosts"] == 2  # localhost is not a host of the platform
    assert summary["host_tasks"] == 4
    assert summary["seconds_per_host_task"] == 2.5
    assert summary["changed"] == 1
    assert summary["per_host"]["db1"] == {
        "tasks": 2,
        "changed": 1,
        "skipped": 0,
        "busy_seconds": 4.0,
        "seconds_per_task": 2.0,
    }
    assert summary["per_host"]["db2"]["skipped"] == 1
    assert summary["slowest_tasks"][0] == {"task": "b", "seconds": 3.0}


PLAYBOOK = """
- name: Bench timer check
  hosts: all
  gather_facts: false
  tasks:
    - name: Delegated, for app9
      ansible.builtin.command: "true"
      changed_when: false
      delegate_to: localhost
      vars:
        bench_for: app9
    - name: Changed
      ansible.builtin.debug:
        msg: done
      changed_when: true
"""


def test_callback_times_every_task(tmp_path: Path) -> None:
    """The callback, written to a directory of its own, is loaded by a real ansible-playbook run."""
    (tmp_path / "check.yml").write_text(PLAYBOOK)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = benchkit.timer_env(tmp_path / "work", host_var="bench_for")
    assert (tmp_path / "work" / "callback_plugins" / "corvid_bench_timer.py").is_file()
    command = [str(benchkit.BIN / "ansible-playbook"), *ON_LOCALHOST, str(tmp_path / "check.yml")]
    run = benchkit.run_playbook("check", command, env, 120, logs)
    assert run["rc"] == 0, run["tail"]
    assert run["recap"] == {
        "localhost": {"ok": 2, "changed": 1, "unreachable": 0, "failed": 0, "skipped": 0, "rescued": 0, "ignored": 0}
    }
    first, second = run["timings"]
    assert (first["task"], first["status"], second["task"], second["status"]) == (
        "Delegated, for app9",
        "ok",
        "Changed",
        "changed",
    )
    for line in run["timings"]:
        assert line["host"] == "localhost"
        assert line["play"] == "Bench timer check"
        assert line["start"] <= time.time()
        assert 0 <= line["seconds"] < 60
    assert (first["for_host"], second["for_host"]) == ("app9", None)
    assert (first["delegated_to"], second["delegated_to"]) == ("localhost", None)
    assert (logs / "check.timings.jsonl").read_text().count("\n") == 2
    assert "PLAY RECAP" in (logs / "check.log").read_text()


def test_callback_without_a_timings_file_writes_nothing(tmp_path: Path) -> None:
    """Enabled in an environment without CORVID_BENCH_TIMINGS (an ad-hoc command), it stays quiet."""
    env = benchkit.timer_env(tmp_path / "work")
    env.pop("CORVID_BENCH_TIMINGS", None)
    run = subprocess.run(
        [str(benchkit.BIN / "ansible"), "localhost", *ON_LOCALHOST, "-m", "ansible.builtin.debug", "-a", "msg=hello"],
        capture_output=True,
        text=True,
        cwd=benchkit.ROOT,
        env={**env, "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"},
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "hello" in run.stdout
    assert "corvid_bench_timer" not in run.stderr


def test_finish(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result: dict = {"sizes": {}}
    path = benchkit.finish(tmp_path, "scale", result, tmp_path / "logs", lambda done: print(f"table of {done}"))
    assert path.parent == tmp_path
    assert path.name.startswith("scale-")
    assert set(result) == {"sizes", "finished"}
    assert path.read_text() == (tmp_path / "scale-latest.json").read_text()
    assert json.loads(path.read_text()) == result
    assert capsys.readouterr().out == f"table of {result}\n\nJSON: {path}; logs: {tmp_path / 'logs'}\n"


def test_seed_and_remove_apt_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORVID_LAB_CACHE", str(tmp_path))
    source = tmp_path / "apt" / "mon1"
    source.mkdir(parents=True)
    (source / "a.deb").write_text("deb")
    (source / "lock").write_text("")
    created = benchkit.seed_apt_cache("mon1", "mon1b")
    assert created == tmp_path / "apt" / "mon1b"
    assert sorted(path.name for path in created.iterdir()) == ["a.deb"]
    assert os.path.samefile(created / "a.deb", source / "a.deb")
    assert benchkit.seed_apt_cache("mon1", "mon1b") is None  # there already
    assert benchkit.remove_apt_cache(created) == f"apt cache {created}: removed"
    assert not created.exists()
