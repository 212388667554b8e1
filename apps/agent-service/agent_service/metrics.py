"""Prometheus metrics and their endpoint: GET /metrics over TLS 1.3 with basic auth.

The endpoint is a small asyncio HTTP/1.1 server (one request per connection), so that the
TLS context is the service's own: TLS 1.3 only, as Contract 3 wants of every scraped target.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import ssl

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from agent_service.config import Settings

log = logging.getLogger("agent_service.metrics")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered, by method, route and status.", ["method", "route", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
WEBSOCKET_CONNECTIONS = Gauge("websocket_connections", "Open WebSocket sessions.")
WEBSOCKET_MESSAGES = Counter("websocket_messages_total", "WebSocket messages received, by kind.", ["kind"])
BACKEND_ERRORS = Counter("agent_backend_errors_total", "Failed PostgreSQL or Redis calls, by backend.", ["backend"])
BUILD_INFO = Gauge(
    "agent_build_info", "The running build: always 1, labelled with its version and colour.", ["version", "colour"]
)

MAX_HEAD_BYTES = 8192
READ_TIMEOUT = 5.0


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.metrics_tls_cert_file:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(settings.metrics_tls_cert_file, settings.metrics_tls_key_file)
    return context


class MetricsServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.expected = ""
        if settings.metrics_password:
            token = f"{settings.metrics_user}:{settings.metrics_password}".encode()
            self.expected = "Basic " + base64.b64encode(token).decode()
        self.server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        context = tls_context(self.settings)
        if context is None:
            log.warning("metrics over plain HTTP: AGENT_METRICS_TLS_CERT_FILE is not set")
        if not self.expected:
            log.warning("metrics without authentication: AGENT_METRICS_PASSWORD_FILE is not set")
        tls = {"ssl": context, "ssl_handshake_timeout": READ_TIMEOUT} if context else {}
        self.server = await asyncio.start_server(self._handle, self.settings.bind, self.settings.metrics_port, **tls)

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    def _authorised(self, headers: dict[str, str]) -> bool:
        if not self.expected:
            return True
        given = headers.get("authorization", "")
        try:
            # Compare the decoded pair, so that equivalent encodings cannot differ in timing.
            scheme, _separator, token = given.partition(" ")
            given_pair = base64.b64decode(token, validate=True) if scheme.lower() == "basic" else b""
        except binascii.Error:
            given_pair = b""
        expected_pair = base64.b64decode(self.expected.split(" ", 1)[1])
        return hmac.compare_digest(given_pair, expected_pair)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
            status, body, ctype, extra = self._answer(head)
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ssl.SSLError):
            writer.close()
            return
        lines = [
            f"HTTP/1.1 {status}",
            f"Content-Type: {ctype}",
            f"Content-Length: {len(body)}",
            "Connection: close",
            *extra,
        ]
        try:
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT)
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    def _answer(self, head: bytes) -> tuple[str, bytes, str, list[str]]:
        if len(head) > MAX_HEAD_BYTES:
            return "431 Request Header Fields Too Large", b"", "text/plain", []
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        parts = request_line.split(" ")
        if len(parts) != 3:
            return "400 Bad Request", b"bad request\n", "text/plain", []
        method, target, _version = parts
        headers = {}
        for line in header_lines:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        if not self._authorised(headers):
            return "401 Unauthorized", b"unauthorized\n", "text/plain", ['WWW-Authenticate: Basic realm="metrics"']
        if target.split("?", 1)[0] != "/metrics":
            return "404 Not Found", b"not found\n", "text/plain", []
        if method not in ("GET", "HEAD"):
            return "405 Method Not Allowed", b"", "text/plain", ["Allow: GET, HEAD"]
        body = generate_latest()
        return "200 OK", b"" if method == "HEAD" else body, CONTENT_TYPE_LATEST, []
