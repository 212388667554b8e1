#!/usr/bin/env python3
"""Load generator for the lab's edge: API reads and writes and long-lived WebSocket sessions.

Standard library only (asyncio, ssl): a small HTTP/1.1 keep-alive client and a WebSocket
client (RFC 6455: masked client frames, ping/pong, fragmented messages, close codes).

- Targets only this machine: every address of the target must be in 127.0.0.0/8 or be ::1;
  anything else is refused before a single packet is sent.
- Bounded: a run ends when `duration` has passed or `max_requests` requests have been sent,
  whichever comes first (or when the caller stops it). Every request has its own deadline;
  the memory used does not grow with the length of the run (latencies are a fixed-size
  reservoir, created ids go to a file, error samples are capped).
- `concurrency` keep-alive connections send a mix of POST (write_ratio) and GET requests,
  paced to `rate` requests per second in all; `ws_sessions` WebSocket sessions each send a
  text message every `ws_interval` seconds and check its echo. A session that the server
  closes with 1000 or 1001 ended cleanly and is replaced by a new one.
- Counts: requests, failures by kind (status_5xx, status_4xx, connection_reset, timeout,
  refused, tls, protocol, bad_response), latency percentiles, WebSocket sessions that ended
  cleanly, continued until the end of the run, or ended abnormally (and why).

As a library, around something that takes a while (a deploy)::

    with loadgen.background(loadgen.LoadConfig(url=..., ca_file=..., ids_file=...)) as load:
        run_playbook(...)
    print(load.summary)

As a command: `python tests/tools/loadgen.py --url https://127.0.0.1:8443 --host edge1
--ca .cache/pki/lab/ca.crt --duration 60 --max-requests 2000`; it prints the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import ipaddress
import json
import os
import random
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_BODY = 1 << 20  # bytes of one HTTP response body or WebSocket message
MAX_HEADERS = 100
LATENCY_SAMPLES = 20_000
RECENT_IDS = 1_000
ERROR_SAMPLES = 20
CLOSE_EVENTS = 200
MAX_SERVED_BY = 32

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLEAN_CLOSE_CODES = (1000, 1001)


class TargetRefused(ValueError):
    """The target is not on this machine's loopback."""


class ProtocolError(Exception):
    """The server broke HTTP/1.1 or RFC 6455 (or sent more than the client accepts)."""


class ServerClosed(ConnectionResetError):
    """The server closed the connection; `before_response` when no byte of an answer came."""

    def __init__(self, message: str, before_response: bool):
        super().__init__(message)
        self.before_response = before_response


class UpgradeRefused(ProtocolError):
    """The server answered a WebSocket upgrade with something other than 101."""


class BadResponse(Exception):
    """A 2xx answer whose body is not what the API promises."""


# --------------------------------------------------------------------------------------------
# Targets


@dataclasses.dataclass(frozen=True)
class Target:
    """Where to connect (a checked loopback address) and what to call the server."""

    scheme: str
    address: str
    port: int
    server_name: str

    @property
    def tls(self) -> bool:
        return self.scheme in ("https", "wss")


def loopback_addresses(host: str, port: int) -> list[str]:
    """Every address `host` stands for, refused unless each is in 127.0.0.0/8 or is ::1."""
    try:
        candidates = [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as error:
            raise TargetRefused(f"{host!r} does not resolve ({error}); give a loopback address") from error
        candidates = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    refused = [
        str(address)
        for address in candidates
        if not (
            (address.version == 4 and address in ipaddress.ip_network("127.0.0.0/8"))
            or (address.version == 6 and address == ipaddress.ip_address("::1"))
        )
    ]
    if refused or not candidates:
        raise TargetRefused(
            f"{host!r} ({', '.join(refused) or 'no address'}) is not on this machine's loopback: "
            "the load generator only targets 127.0.0.0/8 and ::1"
        )
    return [str(address) for address in candidates]


def parse_target(url: str, server_name: str | None, schemes: tuple[str, ...]) -> Target:
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise ValueError(f"{url!r}: the scheme must be one of {', '.join(schemes)}")
    if not parts.hostname:
        raise ValueError(f"{url!r} has no host")
    port = parts.port or (443 if parts.scheme in ("https", "wss") else 80)
    address = loopback_addresses(parts.hostname, port)[0]
    return Target(parts.scheme, address, port, server_name or parts.hostname)


# --------------------------------------------------------------------------------------------
# HTTP/1.1 keep-alive client


@dataclasses.dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes


async def open_stream(
    target: Target, context: ssl.SSLContext | None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection(
        target.address,
        target.port,
        ssl=context if target.tls else None,
        server_hostname=target.server_name if target.tls else None,
    )
    with contextlib.suppress(OSError):
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return reader, writer


def close_writer(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        with contextlib.suppress(Exception):
            writer.close()


async def read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    """The status line and the headers (names lower-cased) of an answer."""
    status_line = await reader.readline()
    if not status_line:
        raise ServerClosed("the server closed the connection before answering", before_response=True)
    if not status_line.endswith(b"\n"):
        raise ServerClosed("the server closed the connection in the status line", before_response=False)
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if not line.endswith(b"\n"):
            raise ServerClosed("the server closed the connection in the headers", before_response=False)
        if line in (b"\r\n", b"\n"):
            return status_line.decode("latin-1").strip(), headers
        if len(headers) >= MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} headers")
        name, sep, value = line.decode("latin-1").partition(":")
        if not sep:
            raise ProtocolError(f"a header line without a colon: {line[:80]!r}")
        headers[name.strip().lower()] = value.strip()


async def read_exactly(reader: asyncio.StreamReader, size: int) -> bytes:
    try:
        return await reader.readexactly(size)
    except asyncio.IncompleteReadError as error:
        raise ServerClosed("the server closed the connection in the body", before_response=False) from error


class HttpConnection:
    """One keep-alive connection; `request` sends one request and reads its whole answer."""

    def __init__(self, target: Target, context: ssl.SSLContext | None, host_header: str):
        self.target = target
        self.context = context
        self.host_header = host_header
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.used = 0

    @property
    def open(self) -> bool:
        return self.writer is not None and not self.writer.is_closing() and not self.reader.at_eof()

    async def connect(self) -> None:
        self.reader, self.writer = await open_stream(self.target, self.context)

    def close(self) -> None:
        close_writer(self.writer)
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> Response:
        if not self.open:
            self.close()
            await self.connect()
        self.used += 1
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}", "User-Agent: corvid-loadgen"]
        head.append("Accept: application/json")
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await self.writer.drain()
        while True:
            status_line, headers = await read_head(self.reader)
            fields = status_line.split(" ", 2)
            if len(fields) < 2 or not fields[0].startswith("HTTP/1.") or not fields[1].isdigit():
                raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
            status = int(fields[1])
            if status >= 200:
                break  # 1xx answers (100 Continue) precede the real one
        data = await self.read_body(method, status, headers)
        if headers.get("connection", "").lower() == "close" or fields[0] == "HTTP/1.0":
            self.close()
        return Response(status, headers, data)

    async def read_body(self, method: str, status: int, headers: dict[str, str]) -> bytes:
        if method == "HEAD" or status in (204, 304):
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = bytearray()
            while True:
                size_line = await self.reader.readline()
                if not size_line.endswith(b"\n"):
                    raise ServerClosed("the server closed the connection in a chunk", before_response=False)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if len(chunks) + size > MAX_BODY:
                    raise ProtocolError(f"a body over {MAX_BODY} bytes")
                if size == 0:
                    while (await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(chunks)
                chunks += await read_exactly(self.reader, size)
                await read_exactly(self.reader, 2)
        if "content-length" in headers:
            length = int(headers["content-length"])
            if length > MAX_BODY:
                raise ProtocolError(f"a body of {length} bytes (over {MAX_BODY})")
            return await read_exactly(self.reader, length)
        data = await self.reader.read(MAX_BODY + 1)  # no length: the body ends with the connection
        if len(data) > MAX_BODY:
            raise ProtocolError(f"a body over {MAX_BODY} bytes")
        self.close()
        return data


# --------------------------------------------------------------------------------------------
# WebSocket client (RFC 6455)


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer
        self.close_sent = False
        self.message_opcode: int | None = None
        self.message = bytearray()

    @classmethod
    async def connect(cls, target: Target, context: ssl.SSLContext | None, host_header: str, path: str) -> WebSocket:
        reader, writer = await open_stream(target, context)
        try:
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                    f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nUser-Agent: corvid-loadgen\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            status_line, headers = await read_head(reader)
            if status_line.split(" ")[1:2] != ["101"]:
                raise UpgradeRefused(f"the upgrade was answered {status_line!r}")
            expected = base64.b64encode(hashlib.sha1(key.encode() + WS_GUID, usedforsecurity=False).digest()).decode()
            if headers.get("sec-websocket-accept") != expected:
                raise ProtocolError("the upgrade's Sec-WebSocket-Accept does not match the key")
        except BaseException:
            close_writer(writer)
            raise
        return cls(reader, writer)

    async def send(self, opcode: int, payload: bytes = b"") -> None:
        """One final frame, masked as a client must."""
        if opcode == OP_CLOSE:
            self.close_sent = True
        head = bytes([0x80 | opcode])
        if len(payload) < 126:
            head += bytes([0x80 | len(payload)])
        elif len(payload) < 1 << 16:
            head += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        mask = os.urandom(4)
        self.writer.write(head + mask + mask_bytes(payload, mask))
        await self.writer.drain()

    async def close(self, code: int = 1000) -> None:
        if not self.close_sent:
            await self.send(OP_CLOSE, struct.pack("!H", code))

    async def read_frame(self) -> tuple[bool, int, bytes]:
        try:
            first, second = await self.reader.readexactly(2)
        except asyncio.IncompleteReadError as error:
            raise ServerClosed(
                "the connection ended without a close frame", before_response=not error.partial
            ) from error
        if first & 0x70:
            raise ProtocolError("a frame with reserved bits set (no extension was negotiated)")
        if second & 0x80:
            raise ProtocolError("a masked frame from the server")
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", await read_exactly(self.reader, 2))
        elif length == 127:
            (length,) = struct.unpack("!Q", await read_exactly(self.reader, 8))
        if length > MAX_BODY:
            raise ProtocolError(f"a frame of {length} bytes (over {MAX_BODY})")
        return bool(first & 0x80), first & 0x0F, await read_exactly(self.reader, length)

    async def read_message(self) -> tuple[int, bytes]:
        """The next control frame or whole (reassembled) data message. Control frames may come
        between the fragments of a message, so the message in progress is kept on the object."""
        while True:
            fin, opcode, payload = await self.read_frame()
            if opcode >= OP_CLOSE:
                if not fin or len(payload) > 125:
                    raise ProtocolError("a fragmented or oversized control frame")
                return opcode, payload
            if opcode == OP_CONT:
                if self.message_opcode is None:
                    raise ProtocolError("a continuation frame with no message to continue")
            elif self.message_opcode is not None:
                raise ProtocolError("a new message inside a fragmented one")
            elif opcode not in (OP_TEXT, OP_BINARY):
                raise ProtocolError(f"an unknown opcode {opcode:#x}")
            else:
                self.message_opcode = opcode
            self.message += payload
            if len(self.message) > MAX_BODY:
                raise ProtocolError(f"a message over {MAX_BODY} bytes")
            if fin:
                message = self.message_opcode, bytes(self.message)
                self.message_opcode, self.message = None, bytearray()
                return message


def mask_bytes(payload: bytes, mask: bytes) -> bytes:
    if not payload:
        return b""
    repeated = (mask * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(len(payload), "big")


def close_code(payload: bytes) -> int:
    """The code of a close frame's payload; 1005 (no status) when it has none."""
    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005


# --------------------------------------------------------------------------------------------
# The load


@dataclasses.dataclass
class LoadConfig:
    url: str = "https://127.0.0.1:8443"
    host: str | None = "edge1"  # Host header and TLS server name; None: the URL's host
    ca_file: str | None = None  # None: the system's trust store
    duration: float = 60.0
    max_requests: int = 10_000
    rate: float | None = 20.0  # requests per second in all; None: as fast as the connections go
    concurrency: int = 4
    write_ratio: float = 0.3
    version_ratio: float = 0.2  # of the reads, the share that asks /version (which colour answers)
    request_timeout: float = 5.0
    ws_sessions: int = 2
    ws_path: str = "/ws"
    ws_interval: float = 1.0
    ws_echo_timeout: float = 5.0
    ws_ping_every: int = 10  # a ping after every N messages of a session (0: never)
    ws_reconnect: bool = True  # replace a session the server ended
    ids_file: str | None = None
    write_path: str = "/api/items"
    read_path: str = "/api/items/{id}"
    version_path: str = "/version"
    latency_samples: int = LATENCY_SAMPLES

    def validate(self) -> tuple[Target, Target]:
        """The API and WebSocket targets; ValueError (TargetRefused) for bad settings."""
        api = parse_target(self.url, self.host, ("http", "https"))
        ws = dataclasses.replace(api, scheme="wss" if api.tls else "ws")
        for name in ("duration", "request_timeout", "ws_interval", "ws_echo_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be more than 0, not {getattr(self, name)}")
        if min(self.max_requests, self.concurrency, self.ws_sessions) < 0:
            raise ValueError("max_requests, concurrency and ws_sessions must be 0 or more")
        if not (self.concurrency or self.ws_sessions):
            raise ValueError("nothing to run: concurrency (HTTP connections) and ws_sessions are both 0")
        if self.rate is not None and self.rate <= 0:
            raise ValueError(f"rate must be more than 0 (or None), not {self.rate}")
        if not (0 <= self.write_ratio <= 1 and 0 <= self.version_ratio <= 1):
            raise ValueError("write_ratio and version_ratio are between 0 and 1")
        return api, ws


class Reservoir:
    """A uniform sample of at most `size` values (algorithm R): bounded memory for percentiles."""

    def __init__(self, size: int, rng: random.Random):
        self.size, self.rng, self.seen, self.values = size, rng, 0, []

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = self.rng.randrange(self.seen)
            if slot < self.size:
                self.values[slot] = value

    def percentiles(self) -> dict[str, float | None]:
        ordered = sorted(self.values)

        def pick(q: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 6) if ordered else None

        return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": pick(1.0)}


def failure_kind(error: BaseException) -> str:
    if isinstance(error, TimeoutError):
        return "timeout"
    if isinstance(error, ConnectionRefusedError):
        return "refused"
    if isinstance(error, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError, ssl.SSLEOFError)):
        return "connection_reset"
    if isinstance(error, asyncio.IncompleteReadError):
        return "connection_reset"
    if isinstance(error, ssl.SSLError):
        return "tls"
    if isinstance(error, UpgradeRefused):
        return "status"
    if isinstance(error, (ProtocolError, ValueError, UnicodeDecodeError)):
        return "protocol"
    if isinstance(error, BadResponse):
        return "bad_response"
    if isinstance(error, OSError):
        return "connection_error"
    return "other"


class LoadGenerator:
    """One bounded run. `await start()`, later `await stop()` (or `await run()` for both)."""

    def __init__(self, config: LoadConfig):
        self.config = config
        self.api, self.ws = config.validate()  # refuses a target off the loopback now
        self.context: ssl.SSLContext | None = None
        if self.api.tls:
            self.context = ssl.create_default_context(cafile=config.ca_file)
        self.rng = random.SystemRandom()
        self.run_id = f"{self.rng.getrandbits(32):08x}"
        self.latency = Reservoir(config.latency_samples, self.rng)
        self.counts: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        self.served_by: Counter[str] = Counter()
        self.errors: list[str] = []
        self.recent: deque[tuple[int, str]] = deque(maxlen=RECENT_IDS)
        self.ws_counts: Counter[str] = Counter()
        self.ws_abnormal: Counter[str] = Counter()
        self.ws_close_codes: Counter[str] = Counter()
        self.ws_events: list[dict] = []
        self.tasks: list[asyncio.Task] = []
        self.stopping: asyncio.Event | None = None
        self.stopped_by: str | None = None
        self.started = self.ended = 0.0
        self.next_slot = 0.0
        self.sequence = 0
        self.pending_ids: list[int] = []

    # -- lifecycle

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.stopping = asyncio.Event()
        self.started = loop.time()
        self.started_wall = time.time()
        self.next_slot = self.started
        if self.config.ids_file:
            Path(self.config.ids_file).write_text("", encoding="utf-8")
        self.tasks = [loop.create_task(self.http_worker()) for _ in range(self.config.concurrency)]
        self.tasks += [loop.create_task(self.ws_session_loop(n)) for n in range(self.config.ws_sessions)]
        self.timer = loop.call_later(self.config.duration, self.end, "duration")

    def end(self, reason: str) -> None:
        if not self.stopping.is_set():
            self.stopped_by = reason
            self.stopping.set()

    async def wait(self) -> None:
        """Until the run ends by its duration or its request count."""
        await self.stopping.wait()

    async def stop(self) -> dict:
        """End the run: in-flight requests finish (within their deadline), open WebSocket
        sessions are closed with 1000; returns the summary."""
        self.end("stop")
        self.timer.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.ended = asyncio.get_running_loop().time()
        self.flush_ids()
        return self.summary()

    async def run(self) -> dict:
        await self.start()
        await self.wait()
        return await self.stop()

    # -- HTTP

    async def pace(self) -> None:
        if self.config.rate is None:
            await asyncio.sleep(0)
            return
        now = asyncio.get_running_loop().time()
        slot = max(self.next_slot, now)
        self.next_slot = slot + 1 / self.config.rate
        if slot > now:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), slot - now)

    def take_request(self) -> bool:
        if self.stopping.is_set():
            return False
        if self.counts["requests"] >= self.config.max_requests:
            self.end("requests")
            return False
        self.counts["requests"] += 1
        return True

    def choose(self) -> tuple[str, str, bytes | None, tuple[int, str] | None]:
        if self.rng.random() < self.config.write_ratio:
            self.sequence += 1
            value = f"loadgen-{self.run_id}-{self.sequence}"
            return "write", self.config.write_path, json.dumps({"value": value}).encode(), (0, value)
        if self.recent and self.rng.random() >= self.config.version_ratio:
            item = self.rng.choice(self.recent)
            return "read", self.config.read_path.format(id=item[0]), None, item
        return "version", self.config.version_path, None, None

    async def http_worker(self) -> None:
        conn = HttpConnection(self.api, self.context, self.config.host or self.api.server_name)
        try:
            while True:
                await self.pace()
                if not self.take_request():
                    return
                await self.one_request(conn, *self.choose())
        finally:
            conn.close()

    async def one_request(self, conn: HttpConnection, kind: str, path: str, body: bytes | None, item) -> None:
        began = asyncio.get_running_loop().time()
        method = "POST" if body is not None else "GET"
        self.counts[kind + "s"] += 1
        try:
            async with asyncio.timeout(self.config.request_timeout):
                try:
                    reused = conn.open and conn.used > 0
                    response = await conn.request(method, path, body)
                except ServerClosed as closed:
                    conn.close()
                    # A keep-alive connection the server closed before reading the request (a
                    # reload's old worker, an idle timeout): the request never reached the app,
                    # so it is sent again on a new connection, as HTTP clients do.
                    if not (reused and closed.before_response):
                        raise
                    self.counts["retried_on_closed_keepalive"] += 1
                    response = await conn.request(method, path, body)
        except Exception as error:
            conn.close()
            self.fail(failure_kind(error), f"{method} {path}: {error!r}")
            return
        self.latency.add(asyncio.get_running_loop().time() - began)
        self.statuses[str(response.status)] += 1
        if response.status >= 500:
            self.fail("status_5xx", f"{method} {path}: {response.status} {response.body[:200]!r}")
        elif response.status >= 400:
            self.fail("status_4xx", f"{method} {path}: {response.status} {response.body[:200]!r}")
        else:
            try:
                self.check(kind, response, item)
            except (BadResponse, ValueError, KeyError, TypeError) as error:
                self.fail("bad_response", f"{method} {path}: {error} in {response.body[:200]!r}")
                return
            self.counts["ok"] += 1

    def check(self, kind: str, response: Response, item) -> None:
        data = json.loads(response.body)
        if kind == "write":
            if response.status != 201 or not isinstance(data.get("id"), int):
                raise BadResponse(f"a write answered {response.status} without an integer id")
            self.recent.append((data["id"], item[1]))
            self.counts["ids_written"] += 1
            self.pending_ids.append(data["id"])
            if len(self.pending_ids) >= 100:
                self.flush_ids()
        elif kind == "read":
            if "value" in data and data["value"] != item[1]:
                raise BadResponse(f"item {item[0]} reads {data['value']!r}, written as {item[1]!r}")
        else:
            key = f"{data.get('version')}/{data.get('colour')}"
            if key in self.served_by or len(self.served_by) < MAX_SERVED_BY:
                self.served_by[key] += 1

    def flush_ids(self) -> None:
        """Append the ids created since the last flush to ids_file (memory stays bounded)."""
        if self.config.ids_file and self.pending_ids:
            with Path(self.config.ids_file).open("a", encoding="utf-8") as ids:
                ids.writelines(f"{item}\n" for item in self.pending_ids)
        self.pending_ids.clear()

    def fail(self, kind: str, detail: str) -> None:
        self.failures[kind] += 1
        if len(self.errors) < ERROR_SAMPLES:
            self.errors.append(f"{kind}: {detail}")

    # -- WebSocket

    async def ws_session_loop(self, slot: int) -> None:
        number = 0
        while not self.stopping.is_set():
            number += 1
            outcome = await self.ws_session(f"{slot}.{number}")
            if self.stopping.is_set() or not self.config.ws_reconnect:
                return
            if outcome != "clean":  # no tight loop against a server that refuses
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), self.config.ws_interval)

    def ws_end(self, session: str, opened: float | None, outcome: str, code: int | None, detail: str = "") -> str:
        now = asyncio.get_running_loop().time()
        if code is not None:
            self.ws_close_codes[str(code)] += 1
        if outcome in ("clean", "continued"):
            self.ws_counts["ended_cleanly" if outcome == "clean" else "continued"] += 1
        else:
            self.ws_counts["ended_abnormally"] += 1
            self.ws_abnormal[outcome] += 1
            if len(self.errors) < ERROR_SAMPLES:
                self.errors.append(f"websocket {session} {outcome}: {detail}")
        if len(self.ws_events) < CLOSE_EVENTS:
            self.ws_events.append(
                {
                    "session": session,
                    "outcome": outcome,
                    "code": code,
                    "opened_at": round(opened - self.started, 3) if opened is not None else None,
                    "ended_at": round(now - self.started, 3),
                }
            )
        return "clean" if outcome in ("clean", "continued") else outcome

    async def ws_session(self, session: str) -> str:
        config = self.config
        self.ws_counts["sessions"] += 1
        try:
            async with asyncio.timeout(config.request_timeout):
                ws = await WebSocket.connect(self.ws, self.context, config.host or self.ws.server_name, config.ws_path)
        except Exception as error:
            return self.ws_end(session, None, "handshake_" + failure_kind(error), None, repr(error))
        opened = asyncio.get_running_loop().time()
        self.ws_counts["opened"] += 1
        inbox: asyncio.Queue[bytes] = asyncio.Queue(maxsize=64)
        reader = asyncio.create_task(self.ws_reader(ws, inbox))
        stop_wait = asyncio.create_task(self.stopping.wait())
        outcome: tuple[str, int | None, str] | None = None
        sent = 0
        try:
            while outcome is None and not self.stopping.is_set() and not reader.done():
                sent += 1
                text = f"loadgen {self.run_id} {session} {sent}"
                await ws.send(OP_TEXT, text.encode())
                self.ws_counts["messages_sent"] += 1
                if config.ws_ping_every and sent % config.ws_ping_every == 0:
                    await ws.send(OP_PING, text.encode()[:125])
                    self.ws_counts["pings_sent"] += 1
                outcome = await self.ws_await_echo(inbox, reader, text)
                if outcome is None:
                    await asyncio.wait({reader, stop_wait}, timeout=config.ws_interval, return_when="FIRST_COMPLETED")
        except (OSError, ProtocolError) as error:
            outcome = ("reset", None, repr(error))
        try:
            if outcome is None and reader.done():
                outcome = reader.result()
            elif outcome is None:  # the run ends: the client closes, the server must answer
                await ws.close(1000)
                async with asyncio.timeout(config.ws_echo_timeout):
                    result = await reader
                outcome = ("continued", result[1], "") if result[0] == "close_ack" else result
            elif not ws.close_sent and outcome[0] in ("echo_timeout", "echo_mismatch"):
                with contextlib.suppress(Exception):
                    await ws.close(1000)
        except TimeoutError:
            outcome = ("no_close_answer", None, f"no close frame within {config.ws_echo_timeout} s")
        except Exception as error:
            outcome = (failure_kind(error), None, repr(error))
        finally:
            stop_wait.cancel()
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader
            close_writer(ws.writer)
        return self.ws_end(session, opened, *outcome)

    async def ws_await_echo(self, inbox, reader, text: str) -> tuple[str, int | None, str] | None:
        deadline = asyncio.get_running_loop().time() + self.config.ws_echo_timeout
        while True:
            getter = asyncio.ensure_future(inbox.get())
            remaining = deadline - asyncio.get_running_loop().time()
            done, _ = await asyncio.wait({getter, reader}, timeout=max(remaining, 0), return_when="FIRST_COMPLETED")
            if getter not in done:
                getter.cancel()
                if reader in done:
                    return reader.result()
                self.ws_counts["echo_failures"] += 1
                return ("echo_timeout", None, f"no echo of {text!r} within {self.config.ws_echo_timeout} s")
            message = getter.result()
            if message == text.encode():
                self.ws_counts["echoes"] += 1
                return None
            if message.startswith(b"broadcast:"):
                self.ws_counts["broadcasts_received"] += 1
                continue
            self.ws_counts["echo_failures"] += 1
            return ("echo_mismatch", None, f"sent {text!r}, received {message[:100]!r}")

    async def ws_reader(self, ws: WebSocket, inbox: asyncio.Queue) -> tuple[str, int | None, str]:
        """Answers pings and the server's close; hands data messages to the sender."""
        try:
            while True:
                opcode, payload = await ws.read_message()
                if opcode == OP_PING:
                    await ws.send(OP_PONG, payload)
                    self.ws_counts["pings_answered"] += 1
                elif opcode == OP_PONG:
                    self.ws_counts["pongs"] += 1
                elif opcode == OP_CLOSE:
                    code = close_code(payload)
                    if ws.close_sent:
                        return ("close_ack", code, "")
                    # The server ends the session (a drain): answer with its code, as RFC 6455 asks.
                    with contextlib.suppress(OSError):
                        await ws.send(OP_CLOSE, payload[:2])
                    if code in CLEAN_CLOSE_CODES:
                        return ("clean", code, "")
                    return ("close_code", code, f"the server closed with {code} {payload[2:100]!r}")
                else:
                    if inbox.full():
                        inbox.get_nowait()
                    inbox.put_nowait(payload)
        except ServerClosed as error:
            return ("reset", None, str(error))
        except Exception as error:
            return (failure_kind(error), None, repr(error))

    # -- result

    def summary(self) -> dict:
        elapsed = (self.ended or asyncio.get_running_loop().time()) - self.started
        ws = {key: self.ws_counts[key] for key in ("sessions", "opened", "ended_cleanly", "continued")}
        ws.update(
            ended_abnormally=self.ws_counts["ended_abnormally"],
            abnormal_by_kind=dict(sorted(self.ws_abnormal.items())),
            close_codes=dict(sorted(self.ws_close_codes.items())),
            **{
                key: self.ws_counts[key]
                for key in (
                    "messages_sent",
                    "echoes",
                    "echo_failures",
                    "pings_sent",
                    "pongs",
                    "pings_answered",
                    "broadcasts_received",
                )
            },
            events=self.ws_events,
        )
        requests = self.counts["requests"]
        return {
            "run_id": self.run_id,
            "target": f"{self.config.url} (Host {self.config.host or self.api.server_name})",
            "started_at": round(self.started_wall, 3),
            "duration_seconds": round(elapsed, 3),
            "stopped_by": self.stopped_by,
            "requests": requests,
            "ok": self.counts["ok"],
            "failed": sum(self.failures.values()),
            "failures_by_kind": dict(sorted(self.failures.items())),
            "writes": self.counts["writes"],
            "reads": self.counts["reads"],
            "version_reads": self.counts["versions"],
            "ids_written": self.counts["ids_written"],
            "ids_file": self.config.ids_file,
            "retried_on_closed_keepalive": self.counts["retried_on_closed_keepalive"],
            "statuses": dict(sorted(self.statuses.items())),
            "served_by": dict(sorted(self.served_by.items())),
            "requests_per_second": round(requests / elapsed, 2) if elapsed > 0 else None,
            "latency_seconds": self.latency.percentiles(),
            "websocket": ws,
            "errors": self.errors,
        }


class Background:
    """A run on an event loop of its own in a thread: for synchronous callers (pytest)."""

    def __init__(self, config: LoadConfig):
        self.generator = LoadGenerator(config)  # refuses a bad target in the caller's thread
        self.summary: dict | None = None
        self.error: BaseException | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.main, name="loadgen", daemon=True)

    def main(self) -> None:
        async def go() -> None:
            self.loop = asyncio.get_running_loop()
            await self.generator.start()
            self.ready.set()
            await self.generator.wait()
            self.summary = await self.generator.stop()

        try:
            asyncio.run(go())
        except BaseException as error:
            self.error = error
        finally:
            self.ready.set()

    def start(self) -> Background:
        self.thread.start()
        self.ready.wait()
        return self

    def snapshot(self) -> dict:
        """The counts so far, without stopping."""
        return asyncio.run_coroutine_threadsafe(self._snapshot(), self.loop).result(timeout=10)

    async def _snapshot(self) -> dict:
        return self.generator.summary()

    def stop(self, timeout: float = 60.0) -> dict:
        if self.loop is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.generator.end, "stop")
        self.thread.join(timeout)
        if self.thread.is_alive():
            raise TimeoutError(f"the load generator did not stop within {timeout} s")
        if self.error is not None:
            raise self.error
        return self.summary


@contextlib.contextmanager
def background(config: LoadConfig) -> Iterator[Background]:
    """Run the load while the block runs; `.summary` is set when the block ends."""
    load = Background(config).start()
    try:
        yield load
    finally:
        load.stop()


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: list[str]) -> tuple[LoadConfig, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = LoadConfig()
    parser.add_argument("--url", default=defaults.url, help="the API's base URL (loopback only)")
    parser.add_argument("--host", default=defaults.host, help="Host header and TLS server name")
    parser.add_argument("--ca", dest="ca_file", help="CA file that signs the server's certificate")
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds at most")
    parser.add_argument("--max-requests", type=int, default=defaults.max_requests, help="HTTP requests at most")
    parser.add_argument("--rate", type=float, default=defaults.rate, help="requests per second in all (0: unpaced)")
    parser.add_argument("--concurrency", type=int, default=defaults.concurrency, help="keep-alive connections")
    parser.add_argument("--write-ratio", type=float, default=defaults.write_ratio, help="share of POSTs")
    parser.add_argument("--timeout", dest="request_timeout", type=float, default=defaults.request_timeout)
    parser.add_argument("--ws-sessions", type=int, default=defaults.ws_sessions, help="long-lived WebSocket sessions")
    parser.add_argument("--ws-interval", type=float, default=defaults.ws_interval, help="seconds between messages")
    parser.add_argument("--ids-file", help="file to write the id of every item created to")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a request failed or a session broke")
    args = vars(parser.parse_args(argv))
    strict = args.pop("strict")
    if args["rate"] == 0:
        args["rate"] = None
    return LoadConfig(**args), strict


async def command(config: LoadConfig) -> dict:
    generator = LoadGenerator(config)
    await generator.start()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, generator.end, "signal")
    await generator.wait()
    return await generator.stop()


def main(argv: list[str] | None = None) -> int:
    config, strict = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config.validate()
    except ValueError as error:
        print(f"loadgen: {error}", file=sys.stderr)
        return 2
    summary = asyncio.run(command(config))
    print(json.dumps(summary, indent=2))
    broken = summary["failed"] or summary["websocket"]["ended_abnormally"]
    return 1 if strict and broken else 0


if __name__ == "__main__":
    sys.exit(main())
