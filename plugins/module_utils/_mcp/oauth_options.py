# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The ``oauth`` option of an endpoint, checked before any request (errors name the sub-option at fault).

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

from urllib.parse import urlsplit

from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    redact_url,
    validate_header_value,
    validate_url,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.jws import KeyProblem, load_private_key

AUTH_METHODS = ("auto", "client_secret_basic", "client_secret_post", "private_key_jwt")
OAUTH_DEFAULTS = {
    "client_id": None,
    "client_secret": None,
    "private_key": None,
    "private_key_id": None,
    "auth_method": "auto",
    "scopes": None,
    "resource": None,
    "authorization_server": None,
    "token_url": None,
    "allow_http": False,
}


# --------------------------------------------------------------------------- options


def https_url(url, option, allow_http):
    validate_url(url, option)
    if urlsplit(url).scheme != "https" and not allow_http:
        raise ConfigError(
            option, "%s is not an https:// URL (oauth.allow_http allows http for a lab)" % redact_url(url)
        )


def validate_oauth(oauth, bearer_token=None, option="oauth"):
    """The ``oauth`` option checked and normalised (the private key parsed into ``key``); raises ConfigError
    naming the sub-option at fault, before any request."""
    if oauth is None:
        return None
    if not isinstance(oauth, dict):
        raise ConfigError(option, "must be a dictionary")
    config = dict(OAUTH_DEFAULTS)
    config.update(dict((k, v) for k, v in oauth.items() if v is not None))
    if bearer_token:
        raise ConfigError(option, "cannot be combined with bearer_token; give one of them")
    client_id = config["client_id"]
    if not isinstance(client_id, str) or not client_id:
        raise ConfigError(option + ".client_id", "is required")
    validate_header_value(client_id, option + ".client_id", "the client id")
    secret, key = config["client_secret"], config["private_key"]
    if secret and key:
        raise ConfigError(option + ".private_key", "cannot be combined with %s.client_secret; give one" % option)
    if not secret and not key:
        raise ConfigError(option + ".client_secret", "or %s.private_key is required" % option)
    method = config["auth_method"]
    if method not in AUTH_METHODS:
        raise ConfigError(option + ".auth_method", "must be one of %s" % ", ".join(AUTH_METHODS))
    if method == "private_key_jwt" and not key:
        raise ConfigError(option + ".auth_method", "private_key_jwt needs %s.private_key" % option)
    if method.startswith("client_secret") and not secret:
        raise ConfigError(option + ".auth_method", "%s needs %s.client_secret" % (method, option))
    if secret is not None:
        validate_header_value(secret, option + ".client_secret", "the client secret")
    if key:
        config["key"] = _load_key(key, option + ".private_key")
    scopes = config["scopes"]
    if scopes is not None and (
        not isinstance(scopes, list) or not all(isinstance(s, str) and s and " " not in s for s in scopes)
    ):
        raise ConfigError(option + ".scopes", "must be a list of scope names (strings without spaces)")
    allow_http = config["allow_http"]
    if not isinstance(allow_http, bool):
        raise ConfigError(option + ".allow_http", "must be true or false")
    for name in ("token_url", "authorization_server"):
        if config[name] is not None:
            https_url(config[name], "%s.%s" % (option, name), allow_http)
    if config["resource"] is not None:
        validate_url(config["resource"], option + ".resource")
    return config


def _load_key(value, option):
    text = value
    if isinstance(value, str) and "-----BEGIN" not in value:
        try:
            with open(value, encoding="ascii") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(option, "cannot read the key file %s: %s" % (value, exc.__class__.__name__)) from None
    try:
        return load_private_key(text)
    except KeyProblem as exc:
        raise ConfigError(option, "the key %s" % exc) from None
