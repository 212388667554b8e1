# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP plumbing of one check: its deadline, connections whose every read and write the deadline bounds,
keep-alive reuse, bounded body reads and the TLS context.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import contextlib
import http.client
import io
import json
import re
import socket
import ssl
import threading
import time
from urllib.parse import unquote, urlsplit

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    DRAIN_SECONDS,
    ERROR_EXCERPT,
    MAX_JSON_OBJECTS,
    MAX_JSON_VALUES,
    QUICKACK,
    READ_SIZE,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import (
    CheckError,
    ConfigError,
    DeadlineExceeded,
    ProtocolError,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import excerpt


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


class Target:
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


class BoundedSocket:
    """The socket as http.client sees it: every write and every read is bounded by what is left of the
    deadline (and by ``until``, when set), so a peer that trickles bytes cannot stretch an operation past it.

    Before every read Linux is asked to acknowledge at once (see QUICKACK)."""

    def __init__(self, sock, deadline):
        self.sock = sock
        self.deadline = deadline
        self.until = None

    def _arm(self):
        left = self.deadline.remaining()
        if self.until is not None:
            left = min(left, self.until - time.monotonic())
            if left <= 0:
                raise socket.timeout("timed out")
        self.sock.settimeout(max(left, 0.001))
        if QUICKACK is not None:
            with contextlib.suppress(OSError):  # e.g. after the peer reset the connection
                self.sock.setsockopt(socket.IPPROTO_TCP, QUICKACK, 1)

    def sendall(self, data):
        self._arm()
        return self.sock.sendall(data)

    def recv_into(self, buffer, nbytes=0):
        self._arm()
        return self.sock.recv_into(buffer, nbytes)

    def makefile(self, mode="rb", *_args, **_kwargs):
        if "w" in mode:
            raise ValueError("a bounded socket is read through makefile only")
        return io.BufferedReader(_SocketReader(self), READ_SIZE)

    def close(self):
        """http.client closes its socket as soon as it has the headers of a response that ends with the
        connection (HTTP/1.0, ``Connection: close``, no length), before the body is read: the real socket
        stays open until the Connection itself is closed."""


class _SocketReader(io.RawIOBase):
    def __init__(self, bounded):
        super().__init__()
        self._bounded = bounded

    def readable(self):
        return True

    def readinto(self, buffer):
        return self._bounded.recv_into(buffer)


class Connection:
    """An HTTP/1.1 connection on a socket we opened (so connect and TLS can be timed apart)."""

    def __init__(self, target, sock, deadline):
        self.target = target
        self.sock = sock
        self.bounded = BoundedSocket(sock, deadline)
        self.http = http.client.HTTPConnection(target.host, target.port)
        self.http.sock = self.bounded
        self.http.auto_open = 0  # never a connection of http.client's own, which no deadline bounds
        self.closed = False
        self.responded = False

    def send(self, method, target, headers, body=None):
        """Send one request and return the response (headers read)."""
        try:
            self.http.putrequest(method, target.path, skip_host=True, skip_accept_encoding=True)
            self.http.putheader("Host", target.host_header)
            for name, value in headers:
                try:
                    self.http.putheader(name, value)
                except ValueError:
                    # http.client's message quotes the value, which may be a secret: name the header only.
                    raise ValueError("the value of header %s cannot be sent" % name) from None
            if body is not None:
                self.http.putheader("Content-Length", str(len(body)))
            self.http.endheaders(body)
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
                % (self.target.host, self.target.port, ssl_error(exc) or exc.__class__.__name__, hint),
            ) from None
        self.responded = True
        return response

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


class HttpClient:
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
        # The TLS version (``TLSv1.3``) the first connection to each https origin negotiated.
        self.tls_versions = {}

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
                "connect", "cannot connect to %s:%s: %s" % (target.host, target.port, os_error(exc))
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
                    "tls",
                    "TLS handshake with %s:%s failed: %s%s"
                    % (target.host, target.port, ssl_error(exc), version_hint(exc, context)),
                ) from None
            if first:
                self.timings["tls"] = time.monotonic() - connected
            self.tls_versions.setdefault(target.origin, sock.version())
        conn = Connection(target, sock, self.deadline)
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


def os_error(exc):
    if isinstance(exc, socket.gaierror):
        return "name resolution failed (%s)" % (exc.strerror or exc)
    return exc.strerror or str(exc) or exc.__class__.__name__


def ssl_error(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate verify failed: %s" % (exc.verify_message or exc.reason or exc)
    if isinstance(exc, ssl.SSLError):
        return exc.reason or str(exc)
    return str(exc) or exc.__class__.__name__


# Reasons OpenSSL gives when client and server share no TLS version.
VERSION_REASONS = ("UNSUPPORTED_PROTOCOL", "TLSV1_ALERT_PROTOCOL_VERSION", "NO_PROTOCOLS_AVAILABLE")


def version_hint(exc, context):
    """Why a handshake failed for want of a common TLS version, with the minimum this client insisted on.

    OpenSSL says so with an alert; some servers (asyncio's, for one) end the connection instead."""
    name = TLS_VERSION_NAMES.get(getattr(context, "minimum_version", None))
    reason = (getattr(exc, "reason", None) or "").upper()
    if isinstance(exc, ssl.SSLError) and reason in VERSION_REASONS:
        if name is None:
            return " (the server and the client share no TLS version)"
        return " (the server does not offer %s or newer, which tls_min_version requires)" % name
    ended = isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError, ConnectionResetError, ConnectionAbortedError))
    if ended and name == "TLSv1.3":
        return " (the server ended the handshake: it may not offer TLSv1.3, which tls_min_version requires)"
    return ""


def read_body(conn, response, limit):
    """Read a whole response body; refuse bodies over ``limit`` bytes."""
    chunks = []
    size = 0
    while True:
        chunk = response.read1(READ_SIZE)
        if not chunk:
            response.read()  # read1 leaves a Content-Length response open at its end; this closes it (keep-alive)
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            conn.close()
            raise ProtocolError("response body larger than %d bytes" % limit)
        chunks.append(chunk)


def iter_events(response, parser):
    """Yield SSE events from ``response`` until the stream ends."""
    while True:
        chunk = response.read1(READ_SIZE)
        if not chunk:
            parser.close()
            return
        yield from parser.feed(chunk)


def drain(conn, response):
    """After the awaited message arrived on an event stream, give the server a moment (DRAIN_SECONDS in
    all, however busy the stream stays) to end it, so the connection can be reused; else close it."""
    conn.bounded.until = time.monotonic() + DRAIN_SECONDS
    try:
        while response.read1(READ_SIZE):
            pass
        response.read()
    except Exception:  # pylint: disable=broad-except
        conn.close()
    finally:
        conn.bounded.until = None


class _TooManyObjects(Exception):
    pass


# A JSON string, escapes and all: what count_json_values leaves out before it counts.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def count_json_values(text):
    """An upper bound of the number of values (keys too) in the JSON ``text``: every value but the first is
    announced by a bracket, a comma or a colon outside strings. Linear, in C."""
    if len(text) <= 1:
        return len(text)
    strings = (text.count('"') - text.count('\\"')) // 2
    if strings > len(text) // 4:
        # Mostly strings of a character or none (a copy without them would take a piece per string):
        # they cannot hold many separators, so count those inside them too.
        return 1 + strings + sum(text.count(char) for char in "[{,:")
    bare = _JSON_STRING.sub("", text)
    return 1 + sum(bare.count(char) for char in "[{,:")


def refuse_constant(name):
    """json.loads' parse_constant for documents whose numbers are used: NaN and Infinity are not JSON."""
    raise ValueError("%s is not a JSON number" % name)


def decode_json(raw, what, max_objects=MAX_JSON_OBJECTS, max_values=MAX_JSON_VALUES, finite=False):
    """Parse one JSON message; refuse one with more than ``max_objects`` objects or ``max_values`` values
    in all, which cost far more memory than their bytes (a 30 MB list of empty objects or arrays takes
    most of a GiB once parsed). ``finite``: refuse NaN and Infinity too (documents whose numbers count)."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError("%s is not valid JSON (%s)" % (what, exc)) from None
    if len(raw) > max_values and count_json_values(raw) > max_values:
        raise ProtocolError("%s has more than %d JSON values" % (what, max_values))
    count = [0]

    def make_object(pairs):
        count[0] += 1
        if count[0] > max_objects:
            raise _TooManyObjects()
        return dict(pairs)

    try:
        if finite:
            return json.loads(raw, object_pairs_hook=make_object, parse_constant=refuse_constant)
        return json.loads(raw, object_pairs_hook=make_object)
    except _TooManyObjects:
        raise ProtocolError("%s has more than %d JSON objects" % (what, max_objects)) from None
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ProtocolError("%s is not valid JSON (%s)" % (what, exc)) from None


def error_text(body, secrets=()):
    """The start of an error page, for the result: ``secrets`` masked before it is cut, and what the cut
    left of one masked too."""
    return excerpt(body.decode("utf-8", "replace").strip(), secrets, ERROR_EXCERPT)


TLS_MINIMUMS = {"TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3}
TLS_VERSION_NAMES = dict((value, name) for name, value in TLS_MINIMUMS.items())


def build_ssl_context(validate_certs=True, ca_path=None, client_cert=None, client_key=None, tls_min_version=None):
    """An SSLContext for the given TLS settings; raises ConfigError naming the option at fault."""
    minimum = TLS_MINIMUMS.get(tls_min_version or "TLSv1.2")
    if minimum is None:
        raise ConfigError(
            "tls_min_version", "must be one of %s, got %r" % (", ".join(sorted(TLS_MINIMUMS)), tls_min_version)
        )
    try:
        context = ssl.create_default_context(cafile=ca_path) if ca_path else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("ca_path", "cannot load CA bundle %s: %s" % (ca_path, ssl_error(exc))) from None
    try:
        context.minimum_version = minimum
    except (ValueError, AttributeError) as exc:  # an OpenSSL without TLS 1.3, say
        raise ConfigError("tls_min_version", "%s cannot be required here: %s" % (tls_min_version, exc)) from None
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if client_cert:
        try:
            context.load_cert_chain(client_cert, client_key or None)
        except (OSError, ssl.SSLError) as exc:
            option = "client_key" if client_key and "key" in str(exc).lower() else "client_cert"
            raise ConfigError(option, "cannot load the client certificate/key: %s" % ssl_error(exc)) from None
    with contextlib.suppress(NotImplementedError, AttributeError):  # very old OpenSSL
        context.set_alpn_protocols(["http/1.1"])
    return context
