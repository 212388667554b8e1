"""lab/images/debian_sources.py: the lab images use the machine's own Debian mirror."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "lab" / "images" / "debian_sources.py"
spec = importlib.util.spec_from_file_location("debian_sources", SCRIPT)
debian_sources = importlib.util.module_from_spec(spec)
spec.loader.exec_module(debian_sources)

DEB822 = """\
Types: deb
# a comment line
URIs: http://mirror.test/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.test/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""
THIRD_PARTY = """\
Types: deb
URIs: https://vendor.test/apt
Suites: nodistro
Components: main
Signed-By: /usr/share/keyrings/vendor.gpg
"""


@pytest.fixture
def machine(tmp_path: Path) -> Path:
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/os-release").write_text('ID=debian\nVERSION_CODENAME="bookworm"\n')
    (tmp_path / "etc/apt/sources.list.d/debian.sources").write_text(DEB822)
    (tmp_path / "etc/apt/sources.list.d/vendor.sources").write_text(THIRD_PARTY)
    return tmp_path


def test_keeps_only_debian_archives(machine):
    stanzas = debian_sources.read_stanzas(machine)
    assert [s["URIs"] for s in stanzas] == ["http://mirror.test/debian", "http://mirror.test/debian-security"]


def test_renders_the_target_suite(machine):
    text = debian_sources.render(debian_sources.read_stanzas(machine), "bookworm", "trixie")
    assert "Suites: trixie trixie-updates" in text
    assert "Suites: trixie-security" in text
    assert "bookworm" not in text
    assert "Components: main contrib" in text


def test_mirror_is_the_main_archive(machine):
    assert debian_sources.mirror(debian_sources.read_stanzas(machine)) == "http://mirror.test/debian"


def test_one_line_sources_list(tmp_path):
    (tmp_path / "etc/apt").mkdir(parents=True)
    (tmp_path / "etc/os-release").write_text("VERSION_CODENAME=bookworm\n")
    (tmp_path / "etc/apt/sources.list").write_text(
        "# old style\ndeb [arch=amd64] http://mirror.test/debian bookworm main\n"
        "deb-src http://mirror.test/debian bookworm main\n"
    )
    stanzas = debian_sources.read_stanzas(tmp_path)
    assert stanzas == [
        {"Types": "deb", "URIs": "http://mirror.test/debian", "Suites": "bookworm", "Components": "main"}
    ]
    assert debian_sources.host_codename(tmp_path) == "bookworm"


def test_no_debian_archive(tmp_path):
    (tmp_path / "etc/apt/sources.list.d").mkdir(parents=True)
    (tmp_path / "etc/apt/sources.list.d/vendor.sources").write_text(THIRD_PARTY)
    assert debian_sources.read_stanzas(tmp_path) == []
