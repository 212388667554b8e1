"""playbooks/mcp_health.yml as AWX runs it: through ansible-runner (its Python API), from a private data dir.

The private data dir is the layout docs/awx.md describes for running the job locally:

    env/envvars      ANSIBLE_CONFIG, ANSIBLE_COLLECTIONS_PATH, ...
    env/extravars    the job template's extra variables (here: the endpoints, the metrics file)
    env/settings     ansible-runner's own settings (a job timeout)
    inventory/       hosts.yml: localhost in group mcp_checkers
    project          a link to the checkout (the playbook: playbooks/mcp_health.yml)

One real MCP server (the SDK's, from conftest.py) answers on 127.0.0.1; nothing leaves the host.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from conftest import BIN, COLLECTIONS_ENV, MANAGED_PYTHON, ROOT

ansible_runner = pytest.importorskip("ansible_runner", reason="ansible-runner is in pyproject.toml's ansible group")

COLLECTIONS = ROOT / ".cache" / "collections"
TASK = "Check every MCP endpoint"
REPORT = "Report every endpoint"


def private_data_dir(base: Path, endpoints: list[dict], metrics: Path) -> Path:
    """Write an ansible-runner private data dir for playbooks/mcp_health.yml on localhost."""
    data = base / "runner"
    (data / "env").mkdir(parents=True)
    (data / "inventory").mkdir()
    # As in AWX, the project is the repository and the playbook a path in it: ansible-runner runs
    # ansible-playbook in project/, so ansible.cfg's relative paths resolve as they do in the checkout.
    (data / "project").symlink_to(ROOT, target_is_directory=True)
    envvars = {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        # ansible.cfg's collections_path (.cache/collections, linked by `make venv`) as an absolute path,
        # or conftest's temporary link
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_ENV.get("ANSIBLE_COLLECTIONS_PATH", str(COLLECTIONS)),
        "ANSIBLE_NOCOLOR": "1",
    }
    (data / "env" / "envvars").write_text(yaml.safe_dump(envvars))
    extravars = {
        "mcp_health_endpoints": endpoints,
        "mcp_health_textfile_path": str(metrics),
        "mcp_health_failure_policy": "any",
    }
    (data / "env" / "extravars").write_text(json.dumps(extravars, indent=2))
    (data / "env" / "settings").write_text(yaml.safe_dump({"job_timeout": 180}))
    inventory = {
        "mcp_checkers": {
            "hosts": {
                "localhost": {
                    "ansible_connection": "local",
                    "ansible_python_interpreter": MANAGED_PYTHON,
                    # the play becomes root for node_exporter's textfile directory; the metrics file is in tmp here
                    "ansible_become": False,
                }
            }
        }
    }
    (data / "inventory" / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return data


def run_health(data: Path):
    return ansible_runner.run(
        private_data_dir=str(data),
        playbook="playbooks/mcp_health.yml",
        # the venv's ansible-playbook, whether or not the venv is on PATH (`make` puts it there)
        envvars={"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', os.defpath)}"},
        quiet=True,
    )


def host_events(runner, event: str, task: str) -> list[dict]:
    found = []
    for e in runner.events:
        data = e.get("event_data", {})
        if e.get("event") == event and data.get("task") == task and data.get("host") == "localhost":
            found.append(data)
    return found


def endpoints_by_name(result: dict) -> dict[str, dict]:
    return {endpoint["name"]: endpoint for endpoint in result["endpoints"]}


def test_health_job_through_ansible_runner(servers, tmp_path):
    metrics = tmp_path / "mcp.prom"
    data = private_data_dir(tmp_path, [{"name": "stateful", "url": servers.url("stateful_sse")}], metrics)
    runner = run_health(data)
    stdout = runner.stdout.read()
    assert (runner.status, runner.rc) == ("successful", 0), stdout

    (check,) = host_events(runner, "runner_on_ok", TASK)
    assert check["role"] == "mcp_health"
    endpoint = endpoints_by_name(check["res"])["stateful"]
    assert endpoint["healthy"] and endpoint["up"], endpoint
    assert endpoint["url"] == servers.url("stateful_sse")
    assert host_events(runner, "runner_on_ok", REPORT), stdout
    assert not host_events(runner, "runner_on_failed", TASK)
    # the role's argument validation, the check and the report
    assert runner.stats["ok"] == {"localhost": 3} and runner.stats["failures"] == {}
    assert 'mcp_endpoint_healthy{checker="localhost",endpoint="stateful"} 1' in metrics.read_text()
    # the job's artifacts are where AWX (and docs/awx.md) expect them
    artifacts = data / "artifacts" / runner.config.ident
    assert (artifacts / "rc").read_text() == "0" and (artifacts / "status").read_text() == "successful"
    assert list((artifacts / "job_events").glob("*.json"))
    assert not (ROOT / "artifacts").exists() and not (ROOT / "playbooks" / "artifacts").exists()


def test_failing_health_job_through_ansible_runner(servers, tmp_path):
    """An endpoint on a closed port (127.0.0.1:9, discard): the module fails the task, the job fails."""
    metrics = tmp_path / "mcp.prom"
    endpoints = [
        {"name": "stateful", "url": servers.url("stateful_sse")},
        {"name": "gone", "url": "http://127.0.0.1:9/mcp", "timeout": 5},
    ]
    runner = run_health(private_data_dir(tmp_path, endpoints, metrics))
    stdout = runner.stdout.read()
    assert runner.status == "failed" and runner.rc != 0, stdout

    (failed,) = host_events(runner, "runner_on_failed", TASK)
    by_name = endpoints_by_name(failed["res"])
    assert by_name["stateful"]["healthy"]
    assert not by_name["gone"]["up"] and by_name["gone"]["failed_stage"] == "connect", by_name["gone"]
    assert "1 of 2 MCP endpoints unhealthy" in failed["res"]["msg"]
    assert not host_events(runner, "runner_on_ok", TASK)
    # the report still runs after the check failed the task
    assert host_events(runner, "runner_on_ok", REPORT), stdout
    assert runner.stats["failures"] == {"localhost": 1}
