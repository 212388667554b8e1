"""Real state of the app_containers scenario: the demo app on m9b-app, pulled from the
scenario's own registry (m9b-registry: TLS, htpasswd).

What is asserted is what docker and the host say (docker inspect, the files, the port),
not what the role reported. The secret is a test value from molecule.yml.
"""

import json
import os
import subprocess
from pathlib import Path

import yaml

from recap import parse_recap

SCENARIO = Path(__file__).parents[1]
INVENTORY = yaml.safe_load((SCENARIO / "molecule.yml").read_text())["provisioner"]["inventory"]["group_vars"]["app"]
SECRET = INVENTORY["vault_demo_db_password"]
REGISTRY_PASSWORD = INVENTORY["app_containers_registry"]["password"]
testinfra_hosts = ["m9b-app"]


def inspect(host, name):
    run = host.run("docker inspect %s", name)
    assert run.rc == 0, run.stderr
    return json.loads(run.stdout)[0]


def http_get(host, port, path):
    """(status, body) of GET http://127.0.0.1:PORT/PATH, from inside the host."""
    run = host.run(
        "python3 -c %s %s",
        "import sys, urllib.request, urllib.error\n"
        "try:\n"
        "    r = urllib.request.urlopen(sys.argv[1], timeout=5); print(r.status); print(r.read().decode())\n"
        "except urllib.error.HTTPError as e:\n"
        "    print(e.code)\n",
        f"http://127.0.0.1:{port}{path}",
    )
    status, _, body = run.stdout.partition("\n")
    return int(status or 0), body.strip()


def playbook(name, *extra):
    run = subprocess.run(
        ["ansible-playbook", "--inventory", os.environ["MOLECULE_INVENTORY_FILE"], *extra, str(SCENARIO / name)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
    )
    return run, parse_recap(run.stdout)


def test_engine_running_with_the_log_caps(host):
    assert host.service("docker").is_running
    assert host.service("docker").is_enabled
    daemon = json.loads(host.file("/etc/docker/daemon.json").content_string)
    assert daemon["log-driver"] == "json-file"
    assert daemon["log-opts"] == {"max-size": "100m", "max-file": "5"}
    assert daemon["live-restore"] is True
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True


def test_registry_ca_installed(host):
    ca = host.file("/etc/docker/certs.d/m9b-registry:5000/ca.crt")
    assert ca.is_file
    assert "BEGIN CERTIFICATE" in ca.content_string


def test_container_runs_locked_down(host):
    container = inspect(host, "demo-blue")
    assert container["State"]["Running"]
    assert container["Config"]["Image"] == "m9b-registry:5000/corvid/demo:v1"
    assert container["Config"]["User"] == "10001:10001"
    assert host.check_output("docker exec demo-blue id -u") == "10001"
    config = container["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert config["NetworkMode"] == "host"
    assert config["Memory"] == 64 * 1024 * 1024
    assert config["NanoCpus"] == 500_000_000
    assert config["RestartPolicy"]["Name"] == "unless-stopped"
    assert config["LogConfig"] == {"Type": "json-file", "Config": {"max-size": "100m", "max-file": "5"}}
    assert config["CapDrop"] == ["ALL"]
    assert sorted(config["Tmpfs"]) == INVENTORY["app_containers_apps"][0]["tmpfs"]
    # The read-only root refuses a write; the tmpfs takes it.
    assert host.run("docker exec demo-blue sh -c 'echo x > /bin/x'").rc != 0
    assert host.run("docker exec demo-blue sh -c 'echo x > /tmp/x'").rc == 0


def test_secret_is_a_read_only_file_not_an_environment_value(host):
    container = inspect(host, "demo-blue")
    assert SECRET not in json.dumps(container)
    assert "APP_DATABASE_PASSWORD_FILE=/run/secrets/db_password" in container["Config"]["Env"]
    mount = next(m for m in container["Mounts"] if m["Destination"] == "/run/secrets")
    assert mount["RW"] is False
    assert host.check_output("docker exec demo-blue cat /run/secrets/db_password") == SECRET
    assert host.run("docker exec demo-blue sh -c 'echo x > /run/secrets/db_password'").rc != 0
    secret = host.file("/etc/corvid/apps/demo/secrets/db_password")
    assert (secret.user, secret.gid, secret.mode) == ("root", 10001, 0o440)
    assert SECRET not in host.check_output("docker logs demo-blue 2>&1 || true")


def test_health_ready_and_version_answer(host):
    assert http_get(host, 8000, "/healthz") == (200, "ok")
    assert http_get(host, 8000, "/readyz") == (200, "ready")
    status, body = http_get(host, 8000, "/version")
    assert status == 200
    assert json.loads(body) == {"version": "v1", "colour": "blue"}
    health = inspect(host, "demo-blue")["State"]["Health"]["Status"]
    assert health in {"healthy", "starting"}
    assert host.run("docker exec demo-blue wget -q -O /dev/null http://127.0.0.1:8000/healthz").rc == 0


def test_state_file_and_local_fact(host):
    state = json.loads(host.file("/etc/corvid/apps/demo/state.json").content_string)
    assert state == {"active": "blue", "releases": {"blue": "v1"}, "previous": ""}
    fact = json.loads(host.check_output("/etc/ansible/facts.d/corvid_apps.fact"))
    assert fact == {"demo": state}


def test_green_starts_with_a_release_and_stops(host):
    run, recap = playbook("colour.yml", "-e", "app_containers_colour=green app_containers_colour_release=v2")
    assert recap["m9b-app"]["failed"] == 0, run.stdout[-3000:]
    status, body = http_get(host, 8100, "/version")
    assert (status, json.loads(body)) == (200, {"version": "v2", "colour": "green"})
    assert http_get(host, 8000, "/version")[1] == '{"version": "v1", "colour": "blue"}'
    state = json.loads(host.file("/etc/corvid/apps/demo/state.json").content_string)
    assert state["releases"] == {"blue": "v1", "green": "v2"}
    assert state["active"] == "blue"
    # The same colour again: nothing changes, the container is not restarted.
    started = inspect(host, "demo-green")["State"]["StartedAt"]
    run, recap = playbook("colour.yml", "-e", "app_containers_colour=green app_containers_colour_release=v2")
    assert recap["m9b-app"]["changed"] == 0, run.stdout[-3000:]
    assert inspect(host, "demo-green")["State"]["StartedAt"] == started
    run, recap = playbook("colour.yml", "-e", "app_containers_colour=green app_containers_colour_state=absent")
    assert recap["m9b-app"]["failed"] == 0, run.stdout[-3000:]
    assert host.run("docker inspect demo-green").rc != 0
    state = json.loads(host.file("/etc/corvid/apps/demo/state.json").content_string)
    assert state == {"active": "blue", "releases": {"blue": "v1"}, "previous": ""}


def test_unready_release_fails_within_the_deadline(host):
    run, recap = playbook(
        "colour.yml",
        "-e",
        "app_containers_colour=green app_containers_colour_release=v3-unready app_containers_colour_deadline=8",
    )
    assert recap["m9b-app"]["failed"] == 1, run.stdout[-3000:]
    assert "/readyz" in run.stdout + run.stderr
    state = json.loads(host.file("/etc/corvid/apps/demo/state.json").content_string)
    assert "green" not in state["releases"]
    run, recap = playbook("colour.yml", "-e", "app_containers_colour=green app_containers_colour_state=absent")
    assert recap["m9b-app"]["failed"] == 0, run.stdout[-3000:]
    assert host.run("docker inspect demo-green").rc != 0


def test_the_active_colour_is_never_stopped(host):
    run, recap = playbook("colour.yml", "-e", "app_containers_colour=blue app_containers_colour_state=absent")
    assert recap["m9b-app"]["failed"] == 1
    assert "is the active colour" in run.stdout + run.stderr
    assert inspect(host, "demo-blue")["State"]["Running"]


def test_secrets_stay_out_of_verbose_output():
    run, recap = playbook("converge.yml", "-vvv")
    assert recap["m9b-app"]["failed"] == 0, run.stdout[-3000:]
    assert recap["m9b-app"]["changed"] == 0, run.stdout[-3000:]
    for secret in (SECRET, REGISTRY_PASSWORD):
        assert secret not in run.stdout + run.stderr
