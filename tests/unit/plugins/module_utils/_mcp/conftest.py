"""Fixtures for the module_utils unit tests."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from mcp_scripted import ScriptedServer


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def start(handler, ssl_context=None) -> ScriptedServer:
        server = ScriptedServer(handler, ssl_context)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


@pytest.fixture(scope="session")
def self_signed(tmp_path_factory) -> Path:
    """cert.pem and key.pem: a self-signed certificate for 127.0.0.1 (it is its own CA)."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return directory


@pytest.fixture
def tls_server(scripted, self_signed):
    """start(handler, maximum="TLSv1.2"|None): an HTTPS scripted server, at most that TLS version."""

    def start(handler, maximum=None) -> ScriptedServer:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self_signed / "cert.pem"), str(self_signed / "key.pem"))
        if maximum == "TLSv1.2":
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        return scripted(handler, context)

    return start
