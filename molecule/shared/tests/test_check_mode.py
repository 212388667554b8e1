"""Check mode on the converged hosts: `--check --diff` of the converge playbook changes nothing.

Shared by every scenario (see .config/molecule/config.yml). It runs once per scenario,
after idempotence, against the same inventory and ansible.cfg molecule used.
"""

import os
import subprocess

from recap import parse_recap


def test_check_mode_reports_no_change():
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--check",
            "--diff",
            os.path.join(scenario, "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert run.returncode == 0, run.stdout + run.stderr
    recap = parse_recap(run.stdout)
    assert recap, run.stdout
    for row in recap.values():
        assert (row["changed"], row["failed"], row["unreachable"]) == (0, 0, 0), run.stdout
