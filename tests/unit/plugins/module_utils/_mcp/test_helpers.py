"""_mcp/helpers.py: URLs, headers, versions, JSON-RPC messages and the masking of secrets."""

from __future__ import annotations

import base64
import json
import math

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    MASK,
    credential_forms,
    encode_header_value,
    jsonrpc_message,
    mask_secrets,
    mask_url,
    media_type,
    parse_www_authenticate,
    redact_url,
    subset_matches,
    text_of,
    validate_bearer_token,
    validate_headers,
    validate_seconds,
    validate_timeout,
    validate_url,
    version_at_least,
)

# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("text/event-stream; charset=utf-8", "text/event-stream"),
        ("Application/JSON;charset=UTF-8", "application/json"),
        ("", ""),
        (None, ""),
    ],
)
def test_media_type(value, expected):
    assert media_type(value) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer error="invalid_token", resource_metadata="https://a.example/.well-known/x"',
            "https://a.example/.well-known/x",
        ),
        ('Bearer resource_metadata="https://a.example/q\\"x"', 'https://a.example/q"x'),
        ("Bearer realm=mcp, resource_metadata=https://b.example/m", "https://b.example/m"),
        ('Bearer xresource_metadata="no", error="x"', None),
        ('Bearer error="invalid_token"', None),
        (None, None),
    ],
)
def test_parse_www_authenticate(header, expected):
    assert parse_www_authenticate(header) == expected


def test_redact_url_drops_userinfo_and_masks_query_values():
    assert redact_url("https://user:pw@mcp.example.com:8443/mcp?api_key=s3cret&flag") == (
        "https://mcp.example.com:8443/mcp?api_key=REDACTED&flag"
    )
    assert redact_url("http://[::1]:9/sse") == "http://[::1]:9/sse"


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("mcp.example.com/mcp", "scheme"),
        ("ftp://mcp.example.com/mcp", "scheme"),
        ("http:///mcp", "no host"),
        ("https://host:99999/mcp", "not a valid URL"),
        ("", "non-empty"),
        (None, "non-empty"),
    ],
)
def test_validate_url_names_the_option(url, fragment):
    with pytest.raises(ConfigError) as caught:
        validate_url(url, "url")
    assert caught.value.option == "url"
    assert fragment in str(caught.value)


def test_validate_headers_never_echoes_values():
    validate_headers({"X-Api-Key": "abc"})
    with pytest.raises(ConfigError, match="X-Bad") as caught:
        validate_headers({"X-Bad": "top\r\nsecret"})
    assert "secret" not in str(caught.value)
    with pytest.raises(ConfigError, match="not a valid HTTP header name"):
        validate_headers({"Bad Name": "x"})
    with pytest.raises(ConfigError, match="dictionary"):
        validate_headers(["a"])


def test_encode_header_value():
    assert encode_header_value("echo") == "echo"
    assert encode_header_value("héllo") == "=?base64?aMOpbGxv?="
    assert encode_header_value(" padded") == "=?base64?IHBhZGRlZA==?="


def test_version_ordering():
    assert version_at_least("2025-06-18", "2025-03-26")
    assert version_at_least("2026-07-28", "2025-11-25")
    assert not version_at_least("2024-11-05", "2025-03-26")
    assert not version_at_least("2099-01-01", "2024-11-05")
    assert not version_at_least(None, "2024-11-05")


def test_subset_matches():
    assert subset_matches({"a": 1, "b": {"c": [1]}}, {"a": 1, "b": {"c": [1], "d": 2}, "e": 3})
    assert not subset_matches({"a": 2}, {"a": 1})
    assert not subset_matches({"a": 1}, None)


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("https://a.example/mcp", "https://a.example/mcp"),
        ("https://A.Example:8443/mcp#frag", "https://A.Example:8443/mcp#frag"),  # unchanged: nothing secret
        ("http://alice:s3cret@a.example/mcp?api_key=TOPSECRET", "http://alice:********@a.example/mcp?api_key=********"),
        ("http://alice@a.example/mcp?flag&empty=&k=v", "http://alice@a.example/mcp?flag&empty=&k=********"),
        ("http://alice:p%40ss@a.example/mcp?q=a+b%2Fc#frag", "http://alice:********@a.example/mcp?q=********#frag"),
        ("http://alice:pw@a.example:99999/mcp", "http://alice:********@a.example:99999/mcp"),  # bad port
        ("http://alice:@a.example/mcp?x=1&y=two", "http://alice:@a.example/mcp?x=********&y=********"),
        (None, None),
    ],
)
def test_mask_url_masks_the_password_and_query_values_only(url, masked):
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("sekrit-tok\n", "line break"),
        ("sekrit\r-tok", "line break"),
        ("sekrit-tök", "outside ASCII"),
        ("sekrit\x01-tok", "control character"),
    ],
)
def test_bearer_token_is_validated_without_echoing_it(value, fragment):
    with pytest.raises(ConfigError) as caught:
        validate_bearer_token(value)
    assert caught.value.option == "bearer_token" and fragment in caught.value.message
    assert "sekrit" not in str(caught.value)


@pytest.mark.parametrize("value", [{"X-Key": "välue"}, {"X-Key": "a\x7fb"}, {"X-Key": None}])
def test_header_values_outside_ascii_are_option_errors(value):
    with pytest.raises(ConfigError) as caught:
        validate_headers(value)
    assert caught.value.option == "headers" and "X-Key" in caught.value.message


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        (math.nan, "finite"),
        (math.inf, "finite"),
        (1e12, "at most 3600"),
        (0, "greater than 0"),
        (-1.0, "greater than 0"),
        ("10", "must be a number"),
        (True, "must be a number"),
    ],
)
def test_timeout_must_be_a_finite_positive_number(value, fragment):
    with pytest.raises(ConfigError) as caught:
        validate_timeout(value)
    assert caught.value.option == "timeout" and fragment in caught.value.message
    validate_timeout(3600)
    validate_timeout(0.5)


def test_latency_budget_must_be_finite():
    with pytest.raises(ConfigError, match="max_latency_ms: must be a finite number"):
        validate_seconds(math.nan, "max_latency_ms")
    validate_seconds(1e12, "max_latency_ms")  # no upper bound


@pytest.mark.parametrize("url", ["http://a.example/my mcp", "http://a.example/m\tcp", "http://ä.example/mcp"])
def test_urls_with_spaces_or_non_ascii_are_option_errors(url):
    with pytest.raises(ConfigError) as caught:
        validate_url(url)
    assert caught.value.option == "url" and "percent-encode" in caught.value.message


def test_jsonrpc_messages():
    assert json.loads(jsonrpc_message("tools/list", {}, 3)) == {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "tools/list",
        "params": {},
    }
    assert json.loads(jsonrpc_message("notifications/initialized")) == {
        "jsonrpc": "2.0",
        "method": "notifications/initialized",
    }
    assert json.loads(jsonrpc_message(request_id="s-1", result={})) == {"jsonrpc": "2.0", "id": "s-1", "result": {}}
    error = {"code": -32601, "message": "no"}
    assert json.loads(jsonrpc_message(request_id=7, error=error)) == {"jsonrpc": "2.0", "id": 7, "error": error}


def test_text_of_ignores_content_that_is_not_a_list():
    assert text_of([{"type": "text", "text": "a"}, {"type": "image"}, "x", {"type": "text", "text": "b"}]) == "a\nb"
    for content in (None, 5, "text", {"type": "text", "text": "a"}, 1.5):
        assert text_of(content) == ""


def test_credential_forms_and_masking():
    basic = base64.b64encode(b"alice:pa55-word-1").decode()
    forms = credential_forms(
        [("X-Api-Key", "key-123456"), ("Authorization", "Basic " + basic)], None, "alice", "pa55-word-1"
    )
    assert {"key-123456", "Basic " + basic, basic, "pa55-word-1"} <= set(forms)
    assert "Basic%20" + basic.replace("=", "%3D") in forms  # percent-encoded copies too
    forms = credential_forms([("Authorization", "Bearer tok-abcdef")], "tok-abcdef")
    assert set(forms) == {"Bearer tok-abcdef", "Bearer%20tok-abcdef", "Bearer+tok-abcdef", "tok-abcdef"}
    assert forms == sorted(forms, key=len, reverse=True)  # longest first
    echoed = {
        "error": "HTTP 500: Authorization: Bearer tok-abcdef",
        "numbers": [1, 2.5, True, None],
        "nested": {"tok-abcdef": ["x tok-abcdef y"]},
    }
    assert mask_secrets(echoed, forms) == {
        "error": "HTTP 500: Authorization: " + MASK,
        "numbers": [1, 2.5, True, None],
        "nested": {MASK: ["x " + MASK + " y"]},
    }
    assert mask_secrets(echoed, []) is echoed
