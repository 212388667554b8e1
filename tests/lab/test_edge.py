"""The lab's edge from the machine, as a client sees it: edge1's :443 published on
127.0.0.1:8443, its certificate from the lab's site CA (.cache/pki/lab/ca.crt), in front of
the stand-in app on app1 and app2."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import subprocess
from pathlib import Path

import pytest
from conftest import lab_host

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
CA = ROOT / ".cache" / "pki" / "lab" / "ca.crt"
PORT = 8443


@pytest.fixture(scope="module")
def context() -> ssl.SSLContext:
    if not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")
    return ssl.create_default_context(cafile=str(CA))


def s_client(*options: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{PORT}", "-servername", "localhost", *options],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_tls13_verifies_against_the_site_ca_with_x25519():
    run = s_client("-tls1_3", "-CAfile", str(CA), "-verify_hostname", "localhost")
    assert "Verify return code: 0 (ok)" in run.stdout, run.stdout
    assert "New, TLSv1.3" in run.stdout, run.stdout
    assert "Server Temp Key: X25519" in run.stdout, run.stdout


def test_tls12_is_refused():
    run = s_client("-tls1_2")
    assert run.returncode != 0
    assert "Cipher is (NONE)" in run.stdout, run.stdout


def test_api_through_the_edge(context):
    conn = http.client.HTTPSConnection("localhost", PORT, context=context, timeout=10)
    hosts = set()
    for _ in range(4):
        conn.request("GET", "/")
        response = conn.getresponse()
        body = json.loads(response.read())
        assert response.status == 200
        assert response.getheader("Strict-Transport-Security") == "max-age=63072000; includeSubDomains"
        hosts.add(body["host"])
    conn.close()
    assert hosts == {"app1", "app2"}, "the api pool spreads requests over both app hosts"


def test_websocket_through_the_edge_survives_a_reload(context):
    raw = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    sock = context.wrap_socket(raw, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head

    def echo(text: str) -> str:
        mask = os.urandom(4)
        payload = text.encode()
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
        _, second = sock.recv(2)
        return sock.recv(second & 0x7F).decode()

    assert echo("before") == "before"
    assert lab_host("edge1").run("systemctl reload nginx").rc == 0
    assert echo("after a reload") == "after a reload"
    sock.close()


def test_app_metrics_are_not_public(context):
    conn = http.client.HTTPSConnection("localhost", PORT, context=context, timeout=10)
    conn.request("GET", "/metrics")
    response = conn.getresponse()
    body = response.read().decode()
    conn.close()
    assert "corvid_standin_requests_total" not in body
    # and no pool of the edge points at the metrics port
    config = lab_host("edge1").run("nginx -T 2>/dev/null").stdout
    assert "upstream api" in config
    assert ":8001" not in config


def test_plain_listener_for_the_benchmark_stays_on_edge1s_loopback():
    """The lab's plain-HTTP listener (for `make bench`): the same site without TLS, reachable
    from inside edge1 only."""
    edge = lab_host("edge1")
    assert edge.socket("tcp://127.0.0.1:8090").is_listening
    assert not edge.socket("tcp://0.0.0.0:8090").is_listening
    answer = edge.check_output(
        "python3 -c \"import http.client as h; c=h.HTTPConnection('127.0.0.1', 8090, timeout=10); "
        "c.request('GET', '/health', headers={'Host': 'localhost'}); r=c.getresponse(); print(r.status, r.read())\""
    )
    assert answer == "200 b'ok\\n'"
