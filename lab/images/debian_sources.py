#!/usr/bin/env python3
"""Print a deb822 sources file for Debian SUITE built from this machine's own apt sources.

The lab images use the same mirror as the machine that builds them, so no host name is
written into the project. Only stanzas that point at a Debian archive are kept; the
machine's codename is replaced by SUITE (bookworm-updates -> trixie-updates, ...).
With --mirror, print only the mirror URI of the main archive (for debootstrap).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def host_codename(root: Path = Path("/")) -> str:
    for line in (root / "etc/os-release").read_text().splitlines():
        if line.startswith("VERSION_CODENAME="):
            return line.split("=", 1)[1].strip().strip('"')
    return ""


def read_stanzas(root: Path = Path("/")) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    apt = root / "etc/apt"
    for path in sorted(apt.glob("sources.list.d/*.sources")):
        for block in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in block.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip()] = value.strip()
            if fields.get("URIs"):
                stanzas.append(fields)
    # One-line format, for machines that still use /etc/apt/sources.list.
    for path in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line).split()
            if len(parts) >= 4 and parts[0] == "deb":
                stanzas.append(
                    {"Types": "deb", "URIs": parts[1], "Suites": parts[2], "Components": " ".join(parts[3:])}
                )
    return [s for s in stanzas if is_debian(s)]


def is_debian(stanza: dict[str, str]) -> bool:
    if "debian-archive-keyring" in stanza.get("Signed-By", ""):
        return True
    return bool(re.search(r"/debian(-security)?/?$", stanza["URIs"].split()[0]))


def mirror(stanzas: list[dict[str, str]]) -> str:
    """The main archive's URI, for debootstrap."""
    main_archive = [s for s in stanzas if "security" not in s["Suites"]] or stanzas
    return main_archive[0]["URIs"].split()[0]


def render(stanzas: list[dict[str, str]], codename: str, suite: str) -> str:
    """A deb822 sources file for `suite` from the machine's stanzas."""
    out = []
    for stanza in stanzas:
        suites = stanza["Suites"]
        if codename:
            suites = re.sub(rf"\b{re.escape(codename)}\b", suite, suites)
        out.append(
            "\n".join(
                [
                    f"Types: {stanza.get('Types', 'deb')}",
                    f"URIs: {stanza['URIs']}",
                    f"Suites: {suites}",
                    f"Components: {stanza.get('Components', 'main')}",
                    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg",
                ]
            )
        )
    return "\n\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("suite")
    parser.add_argument("--mirror", action="store_true", help="print the main archive URI only")
    args = parser.parse_args()

    stanzas = read_stanzas()
    if not stanzas:
        print("debian_sources: no Debian archive found in this machine's apt sources", file=sys.stderr)
        return 1
    print(mirror(stanzas) if args.mirror else render(stanzas, host_codename(), args.suite))
    return 0


if __name__ == "__main__":
    sys.exit(main())
