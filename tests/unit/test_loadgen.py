"""tests/tools/loadgen.py against real servers on 127.0.0.1, over TLS 1.3 from a CA made here:
an API on the standard library's HTTP server (healthy, slow, closing abruptly, answering 500)
and a WebSocket server written for these tests (echo, drain with 1001, drop, bad code, ...)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import hashlib
import ipaddress
import json
import os
import random
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import loadgen
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOADGEN = Path(loadgen.__file__)


# --------------------------------------------------------------------------------------------
# A CA and a server certificate for 127.0.0.1 and localhost


def make_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("pki")
    now = datetime.datetime.now(datetime.UTC)
    ca_key, ca = make_ca("loadgen test CA")
    ca_name = ca.subject
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "edge1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("edge1"), x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = {"ca": folder / "ca.crt", "cert": folder / "server.crt", "key": folder / "server.key"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths["cert"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths["key"].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@pytest.fixture(scope="module")
def server_context(pki) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(pki["cert"], pki["key"])
    return context


# --------------------------------------------------------------------------------------------
# The API: the standard library's HTTP server, one behaviour per instance


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ApiServer

    def setup(self):
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, *args):
        pass

    def answer(self, status: int, data: dict) -> None:
        body = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        if self.server.mode == "one-per-connection":
            self.close_connection = True  # closes without announcing it (no Connection: close)

    def behave(self) -> bool:
        """True when the mode answered already (or never will)."""
        mode = self.server.mode
        if mode == "slow":
            time.sleep(self.server.delay)
        elif mode == "abrupt":
            # read the request, then reset the connection without a byte of answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return True
        elif mode == "error":
            self.answer(500, {"error": "injected"})
            return True
        return False

    def do_POST(self):
        data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.behave():
            return
        with self.server.lock:
            self.server.items.append(data["value"])
            item = len(self.server.items)
        self.answer(201, {"id": item})

    def do_GET(self):
        if self.behave():
            return
        if self.path == "/version":
            self.answer(200, {"version": "t1", "colour": "blue"})
        elif self.path.startswith("/api/items/"):
            item = int(self.path.rsplit("/", 1)[1])
            with self.server.lock:
                known = 0 < item <= len(self.server.items)
                value = self.server.items[item - 1] if known else None
            self.answer(200 if known else 404, {"id": item, "value": value} if known else {"error": "unknown"})
        else:
            self.answer(404, {"error": "no route"})

    def finish(self):
        with contextlib.suppress(OSError):  # the slow and abrupt modes: the client is gone
            super().finish()


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, mode: str, context: ssl.SSLContext, delay: float = 1.0):
        super().__init__(("127.0.0.1", 0), Api)
        self.mode, self.delay, self.context = mode, delay, context
        self.lock = threading.Lock()
        self.items: list[str] = []
        self.connections = 0

    def get_request(self):
        sock, address = super().get_request()
        return self.context.wrap_socket(sock, server_side=True), address

    def handle_error(self, request, client_address):
        pass

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def api(server_context):
    servers = []

    def start(mode: str = "ok", **kwargs) -> ApiServer:
        server = ApiServer(mode, server_context, **kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def http_config(url: str, pki, **overrides) -> loadgen.LoadConfig:
    settings = {
        "url": url,
        "host": "edge1",
        "ca_file": str(pki["ca"]),
        "duration": 20.0,
        "max_requests": 100,
        "rate": None,
        "concurrency": 4,
        "ws_sessions": 0,
        "request_timeout": 2.0,
    }
    return loadgen.LoadConfig(**{**settings, **overrides})


def run(config: loadgen.LoadConfig) -> dict:
    return asyncio.run(loadgen.LoadGenerator(config).run())


# --------------------------------------------------------------------------------------------
# Only the loopback


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.1:8443",
        "https://192.168.1.10",
        "https://172.17.0.2:443",
        "https://8.8.8.8",
        "https://0.0.0.0:8443",
        "https://[::2]:8443",
        "https://[::ffff:127.0.0.1]:8443",
        "https://[fe80::1]:8443",
    ],
)
def test_refuses_any_target_off_the_loopback(url, monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError(f"a connection was attempted: {args}")

    monkeypatch.setattr(asyncio, "open_connection", no_connection)
    monkeypatch.setattr(socket.socket, "connect", no_connection)
    with pytest.raises(loadgen.TargetRefused, match=r"only targets 127\.0\.0\.0/8 and ::1"):
        loadgen.LoadGenerator(loadgen.LoadConfig(url=url))


def test_refuses_a_name_that_resolves_off_the_loopback(monkeypatch):
    """A name is resolved first, and every address it stands for must be on the loopback."""

    def resolve(host, port, *args, **kwargs):
        assert host == "edge1"
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.1.2.3", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with pytest.raises(loadgen.TargetRefused, match=r"10\.1\.2\.3"):
        loadgen.LoadConfig(url="https://edge1:8443").validate()


@pytest.mark.parametrize(
    "url", ["https://127.0.0.1:8443", "https://127.3.2.1", "https://[::1]:8443", "http://localhost"]
)
def test_accepts_the_loopback(url):
    api, ws = loadgen.LoadConfig(url=url).validate()
    assert ipaddress.ip_address(api.address).is_loopback
    assert ws.scheme == ("wss" if url.startswith("https") else "ws")


def test_the_command_refuses_with_exit_2_and_sends_nothing():
    run = subprocess.run(
        [sys.executable, LOADGEN, "--url", "https://10.9.8.7:8443", "--duration", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2, run
    assert "not on this machine's loopback" in run.stderr, run.stderr
    assert run.stdout == ""


# --------------------------------------------------------------------------------------------
# HTTP


def test_a_mix_of_reads_and_writes_on_keep_alive_connections(api, pki, tmp_path):
    server = api("ok")
    ids = tmp_path / "ids"
    summary = run(http_config(server.url, pki, max_requests=300, write_ratio=0.4, ids_file=str(ids)))

    assert summary["stopped_by"] == "requests", summary
    assert summary["requests"] == 300 and summary["ok"] == 300 and summary["failed"] == 0, summary
    assert summary["writes"] + summary["reads"] + summary["version_reads"] == 300
    assert 60 < summary["writes"] < 180 and summary["reads"] > 30 and summary["version_reads"] > 0, summary
    # every id the server created is in the file, once
    written = [int(line) for line in ids.read_text().split()]
    assert sorted(written) == list(range(1, len(server.items) + 1)), (written, len(server.items))
    assert summary["ids_written"] == summary["writes"] == len(server.items)
    assert all(value.startswith(f"loadgen-{summary['run_id']}-") for value in server.items)
    assert summary["served_by"] == {"t1/blue": summary["version_reads"]}
    assert server.connections == 4, "one keep-alive connection per worker"
    latency = summary["latency_seconds"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"] < 2, latency
    assert json.loads(json.dumps(summary)) == summary


def test_answers_500_are_counted_as_5xx(api, pki):
    summary = run(http_config(api("error").url, pki, max_requests=40))
    assert summary["requests"] == 40, summary
    assert summary["failures_by_kind"] == {"status_5xx": 40}, summary
    assert summary["ok"] == 0 and summary["statuses"] == {"500": 40}
    assert summary["errors"] and summary["errors"][0].startswith("status_5xx: ")


def test_a_slow_server_is_counted_as_timeouts_and_the_run_stays_bounded(api, pki):
    server = api("slow", delay=3.0)
    began = time.monotonic()
    summary = run(http_config(server.url, pki, max_requests=4, concurrency=2, request_timeout=0.3))
    assert summary["failures_by_kind"] == {"timeout": 4}, summary
    assert summary["ok"] == 0
    assert time.monotonic() - began < 2.5, "each request has its own deadline"


def test_a_server_that_resets_connections_is_counted_as_connection_reset(api, pki):
    summary = run(http_config(api("abrupt").url, pki, max_requests=20, concurrency=2))
    assert summary["requests"] == 20, summary
    assert summary["failures_by_kind"] == {"connection_reset": 20}, summary
    assert summary["retried_on_closed_keepalive"] == 0, "a new connection is never retried"


def test_a_closed_port_is_counted_as_refused(pki):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    summary = run(http_config(f"https://127.0.0.1:{port}", pki, max_requests=10, concurrency=2))
    assert summary["failures_by_kind"] == {"refused": 10}, summary


def test_a_keep_alive_connection_the_server_closed_is_not_a_failure(api, pki):
    """The server closes each connection after one answer without saying so: requests that
    find their connection closed before any answer go again on a new one."""
    server = api("one-per-connection")
    summary = run(http_config(server.url, pki, max_requests=60, concurrency=2))
    assert summary["failed"] == 0 and summary["ok"] == 60, summary
    assert server.connections >= 60, server.connections


def test_a_wrong_certificate_is_a_tls_failure(api, tmp_path, pki):
    other = tmp_path / "other.crt"
    other.write_bytes(make_ca("another CA")[1].public_bytes(serialization.Encoding.PEM))
    summary = run(http_config(api("ok").url, pki, max_requests=3, concurrency=1, ca_file=str(other)))
    assert summary["failures_by_kind"] == {"tls": 3}, summary


def test_bounded_by_duration(api, pki):
    began = time.monotonic()
    summary = run(http_config(api("ok").url, pki, duration=1.0, max_requests=100_000, rate=20.0))
    assert summary["stopped_by"] == "duration", summary
    assert time.monotonic() - began < 3
    assert 10 <= summary["requests"] <= 22, "paced to 20 requests per second"


def test_latency_memory_is_bounded():
    reservoir = loadgen.Reservoir(100, random.SystemRandom())
    for value in range(10_000):
        reservoir.add(value / 10_000)
    assert len(reservoir.values) == 100 and reservoir.seen == 10_000
    cuts = reservoir.percentiles()
    assert 0.3 < cuts["p50"] < 0.7 and cuts["p50"] <= cuts["p95"] <= cuts["max"] < 1, cuts


def test_started_and_stopped_around_other_work(api, pki, tmp_path):
    """The library use: the load runs in a thread while the caller does something else."""
    server = api("ok")
    config = http_config(server.url, pki, max_requests=10_000, rate=50.0, ids_file=str(tmp_path / "ids"))
    with loadgen.background(config) as load:
        time.sleep(0.6)
        assert load.snapshot()["requests"] > 0
    summary = load.summary
    assert summary["stopped_by"] == "stop" and summary["failed"] == 0 and summary["requests"] >= 20, summary
    assert len((tmp_path / "ids").read_text().split()) == summary["ids_written"] == len(server.items)


def test_the_command_prints_a_json_summary(api, pki, tmp_path):
    server = api("ok")
    run = subprocess.run(
        [
            *(sys.executable, LOADGEN, "--url", server.url, "--host", "localhost", "--ca", pki["ca"]),
            *("--duration", "5", "--max-requests", "25", "--rate", "0", "--ws-sessions", "0", "--strict"),
            *("--ids-file", tmp_path / "ids"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert (summary["requests"], summary["failed"], summary["stopped_by"]) == (25, 0, "requests"), summary


def test_the_command_exits_1_on_failures_when_strict(api, pki):
    run = subprocess.run(
        [
            *(sys.executable, LOADGEN, "--url", api("error").url, "--ca", pki["ca"], "--strict"),
            *("--duration", "5", "--max-requests", "5", "--rate", "0", "--ws-sessions", "0"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 1, run
    assert json.loads(run.stdout)["failures_by_kind"] == {"status_5xx": 5}


# --------------------------------------------------------------------------------------------
# WebSocket: a small RFC 6455 server for the tests, on asyncio


def accept_key(key: str) -> bytes:
    digest = hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest)


class WsServer:
    """Behaviours: echo, drain (1001 after `after` s), drop (reset after `after` s), code (1011
    after `after` s), wrong (a wrong echo), refuse (503 to the upgrade), fragments (a 70 kB
    broadcast in three frames before each echo)."""

    def __init__(self, mode: str, context: ssl.SSLContext, after: float = 0.4):
        self.mode, self.context, self.after = mode, context, after
        self.unmasked = 0
        self.pongs = 0
        self.client_close_codes: list[int] = []

    async def __aenter__(self) -> WsServer:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.context)
        self.url = f"https://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc) -> None:
        self.server.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.server.wait_closed(), 2)

    @staticmethod
    def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
        head = bytes([(0x80 if fin else 0) | opcode])
        if len(payload) < 126:
            return head + bytes([len(payload)]) + payload
        if len(payload) < 65536:
            return head + bytes([126]) + struct.pack("!H", len(payload)) + payload
        return head + bytes([127]) + struct.pack("!Q", len(payload)) + payload

    async def read_frames(self, reader: asyncio.StreamReader, frames: asyncio.Queue) -> None:
        try:
            while True:
                first, second = await reader.readexactly(2)
                length = second & 0x7F
                if length == 126:
                    (length,) = struct.unpack("!H", await reader.readexactly(2))
                elif length == 127:
                    (length,) = struct.unpack("!Q", await reader.readexactly(8))
                if not second & 0x80:
                    self.unmasked += 1
                    mask = b"\0\0\0\0"
                else:
                    mask = await reader.readexactly(4)
                data = await reader.readexactly(length)
                await frames.put((first & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(data))))
        except (asyncio.IncompleteReadError, OSError):
            await frames.put((None, b""))

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(":", 1)[1].strip()
            for line in head.decode().split("\r\n")
            if line.lower().startswith("sec-websocket-key:")
        )
        if self.mode == "refuse":
            writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()
            return
        accept = accept_key(key)
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        writer.write(self.frame(0x9, b"server-ping"))
        await writer.drain()
        frames: asyncio.Queue = asyncio.Queue()
        reading = asyncio.create_task(self.read_frames(reader, frames))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.after if self.mode in ("drain", "drop", "code") else None
        try:
            while True:
                timeout = None if deadline is None else max(0.0, deadline - loop.time())
                try:
                    opcode, payload = await asyncio.wait_for(frames.get(), timeout)
                except TimeoutError:
                    if self.mode == "drop":
                        writer.transport.abort()
                        return
                    code = 1001 if self.mode == "drain" else 1011
                    writer.write(self.frame(0x8, struct.pack("!H", code) + b"bye"))
                    await writer.drain()
                    opcode, payload = await asyncio.wait_for(frames.get(), 3)
                    if opcode == 0x8:
                        self.client_close_codes.append(struct.unpack("!H", payload[:2])[0])
                    writer.close()
                    return
                if opcode is None:
                    return
                if opcode == 0x8:
                    self.client_close_codes.append(struct.unpack("!H", payload[:2])[0])
                    writer.write(self.frame(0x8, payload[:2]))
                    await writer.drain()
                    writer.close()
                    return
                if opcode == 0x9:
                    writer.write(self.frame(0xA, payload))
                elif opcode == 0xA:
                    self.pongs += payload == b"server-ping"
                elif self.mode == "wrong":
                    writer.write(self.frame(0x1, b"not what was sent"))
                else:
                    if self.mode == "fragments":
                        big = b"broadcast:" + b"x" * 70_000
                        writer.write(self.frame(0x1, big[:100], fin=False))
                        writer.write(self.frame(0x9, b"in between"))  # a control frame amid a message
                        writer.write(self.frame(0x0, big[100:300], fin=False) + self.frame(0x0, big[300:]))
                    writer.write(self.frame(opcode, payload))
                await writer.drain()
        except (OSError, TimeoutError):
            return
        finally:
            reading.cancel()


def ws_config(url: str, pki, **overrides) -> loadgen.LoadConfig:
    settings = {
        "url": url,
        "host": "localhost",
        "ca_file": str(pki["ca"]),
        "duration": 1.2,
        "concurrency": 0,
        "ws_sessions": 2,
        "ws_interval": 0.1,
        "ws_echo_timeout": 1.0,
        "ws_ping_every": 3,
    }
    return loadgen.LoadConfig(**{**settings, **overrides})


def ws_run(mode: str, server_context, pki, **overrides) -> tuple[dict, WsServer]:
    async def go():
        async with WsServer(mode, server_context) as server:
            return await loadgen.LoadGenerator(ws_config(server.url, pki, **overrides)).run(), server

    return asyncio.run(go())


def test_sessions_that_last_the_run_continue_and_close_with_1000(server_context, pki):
    summary, server = ws_run("echo", server_context, pki, ws_sessions=3)
    ws = summary["websocket"]
    assert ws["sessions"] == ws["opened"] == ws["continued"] == 3, ws
    assert ws["ended_abnormally"] == 0 and ws["ended_cleanly"] == 0, ws
    assert ws["messages_sent"] == ws["echoes"] >= 3 * 8 and ws["echo_failures"] == 0, ws
    assert ws["pongs"] >= 3 and ws["pings_answered"] == server.pongs == 3, (ws, server.pongs)
    assert server.unmasked == 0, "every client frame is masked"
    assert server.client_close_codes == [1000, 1000, 1000]
    assert ws["close_codes"] == {"1000": 3}


def test_a_drain_that_closes_with_1001_ends_cleanly_and_a_new_session_follows(server_context, pki):
    summary, server = ws_run("drain", server_context, pki, ws_sessions=2, duration=1.3)
    ws = summary["websocket"]
    assert ws["ended_abnormally"] == 0, ws
    assert ws["ended_cleanly"] >= 4 and ws["close_codes"].get("1001", 0) >= 4, ws
    assert ws["continued"] == 2, "the replacement sessions were open when the run ended"
    assert 1001 in server.client_close_codes, "the client answered the server's close with its code"
    cleanly = [event for event in ws["events"] if event["outcome"] == "clean"]
    assert all(event["ended_at"] - event["opened_at"] >= 0.35 for event in cleanly), cleanly


@pytest.mark.parametrize(
    ("mode", "kind"),
    [("drop", "reset"), ("code", "close_code"), ("wrong", "echo_mismatch"), ("refuse", "handshake_status")],
)
def test_sessions_that_break_are_counted_abnormal_by_kind(server_context, pki, mode, kind):
    summary, server = ws_run(mode, server_context, pki, ws_reconnect=False)
    ws = summary["websocket"]
    assert ws["ended_abnormally"] == 2 and ws["abnormal_by_kind"] == {kind: 2}, ws
    assert ws["ended_cleanly"] == 0 and ws["continued"] == 0, ws
    if mode == "code":
        assert ws["close_codes"] == {"1011": 2} and server.client_close_codes == [1011, 1011]


def test_a_silent_server_is_an_echo_timeout(server_context, pki):
    async def go():
        async def silent(reader, writer):
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(x.split(":")[1].strip() for x in head.decode().split("\r\n") if x.lower().startswith("sec-"))
            writer.write(
                b"HTTP/1.1 101 OK\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n"
            )
            await asyncio.sleep(5)
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0, ssl=server_context)
        url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        config = ws_config(url, pki, ws_sessions=1, ws_echo_timeout=0.3, ws_reconnect=False, duration=2)
        summary = await loadgen.LoadGenerator(config).run()
        server.close()
        return summary

    ws = asyncio.run(go())["websocket"]
    assert ws["abnormal_by_kind"] == {"echo_timeout": 1} and ws["echo_failures"] == 1, ws


def test_fragmented_large_messages_and_control_frames_between_fragments(server_context, pki):
    summary = ws_run("fragments", server_context, pki, ws_sessions=1, duration=0.8)[0]
    ws = summary["websocket"]
    assert ws["ended_abnormally"] == 0 and ws["continued"] == 1, summary
    assert ws["echoes"] == ws["broadcasts_received"] >= 4, ws
    assert ws["pings_answered"] >= ws["echoes"], "each ping amid a fragmented message is answered"


def test_http_and_websocket_together_stop_at_the_request_bound(api, pki, server_context):
    """max_requests ends the whole run, the WebSocket sessions with it."""

    async def go():
        async with WsServer("echo", server_context) as ws_server:
            http = api("ok")
            config = ws_config(http.url, pki, concurrency=2, max_requests=40, rate=20.0, duration=30)
            generator = loadgen.LoadGenerator(config)
            generator.ws = loadgen.parse_target(ws_server.url.replace("https", "wss"), "localhost", ("wss",))
            return await generator.run()

    began = time.monotonic()
    summary = asyncio.run(go())
    assert summary["stopped_by"] == "requests" and summary["requests"] == 40 and summary["failed"] == 0, summary
    assert summary["websocket"]["continued"] == 2 and summary["websocket"]["ended_abnormally"] == 0, summary
    assert time.monotonic() - began < 5


def test_environment_is_not_needed():
    """The module imports nothing outside the standard library."""
    tree = LOADGEN.read_text()
    imported = {line.split()[1].split(".")[0] for line in tree.splitlines() if line.startswith(("import ", "from "))}
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported - set(sys.stdlib_module_names)
    assert os.access(LOADGEN, os.R_OK)
