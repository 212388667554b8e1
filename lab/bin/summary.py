#!/usr/bin/env python3
"""Print what the lab is: each host, its Debian release, the platform services running on
it, the TCP ports it listens on and what is published on the machine's 127.0.0.1."""

from __future__ import annotations

import sys

import docker

# Units the platform's roles install; the summary lists those that are active.
SERVICES = [
    "postgresql",
    "redis-server",
    "nginx",
    "prometheus",
    "prometheus-alertmanager",
    "grafana-server",
    "prometheus-node-exporter",
    "prometheus-postgres-exporter",
    "prometheus-redis-exporter",
    "prometheus-nginx-exporter",
    "prometheus-blackbox-exporter",
    "docker",
    "docker-registry",
    "corvid-mcp-health.timer",
    "corvid-pebble",
]

PROBE = (
    '. /etc/os-release; echo "$VERSION_CODENAME"; '
    "systemctl is-system-running; "
    f"systemctl is-active {' '.join(SERVICES)} | tr '\\n' ' '; echo; "
    # 127.0.0.11 is the docker network's DNS resolver, not a service of the host.
    "ss -ltnH | awk 'index($4, \"127.0.0.11:\") != 1 {print $4}' | sed 's/.*://' | sort -nu | tr '\\n' ' '"
)


def main() -> int:
    client = docker.from_env()
    containers = sorted(
        client.containers.list(all=True, filters={"label": "org.corvid.lab=true"}),
        key=lambda c: c.labels.get("org.corvid.lab.host", c.name),
    )
    if not containers:
        print("lab: no lab hosts (run `make lab`)")
        return 1
    rows = [("host", "release", "systemd", "services", "listening", "on 127.0.0.1")]
    for container in containers:
        host = container.labels.get("org.corvid.lab.host", container.name)
        if container.status != "running":
            rows.append((host, "-", container.status, "-", "-", "-"))
            continue
        out = [*container.exec_run(["sh", "-c", PROBE]).output.decode().splitlines(), "", "", "", ""]
        release, state, active, ports = out[:4]
        running = [name for name, st in zip(SERVICES, active.split(), strict=False) if st == "active"]
        published = []
        for inner, bindings in (container.attrs["NetworkSettings"]["Ports"] or {}).items():
            for binding in bindings or []:
                published.append(f"{binding['HostPort']}->{inner.split('/')[0]}")
        services = ", ".join(running) or "-"
        rows.append((host, release, state, services, ports.strip() or "-", ", ".join(published) or "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
