"""Every preflight message of the nginx role (the runner lives in test_preflight.py)."""

from __future__ import annotations

import sys

import pytest
from test_preflight import run_preflight, run_role_on_localhost

SITE = {
    "name": "agent",
    "server_names": ["agent.test"],
    "tls_certificate": "/etc/corvid/pki/edge.fullchain.crt",
    "tls_certificate_key": "/etc/corvid/pki/private/edge.key",
    "locations": [{"path": "/", "upstream": "api"}],
}
POOL = {"name": "api", "servers": [{"address": "app1", "port": 8000}]}


def site(**changes):
    return {**SITE, **changes}


# host name: (host variables, the one expected message)
CASES: dict[str, tuple[dict, str]] = {
    "nginx_pool_bad_name": (
        {"nginx_upstreams": [POOL, {"name": "Bad Name", "servers": POOL["servers"]}]},
        'nginx_upstreams[1].name "Bad Name"',
    ),
    "nginx_pool_without_servers": (
        {"nginx_upstreams": [POOL, {"name": "empty", "servers": []}]},
        "nginx_upstreams[1] (empty) has no servers",
    ),
    "nginx_pool_server_without_port": (
        {"nginx_upstreams": [{"name": "api", "servers": [{"address": "app1", "port": 0}]}]},
        "nginx_upstreams[0].servers[0] needs an address (a host name or IP, nothing else) and a port",
    ),
    "nginx_pool_duplicate": ({"nginx_upstreams": [POOL, POOL]}, 'nginx_upstreams names must be unique: "api"'),
    "nginx_site_bad_name": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(name="../etc")]},
        "nginx_sites[0] (../etc): name must use lower-case letters",
    ),
    "nginx_site_without_names": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(server_names=[])]},
        "nginx_sites[0] (agent): server_names is empty",
    ),
    "nginx_certificate_without_key": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(tls_certificate_key="")]},
        "nginx_sites[0] (agent): tls_certificate and tls_certificate_key go together",
    ),
    "nginx_site_without_certificate": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(tls_certificate="", tls_certificate_key="")]},
        "nginx_sites[0] (agent): set tls_certificate and tls_certificate_key",
    ),
    "nginx_site_on_port_80": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(port=80)]},
        "nginx_sites[0] (agent): port must be a TCP port other than 80",
    ),
    "nginx_location_without_path": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(locations=[{"path": "", "upstream": "api"}])]},
        "nginx_sites[0] (agent).locations[0]: path is required",
    ),
    "nginx_location_unknown_pool": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(locations=[{"path": "/", "upstream": "apii"}])]},
        'nginx_sites[0] (agent).locations[0]: upstream "apii" is not in nginx_upstreams',
    ),
    "nginx_directive_without_semicolon": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(extra_directives=["gzip on"])]},
        'nginx_sites[0] (agent): extra directive "gzip on" must end with ";"',
    ),
    "nginx_same_name_and_port": (
        {"nginx_upstreams": [POOL], "nginx_sites": [SITE, site(name="other")]},
        "nginx_sites: two sites answer to agent.test:443",
    ),
    "nginx_site_duplicate": (
        {"nginx_upstreams": [POOL], "nginx_sites": [SITE, site(server_names=["b.test"])]},
        'nginx_sites names must be unique: "agent"',
    ),
    "nginx_pool_address_injection": (
        {"nginx_upstreams": [{"name": "api", "servers": [{"address": "app1:8001; server app2", "port": 8000}]}]},
        "nginx_upstreams[0].servers[0] needs an address",
    ),
    "nginx_pool_metrics_port": (
        {"nginx_upstreams": [{"name": "api", "servers": [{"address": "app1", "port": 8001}]}]},
        "port 8001 is the app's metrics port",
    ),
    "nginx_pool_weight_zero": (
        {"nginx_upstreams": [{"name": "api", "servers": [{"address": "app1", "port": 8000, "weight": 0}]}]},
        "nginx_upstreams[0].servers[0].weight must be 1 or more",
    ),
    "nginx_pool_fail_timeout_injection": (
        {
            "nginx_upstreams": [
                {"name": "api", "servers": [{"address": "a", "port": 1, "fail_timeout": "1s; server b:2"}]}
            ]
        },
        "nginx_upstreams[0].servers[0].fail_timeout must be a time",
    ),
    "nginx_server_name_injection": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(server_names=["agent.test; return 200 pwned"])]},
        "nginx_sites[0] (agent): server_names[0] must be one host name",
    ),
    "nginx_server_names_string": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(server_names="agent.test")]},
        "nginx_sites[0] (agent): server_names must be a list",
    ),
    "nginx_same_name_other_case": (
        {"nginx_upstreams": [POOL], "nginx_sites": [SITE, site(name="other", server_names=["AGENT.test"])]},
        "nginx_sites: two sites answer to agent.test:443",
    ),
    "nginx_path_injection": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(locations=[{"path": "/ { return 200 x; } location /x"}])]},
        "nginx_sites[0] (agent).locations[0]: path must be a URI path",
    ),
    "nginx_return_injection": (
        {
            "nginx_upstreams": [POOL],
            "nginx_sites": [site(locations=[{"path": "/", "return": "200 ok; add_header X 1"}])],
        },
        "nginx_sites[0] (agent).locations[0]: return must be a status",
    ),
    "nginx_header_value_injection": (
        {"nginx_security_headers": {"X-A": 'x\\"; return 302 https://evil.test/; add_header X-B \\"y'}},
        'nginx_security_headers "X-A"',
    ),
    "nginx_session_cache_injection": (
        {"nginx_tls_session_cache": "shared:x:10m; ssl_protocols TLSv1 TLSv1.2 TLSv1.3"},
        "nginx_tls_session_cache must be off, none",
    ),
    "nginx_curve_injection": ({"nginx_tls_ecdh_curves": ["X25519; ssl_protocols TLSv1"]}, "nginx_tls_ecdh_curves[0]"),
    "nginx_shutdown_timeout_injection": (
        {"nginx_worker_shutdown_timeout": "60s; user root"},
        "nginx_worker_shutdown_timeout must be a time",
    ),
    "nginx_log_rotate_injection": (
        {"nginx_log_rotate_size": "100M\n    firstaction\n        touch /tmp/x\n    endscript"},
        "nginx_log_rotate_size must be a size",
    ),
    "nginx_relative_webroot": ({"nginx_acme_webroot": "acme"}, "nginx_acme_webroot must be an absolute path"),
    "nginx_hsts_negative": ({"nginx_hsts_max_age": -1}, "nginx_hsts_max_age must be 0 or more"),
    "nginx_pool_name_trailing_newline": (
        {"nginx_upstreams": [{"name": "api\n", "servers": POOL["servers"]}]},
        'nginx_upstreams[0].name "api\\n"',
    ),
    "nginx_rate_zero": ({"nginx_rate_limit_per_minute": 0}, "nginx_rate_limit_per_minute must be at least 1"),
    "nginx_burst_negative": ({"nginx_rate_limit_burst": -1}, "nginx_rate_limit_burst must be 0 or more"),
    "nginx_stub_status_on_443": ({"nginx_stub_status_port": 443}, "nginx_stub_status_port must be a TCP port"),
    "nginx_no_tls_protocols": ({"nginx_tls_protocols": []}, "nginx_tls_protocols is empty"),
    "nginx_bad_body_size": ({"nginx_client_max_body_size": "huge"}, "nginx_client_max_body_size must be a size"),
}


@pytest.fixture(scope="module")
def preflight(tmp_path_factory):
    cases = {name: ("nginx", variables) for name, (variables, _) in CASES.items()}
    cases["nginx_good"] = ("nginx", {"nginx_upstreams": [POOL], "nginx_sites": [SITE]})
    return run_preflight(tmp_path_factory.mktemp("preflight_nginx"), cases)


@pytest.mark.parametrize("host", CASES)
def test_each_problem_fails_with_its_own_message(preflight, host):
    messages, output = preflight
    expected = CASES[host][1]
    assert host in messages, f"{host} did not fail its preflight:\n{output[-3000:]}"
    assert len(messages[host]) == 1, messages[host]
    assert expected in messages[host][0], messages[host]


def test_good_variables_pass(preflight):
    messages, _ = preflight
    assert "nginx_good" not in messages, messages.get("nginx_good")


def test_unknown_tls_protocol_fails_in_the_argument_spec(tmp_path):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_on_localhost(
        tmp_path,
        "- name: Edge\n  hosts: localhost\n  roles:\n    - role: corvid.platform.nginx\n",
        {"nginx_tls_protocols": ["TLSv1.3", "SSLv3"], "ansible_python_interpreter": sys.executable},
        "--tags",
        "nginx_preflight",
    )
    assert process.returncode != 0
    assert len(failed) == 1, failed
    errors = failed[0].get("argument_errors", [])
    assert any("nginx_tls_protocols" in error and "SSLv3" in error for error in errors), failed[0]
