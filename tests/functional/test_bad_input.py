"""Bad input to the redis and nginx roles fails before any change, naming the variable.

One fresh systemd container (corvid-lab/debian:bookworm, no Redis) takes every case: the role
runs with one bad variable, must fail with a message that names it, report no change, and
leave the host as it was (no package, no /etc/redis, no drop-in, dpkg database untouched).
The message is read from the failing task's own result (JSON callback): its msg and, for the
argument spec, its argument_errors, never the spec it prints or the rest of the output.
The same host then takes a `--check --diff` run with good input, which must fail nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from preflight_cases import BIN, MEMORY_CACHE, ROOT, ansible_playbook

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.lab

IMAGE = "corvid-lab/debian:bookworm"
NAME = "corvid-test-redis-bad-input"
# A recognisable secret: it must never show up in the output.
SECRET = "bad-input-secret-7c1e"
STATE_COMMAND = (
    "dpkg-query -W -f='${db:Status-Status}' redis-server redis-tools nginx 2>&1; echo;"
    " ls -d /etc/redis /var/lib/redis /etc/systemd/system/redis-server.service.d /etc/nginx /var/www/acme 2>&1;"
    " md5sum /var/lib/dpkg/status; find /etc /var/lib/dpkg -newer /var/lib/dpkg/status -print"
)

PLAYBOOK = """\
- name: Apply the {role} role
  hosts: all
  roles:
    - role: corvid.platform.{role}
"""

CASES = {
    "port_not_a_number": ({"redis_port": "abc"}, ["redis_port"]),
    "unknown_maxmemory_policy": ({"redis_maxmemory_policy": "evict-everything"}, ["redis_maxmemory_policy"]),
    "replica_of_itself": (
        {"redis_replicaof": {"host": NAME, "port": 6379}, "redis_replication_password": SECRET},
        ["redis_replicaof points at this host itself"],
    ),
    "acl_user_without_password": ({"redis_acl_users": [{"name": "app"}]}, ["redis_acl_users", "password"]),
    "acl_user_with_empty_password": (
        {"redis_acl_users": [{"name": "app", "password": ""}]},
        ["redis_acl_users[0] (app) has no password"],
    ),
    "default_user_without_password": ({"redis_default_user_enabled": True}, ["redis_default_user_password"]),
    "tls_cert_without_key": (
        {"redis_tls_port": 6380, "redis_tls_cert_file": "/etc/ssl/certs/redis.pem"},
        ["redis_tls_cert_file and redis_tls_key_file go together"],
    ),
}


# The test host is started by the lab's own task files, so it runs systemd exactly as the
# lab hosts and molecule's do; it gets a network of its own.
HOST_PLAY = """\
- name: Test host for the redis bad-input tests
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    lab_container_name: "{{ test_name }}"
    lab_container_hostname: "{{ test_name }}"
    lab_container_image: "{{ test_image }}"
    lab_container_network: "{{ test_name }}"
    lab_container_apt_cache: "{{ test_apt_cache }}"
    lab_container_labels:
      org.corvid.test: "{{ test_name }}"
  tasks:
    - name: Remove the test host and its network
      when: test_state == 'absent'
      block:
        - name: Remove the test host
          community.docker.docker_container:
            name: "{{ test_name }}"
            state: absent
            force_kill: true
        - name: Remove the test network
          community.docker.docker_network:
            name: "{{ test_name }}"
            state: absent
    - name: Start the test host
      when: test_state == 'present'
      block:
        - name: Create the test network
          community.docker.docker_network:
            name: "{{ test_name }}"
        - name: Start the container
          ansible.builtin.import_tasks: "{{ lab_tasks }}/container.yml"
        - name: Wait for systemd
          ansible.builtin.import_tasks: "{{ lab_tasks }}/wait_systemd.yml"
"""


def host_play(state: str) -> None:
    cache = Path(os.environ.get("CORVID_LAB_CACHE") or Path.home() / ".cache" / "corvid-lab")
    variables = {
        "test_state": state,
        "test_name": NAME,
        "test_image": IMAGE,
        "test_apt_cache": str(cache / "apt" / NAME),
        "lab_tasks": str(ROOT / "lab" / "tasks"),
        # the docker modules run here, with this Python (it has the docker SDK)
        "ansible_python_interpreter": sys.executable,
    }
    play = Path(os.environ.get("TMPDIR", "/tmp")) / f"{NAME}-host.yml"
    play.write_text(HOST_PLAY)
    try:
        run = subprocess.run(
            [BIN / "ansible-playbook", "-i", "localhost,", "-e", json.dumps(variables), play],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
            env={**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"},
        )
    finally:
        play.unlink()
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.fixture(scope="module")
def container():
    try:
        client = docker.from_env()
        client.images.get(IMAGE)
    except docker.errors.ImageNotFound:
        pytest.skip(f"{IMAGE} is missing: build it with `make images`")
    except docker.errors.DockerException as error:
        pytest.skip(f"no docker engine: {error}")
    host_play("absent")  # a host left over from an interrupted run may have Redis on it
    host_play("present")
    try:
        yield client.containers.get(NAME)
    finally:
        host_play("absent")


@pytest.fixture(scope="module")
def run_role(container, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("redis_bad_input")
    (workdir / "inventory.ini").write_text(f"{NAME} ansible_connection=community.docker.docker ansible_user=root\n")
    for role in ("redis", "nginx"):
        (workdir / f"{role}.yml").write_text(PLAYBOOK.format(role=role))

    def run(
        extra_vars: dict, *options: str, role: str = "redis"
    ) -> tuple[subprocess.CompletedProcess, dict[str, int], list[str]]:
        (workdir / "vars.json").write_text(json.dumps(extra_vars))
        process = ansible_playbook(
            "-i",
            workdir / "inventory.ini",
            "-e",
            f"@{workdir / 'vars.json'}",
            *options,
            workdir / f"{role}.yml",
            settings={**MEMORY_CACHE, "ANSIBLE_FORCE_COLOR": "0"},
        )
        report = json.loads(process.stdout)
        return process, report["stats"].get(NAME, {}), failure_messages(report)

    return run


def failure_messages(report: dict) -> list[str]:
    """The messages of the tasks that failed on the test host: msg and argument_errors only."""
    messages = []
    for play in report["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(NAME, {})
            if result.get("failed"):
                msg = result.get("msg", "")
                messages.extend(msg if isinstance(msg, list) else [msg])
                messages.extend(result.get("argument_errors", []))
    return messages


def host_state(container) -> str:
    return container.exec_run(["sh", "-c", STATE_COMMAND]).output.decode()


@pytest.mark.parametrize(("extra_vars", "expected"), CASES.values(), ids=CASES.keys())
def test_bad_input_fails_before_any_change(container, run_role, extra_vars, expected):
    before = host_state(container)
    process, stats, messages = run_role(extra_vars)
    output = process.stdout + process.stderr

    assert process.returncode != 0, output
    assert (stats.get("changed"), stats.get("failures")) == (0, 1), output
    for text in expected:
        assert any(text in message for message in messages), messages
    assert SECRET not in output
    assert host_state(container) == before


NGINX_SITE = {
    "name": "agent",
    "server_names": ["agent.test"],
    "tls_certificate": "/etc/corvid/pki/edge.fullchain.crt",
    "tls_certificate_key": "/etc/corvid/pki/private/edge.key",
}
NGINX_CASES = {
    "certificate_without_key": (
        {"nginx_sites": [{**NGINX_SITE, "tls_certificate_key": ""}]},
        "nginx_sites[0] (agent): tls_certificate and tls_certificate_key go together",
    ),
    "unknown_tls_protocol": ({"nginx_tls_protocols": ["TLSv1.3", "TLSv1.4"]}, "nginx_tls_protocols"),
    "same_server_name_and_port": (
        {"nginx_sites": [NGINX_SITE, {**NGINX_SITE, "name": "other"}]},
        "nginx_sites: two sites answer to agent.test:443",
    ),
    "upstream_without_servers": (
        {"nginx_upstreams": [{"name": "api", "servers": []}]},
        "nginx_upstreams[0] (api) has no servers",
    ),
}


@pytest.mark.parametrize(("extra_vars", "expected"), NGINX_CASES.values(), ids=NGINX_CASES.keys())
def test_nginx_bad_input_fails_before_any_change(container, run_role, extra_vars, expected):
    before = host_state(container)
    process, stats, messages = run_role(extra_vars, role="nginx")

    assert process.returncode != 0, process.stdout
    assert (stats.get("changed"), stats.get("failures")) == (0, 1), process.stdout
    assert any(expected in message for message in messages), messages
    assert host_state(container) == before


def test_check_mode_on_a_fresh_host_fails_nothing(container, run_role):
    before = host_state(container)
    assert "no packages found matching redis-server" in before
    good = {
        "redis_acl_users": [{"name": "app", "password": SECRET}],
        "redis_replication_password": SECRET,
    }
    process, stats, messages = run_role(good, "--check", "--diff")
    output = process.stdout + process.stderr

    assert process.returncode == 0, output
    assert stats.get("failures") == 0, messages
    assert SECRET not in output
    assert host_state(container) == before


@pytest.mark.parametrize("tag", ["redis_install", "redis_configure", "redis_run"])
def test_preflight_runs_under_every_tag(container, run_role, tag):
    """A run limited to one of the role's tags still checks the variables first."""
    before = host_state(container)
    process, stats, messages = run_role({"redis_port": 70000}, "--tags", tag)

    assert process.returncode != 0, process.stdout
    assert (stats.get("changed"), stats.get("failures")) == (0, 1), process.stdout
    assert any("redis_port must be a TCP port" in message for message in messages), messages
    assert host_state(container) == before
