"""playbooks/preflight.yml: each seeded inventory mistake is named in the failing task's own
message, every problem in one run; the lab's inventory passes; the example environments name
exactly the secrets they still need. No host is contacted (gather_facts is off and the
check runs once on the controller), so the inventories need not exist as machines.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from preflight_cases import ROOT, ansible_playbook

TASK = "Check the inventory for every problem at once"
SECRET = "inventory-secret-9c1f"


def run_preflight(
    inventory: Path, env: dict[str, str] | None = None, timeout: int = 120
) -> tuple[int, dict | None, str]:
    """Run the playbook with the JSON callback in `env` (default: this process's environment);
    return rc, the check task's result and stdout."""
    run = ansible_playbook(
        "-i",
        str(inventory),
        str(ROOT / "playbooks" / "preflight.yml"),
        timeout=timeout,
        env=env,
        settings={"ANSIBLE_CALLBACK_RESULT_FORMAT": "json"},
    )
    output = json.loads(run.stdout)
    for play in output["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"] == TASK:
                return run.returncode, next(iter(task["hosts"].values())), run.stdout
    return run.returncode, None, run.stdout


def write_inventory(path: Path, hosts: dict, group_vars: dict[str, dict], host_vars: dict[str, dict]) -> Path:
    path.mkdir()
    (path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    for directory, items in (("group_vars", group_vars), ("host_vars", host_vars)):
        (path / directory).mkdir()
        for name, values in items.items():
            (path / directory / f"{name}.yml").write_text(yaml.safe_dump(values))
    return path


GOOD_SITE = {
    "name": "agent",
    "server_names": ["edge1.example"],
    "tls_certificate": "/etc/corvid/pki/edge.fullchain.crt",
    "tls_certificate_key": "/etc/corvid/pki/private/edge.key",
}


def good_inventory(path: Path) -> Path:
    hosts = {
        "seeded": {
            "children": {
                "database": {"hosts": {"db1": None}},
                "cache": {"hosts": {"cache1": None}},
                "edge": {"hosts": {"edge1": None}},
                "app": {"hosts": {"app1": None}},
                "monitoring": {"hosts": {"mon1": None}},
                "mcp_checkers": {"hosts": {"mon1": None}},
            }
        }
    }
    group_vars = {
        "all": {"pki_ca_dir": "/srv/pki", "ansible_connection": "local"},
        "cache": {
            "redis_acl_users": [{"name": "app", "password": "{{ vault_redis_app_password }}"}],
            "redis_replication_password": SECRET,
            "vault_redis_app_password": SECRET,
            "vault_redis_replication_password": SECRET,
        },
        "edge": {
            "pki_certificates": [{"name": "edge", "common_name": "edge1.example"}],
            "nginx_sites": [GOOD_SITE],
            "nginx_upstreams": [{"name": "api", "servers": [{"address": "app1", "port": 8000}]}],
        },
    }
    return write_inventory(path, hosts, group_vars, {})


def test_a_correct_inventory_passes(tmp_path: Path) -> None:
    rc, result, stdout = run_preflight(good_inventory(tmp_path / "good"))
    assert rc == 0, stdout[-2000:]
    assert "passed every check" in result["msg"]


def test_every_seeded_mistake_is_named_at_once(tmp_path: Path) -> None:
    hosts = {
        "seeded": {
            "children": {
                "database": {"hosts": {"db1": None, "edge1": None}},  # edge and database on one host
                "cache": {"hosts": {"cache1": None}},
                "edge": {"hosts": {"edge1": None}},
                "app": {"hosts": {"app1": None}},
                # monitoring is missing
                "mcp_checkers": {"hosts": {}},
            }
        }
    }
    group_vars = {
        "all": {"ansible_connection": "local"},  # pki_ca_dir missing
        "cache": {
            "redis_acl_users": [{"name": "app", "password": SECRET}],
            "redis_replication_password": "{{ vault_redis_replication_password }}",  # not in any vault
            "redis_tls_port": 6379,  # same as redis_port
            "redis_replicaof": {"host": "cache9", "port": 6379},  # not in the inventory
        },
        "edge": {
            "pki_certificates": [{"name": "edge", "common_name": "edge1.example"}],
            "nginx_sites": [{**GOOD_SITE, "tls_certificate": "/etc/corvid/pki/public.fullchain.crt"}],
            "nginx_upstreams": [
                {"name": "api", "servers": [{"address": "app1", "port": 8000}, {"address": "app7", "port": 8000}]},
                {"name": "partner", "servers": [{"address": "10.0.0.7", "port": 443}]},
            ],
        },
    }
    rc, result, stdout = run_preflight(write_inventory(tmp_path / "bad", hosts, group_vars, {}))
    assert rc != 0, stdout[-2000:]
    assert result is not None and result.get("failed"), stdout[-2000:]
    messages = result["msg"]
    expected = [
        "group `monitoring` is missing",
        "host edge1 is in both `edge` and `database`",
        "host cache1 (cache): redis_replication_password is not set, or names a secret that does not resolve",
        "host cache1 (cache): the secret vault_redis_replication_password does not resolve",
        "host cache1: port 6379 is used twice, by redis_port and redis_tls_port",
        "host cache1: redis_replicaof.host names cache9, which is not in the inventory",
        "host edge1: nginx_upstreams[api].servers names app7, which is not in the inventory",
        "host edge1: nginx_sites[agent].tls_certificate is /etc/corvid/pki/public.fullchain.crt, "
        "but pki_certificates on this host has no entry named public",
        "pki_ca is create but pki_ca_dir is not set",
    ]
    for text in expected:
        assert any(text in line for line in messages), f"{text!r} not in {messages}"
    assert messages[0] == f"preflight: {len(messages) - 1} problem(s) in the inventory"
    # The IP address of an external upstream is not a problem; neither is the key path of the site.
    assert not any("10.0.0.7" in line or "tls_certificate_key" in line for line in messages), messages
    assert SECRET not in stdout


def test_the_lab_inventory_passes_in_seconds() -> None:
    start = time.monotonic()
    rc, result, stdout = run_preflight(ROOT / "inventories" / "lab")
    elapsed = time.monotonic() - start
    assert rc == 0, stdout[-2000:]
    assert "passed every check" in result["msg"]
    assert elapsed < 30, f"preflight took {elapsed:.1f} s"


@pytest.mark.parametrize("environment", ["dev", "staging", "production"])
def test_example_environments_name_only_their_missing_secrets(environment: str) -> None:
    """The example inventories are complete except for the vault files each site writes."""
    rc, result, stdout = run_preflight(ROOT / "inventories" / environment)
    assert rc != 0, stdout[-2000:]
    problems = result["msg"][1:]
    assert problems, stdout[-2000:]
    for line in problems:
        assert "secret" in line and "does not resolve" in line, line
