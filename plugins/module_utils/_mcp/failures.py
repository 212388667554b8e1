# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What went wrong, in words: a low-level exception of one check turned into a CheckError for its stage.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import http.client
import socket
import ssl
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import ERROR_EXCERPT
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import (
    CheckError,
    DeadlineExceeded,
    HttpStatusError,
    ProtocolError,
    RpcError,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    excerpt,
    parse_www_authenticate,
    redact_url,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import os_error, ssl_error
from ansible_collections.corvid.platform.plugins.module_utils._mcp.sse import SSEError


def describe_failure(stage, exc, doing, deadline, transport=None):
    """A CheckError for ``stage`` that says what ``exc`` means while ``doing`` something; never a secret."""
    if isinstance(exc, CheckError):
        return exc
    resumed = getattr(transport, "resumptions", 0) or 0
    if resumed:
        doing += " (the response stream was resumed %d time%s)" % (resumed, "" if resumed == 1 else "s")
    if isinstance(exc, DeadlineExceeded):
        return CheckError(stage, "timed out: the overall timeout of %gs ran out during %s" % (deadline.seconds, doing))
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
                secrets = transport.secrets() if transport is not None else ()
                message += " (WWW-Authenticate: %s)" % excerpt(exc.www_authenticate, secrets, ERROR_EXCERPT)
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
        elif exc.status == 404 and transport is not None and transport.session_id and stage != "initialize":
            message += " (the session expired or is unknown to the server)"
        elif exc.body:
            message += ": %s" % exc.body
        return CheckError(stage, message.strip(), http_status=exc.status)
    if isinstance(exc, socket.timeout):
        if deadline.end - time.monotonic() < 0.05:
            return CheckError(
                stage, "timed out: the overall timeout of %gs ran out during %s" % (deadline.seconds, doing)
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
        return CheckError(stage, "%s: TLS error: %s" % (doing, ssl_error(exc)))
    if isinstance(exc, OSError):
        return CheckError(stage, "%s: connection error: %s" % (doing, os_error(exc)))
    return CheckError(stage, "%s: %s: %s" % (doing, exc.__class__.__name__, exc))
