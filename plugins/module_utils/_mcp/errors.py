# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The exceptions of the MCP client: option errors (raised before any request) and check failures.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects


class OptionError(Exception):
    """A module option has a value that cannot be used: ``option`` names it, ``message`` says why."""

    def __init__(self, option, message):
        super().__init__("%s: %s" % (option, message))
        self.option = option
        self.message = message

    def prefixed(self, prefix):
        """The same error, of the same class, for the option named with ``prefix`` (``endpoints[2].``)."""
        return type(self)(prefix + self.option, self.message)


class ConfigError(OptionError):
    """The endpoint configuration cannot be used; ``option`` names the option at fault, ``message`` says why."""


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
