"""The lab's AWS endpoint: moto on objects1 behind nginx (TLS from the lab's site CA), published
on the machine as https://localhost:9000. After seeding it with lab/aws/seed.py (idempotent, as
`make lab` runs it), the production EC2 inventory and the Secrets Manager lookups run against it
exactly as tests/functional/test_aws_*.py run them against a moto of their own, here through
TLS verified with the lab CA (AWS_CA_BUNDLE).

CORVID_LAB_AWS_URL and CORVID_LAB_AWS_CA_BUNDLE override the endpoint and its CA file.
"""

from __future__ import annotations

import importlib
import os
import socket
import ssl
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "functional"))

# The helpers of the functional suites, which run the same checks against a moto of their own.
aws = importlib.import_module("test_aws_inventory")
aws_secrets = importlib.import_module("test_aws_secrets")

pytestmark = pytest.mark.lab

ENDPOINT = os.environ.get("CORVID_LAB_AWS_URL", "https://localhost:9000")
CA = Path(os.environ.get("CORVID_LAB_AWS_CA_BUNDLE", ROOT / ".cache" / "pki" / "lab" / "ca.crt"))


@pytest.fixture(scope="module")
def lab_aws() -> str:
    """The lab endpoint, seeded; the module is skipped when it does not answer."""
    url = urlsplit(ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    if url.scheme == "https" and not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")
    try:
        with socket.create_connection((url.hostname, port), timeout=3) as sock:
            if url.scheme == "https":
                context = ssl.create_default_context(cafile=str(CA))
                with context.wrap_socket(sock, server_hostname=url.hostname):
                    pass
    except ssl.SSLCertVerificationError as error:
        pytest.fail(f"{ENDPOINT} answers with a certificate the lab CA {CA} does not verify: {error}")
    except OSError as error:  # refused, reset, or a published port with nothing behind it yet
        pytest.skip(f"the lab's AWS endpoint {ENDPOINT} does not answer ({error!r}): moto on objects1, `make lab`")
    if url.scheme == "https":
        aws.ENDPOINT_CA_BUNDLES[ENDPOINT] = str(CA)
    aws.seed(ENDPOINT)
    return ENDPOINT


def test_the_endpoint_speaks_tls13_verified_by_the_lab_ca(lab_aws: str) -> None:
    url = urlsplit(lab_aws)
    if url.scheme != "https":
        pytest.skip(f"{lab_aws} is plain HTTP")
    context = ssl.create_default_context(cafile=str(CA))
    with (
        socket.create_connection((url.hostname, url.port or 443), timeout=5) as sock,
        context.wrap_socket(sock, server_hostname=url.hostname) as tls,
    ):
        assert tls.version() == "TLSv1.3"


def test_seeding_again_changes_nothing(lab_aws: str) -> None:
    report = aws.seed(lab_aws)
    assert all(line.endswith(": unchanged") for line in report), report


def test_the_ec2_inventory_has_the_tagged_running_hosts(lab_aws: str) -> None:
    inventory = aws.inventory_list(lab_aws, aws.EC2_INVENTORY)
    for group, hosts in aws.EXPECTED_GROUPS.items():
        assert aws.members(inventory, group) == hosts, group
    hostvars = inventory["_meta"]["hostvars"]
    assert set(hostvars) == {f"{name}.{aws.DOMAIN}" for name in set().union(*aws.EXPECTED_GROUPS.values())}
    live = aws.instances_by_name(lab_aws)
    assert live[f"app3.{aws.DOMAIN}"]["State"]["Name"] == "stopped"
    for name, vars_ in hostvars.items():
        assert vars_["ansible_host"] == live[name]["PrivateIpAddress"], name


def test_preflight_passes_with_hosts_and_secrets_from_the_lab_endpoint(lab_aws: str, tmp_path: Path) -> None:
    rc, result, stdout = aws.run_preflight(lab_aws, aws_secrets.ec2_inventory_with_lookups(tmp_path / "ec2"))
    assert rc == 0, stdout[-3000:]
    assert "passed every check" in result["msg"]
    sm = aws_secrets.secretsmanager(lab_aws)
    for name in (aws_secrets.APP_SECRET, aws_secrets.REPLICATION_SECRET):
        assert sm.get_secret_value(SecretId=name)["SecretString"] not in stdout


def test_a_missing_secret_is_named(lab_aws: str, tmp_path: Path) -> None:
    inventory = aws_secrets.ec2_inventory_with_lookups(
        tmp_path / "ec2", **{aws_secrets.APP_SECRET: "corvid/production/redis/gone"}
    )
    rc, result, stdout = aws.run_preflight(lab_aws, inventory)
    assert rc != 0, stdout[-3000:]
    assert "Failed to find secret corvid/production/redis/gone" in str(result["msg"]), result["msg"]
