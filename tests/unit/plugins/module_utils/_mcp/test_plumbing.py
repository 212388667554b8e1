"""_mcp/plumbing.py: the deadline, connections, and the TLS context."""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp import plumbing
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError, DeadlineExceeded
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import Deadline, build_ssl_context
from mcp_scripted import check, mcp_handler


def test_deadline():
    deadline = Deadline(0.05)
    assert 0 < deadline.remaining() <= 0.05
    time.sleep(0.06)
    assert deadline.expired()
    with pytest.raises(DeadlineExceeded):
        deadline.remaining()


def test_connect_errors(monkeypatch):
    res = check("http://127.0.0.1:1/mcp")
    assert res["failed_stage"] == "connect" and "cannot connect to 127.0.0.1:1" in res["error"]

    def no_dns(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(plumbing.socket, "create_connection", no_dns)
    res = check("https://mcp.example.invalid/mcp")
    assert res["failed_stage"] == "connect" and "name resolution failed" in res["error"]


def test_tls_against_a_plain_http_server(scripted):
    server = scripted(mcp_handler())
    res = check(server.url().replace("http://", "https://"))
    assert res["failed_stage"] == "tls" and "TLS handshake" in res["error"]


def test_build_ssl_context_errors(tmp_path):
    with pytest.raises(ConfigError) as caught:
        build_ssl_context(ca_path=str(tmp_path / "missing.pem"))
    assert caught.value.option == "ca_path"
    bogus = tmp_path / "bogus.pem"
    bogus.write_text("not a certificate")
    with pytest.raises(ConfigError) as caught:
        build_ssl_context(client_cert=str(bogus))
    assert caught.value.option == "client_cert"
    context = build_ssl_context(validate_certs=False)
    assert context.check_hostname is False


def test_build_ssl_context_minimum_tls_version():
    assert build_ssl_context().minimum_version == ssl.TLSVersion.TLSv1_2
    assert build_ssl_context(tls_min_version="TLSv1.3").minimum_version == ssl.TLSVersion.TLSv1_3
    with pytest.raises(ConfigError) as caught:
        build_ssl_context(tls_min_version="TLSv1.1")
    assert caught.value.option == "tls_min_version"


def test_negotiated_tls_version_is_reported(tls_server, self_signed):
    ca = str(self_signed / "cert.pem")
    modern = tls_server(mcp_handler())
    res = check(modern.url(), ca_path=ca)
    assert res["healthy"], res
    assert res["tls_version"] == "TLSv1.3"
    old = tls_server(mcp_handler(), maximum="TLSv1.2")
    res = check(old.url(), ca_path=ca)
    assert res["healthy"] and res["tls_version"] == "TLSv1.2", res


def test_tls_min_version_refuses_an_older_server(tls_server, self_signed):
    server = tls_server(mcp_handler(), maximum="TLSv1.2")
    res = check(server.url(), ca_path=str(self_signed / "cert.pem"), tls_min_version="TLSv1.3")
    assert not res["up"] and res["failed_stage"] == "tls", res
    assert "TLSv1.3 or newer, which tls_min_version requires" in res["error"]
    assert res["tls_version"] is None
    assert server.requests == []  # nothing was sent


def test_plain_http_has_no_tls_version(scripted):
    res = check(scripted(mcp_handler()).url())
    assert res["healthy"] and res["tls_version"] is None


def test_version_hint_for_a_server_that_hangs_up():
    """asyncio servers end the handshake without an alert when they share no version with the client."""
    strict = build_ssl_context(tls_min_version="TLSv1.3")
    closed = ssl.SSLZeroReturnError(6, "TLS/SSL connection has been closed (EOF)")
    assert "may not offer TLSv1.3, which tls_min_version requires" in plumbing.version_hint(closed, strict)
    assert plumbing.version_hint(closed, build_ssl_context()) == ""
    assert plumbing.version_hint(ValueError("x"), strict) == ""
