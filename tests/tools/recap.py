"""Read the PLAY RECAP that ansible-playbook prints: the tests judge a run by it."""

from __future__ import annotations

import re

RECAP = re.compile(
    r"^(?P<host>\S+)\s+:\s+ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+unreachable=(?P<unreachable>\d+)"
    r"\s+failed=(?P<failed>\d+)\s+skipped=(?P<skipped>\d+)",
    re.M,
)


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Counts per host, e.g. {"cache1": {"ok": 6, "changed": 0, "unreachable": 0, ...}}."""
    return {
        match["host"]: {key: int(value) for key, value in match.groupdict().items() if key != "host"}
        for match in RECAP.finditer(output)
    }
