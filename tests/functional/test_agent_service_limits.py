"""The agent service (apps/agent-service) against hostile clients, in throwaway containers.

The image is built from apps/agent-service; one container runs it with PostgreSQL pointing at
a second container that accepts connections and never answers (no Redis: not needed here).
Each test is one hostile client: oversized bodies, a slowloris, readiness probes while the
database hangs, MCP batches, WebSocket floods and a frame that claims 2^63 bytes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "corvid-test/agent-service"
PREFIX = "corvid-test-agent-limits"
NETWORK = f"{PREFIX}-net"
CALL_TIMEOUT = 1.0
HEADER_SECONDS = 10.0  # agent_service.server.HEADER_SECONDS
MAX_BODY = 65536
BLACKHOLE = (
    "import socket\n"
    "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
    "s.bind(('0.0.0.0', 6432)); s.listen(64); held = []\n"
    "while True: held.append(s.accept()[0])\n"
)


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True, timeout=600).stdout.strip()


def cleanup() -> None:
    for name in (f"{PREFIX}-agent", f"{PREFIX}-blackhole"):
        subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
    subprocess.run(["docker", "network", "rm", NETWORK], capture_output=True, check=False)


@pytest.fixture(scope="module")
def agent() -> str:
    if shutil.which("docker") is None:
        pytest.skip("no docker")
    cleanup()
    docker("build", "-q", "-t", IMAGE, str(ROOT / "apps/agent-service"))
    docker("network", "create", NETWORK)
    try:
        docker("run", "-d", "--name", f"{PREFIX}-blackhole", "--network", NETWORK, IMAGE, "python3", "-c", BLACKHOLE)
        docker(
            *("run", "-d", "--name", f"{PREFIX}-agent", "--network", NETWORK, "--read-only", "--tmpfs", "/tmp"),
            *(
                "-e",
                f"AGENT_DATABASE_URL_HOST={PREFIX}-blackhole",
                "-e",
                "AGENT_CA_FILE=/etc/ssl/certs/ca-certificates.crt",
            ),
            *("-e", f"AGENT_CALL_TIMEOUT_SECONDS={CALL_TIMEOUT}", "-e", f"AGENT_MAX_BODY_BYTES={MAX_BODY}"),
            IMAGE,
        )
        address = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", f"{PREFIX}-agent")
        deadline = time.monotonic() + 30
        while asyncio.run(exchange(address, 8000, b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"))[1] != 200:
            assert time.monotonic() < deadline, docker("logs", f"{PREFIX}-agent")
            time.sleep(0.5)
        yield address
    finally:
        cleanup()


async def exchange(address: str, port: int, head: bytes, chunks=(), timeout: float = 30) -> tuple[float, int, bytes]:
    """Send HEAD (and CHUNKS), read the answer until the server closes: seconds, status, body."""
    start = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(address, port)
    except OSError:
        return time.monotonic() - start, 0, b""
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        await writer.drain()
    except ConnectionError:
        pass
    try:
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        length = next(
            (int(line.split(b":")[1]) for line in answer.lower().split(b"\r\n") if line.startswith(b"content-length:")),
            0,
        )
        body = await asyncio.wait_for(reader.readexactly(length), timeout)
    except (asyncio.IncompleteReadError, ConnectionError):
        return time.monotonic() - start, 0, b""
    finally:
        writer.close()
    return time.monotonic() - start, int(answer.split(b" ")[1]), body


def post(path: str, body: bytes, extra: bytes = b"") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        + extra
        + b"\r\n"
        + body
    )


def test_readyz_answers_503_within_the_call_timeout_while_postgresql_hangs(agent):
    async def probes():
        return await asyncio.gather(
            *(exchange(agent, 8000, b"GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n", timeout=30) for _ in range(20))
        )

    answers = asyncio.run(probes())
    assert {status for _, status, _ in answers} == {503}, answers
    slowest = max(seconds for seconds, _, _ in answers)
    assert slowest < CALL_TIMEOUT + 1.5, f"20 concurrent /readyz: the slowest took {slowest:.1f} s"


def test_a_100_mb_body_is_refused_fast(agent):
    declared = (
        b"POST /api/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    chunked = (
        b"POST /api/items HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    piece = b"a" * 65536
    for head, chunks in (
        (declared, (piece for _ in range(1600))),
        (chunked, (b"10000\r\n" + piece + b"\r\n" for _ in range(1600))),
    ):
        seconds, status, body = asyncio.run(exchange(agent, 8000, head, chunks))
        assert status == 413, (status, body)
        assert seconds < 10


def test_a_slowloris_client_loses_the_connection(agent):
    async def slowloris() -> float:
        reader, writer = await asyncio.open_connection(agent, 8000)
        start = time.monotonic()
        try:
            for byte in b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.5)
                if reader.at_eof():
                    break
        except ConnectionError:
            pass
        finally:
            writer.close()
        return time.monotonic() - start

    assert asyncio.run(slowloris()) < HEADER_SECONDS + 3


def test_mcp_batches_are_bounded(agent):
    def call(message_id: int) -> dict:
        return {"jsonrpc": "2.0", "id": message_id, "method": "tools/call", "params": {"name": "item_count"}}

    _, status, body = asyncio.run(exchange(agent, 8000, post("/mcp", json.dumps([1] * 10000).encode())))
    assert status == 200 and json.loads(body)["error"]["code"] == -32600, body
    # 32 calls that each wait for the hanging database: answered together, not one by one.
    seconds, status, body = asyncio.run(
        exchange(agent, 8000, post("/mcp", json.dumps([call(i) for i in range(32)]).encode()))
    )
    answers = json.loads(body)
    assert status == 200 and len(answers) == 32 and all(answer["result"]["isError"] for answer in answers), body
    assert seconds < CALL_TIMEOUT * 2 + 2, f"a batch of 32 took {seconds:.1f} s"


def test_mcp_refuses_malformed_messages_and_foreign_origins(agent):
    ping = b'{"jsonrpc": "2.0", "id": 1, "method": "ping"}'
    for body, code in ((b"{nope", -32700), (b'{"jsonrpc": "2.0", "id": 1, "method": "x/y"}', -32601)):
        _, status, answer = asyncio.run(exchange(agent, 8000, post("/mcp", body)))
        assert status == 200 and json.loads(answer)["error"]["code"] == code, answer
    huge_id = b'{"jsonrpc": "2.0", "method": "ping", "id": ' + b"9" * 5000 + b"}"
    _, status, answer = asyncio.run(exchange(agent, 8000, post("/mcp", huge_id)))
    assert status == 200 and json.loads(answer)["error"]["code"] == -32700, answer
    _, status, _ = asyncio.run(exchange(agent, 8000, post("/mcp", ping, b"Origin: https://evil.example\r\n")))
    assert status == 403


def websocket_handshake() -> bytes:
    key = base64.b64encode(os.urandom(16))
    return (
        b"GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )


def test_websocket_sessions_are_bounded(agent):
    async def flood() -> list[bytes]:
        held, lines = [], []
        for _ in range(101):
            reader, writer = await asyncio.open_connection(agent, 8080)
            writer.write(websocket_handshake())
            lines.append((await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).split(b"\r\n")[0])
            held.append(writer)
        for writer in held:
            writer.close()
        return lines

    lines = asyncio.run(flood())
    assert all(b" 101 " in line for line in lines[:100]), lines[:100]
    assert b" 503 " in lines[100], lines[100]


def test_a_websocket_frame_claiming_2_63_bytes_is_closed_with_1009(agent):
    async def frame() -> bytes:
        reader, writer = await asyncio.open_connection(agent, 8080)
        writer.write(websocket_handshake())
        await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.write(bytes([0x81, 0xFF]) + struct.pack("!Q", 2**63 - 1) + b"\0\0\0\0" + b"x" * 1000)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(4), 10)
        writer.close()
        return answer

    time.sleep(1)  # the previous test's sessions close
    answer = asyncio.run(frame())
    assert answer[:2] == b"\x88\x02" and struct.unpack("!H", answer[2:4])[0] == 1009, answer


def test_an_idle_connection_to_the_websocket_port_gets_408(agent):
    async def idle() -> tuple[float, bytes]:
        reader, writer = await asyncio.open_connection(agent, 8080)
        start = time.monotonic()
        answer = await asyncio.wait_for(reader.read(100), HEADER_SECONDS + 5)
        writer.close()
        return time.monotonic() - start, answer

    seconds, answer = asyncio.run(idle())
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert seconds < HEADER_SECONDS + 3
