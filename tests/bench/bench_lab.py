#!/usr/bin/env python3
"""Lab benchmark: time a first converge of playbooks/site.yml on new lab hosts, a second
(no-change) converge, and count the tasks each host runs. Prints a table.

It removes and recreates the lab containers (apt packages come from the lab's cache), then
makes what the converge needs first, as `make lab` does: the AWS seed, the registry and the app
images in it. It finds tests/tools (recap, benchkit) by itself. `--edge-only` measures the
edge's requests per second on the running lab (TLS 1.3 beside plain HTTP) and nothing else.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # benchkit, without PYTHONPATH

from benchkit import BIN, ROOT, run_or_exit

from recap import parse_recap

INVENTORY = ROOT / "inventories" / "lab"
ENV = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}


def playbook(*args: str) -> tuple[float, str]:
    return run_or_exit([BIN / "ansible-playbook", "-i", INVENTORY, *args], f"ansible-playbook {' '.join(args)}", ENV)


EDGE_PORT = 8443  # edge1:443 published on 127.0.0.1 (inventories/lab/hosts.yml)
EDGE_CA = ROOT / ".cache" / "pki" / "lab" / "ca.crt"
EDGE_CONTAINER = "corvid-lab-edge1"
EDGE_PLAIN_PORT = 8090  # the site's plain_http_listen on edge1's loopback (inventories/lab/group_vars/edge)
EDGE_CONNECTIONS = 4
EDGE_REQUESTS = 5000  # per client: a run of a few seconds, long enough to be steady
EDGE_ROUNDS = 3  # TLS and plain alternate; the median of each is shown

# The load client: `connections` processes, each with one keep-alive connection (the TLS
# handshake included) sending `requests` GETs one after the other; requests per second over
# the wall time of all of them. Standard library only, so that the very same code runs on
# the machine and inside edge1 (Debian's python3).
EDGE_CLIENT = """
import http.client, json, multiprocessing, ssl, sys, time
args = json.loads(sys.argv[1])

def client(start, results):
    if args["tls"]:
        context = ssl.create_default_context(cafile=args["ca"])
        conn = http.client.HTTPSConnection("localhost", args["port"], context=context, timeout=10)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", args["port"], timeout=10)
    start.wait()
    try:
        for _ in range(args["requests"]):
            conn.request("GET", args["path"], headers={"Host": "localhost"})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                results.put("%s: %s" % (args["path"], response.status))
                return
        conn.close()
        results.put("")
    except Exception as error:
        results.put("%s: %r" % (args["path"], error))

if __name__ == "__main__":
    start, results = multiprocessing.Event(), multiprocessing.Queue()
    workers = [multiprocessing.Process(target=client, args=(start, results)) for _ in range(args["connections"])]
    for worker in workers:
        worker.start()
    time.sleep(0.5)
    began = time.monotonic()
    start.set()
    errors = [error for error in (results.get(timeout=300) for _ in workers) if error]
    elapsed = time.monotonic() - began
    for worker in workers:
        worker.join()
    print(json.dumps({"errors": errors, "rps": args["connections"] * args["requests"] / elapsed}))
"""


def edge_rps(path: str, tls: bool = True, inside: bool = True) -> float:
    """Requests per second to the edge's `path`, keep-alive, EDGE_CONNECTIONS clients at once.

    inside: the client runs in edge1 (docker exec) against its loopback, TLS 1.3 on :443 or
    the same server's plain listener; the two differ by TLS alone. Otherwise it runs on the
    machine against the published 127.0.0.1:8443 (through docker's port forwarding).
    """
    args = {"path": path, "tls": tls, "connections": EDGE_CONNECTIONS, "requests": EDGE_REQUESTS}
    if inside:
        args.update(port=443 if tls else EDGE_PLAIN_PORT, ca="/etc/corvid/pki/ca.crt")
        command = ["docker", "exec", "-i", EDGE_CONTAINER, "python3", "-", json.dumps(args)]
    else:
        args.update(port=EDGE_PORT, ca=str(EDGE_CA))
        command = [sys.executable, "-", json.dumps(args)]
    run = subprocess.run(command, input=EDGE_CLIENT, capture_output=True, text=True, timeout=600, check=False)
    if run.returncode:
        sys.exit(f"bench: the edge client failed ({path}, tls={tls}):\n{run.stderr[-2000:]}")
    result = json.loads(run.stdout)
    if result["errors"]:
        sys.exit(f"bench: the edge answered {result['errors'][0]}")
    return result["rps"]


def print_edge() -> None:
    print(
        f"edge (keep-alive, {EDGE_CONNECTIONS} clients x {EDGE_REQUESTS} requests, median of {EDGE_ROUNDS} runs;"
        " client inside edge1 on its loopback, the same server with and without TLS):"
    )
    print(f"  {'':32} {'TLS 1.3':>10} {'plain HTTP':>11} {'TLS cost':>9}")
    for label, path in (("static location (/health)", "/health"), ("app upstream (/api/health)", "/api/health")):
        runs = [(edge_rps(path, tls=True), edge_rps(path, tls=False)) for _ in range(EDGE_ROUNDS)]
        tls, plain = (statistics.median(column) for column in zip(*runs, strict=True))
        print(f"  {label:32} {tls:10.0f} {plain:11.0f} {1 - tls / plain:9.0%}   requests/s")
    through = edge_rps("/health", inside=False)
    print(f"  from the machine, TLS 1.3 through 127.0.0.1:{EDGE_PORT} (/health): {through:.0f} requests/s")


def make(target: str) -> float:
    """One step of `make lab` (Makefile: LAB_STEPS), timed; the bench stops if it fails."""
    return run_or_exit(["make", "--no-print-directory", target], f"make {target}", ENV)[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--edge-only", action="store_true", help="only the edge's requests per second, on the running lab"
    )
    args = parser.parse_args()
    if args.edge_only:
        # The edge's requests/s on the running lab, without recreating it.
        print_edge()
        return 0
    playbook("lab/lab.yml", "-e", "lab_state=absent")
    (ROOT / ".cache" / "facts").mkdir(parents=True, exist_ok=True)
    for cached in (ROOT / ".cache" / "facts").iterdir():
        cached.unlink()
    create, _ = playbook("lab/lab.yml")
    prepare = sum(make(target) for target in ("lab-aws-seed", "lab-registry", "lab-app-images"))
    first, first_out = playbook("playbooks/site.yml")
    second, second_out = playbook("playbooks/site.yml")

    first_rows = parse_recap(first_out)
    second_rows = parse_recap(second_out)
    print(f"lab create (containers, systemd booted): {create:6.1f} s")
    print(f"AWS seed, registry, app images pushed:   {prepare:6.1f} s")
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
    print_edge()
    return 0


if __name__ == "__main__":
    sys.exit(main())
