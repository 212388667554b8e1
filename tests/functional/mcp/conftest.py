"""Fixtures for the MCP integration tests: a test CA, real MCP servers from the official SDK, and a way
to run ``corvid.platform.mcp_check`` through Ansible.

Every server kind runs once per test session, in one subprocess, on 127.0.0.1 ports the OS picks.
The module runs through the ``ansible`` command from the repository root (so ansible.cfg applies),
on ``localhost`` with ``/usr/bin/python3`` as interpreter: the standard library is all it gets.
"""

from __future__ import annotations

import atexit
import datetime
import importlib.util
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[3]
SERVERS = Path(__file__).with_name("mcp_servers.py")
BIN = Path(sys.executable).parent
MANAGED_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
KINDS = (
    "stateful_sse",
    "stateless_json",
    "stateful_json",
    "legacy_sse",
    "bearer",
    "tls",
    "tls12",
    "mtls",
    "noping",
    "paginated",
    "slow",
    "drop",
    "modern_only",
    "resumable",
    "unresumable",
)
# The OAuth servers need Authlib (a test dependency); without it their tests are skipped.
HAVE_AUTHLIB = importlib.util.find_spec("authlib") is not None
if HAVE_AUTHLIB:
    KINDS += ("oauth_as", "oauth_mcp", "oauth_nometa")
sys.path.insert(0, str(SERVERS.parent))
from mcp_servers import BEARER_TOKEN, PAGINATED_TOOLS  # noqa: E402

# --------------------------------------------------------------------------- test CA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(path: Path, key) -> None:
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    path.chmod(0o600)


def _ca(common_name: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _leaf(ca_key, ca_cert, common_name: str, *, server: bool):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False,
        )
    return key, builder.sign(ca_key, hashes.SHA256())


@pytest.fixture(scope="session")
def certs(tmp_path_factory) -> Path:
    """ca.pem, server.pem/.key (127.0.0.1, localhost), client.pem/.key, and wrong-ca.pem (an unrelated CA)."""
    directory = tmp_path_factory.mktemp("mcp-certs")
    ca_key, ca_cert = _ca("corvid test CA")
    (directory / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    for name, server in (("server", True), ("client", False)):
        key, cert = _leaf(ca_key, ca_cert, f"corvid test {name}", server=server)
        (directory / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_key(directory / f"{name}.key", key)
    _other_key, other_cert = _ca("some other CA")
    (directory / "wrong-ca.pem").write_bytes(other_cert.public_bytes(serialization.Encoding.PEM))
    # private_key_jwt clients: the key the module signs with, and the public key the authorization server knows
    for name, key in (
        ("jwt-rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("jwt-ec", ec.generate_private_key(ec.SECP256R1())),
    ):
        _write_key(directory / f"{name}.key", key)
        (directory / f"{name}.pub").write_bytes(
            key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )
    return directory


# --------------------------------------------------------------------------- servers


class Servers:
    def __init__(self, ports: dict[str, int], log: Path):
        self.ports = ports
        self.log = log

    def url(self, kind: str) -> str:
        scheme = "https" if kind in ("tls", "tls12", "mtls", "oauth_as") else "http"
        path = "/sse" if kind.startswith("legacy_sse") else "" if kind == "oauth_as" else "/mcp"
        return f"{scheme}://127.0.0.1:{self.ports[kind]}{path}"


def start_servers(kinds: str, cert_dir: Path | None, log: Path, timeout: float = 90.0):
    """Start mcp_servers.py; return (process, {kind: port}). Raises if it does not come up in time."""
    command = [sys.executable, str(SERVERS), "--kinds", kinds]
    if cert_dir is not None:
        command += ["--cert-dir", str(cert_dir)]
    stderr = log.open("wb")
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, cwd=str(ROOT))
    line: list[bytes] = []
    reader = threading.Thread(target=lambda: line.append(process.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0]:
        process.kill()
        process.wait()
        raise RuntimeError(f"MCP test servers did not start; see {log}:\n{log.read_text()[-3000:]}")
    return process, json.loads(line[0])


def stop_servers(process) -> None:
    process.terminate()
    try:
        process.wait(5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture(scope="session")
def servers(certs, tmp_path_factory):
    log = tmp_path_factory.mktemp("mcp-servers") / "servers.log"
    process, ports = start_servers(",".join(KINDS), certs, log)
    try:
        yield Servers(ports, log)
    finally:
        stop_servers(process)


# --------------------------------------------------------------------------- running the module


def _collections_env() -> dict[str, str]:
    """Nothing when ``make venv`` linked the collection into .cache/collections (ansible.cfg looks there);
    otherwise a link in a temporary directory, removed when the test session ends."""
    linked = ROOT / ".cache" / "collections" / "ansible_collections" / "corvid" / "platform"
    if linked.exists():
        return {}
    temp = Path(tempfile.mkdtemp(prefix="corvid-collections-"))
    atexit.register(shutil.rmtree, temp, True)  # removes the link, never follows it into the repository
    (temp / "ansible_collections" / "corvid").mkdir(parents=True)
    (temp / "ansible_collections" / "corvid" / "platform").symlink_to(ROOT)
    return {"ANSIBLE_COLLECTIONS_PATH": str(temp)}


COLLECTIONS_ENV = _collections_env()


class Run:
    def __init__(self, completed: subprocess.CompletedProcess, result: dict[str, Any] | None):
        self.rc = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.result = result or {}

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    def endpoint(self, name: str) -> dict[str, Any]:
        for endpoint in self.result["endpoints"]:
            if endpoint["name"] == name:
                return endpoint
        raise KeyError(name)


def ansible_env(callback: str = "ansible.posix.json") -> dict[str, str]:
    env = dict(os.environ)
    env.update(COLLECTIONS_ENV)
    env.update(
        ANSIBLE_STDOUT_CALLBACK=callback,
        ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_HOST_KEY_CHECKING="0",
        ANSIBLE_RETRY_FILES_ENABLED="0",
        ANSIBLE_PYTHON_INTERPRETER=MANAGED_PYTHON,
    )
    return env


def target_python(version: str) -> str | None:
    """An interpreter for Python ``version`` (pyenv's or on PATH), or None."""
    candidates = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{version}.*/bin/python{version}"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{version}")
    return found if found and "/shims/" not in found else None


def run_module(args: dict[str, Any], *extra: str, callback: str = "ansible.posix.json", timeout: float = 120) -> Run:
    """``ansible localhost -m corvid.platform.mcp_check -a <json>``; ``extra`` goes to the command line."""
    command = [
        str(BIN / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-m",
        "corvid.platform.mcp_check",
        "-a",
        json.dumps(args),
        *extra,
    ]
    completed = subprocess.run(
        command,
        cwd=str(ROOT),
        env=ansible_env(callback),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    result = None
    if callback == "ansible.posix.json":
        try:
            start = re.search(r"^\{$", completed.stdout, re.M)  # verbose runs print lines before the JSON
            document = json.loads(completed.stdout[start.start() if start else 0 :])
            result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (ValueError, KeyError, IndexError, AttributeError):
            pytest.fail(
                f"no JSON result from ansible (rc {completed.returncode}):\n{completed.stdout}\n{completed.stderr}"
            )
    return Run(completed, result)


def run_playbook(playbook: Path, *extra: str, timeout: float = 180) -> subprocess.CompletedProcess:
    command = [str(BIN / "ansible-playbook"), str(playbook), *extra]
    return subprocess.run(
        command,
        cwd=str(ROOT),
        env=ansible_env("ansible.builtin.default"),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def metric_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line and not line.startswith("#")]


@pytest.fixture(scope="session")
def bearer_token() -> str:
    return BEARER_TOKEN


@pytest.fixture(scope="session")
def paginated_tools() -> int:
    return PAGINATED_TOOLS


@pytest.fixture
def ansible_tmp(tmp_path) -> Path:
    """A directory for metrics files, cleaned up with the test."""
    yield tmp_path
    shutil.rmtree(tmp_path, ignore_errors=True)
