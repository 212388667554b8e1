# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The checks of one endpoint's options that an argument spec cannot make, shared by the
mcp_check module and the mcp_health role's scheduled check (which reads the same options from a
JSON file), and the SSL contexts the endpoints need.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    redact_url,
    validate_bearer_token,
    validate_headers,
    validate_seconds,
    validate_timeout,
    validate_url,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth_options import validate_oauth
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import build_ssl_context

# The options that make an endpoint's SSLContext, in build_ssl_context's order.
TLS_OPTIONS = ("validate_certs", "ca_path", "client_cert", "client_key", "tls_min_version")


def validate_endpoint(config, prefix=""):
    """Check one endpoint's normalised config in place (``oauth`` becomes its checked form).

    Raises ConfigError naming the option with ``prefix`` (``endpoints[3].`` for a listed endpoint)."""
    try:
        validate_url(config["url"], "url")
        validate_headers(config.get("headers"), "headers")
        validate_bearer_token(config.get("bearer_token"), "bearer_token")
        validate_timeout(config["timeout"], "timeout")
        tools = config.get("expected_tools")
        if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, str) and t for t in tools)):
            raise ConfigError(
                "expected_tools",
                "must be a list of tool names, got %s" % type(tools).__name__
                if not isinstance(tools, list)
                else "must be a list of non-empty tool names (strings)",
            )
        if config.get("max_latency_ms") is not None:
            validate_seconds(config["max_latency_ms"], "max_latency_ms")
        if config.get("client_key") and not config.get("client_cert"):
            raise ConfigError("client_key", "needs client_cert")
        config["oauth"] = validate_oauth(config.get("oauth"), config.get("bearer_token"))
    except ConfigError as exc:
        raise exc.prefixed(prefix) from None


def check_unique_names(configs):
    """Raise ConfigError when two endpoints report under one name (their URL's, when unnamed)."""
    seen = {}
    for index, config in enumerate(configs):
        name = config["name"] or redact_url(config["url"])
        if name in seen:
            raise ConfigError(
                "endpoints",
                "endpoints %s and %s are both named %r; give them distinct names" % (seen[name], index, name),
            )
        seen[name] = index


def ssl_contexts_for(configs, listed=True):
    """One SSLContext per distinct TLS setting (loading CA bundles is not cheap), by endpoint index.

    Endpoints that speak neither HTTPS nor OAuth get none (the authorization server of an http
    endpoint may still speak TLS). ``listed`` tells whether errors name ``endpoints[N].option``
    (configs from a list of endpoints) or the bare option (one top-level endpoint)."""
    cache = {}
    contexts = {}
    for index, config in enumerate(configs):
        if not config["url"].lower().startswith("https:") and not config.get("oauth"):
            continue
        key = tuple(config[option] for option in TLS_OPTIONS)
        if key not in cache:
            try:
                cache[key] = build_ssl_context(*key)
            except ConfigError as exc:
                raise exc.prefixed("endpoints[%s]." % index if listed else "") from None
        contexts[index] = cache[key]
    return contexts
