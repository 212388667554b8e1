"""Secrets Manager lookups (amazon.aws.secretsmanager_secret) feeding the cache tier's passwords,
against a real moto server on 127.0.0.1 (the fixture of test_aws_inventory.py, a server of
this module's own).

The lookups are the lines of inventories/production/group_vars/cache/secrets.yml, uncommented
as an operator would: the documented pattern is what runs here. Nothing may print a secret's
value, even at -vvv.
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_preflight_inventory
import yaml
from test_aws_inventory import BIN, DOMAIN, ROOT, aws_client, aws_env, moto_server, run_preflight

PRODUCTION = ROOT / "inventories" / "production"
APP_SECRET = "corvid/production/redis/app"
REPLICATION_SECRET = "corvid/production/redis/replication"

PLAY = """\
- name: The cache tier's passwords from Secrets Manager
  hosts: cache
  gather_facts: true
  tasks:
    - name: Check the cache variables as the redis role does before any change
      ansible.builtin.include_role:
        name: corvid.platform.redis
        tasks_from: preflight
    - name: Write the application's Redis credentials
      ansible.builtin.copy:
        content: "REDIS_USERNAME=app\\nREDIS_PASSWORD={{ redis_acl_users[0].password }}\\n"
        dest: "{{ lookup('ansible.builtin.env', 'CORVID_TEST_OUT') }}/app.env"
        mode: "0600"
      no_log: true
"""


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


def secretsmanager(url: str):
    return aws_client("secretsmanager", url)


def documented_lookups(**rename: str) -> str:
    """secrets.yml of production with its lookup lines uncommented (secret names renamed if asked)."""
    lines = (PRODUCTION / "group_vars" / "cache" / "secrets.yml").read_text().splitlines()
    active = [line.removeprefix("# ") for line in lines if line.startswith("# vault_")]
    assert len(active) == 2, lines
    text = "---\n" + "\n".join(active) + "\n"
    for old, new in rename.items():
        assert f"'{old}'" in text, old
        text = text.replace(f"'{old}'", f"'{new}'")
    return text


def inventory_with_lookups(path: Path, **rename: str) -> Path:
    """localhost as cache1, with production's group_vars/cache and its lookups switched on."""
    (path / "group_vars" / "cache").mkdir(parents=True)
    hosts = {"all": {"children": {"cache": {"hosts": {"cache1.production.corvid.example": None}}}}}
    (path / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (path / "group_vars" / "all.yml").write_text(
        yaml.safe_dump({"ansible_connection": "local", "ansible_python_interpreter": str(BIN / "python")})
    )
    shutil.copy(PRODUCTION / "group_vars" / "cache" / "main.yml", path / "group_vars" / "cache" / "main.yml")
    (path / "group_vars" / "cache" / "secrets.yml").write_text(documented_lookups(**rename))
    return path


def run_play(url: str, inventory: Path, out: Path, play: str = PLAY) -> subprocess.CompletedProcess:
    playbook = out / "cache_secrets.yml"
    playbook.write_text(play)
    return subprocess.run(
        [BIN / "ansible-playbook", "-vvv", "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=aws_env(url) | {"CORVID_TEST_OUT": str(out)},
        timeout=300,
        check=False,
    )


def test_a_secret_feeds_the_redis_password_and_is_never_printed(moto: str, tmp_path: Path) -> None:
    sm = secretsmanager(moto)
    app = sm.get_secret_value(SecretId=APP_SECRET)["SecretString"]
    replication = sm.get_secret_value(SecretId=REPLICATION_SECRET)["SecretString"]
    run = run_play(moto, inventory_with_lookups(tmp_path / "inventory"), tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "Check the role's variables before any change" in run.stdout
    assert "ok=" in run.stdout and "failed=0" in run.stdout
    # Where it belongs: the file the play wrote, readable by its owner only.
    env_file = tmp_path / "app.env"
    assert env_file.read_text() == f"REDIS_USERNAME=app\nREDIS_PASSWORD={app}\n"
    assert env_file.stat().st_mode & 0o777 == 0o600
    # Nowhere else, at -vvv.
    assert app not in output
    assert replication not in output


def test_the_output_check_sees_a_leak(moto: str, tmp_path: Path) -> None:
    """A task that prints the variable shows the value in the same output: the check above can fail."""
    app = secretsmanager(moto).get_secret_value(SecretId=APP_SECRET)["SecretString"]
    leaky = (
        PLAY + "    - name: Print the password\n      ansible.builtin.debug:\n        var: vault_redis_app_password\n"
    )
    run = run_play(moto, inventory_with_lookups(tmp_path / "inventory"), tmp_path, leaky)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert app in run.stdout


def test_a_bad_secret_value_is_caught_by_the_role_without_showing_it(moto: str, tmp_path: Path) -> None:
    """A replication password with a newline: the redis preflight names the variable, not the value."""
    bad = f"first-line-{secrets.token_hex(8)}\nsecond-line"
    secretsmanager(moto).create_secret(Name="corvid/production/redis/replication-bad", SecretString=bad)
    inventory = inventory_with_lookups(
        tmp_path / "inventory", **{REPLICATION_SECRET: "corvid/production/redis/replication-bad"}
    )
    run = run_play(moto, inventory, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    assert "redis_replication_password must not contain control characters" in output, output[-4000:]
    assert bad.split("\n", 1)[0] not in output
    assert not (tmp_path / "app.env").exists()


def test_a_missing_secret_fails_naming_the_secret(moto: str, tmp_path: Path) -> None:
    sm = secretsmanager(moto)
    app = sm.get_secret_value(SecretId=APP_SECRET)["SecretString"]
    inventory = inventory_with_lookups(tmp_path / "inventory", **{REPLICATION_SECRET: "corvid/production/redis/gone"})
    run = run_play(moto, inventory, tmp_path)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    assert "Failed to find secret corvid/production/redis/gone (ResourceNotFound)" in output, output[-4000:]
    assert app not in output
    assert not (tmp_path / "app.env").exists()


def ec2_inventory_with_lookups(path: Path, **rename: str) -> Path:
    """inventories/production-ec2 with real copies of production's variables, lookups switched on."""
    path.mkdir()
    shutil.copy(ROOT / "inventories" / "production-ec2" / "aws_ec2.yml", path / "aws_ec2.yml")
    shutil.copytree(PRODUCTION / "group_vars", path / "group_vars")
    shutil.copytree(PRODUCTION / "host_vars", path / "host_vars")
    (path / "group_vars" / "cache" / "secrets.yml").write_text(documented_lookups(**rename))
    return path


def test_preflight_passes_on_ec2_hosts_with_secrets_from_secrets_manager(moto: str, tmp_path: Path) -> None:
    """The whole production pattern: hosts from EC2 tags, secrets from Secrets Manager, nothing missing."""
    rc, result, stdout = run_preflight(moto, ec2_inventory_with_lookups(tmp_path / "ec2"))
    assert rc == 0, json.dumps(result)[-3000:] if result else stdout[-3000:]
    assert "the inventory (8 hosts) passed every check" in result["msg"]
    sm = secretsmanager(moto)
    for name in (APP_SECRET, REPLICATION_SECRET):
        assert sm.get_secret_value(SecretId=name)["SecretString"] not in stdout


def test_preflight_names_a_missing_secret_of_the_ec2_inventory(moto: str, tmp_path: Path) -> None:
    """A failed lookup fails the preflight in its problem list: variable, hosts, secret id, reason."""
    inventory = ec2_inventory_with_lookups(tmp_path / "ec2", **{APP_SECRET: "corvid/production/redis/gone"})
    rc, result, stdout = run_preflight(moto, inventory)
    assert rc != 0, stdout[-3000:]
    assert result is not None and result.get("failed"), stdout[-3000:]
    problems = [line for line in result["msg"][1:] if "corvid/production/redis/gone" in line]
    assert len(problems) == 1, result["msg"]
    assert problems[0].startswith(f"hosts cache1.{DOMAIN}, cache2.{DOMAIN}: vault_redis_app_password reads"), problems
    assert "Failed to find secret corvid/production/redis/gone (ResourceNotFound)" in problems[0], problems
    # The variables built on the missing secret are not reported again (redis_acl_users).
    assert not any("redis_acl_users" in line for line in result["msg"]), result["msg"]
    replication = secretsmanager(moto).get_secret_value(SecretId=REPLICATION_SECRET)["SecretString"]
    assert replication not in stdout


PIPELINE = """\
- name: Inventory preflight
  ansible.builtin.import_playbook: {preflight}

- name: A change that only a passing preflight lets through
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a file on the controller
      ansible.builtin.copy:
        content: "{{{{ inventory_hostname }}}}\\n"
        dest: "{{{{ lookup('ansible.builtin.env', 'CORVID_TEST_OUT') }}}}/{{{{ inventory_hostname }}}}.changed"
        mode: "0600"
"""


def local_inventory_with_lookups(path: Path, database_secret: str, **rename: str) -> Path:
    """A complete local inventory (test_preflight_inventory's correct one) whose cache passwords are
    production's Secrets Manager lookups, and whose database tier reads `database_secret`."""
    test_preflight_inventory.good_inventory(path)
    cache = yaml.safe_load((PRODUCTION / "group_vars" / "cache" / "main.yml").read_text())
    cache["redis_bind_addresses"] = ["127.0.0.1"]
    lookups = documented_lookups(**rename).removeprefix("---\n")
    (path / "group_vars" / "cache.yml").write_text(yaml.safe_dump(cache) + lookups)
    (path / "group_vars" / "database.yml").write_text(
        "vault_postgresql_replication_password: "
        f"\"{{{{ lookup('amazon.aws.secretsmanager_secret', '{database_secret}', region='eu-central-1') }}}}\"\n"
    )
    return path


def run_pipeline(url: str, inventory: Path, out: Path) -> subprocess.CompletedProcess:
    playbook = out / "pipeline.yml"
    playbook.write_text(PIPELINE.format(preflight=ROOT / "playbooks" / "preflight.yml"))
    return subprocess.run(
        [BIN / "ansible-playbook", "-vvv", "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=aws_env(url) | {"CORVID_TEST_OUT": str(out)},
        timeout=300,
        check=False,
    )


def test_preflight_names_every_missing_secret_at_once_and_changes_nothing(moto: str, tmp_path: Path) -> None:
    """Two references to secrets that do not exist (on two tiers) and one that does: one failure
    names both, each with its variable, host, secret id and reason; the good secret's value is
    printed nowhere, even at -vvv; the play after the preflight never runs."""
    sm = secretsmanager(moto)
    good = sm.get_secret_value(SecretId=REPLICATION_SECRET)["SecretString"]
    app = sm.get_secret_value(SecretId=APP_SECRET)["SecretString"]
    # With every secret present the same inventory passes and the change goes through.
    control = tmp_path / "control"
    control.mkdir()
    run = run_pipeline(moto, local_inventory_with_lookups(control / "inventory", APP_SECRET), control)
    assert run.returncode == 0, (run.stdout + run.stderr)[-4000:]
    assert (control / "cache1.changed").exists() and (control / "db1.changed").exists()
    assert good not in run.stdout + run.stderr and app not in run.stdout + run.stderr

    out = tmp_path / "bad"
    out.mkdir()
    inventory = local_inventory_with_lookups(
        out / "inventory", "corvid/production/postgresql/replication", **{APP_SECRET: "corvid/production/redis/gone"}
    )
    run = run_pipeline(moto, inventory, out)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output[-4000:]
    fatal = [line for line in run.stdout.splitlines() if line.startswith("fatal: ")]
    assert len(fatal) == 1, output[-4000:]
    flat = " ".join(run.stdout[run.stdout.index(fatal[0]) :].split())
    assert "preflight: 2 problem(s) in the inventory" in flat, output[-4000:]
    for text in (
        "host cache1: vault_redis_app_password reads the Secrets Manager secret corvid/production/redis/gone, "
        "which does not resolve (Failed to find secret corvid/production/redis/gone (ResourceNotFound))",
        "host db1: vault_postgresql_replication_password reads the Secrets Manager secret "
        "corvid/production/postgresql/replication, which does not resolve (Failed to find secret "
        "corvid/production/postgresql/replication (ResourceNotFound))",
    ):
        assert text in flat, (text, output[-4000:])
    assert good not in output
    assert not list(out.glob("*.changed")), sorted(out.iterdir())


def test_a_secret_id_built_from_variables_is_resolved_per_host(moto: str, tmp_path: Path) -> None:
    """A lookup whose id is an expression is resolved on each host and reported as such, with the
    lookup's own words naming the id it built."""
    out = tmp_path / "computed"
    out.mkdir()
    inventory = local_inventory_with_lookups(out / "inventory", APP_SECRET)
    (inventory / "group_vars" / "database.yml").write_text(
        "corvid_environment: production\n"
        "vault_postgresql_replication_password: \"{{ lookup('amazon.aws.secretsmanager_secret', "
        "'corvid/' ~ corvid_environment ~ '/postgresql/replication', region='eu-central-1') }}\"\n"
    )
    run = run_pipeline(moto, inventory, out)
    assert run.returncode != 0, (run.stdout + run.stderr)[-4000:]
    flat = " ".join(run.stdout.split())
    assert "preflight: 1 problem(s) in the inventory" in flat, run.stdout[-4000:]
    assert (
        "host db1: vault_postgresql_replication_password reads the Secrets Manager secret (its id is built from "
        "variables), which does not resolve (Failed to find secret corvid/production/postgresql/replication "
        "(ResourceNotFound))"
    ) in flat, run.stdout[-4000:]
    assert not list(out.glob("*.changed"))


def test_an_inventory_sync_carries_the_lookup_not_the_secret(moto: str, tmp_path: Path) -> None:
    """AWX syncs an inventory source with `ansible-inventory --list` and stores what it prints: the
    lookup must travel unresolved (no secret in AWX's database) and resolve in the job that uses it.
    The job's side is played by an inventory script printing the synced JSON."""
    source = ec2_inventory_with_lookups(tmp_path / "ec2")
    sync = subprocess.run(
        [BIN / "ansible-inventory", "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=aws_env(moto),
        timeout=120,
        check=True,
    )
    sm = secretsmanager(moto)
    values = [sm.get_secret_value(SecretId=name)["SecretString"] for name in (APP_SECRET, REPLICATION_SECRET)]
    assert not any(value in sync.stdout + sync.stderr for value in values)
    cache1 = json.loads(sync.stdout)["_meta"]["hostvars"]["cache1.production.corvid.example"]
    assert f"'{APP_SECRET}'" in cache1["vault_redis_app_password"]
    synced = tmp_path / "synced"
    synced.mkdir()
    (synced / "inventory.json").write_text(sync.stdout)
    script = synced / "awx_inventory.py"
    script.write_text(
        f"#!{BIN / 'python'}\n"
        "import pathlib, sys\n"
        "data = pathlib.Path(__file__).with_name('inventory.json').read_text()\n"
        "print(data if sys.argv[1:] == ['--list'] else '{}')\n"
    )
    script.chmod(0o755)
    rc, result, stdout = run_preflight(moto, script)
    assert rc == 0, stdout[-3000:]
    assert "the inventory (8 hosts) passed every check" in result["msg"]
    assert not any(value in stdout for value in values)
    # In the job the lookup runs and yields the value itself, not the expression.
    playbook = tmp_path / "read_secret.yml"
    playbook.write_text(
        "- name: Read cache1's password as a job would\n"
        "  hosts: localhost\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Write it where it belongs\n"
        "      ansible.builtin.copy:\n"
        "        content: \"{{ hostvars['cache1.production.corvid.example'].vault_redis_app_password }}\"\n"
        f"        dest: {tmp_path / 'app.secret'}\n"
        "        mode: '0600'\n"
        "      no_log: true\n"
    )
    run = subprocess.run(
        [BIN / "ansible-playbook", "-vvv", "-i", str(script), str(playbook)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=aws_env(moto),
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    assert (tmp_path / "app.secret").read_text() == values[0]
    assert not any(value in run.stdout + run.stderr for value in values)
