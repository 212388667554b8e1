"""The runner of the roles' preflight tests (tests/functional/test_preflight*.py).

No container: the roles' preflight entry points run against local hosts (one host per case,
all in one ansible-playbook run with the JSON callback), and each host's message is read from
the failing task's own result, not from the whole output. A test module lists its cases once
in a PreflightCases and takes from it its `preflight` fixture and the tests every tier has:
each problem fails with its own message, the good variables pass, a secret stays out of the
output. Runs of a whole role on localhost (its argument spec, check mode) go through
run_role_on_localhost.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PREFLIGHT_TASK = "Check the role's variables before any change"
# A recognisable secret: it must never show up in a message or in the output.
SECRET = "preflight-secret-4d2a"
MEMORY_CACHE = {"ANSIBLE_CACHE_PLUGIN": "ansible.builtin.memory"}

PLAYBOOK = """\
- name: Preflight of every role, one host per case
  hosts: all:!outside
  gather_facts: true
  gather_subset: [min, network, virtual]
  tasks:
    - name: Preflight
      ansible.builtin.include_role:
        name: "corvid.platform.{{ case_role }}"
        tasks_from: preflight

- name: The shared preflight outside a role
  hosts: outside
  gather_facts: false
  tasks:
    - name: Preflight
      ansible.builtin.import_role:
        name: corvid.platform.common
        tasks_from: preflight
        rolespec_validate: false
"""

# A host's variables for its module's role, or (role, variables).
Case = dict | tuple[str, dict]
Preflight = tuple[dict[str, list[str]], str]


def ansible_playbook(
    *arguments: str | Path,
    timeout: int = 300,
    settings: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """ansible-playbook ARGUMENTS from the collection's root with its ansible.cfg and the JSON
    callback, in `env` (default: this process's environment) plus `settings` (ANSIBLE_*)."""
    return subprocess.run(
        [BIN / "ansible-playbook", *arguments],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=timeout,
        env={
            **(env or os.environ),
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            **(settings or {}),
        },
    )


def failed_messages(output: str) -> dict[str, list[str]]:
    """host -> the messages of its failed preflight task (from the JSON callback)."""
    messages = {}
    for play in json.loads(output)["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].split(" : ")[-1] != PREFLIGHT_TASK:
                continue
            for host, result in task["hosts"].items():
                if result.get("failed"):
                    messages[host] = result["msg"]
    return messages


def run_preflight(workdir: Path, cases: dict[str, tuple[str, dict]]) -> Preflight:
    """One ansible-playbook run: host NAME runs role ROLE's preflight with VARIABLES, for every
    NAME: (ROLE, VARIABLES) of cases; plus a host that imports common outside a role.
    Returns host -> messages of its failed preflight task, and the whole output."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts = {name: {**local, "case_role": role, **variables} for name, (role, variables) in cases.items()}
    inventory = {"all": {"hosts": hosts}, "outside": {"hosts": {"common_outside_a_role": local}}}
    (workdir / "inventory.json").write_text(json.dumps(inventory))
    (workdir / "playbook.yml").write_text(PLAYBOOK)
    process = ansible_playbook("-i", workdir / "inventory.json", workdir / "playbook.yml", settings=MEMORY_CACHE)
    return failed_messages(process.stdout), process.stdout + process.stderr


def assert_fails_alone(preflight: Preflight, host: str, expected: str, secret: str | None = None) -> None:
    """In a run_preflight result, `host` failed with exactly one message, which contains
    `expected` (and not `secret`, when one is given)."""
    messages, output = preflight
    assert host in messages, f"{host} did not fail its preflight:\n{output[-3000:]}"
    assert len(messages[host]) == 1, messages[host]
    assert expected in messages[host][0], messages[host]
    assert secret is None or secret not in json.dumps(messages[host])


class PreflightCases:
    """The preflight cases of one test module, all in one run_preflight.

    role: the role of the cases that do not name one.
    problems: host -> (variables, message), (role, variables, message) or ((role, variables),
    message): the host's preflight fails with one message, which contains `message`.
    good: host -> variables or (role, variables), or a function of the run's directory that
    returns them: the host's preflight passes.
    secret: no message of a problem holds it, nor does the whole output (secret_test).
    check_ran: a good host must also show up in the output (it ran, and passed).
    """

    def __init__(
        self,
        role: str | None,
        problems: dict[str, tuple],
        good: dict[str, Case | Callable[[Path], Case]],
        *,
        secret: str | None = None,
        check_ran: bool = False,
    ) -> None:
        self.role = role
        self.problems = problems
        self.good = good
        self.secret = secret
        self.check_ran = check_ran

    def _role_and_variables(self, case: Case) -> tuple[str, dict]:
        return (self.role, case) if isinstance(case, dict) else case

    def expected(self, host: str) -> str:
        """The message the problem `host` fails with."""
        return self.problems[host][-1]

    def hosts(self, workdir: Path) -> dict[str, tuple[str, dict]]:
        """host -> (role, variables) of every problem and good case, as run_preflight takes them."""
        hosts = {}
        for host, (*case, _) in self.problems.items():
            hosts[host] = self._role_and_variables(case[0] if len(case) == 1 else tuple(case))
        for host, case in self.good.items():
            hosts[host] = self._role_and_variables(case(workdir) if callable(case) else case)
        return hosts

    def fixture(self, directory: str):
        """The module's `preflight` fixture: one run of every case, in a directory of that name."""

        @pytest.fixture(scope="module", name="preflight")
        def preflight(tmp_path_factory: pytest.TempPathFactory) -> Preflight:
            workdir = tmp_path_factory.mktemp(directory)
            return run_preflight(workdir, self.hosts(workdir))

        return preflight

    def problem_test(self):
        """A test per problem: the host fails with its own message, and that message alone."""

        @pytest.mark.parametrize("host", list(self.problems))
        def test(preflight: Preflight, host: str) -> None:
            assert_fails_alone(preflight, host, self.expected(host), self.secret)

        return test

    def good_test(self):
        """A test per good case: the host passes its preflight."""

        @pytest.mark.parametrize("host", list(self.good))
        def test(preflight: Preflight, host: str) -> None:
            messages, output = preflight
            assert host not in messages, messages.get(host)
            if self.check_ran:
                assert f'"{host}"' in output, f"{host} did not run"

        return test

    def secret_test(self):
        """The secret appears nowhere in the whole output of the run."""

        def test(preflight: Preflight) -> None:
            _, output = preflight
            assert self.secret not in output

        return test


def run_role_on_localhost(tmp_path: Path, play: str, variables: dict, *options: str):
    """Run `play` on localhost with the JSON callback; return the process and the failed results."""
    (tmp_path / "playbook.yml").write_text(play)
    process = ansible_playbook(
        "-i",
        "localhost,",
        "-c",
        "local",
        *options,
        "-e",
        json.dumps(variables),
        tmp_path / "playbook.yml",
        timeout=120,
    )
    failed = [
        result
        for play_report in json.loads(process.stdout)["plays"]
        for task in play_report["tasks"]
        for result in task["hosts"].values()
        if result.get("failed")
    ]
    return process, failed


def role_play(role: str) -> str:
    """A play that applies the whole role `role` to localhost."""
    return f"- name: The {role} role\n  hosts: localhost\n  roles:\n    - role: corvid.platform.{role}\n"


def run_role_preflight(tmp_path: Path, role: str, variables: dict):
    """The role itself on localhost, limited to its preflight tag (its argument spec runs first)."""
    return run_role_on_localhost(
        tmp_path,
        role_play(role),
        {**variables, "ansible_python_interpreter": sys.executable},
        "--tags",
        f"{role}_preflight",
    )


def run_role_check_mode(tmp_path: Path, role: str, variables: dict):
    """The whole role on localhost in check mode, where it fails at one task: the process and
    that task's result."""
    process, failed = run_role_on_localhost(tmp_path, role_play(role), variables, "--check")
    return process, one_failure(process, failed)


def assert_stopped_at_the_preflight(process: subprocess.CompletedProcess[str]) -> None:
    """In a run of a whole role on localhost: the last task that ran is the preflight, and
    nothing changed before it."""
    report = json.loads(process.stdout)
    names = [task["task"]["name"] for play in report["plays"] for task in play["tasks"]]
    assert names[-1].endswith(PREFLIGHT_TASK), names
    assert report["stats"]["localhost"]["changed"] == 0


def one_failure(process: subprocess.CompletedProcess[str], failed: list[dict]) -> dict:
    """The run failed, at one task: its result."""
    assert process.returncode != 0
    assert len(failed) == 1, failed
    return failed[0]


def assert_argument_error(process: subprocess.CompletedProcess[str], failed: list[dict], *words: str) -> None:
    """The run failed at one task, with an argument spec error that holds every one of `words`."""
    failure = one_failure(process, failed)
    errors = failure.get("argument_errors", [])
    assert any(all(word in error for word in words) for error in errors), failure
