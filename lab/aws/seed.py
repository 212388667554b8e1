#!/usr/bin/env python3
"""Seed the lab's AWS endpoint (moto) with a small production-like estate.

Creates tagged EC2 instances (Role, Environment, Name) in the shape of
inventories/production, a few instances the EC2 inventory must leave out (stopped, another
environment, one without any of those tags), and the Secrets Manager secrets the production
inventory's lookups name (inventories/production/group_vars/cache/secrets.yml).

Idempotent: an instance is recognised by its ClientToken (`corvid-lab-<key>`), a secret by its
name. A second run creates nothing, moves no instance to another state and keeps every secret's
value; it only puts back what differs from the shape below (a tag, a state).

This script is for lab endpoints only: it refuses to run without an explicit endpoint URL, so it
never writes to a real AWS account. Secret values are printed nowhere.

    lab/aws/seed.py --endpoint-url https://localhost:9000 --ca-bundle .cache/pki/lab/ca.crt --wait 60
    AWS_URL=http://127.0.0.1:5000 lab/aws/seed.py --json
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DEFAULT_REGION = "eu-central-1"
# The ClientToken prefix that marks (and identifies) the instances this script made.
SEED_MARK = "corvid-lab-"
# Only a fake endpoint takes these; real credentials in the environment are used as they are.
LAB_CREDENTIALS = {"aws_access_key_id": "corvid-lab", "aws_secret_access_key": "corvid-lab"}


@dataclass(frozen=True)
class Instance:
    key: str  # stable identity, part of the ClientToken
    tags: dict[str, str]
    running: bool = True


def production_shape(domain: str = "production.corvid.example") -> list[Instance]:
    """inventories/production's shape, plus the instances the inventory must leave out."""

    def host(name: str, role: str, environment: str = "production", running: bool = True) -> Instance:
        fqdn = f"{name}.{environment}.corvid.example" if environment != "production" else f"{name}.{domain}"
        return Instance(f"{environment}-{name}", {"Name": fqdn, "Role": role, "Environment": environment}, running)

    return [
        host("db1", "database"),
        host("db2", "database"),
        host("cache1", "cache"),
        host("cache2", "cache"),
        host("edge1", "edge"),
        host("mon1", "monitoring,mcp_checkers"),
        host("app1", "app"),
        host("app2", "app"),
        # Left out by the inventory: stopped, another environment, no tags at all.
        host("app3", "app", running=False),
        host("app1", "app", environment="staging"),
        Instance("untagged", {}),
    ]


def production_secrets(environment: str = "production") -> list[str]:
    return [f"corvid/{environment}/redis/app", f"corvid/{environment}/redis/replication"]


def session_kwargs() -> dict[str, str]:
    has_credentials = os.environ.get("AWS_ACCESS_KEY_ID") or os.environ.get("AWS_PROFILE")
    return {} if has_credentials else dict(LAB_CREDENTIALS)


def pick_image(ec2) -> str:
    images = sorted(ec2.describe_images(Owners=["amazon"])["Images"], key=lambda image: image["ImageId"])
    if not images:
        sys.exit("seed: the endpoint lists no images to start instances from")
    debian = [image for image in images if "debian" in image.get("Name", "").lower()]
    return (debian or images)[0]["ImageId"]


def seeded_instances(ec2) -> dict[str, dict]:
    """The live (not terminated) instances this script made, by key."""
    found: dict[str, dict] = {}
    for page in ec2.get_paginator("describe_instances").paginate():
        for reservation in page["Reservations"]:
            for instance in reservation["Instances"]:
                token = instance.get("ClientToken") or ""
                if token.startswith(SEED_MARK) and instance["State"]["Name"] not in ("terminated", "shutting-down"):
                    found[token.removeprefix(SEED_MARK)] = instance
    return found


def seed_instances(ec2, shape: list[Instance]) -> list[str]:
    existing = seeded_instances(ec2)
    image = None
    report = []
    for wanted in shape:
        instance = existing.get(wanted.key)
        actions = []
        if instance is None:
            image = image or pick_image(ec2)
            instance = ec2.run_instances(
                ImageId=image,
                InstanceType="t3.micro",
                MinCount=1,
                MaxCount=1,
                ClientToken=SEED_MARK + wanted.key,
                TagSpecifications=(
                    [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in wanted.tags.items()]}]
                    if wanted.tags
                    else []
                ),
            )["Instances"][0]
            actions.append("created")
        else:
            tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
            if any(tags.get(k) != v for k, v in wanted.tags.items()):
                ec2.create_tags(
                    Resources=[instance["InstanceId"]], Tags=[{"Key": k, "Value": v} for k, v in wanted.tags.items()]
                )
                actions.append("tagged")
        state = instance["State"]["Name"]
        if wanted.running and state in ("stopped", "stopping"):
            ec2.start_instances(InstanceIds=[instance["InstanceId"]])
            actions.append("started")
        elif not wanted.running and state in ("pending", "running"):
            ec2.stop_instances(InstanceIds=[instance["InstanceId"]])
            actions.append("stopped")
        name = wanted.tags.get("Name", f"({wanted.key}: no tags)")
        report.append(f"instance {name}: {', '.join(actions) or 'unchanged'}")
    return report


def seed_secrets(sm, names: list[str], environment: str) -> list[str]:
    report = []
    for name in names:
        try:
            sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            sm.create_secret(
                Name=name,
                SecretString=secrets.token_urlsafe(24),
                Tags=[{"Key": "Environment", "Value": environment}],
            )
            report.append(f"secret {name}: created")
        else:
            report.append(f"secret {name}: unchanged")
    return report


def wait_for(ec2, seconds: float) -> None:
    """Return once the endpoint answers an EC2 call; after `seconds`, let the last error through."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            ec2.describe_availability_zones()
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--endpoint-url",
        default=os.environ.get("AWS_URL") or os.environ.get("AWS_ENDPOINT_URL"),
        help="the lab endpoint (default: $AWS_URL, then $AWS_ENDPOINT_URL); required",
    )
    parser.add_argument(
        "--ca-bundle",
        default=os.environ.get("AWS_CA_BUNDLE"),
        help="CA file to verify an https endpoint with (default: $AWS_CA_BUNDLE)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or DEFAULT_REGION)
    parser.add_argument("--environment", default="production", help="the environment the secrets are named for")
    parser.add_argument(
        "--wait", type=float, default=0, metavar="SECONDS", help="wait up to this long for the endpoint to answer"
    )
    parser.add_argument("--json", action="store_true", help="print the report as a JSON list")
    args = parser.parse_args(argv)
    if not args.endpoint_url:
        parser.error("no endpoint: give --endpoint-url or set AWS_URL (this script only seeds lab endpoints)")

    session = boto3.session.Session(region_name=args.region, **session_kwargs())
    options = {
        "endpoint_url": args.endpoint_url,
        "verify": args.ca_bundle if args.ca_bundle else True,
        "config": Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30),
    }
    ec2 = session.client("ec2", **options)
    try:
        wait_for(ec2, args.wait)
        report = seed_instances(ec2, production_shape())
        report += seed_secrets(session.client("secretsmanager", **options), production_secrets(args.environment), "lab")
    except (BotoCoreError, ClientError) as error:
        sys.exit(f"seed: {args.endpoint_url}: {error}")
    print(json.dumps(report, indent=1) if args.json else "\n".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
