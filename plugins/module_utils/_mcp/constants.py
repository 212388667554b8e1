# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Protocol constants, limits and the defaults of every per-endpoint option.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import socket

CLIENT_NAME = "corvid.platform.mcp_check"
# The collection's version (galaxy.yml); a unit test keeps the two equal.
CLIENT_VERSION = "0.1.0"
USER_AGENT = "%s/%s" % (CLIENT_NAME, CLIENT_VERSION)

HANDSHAKE_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
MODERN_VERSIONS = ("2026-07-28",)
KNOWN_VERSIONS = HANDSHAKE_VERSIONS + MODERN_VERSIONS
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[-1]
LATEST_MODERN_VERSION = MODERN_VERSIONS[-1]

TRANSPORTS = ("auto", "streamable_http", "sse")
# The lowest TLS version a check accepts (``tls_min_version``); the result reports the negotiated one.
TLS_VERSIONS = ("TLSv1.2", "TLSv1.3")
PROTOCOL_CHOICES = ("auto", *KNOWN_VERSIONS)
STAGES = ("connect", "tls", "auth_discovery", "token", "initialize", "ping", "list", "call")
# The keys of a result's latency_ms and the stage label of mcp_endpoint_latency_seconds.
LATENCY_STAGES = (*STAGES, "total")
FAILED_STAGES = (*STAGES, "latency")

METHOD_NOT_FOUND = -32601

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
# Memory per endpoint: JSON objects in one message, and names kept per list (the count goes on).
MAX_JSON_OBJECTS = 200000
# Values of every kind (arrays, strings, numbers, keys): a parsed value costs up to ~70 bytes.
MAX_JSON_VALUES = 1000000
MAX_LISTED_NAMES = 10000
# Legacy SSE: messages that arrive before the endpoint event are kept, up to these bounds.
MAX_PENDING_EVENTS = 100
MAX_PENDING_BYTES = MAX_JSON_BODY
DRAIN_SECONDS = 0.05
# Streamable HTTP: a response stream that ends before its answer is resumed (GET with Last-Event-ID) after
# the server's retry interval, or this many milliseconds when it sent none; at most MAX_RESUMPTIONS times
# for one request, and never past the deadline.
DEFAULT_RETRY_MS = 500
MIN_RETRY_MS = 10
MAX_RESUMPTIONS = 100
# The longest event id sent back in Last-Event-ID.
MAX_EVENT_ID = 1024
READ_SIZE = 65536
TEXT_PREVIEW = 512
ERROR_EXCERPT = 200
# At most this much of a WWW-Authenticate header (all of them joined) is parsed; results show less.
MAX_CHALLENGE = 8192
CHALLENGE_EXCERPT = 1024
# The largest overall timeout of one endpoint, in seconds.
MAX_TIMEOUT = 3600
# Linux delays ACKs (by up to 40 ms) once a connection is busy; servers that write a response in
# several small segments then stall until our ACK arrives, and that stall would be measured as
# server latency. TCP_QUICKACK is not sticky, so it is set again before every read.
QUICKACK = getattr(socket, "TCP_QUICKACK", None)

# Every option one endpoint can set, with its default. The module derives its per-endpoint
# option list and the top-level defaults from this dict; ``name`` and ``url`` are the endpoint itself.
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
    "tls_min_version": "TLSv1.2",
    "oauth": None,
    "expected_tools": None,
    "min_protocol_version": None,
    "max_latency_ms": None,
    "ping": True,
    "list_resources": False,
    "list_prompts": False,
    "call_tool": None,
}
PER_ENDPOINT_OPTIONS = tuple(option for option in DEFAULTS if option != "name")
