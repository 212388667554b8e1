#!/usr/bin/env python3
"""Lab benchmark: time a first converge of playbooks/site.yml on new lab hosts, a second
(no-change) converge, and count the tasks each host runs. Prints a table.

It removes and recreates the lab containers (apt packages come from the lab's cache).
Run it with tests/tools on PYTHONPATH, as `make bench` does.
"""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

from recap import parse_recap

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
INVENTORY = ROOT / "inventories" / "lab"
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}


def playbook(*args: str) -> tuple[float, str]:
    start = time.monotonic()
    run = subprocess.run(
        [BIN / "ansible-playbook", "-i", INVENTORY, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        check=False,
    )
    elapsed = time.monotonic() - start
    if run.returncode:
        sys.exit(f"bench: ansible-playbook {' '.join(args)} failed:\n{run.stdout[-3000:]}{run.stderr[-2000:]}")
    return elapsed, run.stdout


EDGE_PORT = 8443  # edge1:443 published on 127.0.0.1 (inventories/lab/hosts.yml)
EDGE_CA = ROOT / ".cache" / "pki" / "lab" / "ca.crt"


def edge_rps(path: str, connections: int = 4, requests: int = 500) -> float:
    """Requests per second through the edge's TLS 1.3, keep-alive, `connections` clients at once."""
    context = ssl.create_default_context(cafile=str(EDGE_CA))
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPSConnection("localhost", EDGE_PORT, context=context, timeout=10)
        for _ in range(requests):
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                errors.append(f"{path}: {response.status}")
                return
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(connections)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    if errors:
        sys.exit(f"bench: the edge answered {errors[0]}")
    return connections * requests / elapsed


def main() -> int:
    playbook("lab/lab.yml", "-e", "lab_state=absent")
    (ROOT / ".cache" / "facts").mkdir(parents=True, exist_ok=True)
    for cached in (ROOT / ".cache" / "facts").iterdir():
        cached.unlink()
    create, _ = playbook("lab/lab.yml")
    first, first_out = playbook("playbooks/site.yml")
    second, second_out = playbook("playbooks/site.yml")

    first_rows = parse_recap(first_out)
    second_rows = parse_recap(second_out)
    print(f"lab create (containers, systemd booted): {create:6.1f} s")
    print(f"first converge of playbooks/site.yml:    {first:6.1f} s")
    print(f"second converge (no change):             {second:6.1f} s")
    print()
    print(f"{'host':10} {'tasks':>6} {'changed (1st)':>14} {'changed (2nd)':>14} {'skipped':>8}")
    for host in sorted(second_rows):
        row = second_rows[host]
        tasks = row["ok"] + row["skipped"]
        print(
            f"{host:10} {tasks:>6} {first_rows.get(host, {}).get('changed', '-'):>14} "
            f"{row['changed']:>14} {row['skipped']:>8}"
        )
    print()
    print("edge (TLS 1.3, keep-alive, 4 clients x 500 requests on 127.0.0.1:8443):")
    print(f"  static location (/health):           {edge_rps('/health'):8.0f} requests/s")
    print(f"  stand-in upstream (/api/health):     {edge_rps('/api/health'):8.0f} requests/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
