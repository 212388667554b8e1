# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A health-check client for MCP (Model Context Protocol) servers, standard library only.

Private to the corvid.platform collection (used by its ``mcp_check`` module): not a public API,
no compatibility promise between releases.

It runs on managed hosts (Python 3.9 and later) and speaks:

* Streamable HTTP (2025-03-26 and later): every message is a POST that accepts JSON or an
  event stream; the ``Mcp-Session-Id`` a server hands out is sent back, ``MCP-Protocol-Version``
  follows initialization, the session is deleted at the end.
* The legacy HTTP+SSE transport (2024-11-05): a GET event stream names, in its ``endpoint``
  event, the URL to POST messages to; responses come back on the stream.
* The initialize handshake of 2024-11-05, 2025-03-26, 2025-06-18 and 2025-11-25, and the
  sessionless 2026-07-28 revision (``server/discover`` and a ``_meta`` envelope on every request).

Modules: ``constants`` (versions, limits, the option defaults), ``errors``, ``helpers`` (URLs,
headers, JSON-RPC messages, masking), ``plumbing`` (HTTP connections bounded by a deadline, TLS),
``sse`` (the event-stream parser), ``transports`` (with the resumption of response streams),
``failures`` (exceptions in words), ``oauth_options`` and ``oauth`` (client credentials: discovery,
token request, the run's token cache), ``jws`` (RS256/ES256 client assertions), ``check`` (one
endpoint), ``runner`` (many endpoints at once) and ``metrics`` (Prometheus text format and the
textfile writer). Secrets (bearer tokens, header values, URL passwords, client secrets, keys,
assertions, access tokens) are never put into results or error messages.
"""
