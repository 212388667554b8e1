"""Real state of the redis scenario: a primary (Debian 12) and its replica (Debian 13).

Passwords come from the scenario's inventory (molecule.yml) and reach redis-cli through
REDISCLI_AUTH rather than its arguments (they do sit in the `sh -c` line testinfra runs
through docker exec: test values only); assertions compare outputs only, so a failure
report does not print a password.
"""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import yaml

from recap import parse_recap

PRIMARY = "corvid-redis-primary"
REPLICA = "corvid-redis-replica"
PORT = 6379
TLS_PORT = 6380

INVENTORY = yaml.safe_load((Path(__file__).parents[1] / "molecule.yml").read_text())["provisioner"]["inventory"]
USERS = {user["name"]: user["password"] for user in INVENTORY["group_vars"]["all"]["redis_acl_users"]}


def name_of(host):
    return host.backend.get_hostname()


def redis_cli(host, user, *command, server="127.0.0.1"):
    """Run one redis-cli command as an ACL user; return (exit status, trimmed output)."""
    run = host.run(
        "REDISCLI_AUTH=%s redis-cli --no-auth-warning --user %s -h %s -p %s " + " ".join(["%s"] * len(command)),
        USERS[user],
        user,
        server,
        str(PORT),
        *command,
    )
    return run.rc, (run.stdout + run.stderr).strip()


def wait_for(probe, timeout=20.0, interval=0.25):
    """Poll probe() until it returns a truthy value or the timeout passes; return the last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def test_service_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_port_listening(host):
    assert host.socket(f"tcp://0.0.0.0:{PORT}").is_listening


def test_tls_port_answers(host):
    assert host.socket(f"tcp://0.0.0.0:{TLS_PORT}").is_listening
    run = host.run(
        "REDISCLI_AUTH=%s redis-cli --no-auth-warning --tls --cacert /etc/ssl/redis-test.pem --user app"
        " -h 127.0.0.1 -p %s PING",
        USERS["app"],
        str(TLS_PORT),
    )
    assert run.stdout.strip() == "PONG", run.stderr


def test_container_dropin_present(host):
    dropin = host.file("/etc/systemd/system/redis-server.service.d/container.conf")
    assert dropin.exists
    assert "PrivateUsers=false" in dropin.content_string


def test_config_file_private_and_hashed(host):
    config = host.file("/etc/redis/redis.conf")
    assert (config.user, config.group, config.mode) == ("redis", "redis", 0o640)
    content = config.content_string
    for password in USERS.values():
        assert password not in content, "a plaintext ACL password is in redis.conf"
    # The primary keeps the default user off; the replica enables it with a password.
    expected = "user default on #" if name_of(host) == REPLICA else "user default off"
    assert expected in content


def test_command_without_auth_refused(host):
    key = f"noauth:{uuid.uuid4().hex}"
    run = host.run("redis-cli -h 127.0.0.1 -p %s SET %s x", str(PORT), key)
    assert "NOAUTH" in run.stdout + run.stderr
    rc, value = redis_cli(host, "admin", "EXISTS", key)
    assert (rc, value) == (0, "0")


def test_acl_user_can_set_and_get(host):
    key = f"app:{uuid.uuid4().hex}"
    if name_of(host) == PRIMARY:
        assert redis_cli(host, "app", "SET", key, "value") == (0, "OK")
        assert redis_cli(host, "app", "GET", key) == (0, "value")
    else:
        _, reply = redis_cli(host, "app", "SET", key, "value")
        assert "READONLY" in reply


def test_acl_user_cannot_run_dangerous_commands(host):
    _, reply = redis_cli(host, "app", "CONFIG", "GET", "maxmemory")
    assert "NOPERM" in reply
    _, reply = redis_cli(host, "app", "FLUSHALL")
    assert "NOPERM" in reply


def test_config_applied(host):
    _, reply = redis_cli(host, "admin", "CONFIG", "GET", "maxmemory-policy")
    assert reply.split() == ["maxmemory-policy", "allkeys-lru"]
    _, reply = redis_cli(host, "admin", "CONFIG", "GET", "maxmemory")
    assert reply.split() == ["maxmemory", str(64 * 1024 * 1024)]


def test_data_written_on_primary_is_read_on_replica(host):
    if name_of(host) != REPLICA:
        pytest.skip("runs on the replica, which writes through to the primary")
    key = f"repl:{uuid.uuid4().hex}"
    assert redis_cli(host, "app", "SET", key, "from-primary", server=PRIMARY) == (0, "OK")
    value = wait_for(lambda: redis_cli(host, "app", "GET", key)[1] == "from-primary")
    assert value, "the key written on the primary did not reach the replica"
    _, reply = redis_cli(host, "admin", "INFO", "replication")
    assert "master_link_status:up" in reply


def test_persistence_files_after_write(host):
    if name_of(host) != PRIMARY:
        pytest.skip("the primary has RDB snapshots every second and the AOF on")
    marker = uuid.uuid4().hex
    assert redis_cli(host, "app", "SET", f"persist:{marker}", marker) == (0, "OK")

    def persisted(path):
        return host.run("grep -rqa %s %s", marker, path).rc == 0

    assert wait_for(lambda: persisted("/var/lib/redis/appendonlydir")), "the write is not in the AOF"
    assert wait_for(lambda: persisted("/var/lib/redis/dump.rdb")), "the write is not in the RDB snapshot"
    assert host.file("/var/lib/redis/dump.rdb").user == "redis"


def test_rejected_config_keeps_the_live_one(host):
    """A configuration redis-server refuses fails the run and leaves the live file and process alone."""
    if name_of(host) != PRIMARY:
        pytest.skip("one host is enough")
    before = host.file("/etc/redis/redis.conf").sha256sum
    pid = host.run("systemctl show -p MainPID --value redis-server").stdout.strip()
    run = subprocess.run(
        [
            "ansible-playbook",
            "--inventory",
            os.environ["MOLECULE_INVENTORY_FILE"],
            "--limit",
            PRIMARY,
            "--extra-vars",
            json.dumps({"redis_extra_config": {"no-such-directive": "on"}}),
            str(Path(__file__).parents[1] / "converge.yml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    assert run.returncode != 0, run.stdout
    assert "Write the Redis configuration" in run.stdout
    recap = parse_recap(run.stdout)[PRIMARY]
    assert (recap["changed"], recap["failed"]) == (0, 1), run.stdout
    # Redis's own reason reaches the operator (failures may go to stderr); the secrets in
    # the file do not.
    output = run.stdout + run.stderr
    assert "Bad directive" in output, output
    assert "test-app-secret" not in output
    assert host.file("/etc/redis/redis.conf").sha256sum == before
    assert host.run("systemctl show -p MainPID --value redis-server").stdout.strip() == pid
    assert host.service("redis-server").is_running


def test_config_check_script_runs_by_hand(host):
    """redis-config-check accepts the live file and rejects a broken copy, naming Redis's reason."""
    accepted = host.run("redis-config-check /etc/redis/redis.conf /etc/ssl/redis-test.pem")
    assert accepted.rc == 0, accepted.stdout + accepted.stderr
    broken = host.run(
        "cp /etc/redis/redis.conf /tmp/broken.conf && echo 'maxmemory-policy nonsense' >> /tmp/broken.conf"
        " && redis-config-check /tmp/broken.conf /etc/ssl/redis-test.pem; rc=$?; rm -f /tmp/broken.conf; exit $rc"
    )
    assert broken.rc == 1
    assert "FATAL CONFIG FILE ERROR" in broken.stdout + broken.stderr
    usage = host.run("redis-config-check")
    assert usage.rc == 2
    assert "usage: redis-config-check FILE" in usage.stderr
