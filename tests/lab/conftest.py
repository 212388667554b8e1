"""Fixtures for the lab tests: they run after `make lab` against inventories/lab."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import testinfra
import yaml

from recap import parse_recap

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = ROOT / "inventories" / "lab"
VAULT_PASSWORD_FILE = INVENTORY / "vault-password"
os.environ["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")


def run_playbook(playbook: str, *args: str) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, int]]]:
    """Run a playbook against the lab; return the process and its recap per host."""
    run = subprocess.run(
        [BIN / "ansible-playbook", "-i", INVENTORY, playbook, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    return run, parse_recap(run.stdout)


@pytest.fixture(scope="session")
def lab_secrets() -> dict[str, str]:
    """Every lab secret: the vault_* variables of each group_vars/*/vault.yml, merged."""
    secrets: dict[str, str] = {}
    for vault in sorted(INVENTORY.glob("group_vars/*/vault.yml")):
        out = subprocess.run(
            [BIN / "ansible-vault", "view", "--vault-password-file", VAULT_PASSWORD_FILE, vault],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        secrets.update(yaml.safe_load(out))
    return secrets


def lab_host(name: str):
    """The lab host `name`, reached through its container (inventories/lab names it corvid-lab-NAME)."""
    return testinfra.get_host(f"docker://corvid-lab-{name}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The dashboard queries run last, once the other lab tests have made their data (a backup
    through backup.yml, an alert), so that a fresh lab's backup panels are checked too."""
    items.sort(key=lambda item: item.path.name == "test_dashboards.py")
