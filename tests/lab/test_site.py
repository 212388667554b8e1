"""The converged lab, as an operator would check it: a second converge and a check-mode
run change nothing, and the services answer for real."""

from __future__ import annotations

import socket

import pytest
from conftest import lab_host, run_playbook

pytestmark = pytest.mark.lab


def test_second_converge_reports_no_change():
    run, recap = run_playbook("playbooks/site.yml")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert recap, run.stdout[-3000:]
    changed = {host: row["changed"] for host, row in recap.items() if row["changed"] or row["failed"]}
    assert changed == {}, run.stdout[-3000:]


def test_check_mode_reports_no_change():
    run, recap = run_playbook("playbooks/site.yml", "--check", "--diff")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert all(row["changed"] == 0 and row["failed"] == 0 for row in recap.values()), run.stdout[-3000:]


def redis_cli(host, password: str, *command: str) -> str:
    # REDISCLI_AUTH rather than redis-cli's arguments (it does sit in the `sh -c` line
    # testinfra runs through docker exec: a lab-only secret); assertions never print it.
    cmd = host.run("REDISCLI_AUTH=%s redis-cli --user app --no-auth-warning" + " %s" * len(command), password, *command)
    assert cmd.rc == 0, cmd.stderr
    return cmd.stdout.strip()


def test_redis_replicates_from_cache1_to_cache2(lab_secrets):
    password = lab_secrets["vault_redis_app_password"]
    primary, replica = lab_host("cache1"), lab_host("cache2")
    assert redis_cli(primary, password, "SET", "lab:probe", "written-on-cache1") == "OK"
    assert redis_cli(primary, password, "WAIT", "1", "5000") == "1"
    assert redis_cli(replica, password, "GET", "lab:probe") == "written-on-cache1"


def test_redis_refuses_commands_without_auth():
    out = lab_host("cache1").run("redis-cli PING").stdout
    assert "NOAUTH" in out


def test_redis_answers_on_the_published_port():
    # cache1:6379 is published on the machine's 127.0.0.1:16379 (inventories/lab/hosts.yml).
    with socket.create_connection(("127.0.0.1", 16379), timeout=5) as conn:
        conn.sendall(b"PING\r\n")
        reply = conn.recv(256)
    assert reply.startswith(b"-NOAUTH")
