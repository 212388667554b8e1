"""_mcp/options.py: the endpoint checks shared by the mcp_check module and the scheduled check."""

from __future__ import annotations

import ssl

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import DEFAULTS
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import ConfigError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.options import (
    check_unique_names,
    ssl_contexts_for,
    validate_endpoint,
)


def endpoint(url="https://mcp.example/mcp", **options):
    config = dict(DEFAULTS, url=url)
    config.update(options)
    return config


def test_a_plain_endpoint_passes_and_keeps_its_values():
    config = endpoint(expected_tools=["search"], max_latency_ms=250)
    validate_endpoint(config)
    assert config["url"] == "https://mcp.example/mcp"
    assert config["oauth"] is None


@pytest.mark.parametrize(
    ("options", "option", "fragment"),
    [
        ({"url": "ftp://mcp.example/"}, "endpoints[2].url", "http"),
        ({"timeout": 0}, "endpoints[2].timeout", ""),
        ({"expected_tools": "search"}, "endpoints[2].expected_tools", "got str"),
        ({"expected_tools": ["search", ""]}, "endpoints[2].expected_tools", "non-empty"),
        ({"client_key": "/etc/key.pem"}, "endpoints[2].client_key", "needs client_cert"),
        ({"headers": {"Bad Name": "x"}}, "endpoints[2].headers", ""),
    ],
)
def test_each_bad_option_is_named_with_its_prefix(options, option, fragment):
    config = endpoint(**options)
    with pytest.raises(ConfigError) as caught:
        validate_endpoint(config, "endpoints[2].")
    assert caught.value.option == option
    assert fragment in caught.value.message


def test_a_bearer_token_never_appears_in_an_error():
    config = endpoint(bearer_token="s3cr3t-token\nInjected: yes")
    with pytest.raises(ConfigError) as caught:
        validate_endpoint(config)
    assert caught.value.option == "bearer_token"
    assert "s3cr3t" not in str(caught.value)


def test_two_endpoints_under_one_name_are_refused_with_both_positions():
    configs = [endpoint(name="a"), endpoint(url="https://other.example/mcp", name="b"), endpoint(name="a")]
    with pytest.raises(ConfigError, match=r"endpoints 0 and 2 are both named 'a'"):
        check_unique_names(configs)


def test_unnamed_endpoints_are_named_by_their_url_without_its_secrets():
    configs = [endpoint(url="https://user:pw@mcp.example/mcp"), endpoint(url="https://user:pw@mcp.example/mcp")]
    with pytest.raises(ConfigError) as caught:
        check_unique_names(configs)
    assert "pw" not in str(caught.value)


def test_distinct_names_pass():
    check_unique_names([endpoint(name="a"), endpoint(name="b")])


def test_one_context_per_distinct_tls_setting_and_none_for_plain_http():
    configs = [
        endpoint(name="a"),
        endpoint(name="b"),
        endpoint(name="c", tls_min_version="TLSv1.3"),
        endpoint(url="http://plain.example/mcp", name="d"),
    ]
    contexts = ssl_contexts_for(configs)
    assert sorted(contexts) == [0, 1, 2]
    assert contexts[0] is contexts[1]
    assert contexts[2] is not contexts[0]
    assert contexts[2].minimum_version == ssl.TLSVersion.TLSv1_3


@pytest.mark.parametrize(("listed", "option"), [(True, "endpoints[1].ca_path"), (False, "ca_path")])
def test_an_unreadable_ca_bundle_is_named_as_the_user_wrote_it(tmp_path, listed, option):
    configs = [endpoint(url="http://plain.example/mcp"), endpoint(ca_path=str(tmp_path / "missing.pem"))]
    with pytest.raises(ConfigError) as caught:
        ssl_contexts_for(configs, listed=listed)
    assert caught.value.option == option
