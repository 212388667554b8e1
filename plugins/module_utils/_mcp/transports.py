# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The two HTTP transports of MCP: Streamable HTTP and the legacy HTTP+SSE transport of 2024-11-05.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import contextlib
import http.client
import json
import time
from urllib.parse import parse_qsl, urljoin, urlsplit

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    CLIENT_NAME,
    CLIENT_VERSION,
    DEFAULT_RETRY_MS,
    MAX_CHALLENGE,
    MAX_ERROR_BODY,
    MAX_EVENT_ID,
    MAX_JSON_BODY,
    MAX_PENDING_BYTES,
    MAX_PENDING_EVENTS,
    MAX_RESUMPTIONS,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
    MIN_RETRY_MS,
    NAME_BEARING_METHODS,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import (
    ConfigError,
    HttpStatusError,
    ProtocolError,
    RpcError,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    answers,
    credential_forms,
    encode_header_value,
    is_response,
    jsonrpc_message,
    media_type,
    redact_url,
    reply_to,
    result_of,
    rpc_error_from,
    validate_url,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import (
    Target,
    decode_json,
    drain,
    error_text,
    iter_events,
    read_body,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.sse import SSEParser

# A reused keep-alive connection the server closed under us: the request is sent again on a new one.
STALE_CONNECTION = (
    http.client.RemoteDisconnected,
    ConnectionResetError,
    BrokenPipeError,
    ConnectionAbortedError,
    http.client.CannotSendRequest,
)
# A response stream that breaks like this after handing out an event id is resumed, as one that ends.
RESUMABLE_BREAKS = (http.client.IncompleteRead, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


def event_id_problem(event_id):
    """Why an SSE event id cannot go back in a Last-Event-ID header, or None."""
    if len(event_id) > MAX_EVENT_ID:
        return "it is longer than %d characters" % MAX_EVENT_ID
    if not all(char == "\t" or 0x20 <= ord(char) <= 0x7E or 0xA0 <= ord(char) <= 0xFF for char in event_id):
        return "it contains a control character or a character outside Latin-1"
    return None


class BaseTransport:
    """What both HTTP transports share: headers, auth, error answers, scanning messages for a response."""

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

    def _check_status(self, response, conn, request_id=None):
        """Raise for a non-2xx answer: RpcError when the body is a JSON-RPC error, else HttpStatusError."""
        status = response.status
        if 200 <= status < 300:
            return
        location = response.getheader("Location")
        www = response.getheader("WWW-Authenticate") if status in (401, 403) else None
        if www:
            www = www[:MAX_CHALLENGE]  # every header of that name, joined: parsed, never shown whole
        try:
            body = read_body(conn, response, MAX_ERROR_BODY)
        except Exception:  # pylint: disable=broad-except
            body = b""
            conn.close()
        self.client.release(conn, response)
        if status in (401, 403):
            raise HttpStatusError(status, response.reason, www_authenticate=www)
        if media_type(response.getheader("Content-Type")) == "application/json":
            try:
                message = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                message = None
            if isinstance(message, dict) and "error" in message and message.get("id") in (request_id, None):
                raise rpc_error_from(message, status)
        raise HttpStatusError(status, response.reason, error_text(body, self.secrets()), location=location)

    def secrets(self):
        """The credentials this transport sends, in every form a server may echo them."""
        return credential_forms(self.user_headers, None, self.target.username, self.target.password)

    def _scan(self, decoded, request_id, what):
        """Look through the messages of one body or event for the response to ``request_id``.

        Returns it (or None); answers server-to-client requests and counts notifications on the way."""
        for item in decoded if isinstance(decoded, list) else [decoded]:
            if not isinstance(item, dict):
                raise ProtocolError("%s is not a JSON-RPC message" % what)
            if is_response(item):
                if answers(item, request_id):
                    return item
            elif "id" in item and "method" in item:
                self.server_requests += 1
                self._answer(item)
            else:
                self.notifications += 1
        return None

    def _answer(self, message):
        raise NotImplementedError

    def _exchange(self, method, target, headers, body=None):
        """Send one HTTP request; retry once on a fresh connection when a reused one was closed under us."""
        conn, reused = self.client.acquire(target)
        try:
            response = conn.send(method, target, headers, body)
        except STALE_CONNECTION:
            conn.close()
            if not reused:
                raise
            conn = self.client.open(target)
            try:
                response = conn.send(method, target, headers, body)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        self.last_status = response.status
        return conn, response


class StreamableHttpTransport(BaseTransport):
    """Streamable HTTP: one POST per message, the answer as JSON or as an event stream."""

    name = "streamable_http"

    def __init__(self, client, target, headers, deadline):
        super().__init__(client, target, headers, deadline)
        self.protocol_version = None
        self.modern_version = None
        self.delete_status = None
        self.resumptions = 0

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

    def _post(self, body, method=None, params=None, request_id=None):
        conn, response = self._exchange("POST", self.target, self._headers(method, params), body)
        self._check_status(response, conn, request_id)
        return conn, response

    def request(self, request_id, method, params=None, capture_session=False):
        """Send a request and return its JSON-RPC result (raises RpcError, HttpStatusError, ProtocolError)."""
        if self.modern_version:
            params = self._envelope(params)
        body = jsonrpc_message(method, params, request_id)
        conn, response = self._post(body, method, params, request_id)
        status = response.status
        if capture_session:
            session_id = response.getheader("Mcp-Session-Id")
            if session_id is not None:
                if not session_id or any(not 0x21 <= ord(c) <= 0x7E for c in session_id):
                    conn.close()
                    raise ProtocolError("server sent an Mcp-Session-Id with characters outside visible ASCII")
                self.session_id = session_id
        ctype = media_type(response.getheader("Content-Type"))
        if ctype == "text/event-stream":
            return result_of(self._read_stream(conn, response, request_id, method), status)
        if status == 202 or (ctype == "" and response.getheader("Content-Length") == "0"):
            problem = "HTTP %s and no response" % status
        elif ctype != "application/json":
            problem = "an unexpected Content-Type %r" % (ctype or "(none)")
        else:
            problem = None
        raw = read_body(conn, response, MAX_JSON_BODY if problem is None else MAX_ERROR_BODY)
        self.client.release(conn, response)
        if problem is not None:
            raise ProtocolError("server answered the %s request with %s" % (method, problem))
        found = self._scan(decode_json(raw, "the JSON response body"), request_id, "the JSON response body")
        if found is None:
            raise ProtocolError("the JSON response to %s does not contain a response with id %s" % (method, request_id))
        return result_of(found, status)

    def _read_stream(self, conn, response, request_id, method):
        """The response to ``request_id`` from an event stream; a stream that ends (or breaks) before it, after
        handing out an event id, is resumed with GET and Last-Event-ID as often as the deadline allows."""
        parser = SSEParser()
        resumed_here = 0
        while True:
            try:
                for event in iter_events(response, parser):
                    if event.event != "message" or not event.data.strip():
                        continue  # priming events (id only) and events of other types
                    what = "an event on the response stream"
                    found = self._scan(decode_json(event.data, what), request_id, what)
                    if found is not None:
                        drain(conn, response)
                        self.client.release(conn, response)
                        return found
            except RESUMABLE_BREAKS:
                conn.close()
                if not parser.last_event_id:
                    raise
            except BaseException:
                conn.close()
                raise
            else:
                self.client.release(conn, response)
                if not parser.last_event_id:
                    raise ProtocolError("the event stream ended before the response to %s arrived" % method)
            if resumed_here >= MAX_RESUMPTIONS:
                raise ProtocolError(
                    "the response stream to %s ended %d times before the answer arrived" % (method, resumed_here + 1)
                )
            conn, response = self._resume(method, parser)
            resumed_here += 1
            parser = SSEParser(last_event_id=parser.last_event_id, retry=parser.retry)

    def _resume(self, method, parser):
        """Wait the server's retry interval, then GET the stream again from the last event id it handed out."""
        problem = event_id_problem(parser.last_event_id)
        if problem:
            raise ProtocolError(
                "the response stream to %s ended before the answer, and the event id it handed out cannot be "
                "sent back to resume it (%s)" % (method, problem)
            )
        wait = max(parser.retry if parser.retry is not None else DEFAULT_RETRY_MS, MIN_RETRY_MS) / 1000.0
        left = self.deadline.remaining()
        if wait >= left:
            raise ProtocolError(
                "timed out: the response stream to %s ended before the answer, and the server asks to wait %d ms "
                "before resuming it, more than the %d ms left of the timeout" % (method, wait * 1000, left * 1000)
            )
        time.sleep(wait)
        headers = [(name, value) for name, value in self._headers() if name.lower() not in ("accept", "content-type")]
        headers.append(("Accept", "text/event-stream"))
        headers.append(("Last-Event-ID", parser.last_event_id))
        conn, response = self._exchange("GET", self.target, headers)
        self.resumptions += 1  # counted once the GET went out
        ctype = media_type(response.getheader("Content-Type"))
        if response.status != 200 or ctype != "text/event-stream":
            if response.status in (401, 403):
                self._check_status(response, conn)
            with contextlib.suppress(Exception):
                read_body(conn, response, MAX_ERROR_BODY)
            conn.close()
            answer = "HTTP %s" % response.status if response.status != 200 else "Content-Type %r" % (ctype or "(none)")
            raise ProtocolError(
                "the response stream to %s ended before the answer, and the server did not resume it "
                "(GET with Last-Event-ID answered %s)" % (method, answer)
            )
        return conn, response

    def _answer(self, message):
        """Best effort: a server that cannot take our answer to its request is not a failed check."""
        conn, response = self._exchange("POST", self.target, self._headers(), reply_to(message))
        try:
            read_body(conn, response, MAX_ERROR_BODY)
        except ProtocolError:
            conn.close()
        self.client.release(conn, response)

    def notify(self, method, params=None):
        """POST a notification; return the HTTP status (202 expected)."""
        conn, response = self._post(jsonrpc_message(method, params))
        read_body(conn, response, MAX_ERROR_BODY)
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
        read_body(conn, response, MAX_ERROR_BODY)
        self.client.release(conn, response)


class LegacySseTransport(BaseTransport):
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
        response = conn.send("GET", self.target, headers)
        self.last_status = response.status
        if response.status != 200:
            self._check_status(response, conn)
            conn.close()  # another 2xx: no stream
            raise HttpStatusError(response.status, response.reason)
        ctype = media_type(response.getheader("Content-Type"))
        if ctype != "text/event-stream":
            conn.close()
            raise ProtocolError(
                "GET %s answered with Content-Type %r, not an event stream"
                % (redact_url(self.target.url), ctype or "(none)")
            )
        self._events = iter_events(response, SSEParser())
        pending_bytes = 0
        for event in self._events:
            if event.event == "endpoint":
                self.endpoint = self._resolve_endpoint(event.data)
                self.session_id = dict(parse_qsl(urlsplit(self.endpoint.url).query)).get("session_id") or "sse"
                return
            if event.event == "message" and event.data.strip():
                pending_bytes += len(event.data)
                if len(self._pending) >= MAX_PENDING_EVENTS or pending_bytes > MAX_PENDING_BYTES:
                    conn.close()
                    raise ProtocolError(
                        "the server sent more than %d messages or %d bytes before the endpoint event"
                        % (MAX_PENDING_EVENTS, MAX_PENDING_BYTES)
                    )
                self._pending.append(event)
        raise ProtocolError("the event stream ended before the endpoint event arrived")

    def _resolve_endpoint(self, data):
        url = urljoin(self.target.url, data.strip())
        try:
            validate_url(url)
        except ConfigError:
            raise ProtocolError("the endpoint event does not name a usable URL") from None
        endpoint = Target(url)
        if endpoint.origin != self.target.origin:
            raise ProtocolError(
                "the endpoint event points to another origin (%s); messages and credentials "
                "are only sent to the origin of the SSE stream" % redact_url(url)
            )
        return endpoint

    def _post(self, body, request_id=None):
        headers = self.base_headers()
        headers.append(("Content-Type", "application/json"))
        headers.append(("Accept", "application/json, text/event-stream"))
        conn, response = self._exchange("POST", self.endpoint, headers, body)
        self._check_status(response, conn, request_id)
        raw = read_body(conn, response, MAX_JSON_BODY)
        self.client.release(conn, response)
        # Some servers answer on the POST itself; the standard place is the stream.
        if (
            request_id is not None
            and raw.strip()
            and media_type(response.getheader("Content-Type")) == "application/json"
        ):
            try:
                decoded = decode_json(raw, "the answer to the POST")
            except ProtocolError:
                decoded = None
            if is_response(decoded) and decoded.get("id") == request_id:
                return decoded
        return None

    def request(self, request_id, method, params=None, capture_session=False):
        found = self._post(jsonrpc_message(method, params, request_id), request_id)
        while found is None:
            event = self._next_event()
            if event is None:
                raise ProtocolError("the SSE stream ended before the response to %s arrived" % method)
            if event.event != "message" or not event.data.strip():
                continue
            what = "an event on the SSE stream"
            found = self._scan(decode_json(event.data, what), request_id, what)
        return result_of(found)

    def _answer(self, message):
        with contextlib.suppress(HttpStatusError, RpcError, ProtocolError):  # best effort
            self._post(reply_to(message))

    def _next_event(self):
        """The next event of the long-lived stream (a plain call, so no generator is ever closed early)."""
        if self._pending:
            return self._pending.pop(0)
        return next(self._events, None)

    def notify(self, method, params=None):
        self._post(jsonrpc_message(method, params))
        return 202

    def close(self):
        if self._stream_conn is not None:
            self._stream_conn.close()
