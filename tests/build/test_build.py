"""The collection as users get it: `ansible-galaxy collection build` and `ansible-doc`."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Repository content that is for developing the collection, never for its users.
NOT_SHIPPED = (
    "tests/",
    "molecule/",
    "lab/",
    "inventories/lab/",
    ".ci/",
    ".config/",
    "Makefile",
    "pyproject.toml",
    "ansible.cfg",
    ".venv/",
)


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [BIN / "ansible-galaxy", "collection", "build", "--output-path", out, ROOT],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("corvid-platform-*.tar.gz")
    return built


def test_tarball_is_named_for_the_version(tarball):
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert tarball.name == f"corvid-platform-{version}.tar.gz"


def test_tarball_ships_no_development_files(tarball):
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    leaked = [n for n in names if n.startswith(NOT_SHIPPED) or n in {p.rstrip("/") for p in NOT_SHIPPED}]
    assert leaked == []


def test_tarball_ships_the_collection(tarball):
    with tarfile.open(tarball) as tar:
        names = set(tar.getnames())
    expected = {"MANIFEST.json", "FILES.json", "README.md", "LICENSE", "meta/runtime.yml", "playbooks/site.yml"}
    expected |= {f"roles/{role.name}/meta/argument_specs.yml" for role in (ROOT / "roles").iterdir()}
    assert expected <= names


@pytest.mark.parametrize("role", sorted(p.name for p in (ROOT / "roles").iterdir()))
def test_ansible_doc_documents_every_role_variable(role):
    doc = subprocess.run(
        [BIN / "ansible-doc", "--type", "role", "--json", f"corvid.platform.{role}"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    entry_points = yaml.safe_load(doc)[f"corvid.platform.{role}"]["entry_points"]
    # The internal common role documents its inputs under the entry point that takes them.
    documented = {name for entry in entry_points.values() for name in entry.get("options") or {}}
    defaults = set(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {})
    assert defaults <= documented
