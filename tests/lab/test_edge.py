"""The lab's edge from the machine, as a client sees it: edge1's :443 published on
127.0.0.1:8443, its certificate from the lab's site CA (.cache/pki/lab/ca.crt), in front of
the app hosts app1 and app2 (pools `api` and `websocket`).

The checks hold for whatever serves the pools (the agent service's containers, or the lab's
stand-in app before them): /api/health answers 200, /ws echoes text, and which app host
answered is read from the edge's own access log rather than from the answer."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import struct
import subprocess
import uuid
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
    marker = uuid.uuid4().hex
    conn = http.client.HTTPSConnection("localhost", PORT, context=context, timeout=10)
    for _ in range(6):
        conn.request("GET", f"/api/health?probe={marker}")
        response = conn.getresponse()
        body = response.read()
        assert response.status == 200, (
            f"expected /api/health through the edge to answer 200, saw {response.status} {body}"
        )
        assert response.getheader("Strict-Transport-Security") == "max-age=63072000; includeSubDomains"
    conn.close()
    # Which app host answered: the upstream address the edge logged for each of these requests.
    edge = lab_host("edge1")
    lines = edge.run(f"grep -F probe={marker} /var/log/nginx/access.log").stdout.splitlines()
    logged = [json.loads(line) for line in lines]
    assert len(logged) == 6, f"expected the edge to log the 6 requests, saw {len(logged)}"
    addresses = {host: edge.check_output(f"getent ahostsv4 {host}").split()[0] for host in ("app1", "app2")}
    answered = {
        host
        for entry in logged
        for host, address in addresses.items()
        if any(attempt.strip().startswith(f"{address}:") for attempt in entry["upstream"].split(","))
    }
    assert answered == {"app1", "app2"}, (
        f"expected the api pool to spread requests over both app hosts, the edge sent them to "
        f"{sorted({entry['upstream'] for entry in logged})} ({addresses})"
    )


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

    def receive(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            assert chunk, "the edge closed the WebSocket connection"
            data += chunk
        return data

    def send(opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        sock.sendall(
            bytes([0x80 | opcode, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        )

    def echo(text: str) -> str:
        send(0x1, text.encode())
        while True:  # a server may send pings (the agent service's WebSocket library does): answer them
            first, second = receive(2)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", receive(2))
            payload = receive(length)
            if first & 0x0F == 0x9:
                send(0xA, payload)
            elif first & 0x0F == 0x1:
                return payload.decode()
            else:
                raise AssertionError(
                    f"expected the echo of {text!r}, the server sent opcode {first & 0x0F}: {payload!r}"
                )

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
    # no metric of the app (the agent service's, the stand-in's) comes through the edge
    for name in ("http_requests_total", "agent_build_info", "websocket_connections", "corvid_standin_requests_total"):
        assert name not in body, f"expected no app metrics through the edge, /metrics answered {body[:300]!r}"
    # and no pool of the edge points at a metrics port (blue :8001, green :8101)
    config = lab_host("edge1").run("nginx -T 2>/dev/null").stdout
    assert "upstream api" in config
    assert ":8001" not in config and ":8101" not in config


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
