# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Helpers without I/O: URLs, headers, protocol versions, JSON-RPC messages and the masking of secrets.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import base64
import html
import json
import math
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit, urlunsplit

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    ERROR_EXCERPT,
    KNOWN_VERSIONS,
    MAX_CHALLENGE,
    MAX_TIMEOUT,
    METHOD_NOT_FOUND,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError, ProtocolError, RpcError

MASK = "********"


def media_type(value):
    """'text/event-stream; charset=utf-8' -> 'text/event-stream'."""
    if not value:
        return ""
    return value.split(";", 1)[0].strip().lower()


def parse_www_authenticate(value):
    """Return the ``resource_metadata`` parameter of a (Bearer) WWW-Authenticate header, or None."""
    if not value:
        return None
    text = value[:MAX_CHALLENGE]
    lowered = text.lower()
    marker = "resource_metadata"
    index = lowered.find(marker)
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
        index = lowered.find(marker, index + len(marker))
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


def mask_url(url):
    """The URL as the task output may show it: the password and every query value masked, the rest as given."""
    if not isinstance(url, str):
        return url
    rest, hash_sign, fragment = url.partition("#")
    rest, question, query = rest.partition("?")
    scheme, slashes, remainder = rest.partition("//")
    if slashes:
        authority, slash, path = remainder.partition("/")
        userinfo, at, host = authority.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            if colon and password:
                userinfo = "%s:%s" % (user, MASK)
            authority = userinfo + at + host
        rest = scheme + slashes + authority + slash + path
    if query:
        pairs = []
        for pair in query.split("&"):
            name, equals, value = pair.partition("=")
            pairs.append(name + equals + (MASK if value else ""))
        query = "&".join(pairs)
    return rest + question + query + hash_sign + fragment


def _plain_ascii(text):
    """True when ``text`` is visible ASCII and spaces only (what an HTTP header value or a URL may carry)."""
    return all(0x20 <= ord(char) <= 0x7E for char in text)


def validate_url(url, option="url"):
    """Raise ConfigError unless ``url`` is an absolute http(s) URL with a host and nothing to percent-encode."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigError(option, "must be a non-empty http:// or https:// URL")
    if not _plain_ascii(url) or " " in url:
        raise ConfigError(
            option,
            "%s contains a space, a control character or a character outside ASCII; "
            "percent-encode it (a space is %%20)" % redact_url(url),
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(option, "%s is not a valid URL (%s)" % (redact_url(url), exc)) from None
    if parts.scheme not in ("http", "https"):
        raise ConfigError(option, "%s needs an http:// or https:// scheme" % redact_url(url))
    if not parts.hostname:
        raise ConfigError(option, "%s has no host" % redact_url(url))
    if port == 0:
        raise ConfigError(option, "%s has port 0" % redact_url(url))


def validate_header_value(value, option, what):
    """Raise ConfigError unless ``value`` can go into an HTTP header as it is; the message never shows it."""
    if value is None:
        raise ConfigError(option, "%s is empty" % what)
    text = str(value)
    if any(char in text for char in "\r\n\x00"):
        raise ConfigError(option, "%s contains a line break (a YAML block scalar adds one; use >- or |-)" % what)
    if not all(0x20 <= ord(char) <= 0x7E or char == "\t" for char in text):
        raise ConfigError(option, "%s contains a control character or a character outside ASCII" % what)


def validate_headers(headers, option="headers"):
    if headers is None:
        return
    if not isinstance(headers, dict):
        raise ConfigError(option, "must be a dictionary of header names to values")
    for name, value in headers.items():
        if not isinstance(name, str) or not name or not _plain_ascii(name) or any(c in name for c in " \t:"):
            raise ConfigError(option, "header name %r is not a valid HTTP header name" % (name,))
        # The value may be a secret: name the header, never the value.
        validate_header_value(value, option, "the value of header %r" % name)


def validate_bearer_token(token, option="bearer_token"):
    if token is None:
        return
    validate_header_value(token, option, "the token")


def validate_seconds(value, option, maximum=None):
    """Raise ConfigError unless ``value`` is a finite number greater than 0 (and at most ``maximum``)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(option, "must be a number, got %s" % type(value).__name__)
    if math.isnan(value) or math.isinf(value):
        raise ConfigError(option, "must be a finite number, got %s" % value)
    if value <= 0:
        raise ConfigError(option, "must be greater than 0, got %s" % value)
    if maximum is not None and value > maximum:
        raise ConfigError(option, "must be at most %s, got %s" % (maximum, value))


def validate_timeout(value, option="timeout"):
    validate_seconds(value, option, MAX_TIMEOUT)


def encode_header_value(value):
    """Mirror a value into an HTTP header the way 2026-07-28 requires (base64 sentinel when not plain ASCII)."""
    plain = all(0x20 <= ord(c) <= 0x7E for c in value) and value == value.strip()
    if plain and not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    return "=?base64?%s?=" % base64.b64encode(value.encode("utf-8")).decode("ascii")


def ms(seconds):
    return round(seconds * 1000.0, 3)


def version_index(version):
    try:
        return KNOWN_VERSIONS.index(version)
    except ValueError:
        return -1


def version_at_least(version, minimum):
    """True when ``version`` is a known revision at least as new as ``minimum``."""
    return version_index(version) >= 0 and version_index(version) >= version_index(minimum)


def subset_matches(expected, actual):
    """True when every key of ``expected`` is in ``actual`` with a matching value (recursively for dicts)."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and subset_matches(value, actual[key]) for key, value in expected.items())
    return expected == actual


def text_of(content):
    """The text items of a tools/call ``content`` list joined by LF; anything else has no text."""
    if not isinstance(content, list):
        return ""
    texts = []
    for item in content:
        if isinstance(item, dict) and item.get("type") == "text" and isinstance(item.get("text"), str):
            texts.append(item["text"])
    return "\n".join(texts)


# --------------------------------------------------------------------------- JSON-RPC


def jsonrpc_message(method=None, params=None, request_id=None, result=None, error=None):
    """A JSON-RPC 2.0 message as compact UTF-8 bytes: a request (``request_id`` and ``method``), a
    notification (``method`` only) or a response (``request_id`` with ``result`` or ``error``)."""
    message = {"jsonrpc": "2.0"}
    if request_id is not None or method is None:
        message["id"] = request_id
    if method is not None:
        message["method"] = method
        if params is not None:
            message["params"] = params
    elif error is not None:
        message["error"] = error
    else:
        message["result"] = result if result is not None else {}
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def reply_to(message):
    """Our answer to a server-to-client request: pong for ping, method-not-found for the rest."""
    if message.get("method") == "ping":
        return jsonrpc_message(request_id=message.get("id"), result={})
    error = {"code": METHOD_NOT_FOUND, "message": "Method not found (health-check client)"}
    return jsonrpc_message(request_id=message.get("id"), error=error)


def is_response(message):
    return isinstance(message, dict) and "method" not in message and ("result" in message or "error" in message)


def answers(message, request_id):
    """True when ``message`` is the response to ``request_id`` (or an error response without id)."""
    return is_response(message) and (
        message.get("id") == request_id or (message.get("id") is None and "error" in message)
    )


def rpc_error_from(message, http_status=None):
    error = message.get("error")
    if not isinstance(error, dict):
        error = {"code": None, "message": str(error)}
    return RpcError(error.get("code"), error.get("message", ""), error.get("data"), http_status)


def result_of(message, http_status=None):
    """The ``result`` object of a response; raises RpcError for an error response, ProtocolError otherwise."""
    if "error" in message:
        raise rpc_error_from(message, http_status)
    result = message.get("result")
    if not isinstance(result, dict):
        raise ProtocolError("the result is a %s, not an object" % type(result).__name__)
    return result


# --------------------------------------------------------------------------- secrets


def credential_forms(headers, token=None, username=None, password=None):
    """Every form in which the credentials of a check can come back in a server's answer: header values
    (``Bearer …``, ``Basic …``) whole, the token and password alone, and the base64 of ``user:password``."""
    forms = set()
    for _name, value in headers:
        forms.add(value)
        scheme, _sep, credential = value.partition(" ")
        if scheme.lower() in ("bearer", "basic") and credential:
            forms.add(credential)
    if token:
        forms.add(token)
    if password:
        forms.add(password)
        basic = base64.b64encode(("%s:%s" % (username or "", password)).encode("utf-8")).decode("ascii")
        forms.add(basic)
    # Longest first, so a whole header value is masked before the token inside it.
    return secret_forms(forms)


# A secret cut off at the end of an excerpt is masked when at least this many of its first characters are left.
MIN_PARTIAL_SECRET = 4


def secret_forms(secrets):
    """Every secret of ``secrets`` as given and as a server may echo it: percent-encoded (as in a URL or a
    form body), HTML-escaped and JSON-escaped; longest first, so a whole form is masked before a part."""
    forms = set()
    for secret in secrets:
        if not isinstance(secret, str) or not secret.strip():
            continue
        forms.add(secret)
        forms.add(quote(secret, safe=""))
        forms.add(quote_plus(secret))
        forms.add(quote(secret))
        forms.add(html.escape(secret))
        forms.add(html.escape(secret, quote=False))
        forms.add(json.dumps(secret)[1:-1])
        forms.add(json.dumps(secret, ensure_ascii=False)[1:-1])
    return sorted((form for form in forms if form.strip()), key=len, reverse=True)


def excerpt(text, secrets=(), limit=None):
    """At most ``limit`` characters of ``text`` (a server's answer, quoted in a failure) with every secret
    masked first, and what is left of a secret the cut went through masked too."""
    limit = ERROR_EXCERPT if limit is None else limit
    secrets = secret_forms(secrets)
    text = mask_secrets(text, secrets)
    if len(text) <= limit:
        return text
    text = text[:limit]
    longest = 0
    for secret in secrets:
        for size in range(min(len(secret) - 1, len(text)), max(MIN_PARTIAL_SECRET, longest + 1) - 1, -1):
            if text.endswith(secret[:size]):
                longest = size
                break
    if longest:
        text = text[: len(text) - longest] + MASK
    return text


def mask_secrets(value, secrets):
    """``value`` with every occurrence of every secret in its strings (keys too) replaced by a mask.

    Only strings change: numbers and booleans keep their type and value."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return dict((mask_secrets(key, secrets), mask_secrets(item, secrets)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, secrets) for item in value]
    return value
