# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A health-check client for MCP (Model Context Protocol) servers, standard library only.

It runs on managed hosts (Python 3.9 and later) and speaks:

* Streamable HTTP (2025-03-26 and later): every message is a POST that accepts JSON or an
  event stream; the ``Mcp-Session-Id`` a server hands out is sent back, ``MCP-Protocol-Version``
  follows initialization, the session is deleted at the end.
* The legacy HTTP+SSE transport (2024-11-05): a GET event stream names, in its ``endpoint``
  event, the URL to POST messages to; responses come back on the stream.
* The initialize handshake of 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25, and the
  sessionless 2026-07-28 revision (``server/discover`` and a ``_meta`` envelope on every request).

:func:`check_endpoint` checks one endpoint and returns a plain dict; :func:`run_checks` checks
many at once in a bounded pool of daemon threads and never waits past each check's deadline.
Secrets (bearer tokens, header values) are never put into results or error messages.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import base64
import contextlib
import http.client
import json
import queue
import socket
import ssl
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from urllib.parse import parse_qsl, unquote, urljoin, urlsplit, urlunsplit

from ansible_collections.corvid.platform.plugins.module_utils.mcp_errors import OptionError
from ansible_collections.corvid.platform.plugins.module_utils.mcp_sse import SSEError, SSEParser

CLIENT_NAME = "corvid.platform.mcp_check"
CLIENT_VERSION = "0.1.0"

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
KNOWN_VERSIONS = HANDSHAKE_VERSIONS + MODERN_VERSIONS
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
LATEST_MODERN_VERSION = MODERN_VERSIONS[-1]

TRANSPORTS = ("auto", "streamable_http", "sse")
PROTOCOL_CHOICES = ("auto", *KNOWN_VERSIONS)
STAGES = ("connect", "tls", "initialize", "ping", "list", "call")
FAILED_STAGES = (*STAGES, "latency")

METHOD_NOT_FOUND = -32601
UNSUPPORTED_PROTOCOL_VERSION = -32022

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
# Headers the transports set themselves; a user-supplied one would be sent twice.
PROTOCOL_HEADERS = frozenset(
    (
        "host",
        "content-length",
        "content-type",
        "accept",
        "mcp-session-id",
        "mcp-protocol-version",
        "mcp-method",
        "mcp-name",
        "transfer-encoding",
        "connection",
    )
)
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

MAX_JSON_BODY = 32 * 1024 * 1024
MAX_ERROR_BODY = 64 * 1024
MAX_PAGES = 1000
DRAIN_SECONDS = 0.05
READ_SIZE = 65536
TEXT_PREVIEW = 512
# Linux delays ACKs (by up to 40 ms) once a connection is busy; servers that write a response in
# several small segments then stall until our ACK arrives, and that stall would be measured as
# server latency. TCP_QUICKACK is not sticky, so it is set again before every read.
QUICKACK = getattr(socket, "TCP_QUICKACK", None)

DEFAULTS = {
    "name": None,
    "transport": "auto",
    "protocol_version": "auto",
    "bearer_token": None,
    "headers": None,
    "timeout": 10.0,
    "validate_certs": True,
    "ca_path": None,
    "client_cert": None,
    "client_key": None,
    "expected_tools": None,
    "min_protocol_version": None,
    "max_latency_ms": None,
    "ping": True,
    "list_resources": False,
    "list_prompts": False,
    "call_tool": None,
}


# --------------------------------------------------------------------------- errors


class CheckError(Exception):
    """A check failed at ``stage``; the message never contains secrets."""

    def __init__(
        self, stage, message, *, http_status=None, rpc_error=None, www_authenticate=None, resource_metadata=None
    ):
        super().__init__(message)
        self.stage = stage
        self.message = message
        self.http_status = http_status
        self.rpc_error = rpc_error
        self.www_authenticate = www_authenticate
        self.resource_metadata = resource_metadata


class DeadlineExceeded(Exception):
    """The endpoint's overall timeout ran out."""


class RpcError(Exception):
    """The server answered a request with a JSON-RPC error object."""

    def __init__(self, code, message, data=None, http_status=None):
        super().__init__("JSON-RPC error %s: %s" % (code, message))
        self.code = code
        self.rpc_message = message
        self.data = data
        self.http_status = http_status

    def as_dict(self):
        error = {"code": self.code, "message": self.rpc_message}
        if self.data is not None:
            error["data"] = self.data
        return error


class HttpStatusError(Exception):
    """An HTTP error status without a JSON-RPC error body."""

    def __init__(self, status, reason, body="", www_authenticate=None, location=None):
        detail = "HTTP %s %s" % (status, reason or "")
        super().__init__(detail.strip())
        self.status = status
        self.reason = reason
        self.body = body
        self.www_authenticate = www_authenticate
        self.location = location


class ProtocolError(Exception):
    """The server's answer does not follow the protocol."""


class ConfigError(OptionError):
    """The endpoint configuration cannot be used; ``option`` names the option at fault, ``message`` says why."""


# --------------------------------------------------------------------------- helpers


class Deadline:
    """A point in time every blocking operation of one check must finish by."""

    def __init__(self, seconds):
        self.seconds = float(seconds)
        self.start = time.monotonic()
        self.end = self.start + self.seconds

    def remaining(self):
        left = self.end - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded()
        return left

    def expired(self):
        return time.monotonic() >= self.end


def media_type(value):
    """'text/event-stream; charset=utf-8' -> 'text/event-stream'."""
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def parse_www_authenticate(value):
    """Return the ``resource_metadata`` parameter of a (Bearer) WWW-Authenticate header, or None."""
    if not value:
        return None
    text = value
    marker = "resource_metadata"
    index = text.lower().find(marker)
    while index != -1:
        before = text[index - 1] if index > 0 else " "
        rest = text[index + len(marker) :].lstrip()
        if (before in " ,\t") and rest.startswith("="):
            rest = rest[1:].lstrip()
            if rest.startswith('"'):
                out = []
                escaped = False
                for char in rest[1:]:
                    if escaped:
                        out.append(char)
                        escaped = False
                    elif char == "\\":
                        escaped = True
                    elif char == '"':
                        return "".join(out)
                    else:
                        out.append(char)
                return "".join(out)
            token = rest.split(",", 1)[0].strip()
            return token or None
        index = text.lower().find(marker, index + len(marker))
    return None


def redact_url(url):
    """Drop user information and mask query values, so a URL can go into results and metric labels."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    host = parts.hostname or ""
    if ":" in host:
        host = "[%s]" % host
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host if port is None else "%s:%s" % (host, port)
    query = ""
    if parts.query:
        query = "&".join(
            "%s=REDACTED" % name if value else name for name, value in parse_qsl(parts.query, keep_blank_values=True)
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def validate_url(url, option="url"):
    """Raise ConfigError unless ``url`` is an absolute http(s) URL with a host."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(option, "must be a non-empty http:// or https:// URL")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(option, "%s is not a valid URL (%s)" % (redact_url(url), exc)) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(option, "%s needs an http:// or https:// scheme" % redact_url(url))
    if not parts.hostname:
        raise ConfigError(option, "%s has no host" % redact_url(url))
    if port == 0:
        raise ConfigError(option, "%s has port 0" % redact_url(url))


def validate_headers(headers, option="headers"):
    if headers is None:
        return
    if not isinstance(headers, dict):
        raise ConfigError(option, "must be a dictionary of header names to values")
    for name, value in headers.items():
        if not isinstance(name, str) or not name or any(c in name for c in " \t\r\n:"):
            raise ConfigError(option, "header name %r is not a valid HTTP header name" % (name,))
        if value is None or any(c in str(value) for c in "\r\n\x00"):
            # The value may be a secret: name the header, never the value.
            raise ConfigError(option, "the value of header %r is empty or contains a line break" % (name,))


def encode_header_value(value):
    """Mirror a value into an HTTP header the way 2026-07-28 requires (base64 sentinel when not plain ASCII)."""
    plain = all(0x20 <= ord(c) <= 0x7E for c in value) and value == value.strip()
    if plain and not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    return "=?base64?%s?=" % base64.b64encode(value.encode("utf-8")).decode("ascii")


def _ms(seconds):
    return round(seconds * 1000.0, 3)


def _version_index(version):
    try:
        return KNOWN_VERSIONS.index(version)
    except ValueError:
        return -1


def version_at_least(version, minimum):
    """True when ``version`` is a known revision at least as new as ``minimum``."""
    return _version_index(version) >= 0 and _version_index(version) >= _version_index(minimum)


def _is_response(message):
    return isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)


def _rpc_error_from(message, http_status=None):
    error = message.get("error")
    if not isinstance(error, dict):
        error = {"code": None, "message": str(error)}
    return RpcError(error.get("code"), error.get("message", ""), error.get("data"), http_status)


def _text_of(content):
    texts = []
    for item in content or []:
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
    return "\n".join(texts)


def subset_matches(expected, actual):
    """True when every key of ``expected`` is in ``actual`` with a matching value (recursively for dicts)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and subset_matches(value, actual[key]) for key, value in expected.items())
    return expected == actual


# --------------------------------------------------------------------------- HTTP plumbing


class _Target:
    """One http(s) URL split into what http.client needs."""

    def __init__(self, url):
        parts = urlsplit(url)
        self.url = url
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = parts.path or "/"
        if parts.query:
            self.path += "?" + parts.query
        host = "[%s]" % self.host if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        self.host_header = host if self.port == default else "%s:%s" % (host, self.port)
        self.origin = (self.scheme, self.host.lower(), self.port)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None


class _Conn:
    """An HTTP/1.1 connection on a socket we opened (so connect and TLS can be timed apart)."""

    def __init__(self, target, sock):
        self.target = target
        self.sock = sock
        self.http = http.client.HTTPConnection(target.host, target.port)
        self.http.sock = sock
        self.closed = False
        self.responded = False

    def send(self, deadline, method, target, headers, body=None):
        """Send one request and return the response (headers read)."""
        try:
            self.set_timeout(deadline.remaining())
            self.http.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
            self.http.putheader("Host", target.host_header)
            for name, value in headers:
                self.http.putheader(name, value)
            if body is not None:
                self.http.putheader("Content-Length", str(len(body)))
            self.http.endheaders(body)
            self.set_timeout(deadline.remaining())
            response = self.http.getresponse()
        except (ssl.SSLError, ConnectionResetError) as exc:
            if self.responded or self.target.scheme != "https":
                raise
            # With TLS 1.3 a server that refuses the client (no or a wrong client certificate, say) says so
            # only after the handshake, on the first read: that is still a TLS failure.
            self.close()
            hint = ""
            if not isinstance(exc, ssl.SSLError) or isinstance(exc, ssl.SSLEOFError) or "certificate" in str(exc):
                hint = " (the server ended the TLS session; it may require a client certificate)"
            raise CheckError(
                "tls",
                "TLS session with %s:%s failed before any HTTP answer: %s%s"
                % (self.target.host, self.target.port, _ssl_error(exc) or exc.__class__.__name__, hint),
            ) from None
        self.responded = True
        return response

    def set_timeout(self, seconds):
        """Bound the next socket operation; also ask Linux to ACK at once (see QUICKACK)."""
        self.sock.settimeout(max(seconds, 0.001))
        if QUICKACK is not None:
            with contextlib.suppress(OSError):  # e.g. after the peer reset the connection
                self.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)

    def close(self):
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            self.http.close()
        with contextlib.suppress(Exception):
            self.sock.close()

    def abort(self):
        """Called from another thread: wake up whatever blocks on this socket."""
        with contextlib.suppress(Exception):
            self.sock.shutdown(socket.SHUT_RDWR)


class _HttpClient:
    """Connections to the origins of one check, all bounded by the check's deadline."""

    def __init__(self, deadline, ssl_context, timings, user_agent):
        self.deadline = deadline
        self.ssl_context = ssl_context
        self.timings = timings
        self.user_agent = user_agent
        self._idle = {}
        self._all = []
        self._lock = threading.Lock()
        self._aborted = False

    def open(self, target):
        with self._lock:
            if self._aborted:
                raise DeadlineExceeded()
        first = "connect" not in self.timings
        started = time.monotonic()
        try:
            sock = socket.create_connection((target.host, target.port), timeout=self.deadline.remaining())
        except DeadlineExceeded:
            raise
        except socket.timeout:
            raise CheckError("connect", "timed out connecting to %s:%s" % (target.host, target.port)) from None
        except OSError as exc:
            raise CheckError(
                "connect", "cannot connect to %s:%s: %s" % (target.host, target.port, _os_error(exc))
            ) from None
        connected = time.monotonic()
        if first:
            self.timings["connect"] = connected - started
        with contextlib.suppress(OSError, AttributeError):
            # Headers and body go out in separate writes: without this, Nagle and delayed ACKs add ~40 ms.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.scheme == "https":
            try:
                sock.settimeout(self.deadline.remaining())
                context = self.ssl_context or ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=target.host)
            except DeadlineExceeded:
                sock.close()
                raise
            except socket.timeout:
                sock.close()
                raise CheckError(
                    "tls", "timed out in the TLS handshake with %s:%s" % (target.host, target.port)
                ) from None
            except (ssl.SSLError, ssl.CertificateError, OSError, ValueError) as exc:
                sock.close()
                raise CheckError(
                    "tls", "TLS handshake with %s:%s failed: %s" % (target.host, target.port, _ssl_error(exc))
                ) from None
            if first:
                self.timings["tls"] = time.monotonic() - connected
        conn = _Conn(target, sock)
        with self._lock:
            self._all.append(conn)
            if self._aborted:
                conn.abort()
        return conn

    def acquire(self, target):
        """Return (connection, reused) for ``target``: an idle keep-alive connection or a new one."""
        with self._lock:
            idle = self._idle.get(target.origin)
            while idle:
                conn = idle.pop()
                if not conn.closed:
                    return conn, True
        return self.open(target), False

    def release(self, conn, response=None):
        """Give ``conn`` back for reuse when ``response`` was read completely and allows it."""
        reusable = not conn.closed and (response is None or (response.isclosed() and not response.will_close))
        if not reusable:
            conn.close()
            return
        with self._lock:
            self._idle.setdefault(conn.target.origin, []).append(conn)

    def abort(self):
        with self._lock:
            self._aborted = True
            conns = list(self._all)
        for conn in conns:
            conn.abort()

    def close(self):
        with self._lock:
            conns = list(self._all)
            self._all = []
            self._idle = {}
        for conn in conns:
            conn.close()


def _os_error(exc):
    if isinstance(exc, socket.gaierror):
        return "name resolution failed (%s)" % (exc.strerror or exc)
    return exc.strerror or str(exc) or exc.__class__.__name__


def _ssl_error(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate verify failed: %s" % (exc.verify_message or exc.reason or exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or exc.__class__.__name__


def _read_body(conn, response, deadline, limit):
    """Read a whole response body, each read bounded by the deadline; refuse bodies over ``limit``."""
    chunks = []
    size = 0
    while True:
        conn.set_timeout(deadline.remaining())
        chunk = response.read1(READ_SIZE)
        if not chunk:
            response.read()  # read1 leaves a Content-Length response open at its end; this closes it (keep-alive)
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise ProtocolError("response body larger than %d bytes" % limit)
        chunks.append(chunk)


def _iter_events(conn, response, deadline, parser):
    """Yield SSE events from ``response`` until the stream ends; every read is bounded by the deadline."""
    while True:
        conn.set_timeout(deadline.remaining())
        chunk = response.read1(READ_SIZE)
        if not chunk:
            parser.close()
            return
        yield from parser.feed(chunk)


def _drain(conn, response, deadline):
    """After the awaited message arrived on an event stream, give the server a moment to end it (keep-alive)."""
    try:
        conn.set_timeout(min(DRAIN_SECONDS, deadline.remaining()))
        while response.read1(READ_SIZE):
            conn.set_timeout(min(DRAIN_SECONDS, deadline.remaining()))
        response.read()
    except Exception:  # pylint: disable=broad-except
        conn.close()


def _decode_json(raw, what):
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError("%s is not valid JSON (%s)" % (what, exc)) from None


def _error_text(body):
    text = body.decode("utf-8", "replace").strip()
    return text[:200]


# --------------------------------------------------------------------------- transports


class _BaseTransport:
    """What both HTTP transports share: headers, auth, answering server requests."""

    name = None

    def __init__(self, client, target, headers, deadline):
        self.client = client
        self.target = target
        self.user_headers = headers
        self.deadline = deadline
        self.session_id = None
        self.last_status = None
        self.server_requests = 0
        self.notifications = 0

    def base_headers(self):
        headers = list(self.user_headers)
        if not any(name.lower() == "user-agent" for name, _value in headers):
            headers.insert(0, ("User-Agent", self.client.user_agent))
        return headers

    def _auth_failure(self, response, conn):
        www = response.getheader("WWW-Authenticate")
        try:
            _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        except Exception:  # pylint: disable=broad-except
            conn.close()
        self.client.release(conn, response)
        raise HttpStatusError(response.status, response.reason, www_authenticate=www)

    def _status_failure(self, response, conn, request_id=None):
        """Non-2xx answer: raise RpcError when the body is a JSON-RPC error, else HttpStatusError."""
        status = response.status
        location = response.getheader("Location")
        try:
            body = _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        except ProtocolError:
            body = b""
            conn.close()
        self.client.release(conn, response)
        if media_type(response.getheader("Content-Type")) == "application/json":
            try:
                message = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                message = None
            if isinstance(message, dict) and "error" in message and message.get("id") in (request_id, None):
                raise _rpc_error_from(message, status)
        raise HttpStatusError(status, response.reason, _error_text(body), location=location)

    def _reply_for(self, message):
        """What we answer a server-to-client request with: pong for ping, method-not-found for the rest."""
        self.server_requests += 1
        if message.get("method") == "ping":
            return {"jsonrpc": "2.0", "id": message.get("id"), "result": {}}
        return {
            "jsonrpc": "2.0",
            "id": message.get("id"),
            "error": {"code": METHOD_NOT_FOUND, "message": "Method not found (health-check client)"},
        }

    def _exchange(self, method, target, headers, body=None):
        """Send one HTTP request; retry once on a fresh connection when a reused one was closed under us."""
        for attempt in (0, 1):
            conn, reused = self.client.acquire(target)
            try:
                response = conn.send(self.deadline, method, target, headers, body)
                self.last_status = response.status
                return conn, response
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                ConnectionAbortedError,
                http.client.CannotSendRequest,
            ):
                conn.close()
                if reused and attempt == 0:
                    continue
                raise
            except BaseException:
                conn.close()
                raise
        raise ProtocolError("unreachable")  # pragma: no cover


class StreamableHttpTransport(_BaseTransport):
    """Streamable HTTP: one POST per message, the answer as JSON or as an event stream."""

    name = "streamable_http"

    def __init__(self, client, target, headers, deadline):
        super().__init__(client, target, headers, deadline)
        self.protocol_version = None
        self.modern_version = None
        self.delete_status = None

    def warm_up(self):
        """Open the first connection on its own, so connect and TLS are timed and blamed separately."""
        conn = self.client.open(self.target)
        self.client.release(conn)

    def _headers(self, method=None, params=None):
        headers = self.base_headers()
        headers.append(("Accept", "application/json, text/event-stream"))
        headers.append(("Content-Type", "application/json"))
        if self.modern_version:
            headers.append(("MCP-Protocol-Version", self.modern_version))
            if method:
                headers.append(("Mcp-Method", method))
                key = NAME_BEARING_METHODS.get(method)
                if key and isinstance(params, dict) and isinstance(params.get(key), str):
                    headers.append(("Mcp-Name", encode_header_value(params[key])))
            return headers
        if self.session_id:
            headers.append(("Mcp-Session-Id", self.session_id))
        if self.protocol_version:
            headers.append(("MCP-Protocol-Version", self.protocol_version))
        return headers

    def _envelope(self, params):
        params = dict(params or {})
        meta = dict(params.get("_meta") or {})
        meta[META_PROTOCOL_VERSION] = self.modern_version
        meta[META_CLIENT_CAPABILITIES] = {}
        meta[META_CLIENT_INFO] = {"name": CLIENT_NAME, "version": CLIENT_VERSION}
        params["_meta"] = meta
        return params

    def request(self, request_id, method, params=None, capture_session=False):
        """Send a request and return its JSON-RPC result (raises RpcError, HttpStatusError, ProtocolError)."""
        if self.modern_version:
            params = self._envelope(params)
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        conn, response = self._exchange("POST", self.target, self._headers(method, params), body)
        status = response.status
        if status in (401, 403):
            self._auth_failure(response, conn)
        if not 200 <= status < 300:
            self._status_failure(response, conn, request_id)
        if capture_session:
            session_id = response.getheader("Mcp-Session-Id")
            if session_id is not None:
                if not session_id or any(not 0x21 <= ord(c) <= 0x7E for c in session_id):
                    conn.close()
                    raise ProtocolError("server sent an Mcp-Session-Id with characters outside visible ASCII")
                self.session_id = session_id
        ctype = media_type(response.getheader("Content-Type"))
        if status == 202 or (ctype == "" and response.getheader("Content-Length") == "0"):
            _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
            self.client.release(conn, response)
            raise ProtocolError("server answered the %s request with HTTP %s and no response" % (method, status))
        if ctype == "application/json":
            raw = _read_body(conn, response, self.deadline, MAX_JSON_BODY)
            self.client.release(conn, response)
            decoded = _decode_json(raw, "the JSON response body")
            messages = decoded if isinstance(decoded, list) else [decoded]
            for item in messages:
                if _is_response(item) and (
                    item.get("id") == request_id or (item.get("id") is None and "error" in item)
                ):
                    return self._result_of(item, status)
            raise ProtocolError("the JSON response to %s does not contain a response with id %s" % (method, request_id))
        if ctype == "text/event-stream":
            return self._read_stream(conn, response, request_id, method, status)
        _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        self.client.release(conn, response)
        raise ProtocolError("unexpected Content-Type %r in the answer to %s" % (ctype or "(none)", method))

    def _result_of(self, message, status):
        if "error" in message:
            raise _rpc_error_from(message, status)
        result = message.get("result")
        if not isinstance(result, dict):
            raise ProtocolError("the result is a %s, not an object" % type(result).__name__)
        return result

    def _read_stream(self, conn, response, request_id, method, status):
        parser = SSEParser()
        try:
            for event in _iter_events(conn, response, self.deadline, parser):
                if event.event != "message" or not event.data.strip():
                    continue  # priming events (id only) and events of other types
                decoded = _decode_json(event.data, "an event on the response stream")
                for item in decoded if isinstance(decoded, list) else [decoded]:
                    if not isinstance(item, dict):
                        raise ProtocolError("an event on the response stream is not a JSON-RPC message")
                    if _is_response(item):
                        if item.get("id") == request_id or (item.get("id") is None and "error" in item):
                            _drain(conn, response, self.deadline)
                            self.client.release(conn, response)
                            return self._result_of(item, status)
                        continue
                    if "id" in item and "method" in item:
                        self._answer(item)
                    else:
                        self.notifications += 1
        except BaseException:
            conn.close()
            raise
        conn.close()
        raise ProtocolError("the event stream ended before the response to %s arrived" % method)

    def _answer(self, message):
        """Best effort: a server that cannot take our answer to its request is not a failed check."""
        reply = json.dumps(self._reply_for(message), separators=(",", ":")).encode("utf-8")
        conn, response = self._exchange("POST", self.target, self._headers(), reply)
        try:
            _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        except ProtocolError:
            conn.close()
        self.client.release(conn, response)

    def notify(self, method, params=None):
        """POST a notification; return the HTTP status (202 expected)."""
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        conn, response = self._exchange("POST", self.target, self._headers(), body)
        if response.status in (401, 403):
            self._auth_failure(response, conn)
        if not 200 <= response.status < 300:
            self._status_failure(response, conn)
        _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        self.client.release(conn, response)
        return response.status

    def close(self):
        """DELETE the session, if the server gave us one. 405 means the server keeps sessions itself."""
        if not self.session_id or self.modern_version:
            return
        headers = self.base_headers()
        headers.append(("Mcp-Session-Id", self.session_id))
        if self.protocol_version:
            headers.append(("MCP-Protocol-Version", self.protocol_version))
        conn, response = self._exchange("DELETE", self.target, headers)
        self.delete_status = response.status
        _read_body(conn, response, self.deadline, MAX_ERROR_BODY)
        self.client.release(conn, response)


class LegacySseTransport(_BaseTransport):
    """HTTP+SSE (2024-11-05): a GET event stream, messages POSTed to the URL of its endpoint event."""

    name = "sse"

    def __init__(self, client, target, headers, deadline):
        super().__init__(client, target, headers, deadline)
        self.endpoint = None
        self._stream_conn = None
        self._events = None
        self._pending = []

    def connect(self):
        self._stream_conn = self.client.open(self.target)

    def open(self):
        conn = self._stream_conn
        headers = self.base_headers()
        headers.append(("Accept", "text/event-stream"))
        headers.append(("Cache-Control", "no-cache"))
        response = conn.send(self.deadline, "GET", self.target, headers)
        if response.status in (401, 403):
            self._auth_failure(response, conn)
        if response.status != 200:
            self._status_failure(response, conn)
        ctype = media_type(response.getheader("Content-Type"))
        if ctype != "text/event-stream":
            conn.close()
            raise ProtocolError(
                "GET %s answered with Content-Type %r, not an event stream"
                % (redact_url(self.target.url), ctype or "(none)")
            )
        self._events = _iter_events(conn, response, self.deadline, SSEParser())
        for event in self._events:
            if event.event == "endpoint":
                self.endpoint = self._resolve_endpoint(event.data)
                self.session_id = dict(parse_qsl(urlsplit(self.endpoint.url).query)).get("session_id") or "sse"
                return
            if event.event == "message" and event.data.strip():
                self._pending.append(event)
        raise ProtocolError("the event stream ended before the endpoint event arrived")

    def _resolve_endpoint(self, data):
        url = urljoin(self.target.url, data.strip())
        try:
            validate_url(url)
        except ConfigError:
            raise ProtocolError("the endpoint event does not name a usable URL") from None
        endpoint = _Target(url)
        if endpoint.origin != self.target.origin:
            raise ProtocolError(
                "the endpoint event points to another origin (%s); messages and credentials "
                "are only sent to the origin of the SSE stream" % redact_url(url)
            )
        return endpoint

    def _post(self, message, request_id=None):
        body = json.dumps(message, separators=(",", ":")).encode("utf-8")
        headers = self.base_headers()
        headers.append(("Content-Type", "application/json"))
        headers.append(("Accept", "application/json, text/event-stream"))
        conn, response = self._exchange("POST", self.endpoint, headers, body)
        if response.status in (401, 403):
            self._auth_failure(response, conn)
        if not 200 <= response.status < 300:
            self._status_failure(response, conn, request_id)
        raw = _read_body(conn, response, self.deadline, MAX_JSON_BODY)
        self.client.release(conn, response)
        # Some servers answer on the POST itself; the standard place is the stream.
        if (
            request_id is not None
            and raw.strip()
            and media_type(response.getheader("Content-Type")) == "application/json"
        ):
            try:
                decoded = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                decoded = None
            if _is_response(decoded) and decoded.get("id") == request_id:
                return decoded
        return None

    def request(self, request_id, method, params=None, capture_session=False):
        message = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            message["params"] = params
        direct = self._post(message, request_id)
        if direct is not None:
            return self._result_of(direct)
        while True:
            event = self._next_event()
            if event is None:
                break
            if event.event != "message" or not event.data.strip():
                continue
            decoded = _decode_json(event.data, "an event on the SSE stream")
            for item in decoded if isinstance(decoded, list) else [decoded]:
                if not isinstance(item, dict):
                    raise ProtocolError("an event on the SSE stream is not a JSON-RPC message")
                if _is_response(item):
                    if item.get("id") == request_id or (item.get("id") is None and "error" in item):
                        return self._result_of(item)
                    continue
                if "id" in item and "method" in item:
                    with contextlib.suppress(HttpStatusError, RpcError, ProtocolError):  # best effort
                        self._post(self._reply_for(item))
                else:
                    self.notifications += 1
        raise ProtocolError("the SSE stream ended before the response to %s arrived" % method)

    def _next_event(self):
        """The next event of the long-lived stream (a plain call, so no generator is ever closed early)."""
        if self._pending:
            return self._pending.pop(0)
        return next(self._events, None)

    @staticmethod
    def _result_of(message):
        if "error" in message:
            raise _rpc_error_from(message)
        result = message.get("result")
        if not isinstance(result, dict):
            raise ProtocolError("the result is a %s, not an object" % type(result).__name__)
        return result

    def notify(self, method, params=None):
        message = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        self._post(message)
        return 202

    def close(self):
        if self._stream_conn is not None:
            self._stream_conn.close()


# --------------------------------------------------------------------------- the check


def _new_result(config):
    return {
        "name": config.get("name") or redact_url(config["url"]),
        "url": redact_url(config["url"]),
        "up": False,
        "healthy": False,
        "failed_stage": None,
        "error": None,
        "failures": [],
        "warnings": [],
        "http_status": None,
        "jsonrpc_error": None,
        "www_authenticate": None,
        "resource_metadata": None,
        "transport": None,
        "protocol_version": None,
        "era": None,
        "server_info": None,
        "capabilities": None,
        "instructions": None,
        "session": False,
        "ping_supported": None,
        "tools": None,
        "tool_count": None,
        "missing_tools": [],
        "resources": None,
        "prompts": None,
        "call": None,
        "latency_ms": dict((stage, None) for stage in (*STAGES, "total")),
    }


class EndpointCheck:
    """Checks one endpoint. Build it with a normalised config (see :data:`DEFAULTS`), then :meth:`run`."""

    def __init__(self, config, ssl_context=None):
        merged = dict(DEFAULTS)
        merged.update(dict((k, v) for k, v in config.items() if v is not None))
        self.config = merged
        self.ssl_context = ssl_context
        self.stage = "connect"
        self.started = None
        self.deadline = None
        self.client = None
        self.transport = None
        self.timings = {}
        self._next_id = 0
        self.result = _new_result(merged)

    # -- plumbing

    def _id(self):
        self._next_id += 1
        return self._next_id

    def _headers(self):
        headers = []
        authorization = False
        for name, value in (self.config.get("headers") or {}).items():
            if name.lower() in PROTOCOL_HEADERS:
                self.result["warnings"].append(
                    "header %s is set by the client itself; the given value is ignored" % name
                )
                continue
            if name.lower() == "authorization":
                authorization = True
            headers.append((name, str(value)))
        token = self.config.get("bearer_token")
        if token:
            headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
            headers.append(("Authorization", "Bearer %s" % token))
        elif not authorization:
            target = _Target(self.config["url"])
            if target.username is not None:
                creds = "%s:%s" % (target.username, target.password or "")
                headers.append(("Authorization", "Basic %s" % base64.b64encode(creds.encode("utf-8")).decode()))
        return headers

    def abort(self):
        """Called by the watchdog from another thread when the check overstays its deadline."""
        client = self.client
        if client is not None:
            client.abort()

    def _timed(self, stage, func, *args, **kwargs):
        self.stage = stage
        started = time.monotonic()
        try:
            return func(*args, **kwargs)
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + (time.monotonic() - started)

    def _fail(self, stage, exc, doing):
        """Turn a low-level exception into a CheckError for ``stage``."""
        if isinstance(exc, CheckError):
            return exc
        if isinstance(exc, DeadlineExceeded):
            return CheckError(
                stage, "timed out: the overall timeout of %gs ran out during %s" % (self.deadline.seconds, doing)
            )
        if isinstance(exc, RpcError):
            return CheckError(
                stage,
                "%s failed with JSON-RPC error %s: %s" % (doing, exc.code, exc.rpc_message),
                http_status=exc.http_status,
                rpc_error=exc.as_dict(),
            )
        if isinstance(exc, HttpStatusError):
            if exc.status in (401, 403):
                metadata = parse_www_authenticate(exc.www_authenticate)
                what = "unauthorized" if exc.status == 401 else "forbidden"
                message = "%s: HTTP %s %s" % (doing, exc.status, what)
                if exc.www_authenticate:
                    message += " (WWW-Authenticate: %s)" % exc.www_authenticate
                return CheckError(
                    stage,
                    message,
                    http_status=exc.status,
                    www_authenticate=exc.www_authenticate,
                    resource_metadata=metadata,
                )
            message = "%s: HTTP %s %s" % (doing, exc.status, exc.reason or "")
            if exc.status in (301, 302, 303, 307, 308) and exc.location:
                message += " (redirects to %s; use that URL)" % redact_url(exc.location)
            elif (
                exc.status == 404 and self.transport is not None and self.transport.session_id and stage != "initialize"
            ):
                message += " (the session expired or is unknown to the server)"
            elif exc.body:
                message += ": %s" % exc.body
            return CheckError(stage, message.strip(), http_status=exc.status)
        if isinstance(exc, socket.timeout):
            if self.deadline.end - time.monotonic() < 0.05:
                return CheckError(
                    stage, "timed out: the overall timeout of %gs ran out during %s" % (self.deadline.seconds, doing)
                )
            return CheckError(stage, "timed out waiting for %s" % doing)
        if isinstance(exc, http.client.IncompleteRead):
            return CheckError(stage, "the connection closed mid-stream during %s" % doing)
        if isinstance(exc, (SSEError, ProtocolError)):
            return CheckError(stage, "%s: %s" % (doing, exc))
        if isinstance(exc, http.client.HTTPException):
            return CheckError(
                stage,
                "%s: invalid HTTP from the server (%s)"
                % (doing, exc.__class__.__name__ + (": %s" % exc if str(exc) else "")),
            )
        if isinstance(exc, ssl.SSLError):
            return CheckError(stage, "%s: TLS error: %s" % (doing, _ssl_error(exc)))
        if isinstance(exc, OSError):
            return CheckError(stage, "%s: connection error: %s" % (doing, _os_error(exc)))
        return CheckError(stage, "%s: %s: %s" % (doing, exc.__class__.__name__, exc))

    def _call(self, stage, doing, func, *args, **kwargs):
        timed = kwargs.pop("timed", True)
        try:
            if timed:
                return self._timed(stage, func, *args, **kwargs)
            self.stage = stage
            return func(*args, **kwargs)
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self._fail(stage, exc, doing) from None

    # -- stages

    def run(self):
        """Run every stage and the assertions; never raises for a failing endpoint."""
        result = self.result
        self.started = time.monotonic()
        self.deadline = Deadline(self.config["timeout"])
        self.client = _HttpClient(
            self.deadline, self.ssl_context, self.timings, "%s/%s" % (CLIENT_NAME, CLIENT_VERSION)
        )
        try:
            if self.ssl_context is None and self.config["url"].lower().startswith("https:"):
                self.ssl_context = self._own_ssl_context()
                self.client.ssl_context = self.ssl_context
            self._establish()
            self._list()
            result["up"] = True
            if self.config["ping"]:
                self._ping()
            if self.config.get("call_tool"):
                self._call_tool()
        except CheckError as exc:
            self._record_failure(exc)
        total = time.monotonic() - self.started
        if result["http_status"] is None and self.transport is not None:
            result["http_status"] = self.transport.last_status
        self._close()
        self.client.close()
        for stage, seconds in self.timings.items():
            result["latency_ms"][stage] = _ms(seconds)
        result["latency_ms"]["total"] = _ms(total)
        if self.transport is not None:
            result["session"] = bool(self.transport.session_id) and not getattr(self.transport, "modern_version", None)
        self._assert(total)
        if result["failures"] and result["failed_stage"] is None:
            result["failed_stage"] = result["failures"][0][0]
        result["error"] = result["failures"][0][1] if result["failures"] else None
        result["failures"] = [message for _stage, message in result["failures"]]
        result["healthy"] = result["up"] and not result["failures"]
        return result

    def _own_ssl_context(self):
        config = self.config
        try:
            return build_ssl_context(
                config["validate_certs"], config["ca_path"], config["client_cert"], config["client_key"]
            )
        except ConfigError as exc:
            raise CheckError("tls", str(exc)) from None

    def _record_failure(self, exc):
        result = self.result
        result["failed_stage"] = exc.stage
        result["failures"].append((exc.stage, exc.message))
        if exc.http_status is not None:
            result["http_status"] = exc.http_status
        if exc.rpc_error is not None:
            result["jsonrpc_error"] = exc.rpc_error
        if exc.www_authenticate is not None:
            result["www_authenticate"] = exc.www_authenticate
            result["resource_metadata"] = exc.resource_metadata

    def _close(self):
        transport = self.transport
        if transport is None:
            return
        if self.deadline.expired():
            if isinstance(transport, LegacySseTransport):
                transport.close()
            return
        try:
            self._call("close", "closing the session", transport.close)
            status = getattr(transport, "delete_status", None)
            if status is not None and not (200 <= status < 300 or status == 405):
                self.result["warnings"].append("DELETE of the session answered HTTP %s" % status)
        except CheckError as exc:
            self.result["warnings"].append(exc.message)
        finally:
            self.timings.pop("close", None)

    def _target(self):
        return _Target(self.config["url"])

    def _establish(self):
        config = self.config
        transport_choice = config["transport"]
        version_choice = config["protocol_version"]
        target = self._target()
        headers = self._headers()
        if transport_choice == "sse":
            self._legacy(target, headers)
            return
        streamable = StreamableHttpTransport(self.client, target, headers, self.deadline)
        self.transport = streamable
        self._call("connect", "connecting", streamable.warm_up, timed=False)
        if version_choice in MODERN_VERSIONS:
            self._discover(streamable, version_choice)
            return
        offer = LATEST_HANDSHAKE_VERSION if version_choice == "auto" else version_choice
        try:
            init = self._timed(
                "initialize",
                streamable.request,
                self._id(),
                "initialize",
                self._init_params(offer),
                capture_session=True,
            )
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            failure = self._fail("initialize", exc, "initialize")
            fallback_sse = transport_choice == "auto" and failure.http_status in (400, 404, 405)
            if version_choice == "auto" and isinstance(exc, RpcError) and self._try_discover(target, headers):
                return
            if fallback_sse and not isinstance(exc, DeadlineExceeded):
                streamable.session_id = None
                if self._try_legacy(target, headers, failure):
                    return
            raise failure from None
        self._handshake_done(streamable, init, offer)

    def _try_discover(self, target, headers):
        """Probe server/discover after initialize was refused: is this a 2026-07-28 server?"""
        probe = StreamableHttpTransport(self.client, target, headers, self.deadline)
        try:
            self._discover(probe, LATEST_MODERN_VERSION)
        except CheckError:
            return False
        self.transport = probe
        return True

    def _try_legacy(self, target, headers, failure):
        try:
            self._legacy(target, headers)
        except CheckError as exc:
            if exc.http_status in (401, 403):
                raise
            failure.message += "; the legacy HTTP+SSE transport did not answer either (%s)" % exc.message
            return False
        return True

    def _init_params(self, offer):
        return {
            "protocolVersion": offer,
            "capabilities": {},
            "clientInfo": {"name": CLIENT_NAME, "version": CLIENT_VERSION},
        }

    def _legacy(self, target, headers):
        transport = LegacySseTransport(self.client, target, headers, self.deadline)
        self.transport = transport
        self._call("connect", "connecting", transport.connect, timed=False)
        self._call("initialize", "opening the SSE stream", transport.open)
        version_choice = self.config["protocol_version"]
        if version_choice in MODERN_VERSIONS:
            raise CheckError(
                "initialize", "protocol version %s is not available over the legacy SSE transport" % version_choice
            )
        offer = LATEST_HANDSHAKE_VERSION if version_choice == "auto" else version_choice
        init = self._call(
            "initialize", "initialize", transport.request, self._id(), "initialize", self._init_params(offer)
        )
        self._handshake_done(transport, init, offer)

    def _handshake_done(self, transport, init, offer):
        result = self.result
        version = init.get("protocolVersion")
        if not isinstance(version, str):
            raise CheckError("initialize", "the initialize result has no protocolVersion")
        if version not in HANDSHAKE_VERSIONS:
            raise CheckError(
                "initialize",
                "the server chose protocol version %r, which this client does not "
                "speak with the initialize handshake (offered %s)" % (version, offer),
            )
        capabilities = init.get("capabilities")
        if not isinstance(capabilities, dict):
            raise CheckError("initialize", "the initialize result has no capabilities object")
        result["transport"] = transport.name
        result["protocol_version"] = version
        result["era"] = "handshake"
        result["capabilities"] = capabilities
        result["server_info"] = init.get("serverInfo") if isinstance(init.get("serverInfo"), dict) else None
        result["instructions"] = init.get("instructions") if isinstance(init.get("instructions"), str) else None
        if isinstance(transport, StreamableHttpTransport):
            transport.protocol_version = version
        status = self._call("initialize", "notifications/initialized", transport.notify, "notifications/initialized")
        if status != 202:
            result["warnings"].append("notifications/initialized was answered with HTTP %s, not 202" % status)

    def _discover(self, transport, version):
        transport.modern_version = version
        try:
            found = self._call("initialize", "server/discover", transport.request, self._id(), "server/discover", {})
        except CheckError:
            transport.modern_version = None
            raise
        supported = found.get("supportedVersions")
        if not isinstance(supported, list) or version not in supported:
            transport.modern_version = None
            raise CheckError(
                "initialize", "server/discover does not list protocol version %s (it lists %s)" % (version, supported)
            )
        result = self.result
        result["transport"] = transport.name
        result["protocol_version"] = version
        result["era"] = "modern"
        result["capabilities"] = found.get("capabilities") if isinstance(found.get("capabilities"), dict) else {}
        meta = found.get("_meta") if isinstance(found.get("_meta"), dict) else {}
        info = meta.get(META_SERVER_INFO) or found.get("serverInfo")
        result["server_info"] = info if isinstance(info, dict) else None
        result["instructions"] = found.get("instructions") if isinstance(found.get("instructions"), str) else None

    def _paginate(self, method, key, field):
        names = []
        cursor = None
        seen = set()
        for _page in range(MAX_PAGES):
            params = {"cursor": cursor} if cursor else {}
            page = self.transport.request(self._id(), method, params)
            items = page.get(key)
            if not isinstance(items, list):
                raise ProtocolError("the %s result has no %s list" % (method, key))
            for item in items:
                if isinstance(item, dict) and isinstance(item.get(field), str):
                    names.append(item[field])
            cursor = page.get("nextCursor")
            if cursor is None or cursor == "":
                return names
            if not isinstance(cursor, str) or cursor in seen:
                raise ProtocolError("%s returned a nextCursor it already returned (pagination loop)" % method)
            seen.add(cursor)
        raise ProtocolError("%s did not finish within %d pages" % (method, MAX_PAGES))

    def _list(self):
        result = self.result
        capabilities = result["capabilities"] or {}
        if "tools" in capabilities:
            tools = self._call("list", "tools/list", self._paginate, "tools/list", "tools", "name")
        else:
            tools = []
            result["warnings"].append("the server does not advertise the tools capability")
        result["tools"] = tools
        result["tool_count"] = len(tools)
        for option, capability, method, key, field in (
            ("list_resources", "resources", "resources/list", "resources", "uri"),
            ("list_prompts", "prompts", "prompts/list", "prompts", "name"),
        ):
            if not self.config[option]:
                continue
            if capability not in capabilities:
                result[key] = []
                result["warnings"].append("the server does not advertise the %s capability" % capability)
                continue
            result[key] = self._call("list", method, self._paginate, method, key, field)

    def _ping(self):
        result = self.result
        if result["era"] == "modern":
            result["ping_supported"] = False  # 2026-07-28 removed ping
            return
        try:
            self._timed("ping", self.transport.request, self._id(), "ping", None)
        except RpcError as exc:
            if exc.code == METHOD_NOT_FOUND:
                result["ping_supported"] = False
                return
            raise self._fail("ping", exc, "ping") from None
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # pylint: disable=broad-except
            raise self._fail("ping", exc, "ping") from None
        result["ping_supported"] = True

    def _call_tool(self):
        spec = self.config["call_tool"]
        name = spec.get("name")
        result = self.result
        call = {"tool": name, "is_error": None, "text": None, "structured": None}
        result["call"] = call
        if name not in (result["tools"] or []):
            raise CheckError("call", "tool %r is not in the tools/list of the server" % (name,))
        params = {"name": name, "arguments": spec.get("arguments") or {}}
        answer = self._call("call", "tools/call %s" % name, self.transport.request, self._id(), "tools/call", params)
        if answer.get("resultType") not in (None, "complete"):
            raise CheckError(
                "call",
                "tools/call %s needs more input (resultType %s); pick a tool that answers "
                "directly" % (name, answer.get("resultType")),
            )
        text = _text_of(answer.get("content"))
        call["is_error"] = bool(answer.get("isError"))
        call["text"] = text[:TEXT_PREVIEW]
        call["structured"] = answer.get("structuredContent")
        if call["is_error"]:
            raise CheckError("call", "tools/call %s returned an error result: %s" % (name, text[:200]))
        expected_text = spec.get("expected_text")
        if expected_text is not None and expected_text not in text:
            raise CheckError("call", "tools/call %s: the text result does not contain %r" % (name, expected_text))
        expected_structured = spec.get("expected_structured")
        if expected_structured is not None and not subset_matches(expected_structured, answer.get("structuredContent")):
            raise CheckError("call", "tools/call %s: the structured result does not match expected_structured" % name)

    def _assert(self, total):
        result = self.result
        config = self.config
        if not result["up"]:
            return
        expected = config.get("expected_tools") or []
        missing = [tool for tool in expected if tool not in (result["tools"] or [])]
        if missing:
            result["missing_tools"] = missing
            result["failures"].append(("list", "expected tools missing: %s" % ", ".join(missing)))
        minimum = config.get("min_protocol_version")
        if minimum and not version_at_least(result["protocol_version"], minimum):
            result["failures"].append(
                (
                    "initialize",
                    "protocol version %s is older than the minimum %s" % (result["protocol_version"], minimum),
                )
            )
        budget = config.get("max_latency_ms")
        if budget is not None and total * 1000.0 > float(budget):
            result["failures"].append(
                ("latency", "the check took %.1f ms, more than max_latency_ms %s" % (total * 1000.0, budget))
            )


def timeout_result(check):
    """The result of a check the watchdog gave up on (it is still stuck, e.g. in name resolution)."""
    result = dict(check.result)
    result["latency_ms"] = dict(result["latency_ms"])
    result["up"] = False
    result["healthy"] = False
    result["failed_stage"] = check.stage if check.stage in FAILED_STAGES else "connect"
    result["error"] = "timed out: the overall timeout of %gs ran out during %s and the check did not stop" % (
        check.config["timeout"],
        result["failed_stage"],
    )
    result["failures"] = [result["error"]]
    if check.started is not None:
        result["latency_ms"]["total"] = _ms(time.monotonic() - check.started)
    return result


def check_endpoint(config, ssl_context=None):
    """Check one endpoint and return its result dict."""
    return EndpointCheck(config, ssl_context).run()


def build_ssl_context(validate_certs=True, ca_path=None, client_cert=None, client_key=None):
    """An SSLContext for the given TLS settings; raises ConfigError naming the option at fault."""
    try:
        context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("ca_path", "cannot load CA bundle %s: %s" % (ca_path, _ssl_error(exc))) from None
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            context.load_cert_chain(client_cert, client_key or None)
        except (OSError, ssl.SSLError) as exc:
            option = "client_key" if client_key and "key" in str(exc).lower() else "client_cert"
            raise ConfigError(option, "cannot load the client certificate/key: %s" % _ssl_error(exc)) from None
    with contextlib.suppress(NotImplementedError, AttributeError):  # very old OpenSSL
        context.set_alpn_protocols(["http/1.1"])
    return context


def run_checks(configs, workers=16, ssl_contexts=None, grace=1.0):
    """Check many endpoints concurrently with at most ``workers`` threads; results keep the input order.

    Every check carries its own deadline (``timeout``). A watchdog in the calling thread aborts the
    sockets of a check that overstays it and, should the check still not return (a thread stuck in
    name resolution, say), records a timeout result for it and replaces its worker. Worker threads
    are daemons, so a stuck one never holds up the end of the process.
    """
    ssl_contexts = ssl_contexts or {}
    checks = [EndpointCheck(cfg, ssl_contexts.get(index)) for index, cfg in enumerate(configs)]
    futures = [Future() for _check in checks]
    if not checks:
        return []
    jobs = queue.Queue()
    for index in range(len(checks)):
        jobs.put(index)
    lock = threading.Lock()
    running = {}

    def worker():
        while True:
            try:
                index = jobs.get_nowait()
            except queue.Empty:
                return
            future = futures[index]
            if not future.set_running_or_notify_cancel():
                continue
            with lock:
                running[index] = checks[index]
            try:
                outcome = checks[index].run()
            except BaseException as exc:  # pylint: disable=broad-except
                outcome = exc
            with lock:
                running.pop(index, None)
                if future.done():
                    continue  # the watchdog already answered for this check
                if isinstance(outcome, BaseException):
                    future.set_exception(outcome)
                else:
                    future.set_result(outcome)

    def start_worker():
        thread = threading.Thread(target=worker, name="mcp-check")
        thread.daemon = True
        thread.start()

    for _n in range(max(1, min(int(workers), len(checks)))):
        start_worker()

    aborted = set()
    while True:
        pending = [future for future in futures if not future.done()]
        if not pending:
            break
        wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
        now = time.monotonic()
        with lock:
            overdue = [
                (index, check)
                for index, check in running.items()
                if check.deadline is not None and now > check.deadline.end + grace
            ]
        for index, check in overdue:
            if index not in aborted:
                aborted.add(index)
                check.abort()
            elif now > check.deadline.end + 2 * grace:
                with lock:
                    if futures[index].done():
                        continue
                    running.pop(index, None)
                    futures[index].set_result(timeout_result(check))
                start_worker()
    results = []
    for future in futures:
        exc = future.exception()
        if exc is not None:
            raise exc
        results.append(future.result())
    return results
