"""playbooks/deploy.yml (and rollback.yml) refuse bad deploy_* variables in their first play.

Each case runs the real playbook against a host in group edge (the deploy reads its variables
there) and one in group app: the check must fail with a message that names the variable, and
the play that converges the app hosts must never start (nothing changes anywhere).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PLAYBOOK = ROOT / "playbooks/deploy.yml"
GOOD = {"deploy_release": "v2"}

# name: (extra variables, the expected message)
CASES: dict[str, tuple[dict, str]] = {
    "no_release": ({}, "deploy_release must be the tag (e.g. v2) or digest"),
    "release_with_a_space": ({"deploy_release": "v 2"}, "deploy_release must be the tag"),
    "steps_decreasing": ({**GOOD, "deploy_traffic_steps": [50, 10]}, "deploy_traffic_steps must be increasing"),
    "steps_not_ending_at_100": ({**GOOD, "deploy_traffic_steps": [10, 50]}, "deploy_traffic_steps must be increasing"),
    "error_rate_above_1": ({**GOOD, "deploy_max_error_rate": 2}, "deploy_max_error_rate must be a fraction"),
    "negative_step_seconds": ({**GOOD, "deploy_step_seconds": -1}, "deploy_step_seconds must be a whole number"),
    "negative_drain_seconds": ({**GOOD, "deploy_drain_seconds": -5}, "deploy_drain_seconds must be a whole number"),
    "zero_p95": ({**GOOD, "deploy_max_p95_seconds": 0}, "deploy_max_p95_seconds must be a number of seconds"),
    # -1 used to skip every host and report success without deploying anything.
    "negative_failed_hosts": (
        {**GOOD, "deploy_max_failed_hosts": -1},
        "deploy_max_failed_hosts must be a whole number",
    ),
    "unknown_app": ({**GOOD, "deploy_app": "nope"}, 'deploy_app "nope" is not an app of app_containers_apps (demo)'),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_deploy_variables_fail_before_any_change(tmp_path, case):
    variables, expected = CASES[case]
    # The check is an assert (it runs on the controller); anything later would need the host,
    # which is a closed port on loopback: it could not change anything even if it ran.
    host = {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_python_interpreter": sys.executable}
    inventory = {
        "edge": {"hosts": {"edge-check": host}},
        "app": {"hosts": {"app-check": host}, "vars": {"app_containers_apps": [{"name": "demo"}]}},
    }
    (tmp_path / "inventory.json").write_text(json.dumps(inventory))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    process = subprocess.run(
        [BIN / "ansible-playbook", "-i", tmp_path / "inventory.json", "-e", f"@{tmp_path / 'vars.json'}", PLAYBOOK],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"},
    )
    output = process.stdout + process.stderr
    assert process.returncode != 0, output
    assert expected in output, output
    assert "Converge the app tier" not in output, output
