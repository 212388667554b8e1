"""Real state of the postgresql role with defaults only (Debian 12, PostgreSQL 15)."""

import os
import subprocess
import time
from pathlib import Path

from recap import parse_recap

SCENARIO = Path(__file__).parents[1]
CONFIG_DIR = "/etc/postgresql/15/main"


def local_sql(host, sql):
    return host.run("runuser -u postgres -- psql -X -At -v ON_ERROR_STOP=1 -d postgres -c %s", sql)


def test_service_running_and_enabled(host):
    service = host.service("postgresql@15-main")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_loopback_only(host):
    assert host.socket("tcp://127.0.0.1:5432").is_listening
    assert not host.socket("tcp://0.0.0.0:5432").is_listening


def test_postgres_peer_login_only(host):
    assert local_sql(host, "SELECT current_user").stdout.strip() == "postgres"
    # Any other local or TCP login is rejected by pg_hba.conf, before a password is asked.
    run = host.run("psql -X -h 127.0.0.1 -U postgres -d postgres -c 'SELECT 1' </dev/null")
    assert run.rc != 0
    assert "rejects connection" in run.stderr or "no pg_hba.conf entry" in run.stderr, run.stderr


def test_memory_derived_settings(host):
    memory_kb = int(host.run("awk '/^MemTotal/ {print $2}' /proc/meminfo").stdout)
    blocks = int(local_sql(host, "SELECT setting FROM pg_settings WHERE name = 'shared_buffers'").stdout)
    # A quarter of the RAM, in 8 kB pages (within 1 %: facts round to MB).
    assert abs(blocks * 8 - memory_kb / 4) < memory_kb / 100
    settings = dict(
        line.split("|")
        for line in local_sql(
            host,
            "SELECT name, setting FROM pg_settings WHERE name IN"
            " ('password_encryption', 'ssl', 'log_destination', 'logging_collector', 'max_connections')",
        ).stdout.split()
    )
    assert settings == {
        "password_encryption": "scram-sha-256",
        "ssl": "off",
        "log_destination": "jsonlog",
        "logging_collector": "on",
        "max_connections": "100",
    }


def test_debian_include_dir_kept(host):
    config = host.file(f"{CONFIG_DIR}/postgresql.conf").content_string
    assert config.rstrip().endswith("include_dir = 'conf.d'")


def test_configuration_check_accepts_the_live_files(host):
    for mode, name in (("conf", "postgresql.conf"), ("hba", "pg_hba.conf")):
        run = host.run(
            "postgresql-config-check %s %s %s /usr/lib/postgresql/15/bin", mode, f"{CONFIG_DIR}/{name}", CONFIG_DIR
        )
        assert run.rc == 0, run.stderr


def test_configuration_check_rejects_a_bad_candidate(host):
    host.run("printf 'local all all md5x\\n' > /tmp/bad_hba.conf")
    run = host.run("postgresql-config-check hba /tmp/bad_hba.conf %s /usr/lib/postgresql/15/bin", CONFIG_DIR)
    assert run.rc == 1
    assert "md5x" in run.stderr, run.stderr
    host.run("cp %s/postgresql.conf /tmp/bad.conf && printf 'shared_buffers = lots\\n' >> /tmp/bad.conf", CONFIG_DIR)
    run = host.run("postgresql-config-check conf /tmp/bad.conf %s /usr/lib/postgresql/15/bin", CONFIG_DIR)
    assert run.rc == 1
    assert "shared_buffers" in run.stderr, run.stderr


FRESH = "corvid-pg-defaults-fresh"


def test_check_mode_on_a_fresh_host_fails_nothing(tmp_path):
    """--check of the converge playbook on a new host without PostgreSQL: it reports the
    changes it would make, fails nothing and installs nothing. The host runs systemd with the
    options of lab/tasks/container.yml."""
    docker = ["docker", "run", "-d", "--name", FRESH, "--hostname", FRESH, "--cap-add", "SYS_ADMIN"]
    docker += ["--cgroupns=host", "--security-opt", "seccomp=unconfined", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]
    docker += ["--tmpfs", "/run", "--tmpfs", "/run/lock", "corvid-lab/debian:bookworm"]
    subprocess.run(["docker", "rm", "-f", FRESH], capture_output=True, check=False)
    subprocess.run([*docker, "/lib/systemd/systemd"], capture_output=True, check=True)
    try:
        for _ in range(60):
            state = subprocess.run(
                ["docker", "exec", FRESH, "systemctl", "is-system-running"], capture_output=True, text=True, check=False
            ).stdout.strip()
            if state in {"running", "degraded"}:
                break
            time.sleep(1)
        inventory = tmp_path / "inventory.ini"
        inventory.write_text(f"{FRESH} ansible_connection=community.docker.docker ansible_user=root\n")
        run = subprocess.run(
            ["ansible-playbook", "-i", str(inventory), "--check", "--diff", str(SCENARIO / "converge.yml")],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "ANSIBLE_FORCE_COLOR": "0"},
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
        recap = parse_recap(run.stdout)[FRESH]
        assert recap["failed"] == 0
        assert recap["changed"] > 0, run.stdout[-3000:]
        installed = subprocess.run(["docker", "exec", FRESH, "test", "-e", CONFIG_DIR], check=False)
        assert installed.returncode != 0, "check mode installed PostgreSQL"
    finally:
        subprocess.run(["docker", "rm", "-f", FRESH], capture_output=True, check=False)
