# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The check of one MCP endpoint: its stages, the assertions and the result dict.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import base64
import time

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import (
    CHALLENGE_EXCERPT,
    CLIENT_NAME,
    CLIENT_VERSION,
    DEFAULTS,
    HANDSHAKE_VERSIONS,
    LATENCY_STAGES,
    LATEST_HANDSHAKE_VERSION,
    LATEST_MODERN_VERSION,
    MAX_LISTED_NAMES,
    MAX_PAGES,
    META_SERVER_INFO,
    METHOD_NOT_FOUND,
    MODERN_VERSIONS,
    PROTOCOL_HEADERS,
    TEXT_PREVIEW,
    USER_AGENT,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import (
    CheckError,
    ConfigError,
    DeadlineExceeded,
    ProtocolError,
    RpcError,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.failures import describe_failure
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    credential_forms,
    excerpt,
    mask_secrets,
    ms,
    redact_url,
    secret_forms,
    subset_matches,
    text_of,
    version_at_least,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth import EndpointAuth, OAuthSession
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import (
    Deadline,
    HttpClient,
    Target,
    build_ssl_context,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.transports import (
    LegacySseTransport,
    StreamableHttpTransport,
)

# Result keys that hold the configuration, not anything a server sent: never masked.
CONFIG_KEYS = ("name", "url", "latency_ms")


def new_result(config):
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
        "oauth": None,
        "oauth_error": None,
        "transport": None,
        "protocol_version": None,
        "era": None,
        "server_info": None,
        "capabilities": None,
        "instructions": None,
        "session": False,
        "tls_version": None,
        "resumptions": 0,
        "ping_supported": None,
        "tools": None,
        "tool_count": None,
        "missing_tools": [],
        "resources": None,
        "prompts": None,
        "call": None,
        "latency_ms": dict((stage, None) for stage in LATENCY_STAGES),
    }


class EndpointCheck:
    """Checks one endpoint. Build it with a normalised config (see :data:`DEFAULTS`), then :meth:`run`."""

    def __init__(self, config, ssl_context=None, oauth_session=None):
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
        self.secrets = []
        self.result = new_result(merged)
        self.oauth_session = oauth_session
        self.auth = None
        self.oauth_token = None

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
        token = self.oauth_token.access_token if self.oauth_token else self.config.get("bearer_token")
        target = Target(self.config["url"])
        if token:
            headers = [(n, v) for n, v in headers if n.lower() != "authorization"]
            headers.append(("Authorization", "Bearer %s" % token))
        elif not authorization and target.username is not None:
            creds = "%s:%s" % (target.username, target.password or "")
            headers.append(("Authorization", "Basic %s" % base64.b64encode(creds.encode("utf-8")).decode()))
        self.secrets = credential_forms(headers, token, target.username, target.password)
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
        return describe_failure(stage, exc, doing, self.deadline, self.transport)

    def _call(self, stage, doing, func, *args, **kwargs):
        timed = kwargs.pop("timed", True)
        try:
            if timed:
                return self._timed(stage, func, *args, **kwargs)
            self.stage = stage
            return func(*args, **kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            raise self._fail(stage, exc, doing) from None

    # -- stages

    def run(self):
        """Run every stage and the assertions; never raises for a failing endpoint."""
        result = self.result
        self.started = time.monotonic()
        self.deadline = Deadline(self.config["timeout"])
        self.client = HttpClient(self.deadline, self.ssl_context, self.timings, USER_AGENT)
        try:
            if self.ssl_context is None and (self.config["url"].lower().startswith("https:") or self.config["oauth"]):
                self.ssl_context = self._own_ssl_context()
                self.client.ssl_context = self.ssl_context
            self._establish_authorized()
            self._list()
            result["up"] = True
            if self.config["ping"]:
                self._ping()
            if self.config.get("call_tool"):
                self._call_tool()
        except CheckError as exc:
            self._record_failure(exc)
        except Exception as exc:  # pylint: disable=broad-except
            # A bug of ours or an answer nothing above expected: this endpoint fails, the others go on.
            self._record_failure(self._fail(self.stage, exc, "the %s stage" % self.stage))
        if result["http_status"] is None and self.transport is not None:
            result["http_status"] = self.transport.last_status
        self._close()
        self.client.close()
        result["tls_version"] = self.client.tls_versions.get(Target(self.config["url"]).origin)
        result["resumptions"] = getattr(self.transport, "resumptions", 0)
        total = time.monotonic() - self.started  # a slow session DELETE counts too
        for stage, seconds in self.timings.items():
            result["latency_ms"][stage] = ms(seconds)
        result["latency_ms"]["total"] = ms(total)
        if self.transport is not None:
            result["session"] = bool(self.transport.session_id) and not getattr(self.transport, "modern_version", None)
        self._assert(total)
        if result["failures"] and result["failed_stage"] is None:
            result["failed_stage"] = result["failures"][0][0]
        result["error"] = result["failures"][0][1] if result["failures"] else None
        result["failures"] = [message for _stage, message in result["failures"]]
        result["healthy"] = result["up"] and not result["failures"]
        return self.masked(result)

    def _all_secrets(self):
        secrets = list(self.secrets)
        if self.auth is not None:
            secrets.extend(self.auth.secrets)
        return secrets

    def masked(self, result):
        """``result`` with every form of this endpoint's credentials masked in whatever a server sent."""
        secrets = self._all_secrets()
        if not secrets:
            return result
        secrets = secret_forms(secrets)
        masked = dict(result)
        for key, value in result.items():
            if key not in CONFIG_KEYS:
                masked[key] = mask_secrets(value, secrets)
        return masked

    def _own_ssl_context(self):
        config = self.config
        try:
            return build_ssl_context(
                config["validate_certs"],
                config["ca_path"],
                config["client_cert"],
                config["client_key"],
                config["tls_min_version"],
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
            result["www_authenticate"] = excerpt(exc.www_authenticate, self._all_secrets(), CHALLENGE_EXCERPT)
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
        return Target(self.config["url"])

    def _establish_authorized(self):
        """:meth:`_establish`, with an OAuth token when the endpoint has ``oauth``: a token another endpoint of
        the run fetched for this URL is tried first; a 401 leads to discovery and a token, and a token the
        server refuses is replaced once. A refused fresh token fails the stage the 401 came at."""
        oauth = self.config.get("oauth")
        if not oauth:
            self._establish()
            return
        if self.oauth_session is None:
            self.oauth_session = OAuthSession()
        self.auth = EndpointAuth(
            self.oauth_session, oauth, self.config["url"], self.client, self.deadline, result=self.result
        )
        self.oauth_token = self.auth.cached()
        fresh = False
        for _attempt in range(4):
            try:
                self._establish()
                return
            except CheckError as exc:
                if exc.http_status != 401 or fresh:
                    raise (self.auth.rejected(exc) if fresh and exc.http_status == 401 else exc) from None
                self.transport = None
                self.oauth_token, fresh = self.auth.obtain(exc.www_authenticate, self._call)
        self._establish()

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
        """The names of every item of a paginated list (at most MAX_LISTED_NAMES) and the number of items."""
        names = []
        count = 0
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
                    count += 1
                    if len(names) < MAX_LISTED_NAMES:
                        names.append(item[field])
            cursor = page.get("nextCursor")
            if cursor is None or cursor == "":
                if count > len(names):
                    self.result["warnings"].append(
                        "%s lists %d items; the result keeps the first %d names" % (method, count, len(names))
                    )
                return names, count
            if not isinstance(cursor, str) or cursor in seen:
                raise ProtocolError("%s returned a nextCursor it already returned (pagination loop)" % method)
            seen.add(cursor)
        raise ProtocolError("%s did not finish within %d pages" % (method, MAX_PAGES))

    def _list(self):
        result = self.result
        capabilities = result["capabilities"] or {}
        if "tools" in capabilities:
            tools, count = self._call("list", "tools/list", self._paginate, "tools/list", "tools", "name")
        else:
            tools, count = [], 0
            result["warnings"].append("the server does not advertise the tools capability")
        result["tools"] = tools
        result["tool_count"] = count
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
            result[key] = self._call("list", method, self._paginate, method, key, field)[0]

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
        text = text_of(answer.get("content"))
        call["is_error"] = bool(answer.get("isError"))
        call["text"] = excerpt(text, self._all_secrets(), TEXT_PREVIEW)
        call["structured"] = answer.get("structuredContent")
        if call["is_error"]:
            shown = excerpt(text, self._all_secrets())
            raise CheckError("call", "tools/call %s returned an error result: %s" % (name, shown))
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


def check_endpoint(config, ssl_context=None):
    """Check one endpoint and return its result dict."""
    return EndpointCheck(config, ssl_context).run()
