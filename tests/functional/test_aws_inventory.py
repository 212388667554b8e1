"""inventories/production-ec2 (amazon.aws.aws_ec2) against a real moto server on 127.0.0.1.

The module starts its own `moto_server` on a free loopback port, seeds it with lab/aws/seed.py
(the script `make lab` runs against the lab's moto) and reads the production EC2 inventory
through `ansible-inventory`, with nothing but the environment pointing it at moto: the same
file reads AWS in production.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import test_preflight_inventory

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EC2_INVENTORY = ROOT / "inventories" / "production-ec2"
DOMAIN = "production.corvid.example"
REGION = "eu-central-1"
EXPECTED_GROUPS = {
    "database": {"db1", "db2"},
    "cache": {"cache1", "cache2"},
    "edge": {"edge1"},
    "monitoring": {"mon1"},
    "app": {"app1", "app2"},
    "mcp_checkers": {"mon1"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_server(log_dir: Path) -> Iterator[str]:
    """A moto server of its own on a free 127.0.0.1 port, seeded by lab/aws/seed.py; its URL."""
    port = free_port()
    log = log_dir / "moto_server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [BIN / "moto_server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer on {url} within 30 s:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        seed(url)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto")) as url:
        yield url


# The CA file that verifies an https endpoint (tests/lab/test_aws.py registers the lab's).
ENDPOINT_CA_BUNDLES: dict[str, str] = {}


def aws_env(url: str) -> dict[str, str]:
    """This process's environment with AWS pointed at `url` only: no profile, files or IMDS."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    if url in ENDPOINT_CA_BUNDLES:
        env["AWS_CA_BUNDLE"] = ENDPOINT_CA_BUNDLES[url]
    env.update(
        AWS_URL=url,
        AWS_ACCESS_KEY_ID="corvid-lab",
        AWS_SECRET_ACCESS_KEY="corvid-lab",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_FORCE_COLOR="0",
    )
    return env


def seed(url: str) -> list[str]:
    run = subprocess.run(
        [BIN / "python", ROOT / "lab" / "aws" / "seed.py", "--json"],
        capture_output=True,
        text=True,
        env=aws_env(url),
        timeout=120,
        check=True,
    )
    return json.loads(run.stdout)


def aws_client(service: str, url: str):
    return boto3.client(
        service,
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id="corvid-lab",
        aws_secret_access_key="corvid-lab",
        verify=ENDPOINT_CA_BUNDLES.get(url, True),
    )


def ec2(url: str):
    return aws_client("ec2", url)


def instances_by_name(url: str) -> dict[str, dict]:
    """Every instance, keyed by its Name tag (or its id when it has none)."""
    found = {}
    for reservation in ec2(url).describe_instances()["Reservations"]:
        for instance in reservation["Instances"]:
            tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
            found[tags.get("Name", instance["InstanceId"])] = instance
    return found


def inventory_list(url: str, source: Path) -> dict:
    run = subprocess.run(
        [BIN / "ansible-inventory", "-i", str(source), "--list"],
        capture_output=True,
        text=True,
        env=aws_env(url),
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout, object_hook=plain)


def plain(value: dict):
    """ansible-inventory marks values from EC2 as unsafe ({"__ansible_unsafe": ...}): the value."""
    return value["__ansible_unsafe"] if value.keys() == {"__ansible_unsafe"} else value


def members(inventory: dict, group: str) -> set[str]:
    return {host.removesuffix("." + DOMAIN) for host in inventory.get(group, {}).get("hosts", [])}


def run_preflight(url: str, inventory: Path) -> tuple[int, dict | None, str]:
    """playbooks/preflight.yml with AWS pointed at `url`: rc, the check task's result, stdout."""
    return test_preflight_inventory.run_preflight(inventory, aws_env(url), timeout=180)


def ec2_inventory_copy(path: Path, **replace: str) -> Path:
    """A copy of inventories/production-ec2 (variables linked as in the repository), edited."""
    path.mkdir()
    text = (EC2_INVENTORY / "aws_ec2.yml").read_text()
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    (path / "aws_ec2.yml").write_text(text)
    for directory in ("group_vars", "host_vars"):
        (path / directory).symlink_to(ROOT / "inventories" / "production" / directory)
    return path


def test_tier_groups_come_from_the_role_tags(moto: str) -> None:
    inventory = inventory_list(moto, EC2_INVENTORY)
    for group, hosts in EXPECTED_GROUPS.items():
        assert members(inventory, group) == hosts, (group, inventory.get(group))
    # Environment=production is the group production, so group_vars/production applies.
    assert members(inventory, "production") == set().union(*EXPECTED_GROUPS.values())


def test_stopped_untagged_and_other_environments_are_left_out(moto: str) -> None:
    inventory = inventory_list(moto, EC2_INVENTORY)
    hostvars = inventory["_meta"]["hostvars"]
    names = {host.removesuffix("." + DOMAIN) for host in hostvars}
    assert names == {"db1", "db2", "cache1", "cache2", "edge1", "mon1", "app1", "app2"}
    live = instances_by_name(moto)
    assert live[f"app3.{DOMAIN}"]["State"]["Name"] == "stopped"
    assert live["app1.staging.corvid.example"]["State"]["Name"] == "running"
    untagged = [instance for name, instance in live.items() if name.startswith("i-")]
    assert untagged and all(instance["State"]["Name"] == "running" for instance in untagged)
    addresses = {vars_["ansible_host"] for vars_ in hostvars.values()}
    assert not addresses & {instance["PrivateIpAddress"] for instance in untagged}


def test_hosts_are_reached_on_their_private_ip_with_production_variables(moto: str) -> None:
    hostvars = inventory_list(moto, EC2_INVENTORY)["_meta"]["hostvars"]
    live = instances_by_name(moto)
    for name, vars_ in hostvars.items():
        assert vars_["ansible_host"] == live[name]["PrivateIpAddress"], name
        assert vars_["aws_instance_id"] == live[name]["InstanceId"], name
        assert vars_["ansible_user"] == "deploy", name  # group_vars/production/main.yml
        assert "tags" not in vars_, name  # EC2's data comes prefixed, never as a reserved name
    # host_vars/ of inventories/production apply to the EC2 host of the same name.
    assert hostvars[f"cache2.{DOMAIN}"]["redis_replicaof"] == {"host": f"cache1.{DOMAIN}", "port": 6379}
    assert hostvars[f"db2.{DOMAIN}"]["postgresql_primary"] == f"db1.{DOMAIN}"


def test_the_static_inventory_stays_the_fallback_and_reads_no_ec2(moto: str) -> None:
    inventory = inventory_list(moto, ROOT / "inventories" / "production")
    for group, hosts in EXPECTED_GROUPS.items():
        assert members(inventory, group) == hosts, group
    assert not any("aws_instance_id" in vars_ for vars_ in inventory["_meta"]["hostvars"].values())


def test_seeding_twice_leaves_the_same_state(moto: str) -> None:
    def state() -> dict:
        sm = aws_client("secretsmanager", moto)
        secrets = {
            entry["Name"]: sm.get_secret_value(SecretId=entry["Name"])["SecretString"]
            for entry in sm.list_secrets()["SecretList"]
        }
        instances = {
            name: (instance["InstanceId"], instance["State"]["Name"], sorted(map(str, instance.get("Tags", []))))
            for name, instance in instances_by_name(moto).items()
        }
        return {"secrets": secrets, "instances": instances}

    before = state()
    report = seed(moto)
    assert all(line.endswith(": unchanged") for line in report), report
    assert state() == before


def test_preflight_names_a_tier_below_its_minimum_from_ec2(moto: str) -> None:
    """db2 stopped: the EC2 inventory has one database host; the preflight says so, then re-seeding starts it."""
    live = instances_by_name(moto)
    ec2(moto).stop_instances(InstanceIds=[live[f"db2.{DOMAIN}"]["InstanceId"]])
    try:
        rc, result, stdout = run_preflight(moto, EC2_INVENTORY)
        assert rc != 0, stdout[-2000:]
        assert result is not None and result.get("failed"), stdout[-2000:]
        messages = result["msg"]
        assert any(
            "group `database` has 1 host(s), fewer than its minimum of 2 (preflight_tiers.database.min_hosts)" in line
            for line in messages
        ), messages
        assert not any("group `cache`" in line or "group `app`" in line for line in messages), messages
    finally:
        report = seed(moto)
    assert f"instance db2.{DOMAIN}: started" in report, report
    assert members(inventory_list(moto, EC2_INVENTORY), "database") == {"db1", "db2"}


def test_a_filter_that_matches_nothing_is_an_empty_inventory(moto: str, tmp_path: Path) -> None:
    """Ansible does not fail on it: ansible-inventory succeeds with no host at all."""
    source = ec2_inventory_copy(tmp_path / "ec2", **{"tag:Environment: production": "tag:Environment: prodution"})
    inventory = inventory_list(moto, source)
    assert inventory["_meta"]["hostvars"] == {}
    assert set(inventory["all"]["children"]) <= {"ungrouped", "aws_ec2"}


def test_preflight_fails_on_an_empty_ec2_inventory(moto: str, tmp_path: Path) -> None:
    source = ec2_inventory_copy(tmp_path / "ec2", **{"tag:Environment: production": "tag:Environment: prodution"})
    rc, _, stdout = run_preflight(moto, source)
    assert rc != 0, stdout[-2000:]
    assert "preflight: the inventory has no hosts" in stdout, stdout[-2000:]


def test_an_instance_without_a_role_tag_is_a_clear_error(moto: str, tmp_path: Path) -> None:
    """strict: true: an instance of the environment that carries no Role tag stops the inventory, named."""
    client = ec2(moto)
    image = client.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    source = ec2_inventory_copy(tmp_path / "ec2", **{"tag:Environment: production": "tag:Environment: roleless"})
    instance = client.run_instances(
        ImageId=image,
        InstanceType="t3.micro",
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[
            {
                "ResourceType": "instance",
                "Tags": [{"Key": "Environment", "Value": "roleless"}, {"Key": "Name", "Value": "bastion1"}],
            }
        ],
    )["Instances"][0]
    try:
        run = subprocess.run(
            [BIN / "ansible-inventory", "-i", str(source), "--list"],
            capture_output=True,
            text=True,
            env=aws_env(moto) | {"ANSIBLE_INVENTORY_UNPARSED_FAILED": "true"},
            cwd=ROOT,
            timeout=120,
            check=False,
        )
        assert run.returncode != 0, run.stdout[-2000:]
        assert "bastion1" in run.stderr and "Role" in run.stderr, run.stderr[-2000:]
    finally:
        client.terminate_instances(InstanceIds=[instance["InstanceId"]])


def test_the_seed_refuses_to_run_without_an_endpoint() -> None:
    """lab/aws/seed.py writes to lab endpoints only: without one it stops before any AWS call."""
    env = {key: value for key, value in os.environ.items() if key not in ("AWS_URL", "AWS_ENDPOINT_URL")}
    run = subprocess.run(
        [BIN / "python", ROOT / "lab" / "aws" / "seed.py"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "no endpoint: give --endpoint-url or set AWS_URL" in run.stderr
