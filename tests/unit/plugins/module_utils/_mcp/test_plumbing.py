"""_mcp/plumbing.py: the deadline, connections, and the TLS context."""

from __future__ import annotations

import socket
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
