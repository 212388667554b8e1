"""Every preflight message of the nginx role (the runner is tests/tools/preflight_cases.py)."""

from __future__ import annotations

from pathlib import Path

from preflight_cases import PreflightCases, assert_argument_error, run_role_preflight

SITE = {
    "name": "agent",
    "server_names": ["agent.test"],
    "tls_certificate": "/etc/corvid/pki/edge.fullchain.crt",
    "tls_certificate_key": "/etc/corvid/pki/private/edge.key",
    "locations": [{"path": "/", "upstream": "api"}],
}
POOL = {"name": "api", "servers": [{"address": "app1", "port": 8000}]}
# Stands for nginx.org's key: preflight only checks that a key is given, once and armoured.
KEY = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBFtest\n-----END PGP PUBLIC KEY BLOCK-----\n"
NGINX_ORG = {"nginx_repository": "nginx.org"}


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
    "nginx_org_without_key": (NGINX_ORG, "nginx_repository is nginx.org but no signing key is given"),
    "nginx_org_two_keys": (
        {**NGINX_ORG, "nginx_org_signing_key": KEY, "nginx_org_signing_key_file": "/etc/hostname"},
        "nginx_org_signing_key and nginx_org_signing_key_file are both set",
    ),
    "nginx_org_key_not_armoured": (
        {**NGINX_ORG, "nginx_org_signing_key": "mQINBFtest"},
        "nginx_org_signing_key must be an ASCII-armoured OpenPGP public key",
    ),
    "nginx_org_key_url_before_armour": (
        {**NGINX_ORG, "nginx_org_signing_key": "https://keys.example/k.asc#" + KEY},
        "nginx_org_signing_key must be an ASCII-armoured OpenPGP public key",
    ),
    "nginx_org_key_file_relative": (
        {**NGINX_ORG, "nginx_org_signing_key_file": "README.md"},
        'nginx_org_signing_key_file "README.md" is not a file on the controller',
    ),
    "nginx_plain_listen_not_an_address": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(plain_http_listen=["127.999.1.1.1:8090"])]},
        "plain_http_listen[0] 127.999.1.1.1:8090 is not on the loopback interface",
    ),
    "nginx_org_key_file_missing": (
        {**NGINX_ORG, "nginx_org_signing_key_file": "/nonexistent/nginx_signing.asc"},
        'nginx_org_signing_key_file "/nonexistent/nginx_signing.asc" is not a file on the controller',
    ),
    "nginx_org_key_file_not_armoured": (
        {**NGINX_ORG, "nginx_org_signing_key_file": "/etc/os-release"},
        "is not an ASCII-armoured OpenPGP public key",
    ),
    "nginx_org_suite_mismatch": (
        {**NGINX_ORG, "nginx_org_signing_key": KEY, "nginx_org_repository_suite": "jammy"},
        'nginx_org_repository_suite is "jammy" but this host runs Debian',
    ),
    "nginx_org_bad_url": (
        {**NGINX_ORG, "nginx_org_signing_key": KEY, "nginx_org_repository_url": "ftp://nginx.org/packages/debian"},
        "nginx_org_repository_url must be an http(s) URL",
    ),
    "nginx_plain_listen_not_loopback": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(plain_http_listen=["0.0.0.0:8090"])]},
        "nginx_sites[0] (agent): plain_http_listen[0] 0.0.0.0:8090 is not on the loopback interface",
    ),
    "nginx_plain_listen_without_address": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(plain_http_listen=["8090"])]},
        "nginx_sites[0] (agent): plain_http_listen[0] must be one IP address and a port",
    ),
    "nginx_plain_listen_injection": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(plain_http_listen=["127.0.0.1:8090 ssl; return 200"])]},
        "nginx_sites[0] (agent): plain_http_listen[0] must be one IP address and a port",
    ),
    "nginx_plain_listen_on_a_tls_port": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(plain_http_listen=["127.0.0.1:443"])]},
        "nginx_sites[0] (agent): plain_http_listen[0] port 443 is taken",
    ),
    "nginx_resolver_injection": (
        {"nginx_resolvers": ["127.0.0.53 valid=1s; return 200"]},
        "nginx_resolvers[0] must be one IP address or host name",
    ),
    "nginx_trusted_certificate_relative": (
        {"nginx_upstreams": [POOL], "nginx_sites": [site(tls_trusted_certificate="ca.crt")]},
        "nginx_sites[0] (agent): tls_trusted_certificate must be an absolute path",
    ),
    "nginx_tls_pool_servers_of_two_names": (
        {
            "nginx_upstreams": [
                {
                    "name": "ui",
                    "tls": True,
                    "servers": [{"address": "mon1", "port": 9090}, {"address": "mon2", "port": 9090}],
                }
            ]
        },
        "nginx_upstreams[0] (ui): tls is on but its servers do not share one host name (mon1, mon2)",
    ),
    "nginx_tls_pool_ip_address": (
        {"nginx_upstreams": [{"name": "ui", "tls": True, "servers": [{"address": "10.0.0.5", "port": 9090}]}]},
        "nginx_upstreams[0] (ui): tls is on but its servers do not share one host name (10.0.0.5)",
    ),
    "nginx_tls_settings_without_tls": (
        {"nginx_upstreams": [{**POOL, "tls_server_name": "app1"}]},
        "nginx_upstreams[0] (api): tls_trusted_certificate and tls_server_name are for an HTTPS pool: set tls: true",
    ),
    "nginx_tls_trusted_certificate_relative": (
        {"nginx_upstreams": [{**POOL, "tls": True, "tls_trusted_certificate": "ca.crt"}]},
        "nginx_upstreams[0] (api): tls_trusted_certificate must be an absolute path",
    ),
    "nginx_tls_server_name_injection": (
        {"nginx_upstreams": [{**POOL, "tls": True, "tls_server_name": "app1; proxy_ssl_verify off"}]},
        "nginx_upstreams[0] (api): tls_server_name must be one host name",
    ),
    "nginx_site_header_injection": (
        {
            "nginx_upstreams": [POOL],
            "nginx_sites": [site(security_headers={"Content-Security-Policy": 'x"; return 200 "pwned'})],
        },
        'nginx_sites[0] (agent): security_headers "Content-Security-Policy"',
    ),
}

# host name: variables that pass.
GOOD: dict[str, dict] = {
    "nginx_good": {"nginx_upstreams": [POOL], "nginx_sites": [SITE]},
    "nginx_good_ocsp_override": {
        "nginx_upstreams": [POOL],
        "nginx_sites": [site(ocsp_stapling=False, tls_trusted_certificate="/etc/corvid/pki/ca.crt")],
    },
    "nginx_good_nginx_org": {**NGINX_ORG, "nginx_org_signing_key": KEY},
    "nginx_good_plain_listen_loopback": {
        "nginx_upstreams": [POOL],
        "nginx_sites": [site(plain_http_listen=["127.0.0.1:8090", "[::1]:8090"])],
    },
    "nginx_good_tls_pool": {
        "nginx_upstreams": [
            {"name": "prometheus", "tls": True, "servers": [{"address": "mon1", "port": 9090}]},
            {
                "name": "alertmanager",
                "tls": True,
                "tls_server_name": "alertmanager.lab",
                "tls_trusted_certificate": "/etc/corvid/pki/ca.crt",
                "servers": [{"address": "10.0.0.5", "port": 9093}, {"address": "10.0.0.6", "port": 9093}],
            },
        ],
        "nginx_sites": [
            site(
                locations=[{"path": "/", "upstream": "prometheus"}],
                security_headers={"Content-Security-Policy": "default-src 'self'", "Referrer-Policy": ""},
            )
        ],
    },
    "nginx_good_plain_listen_allowed": {
        "nginx_plain_http_allowed": True,
        "nginx_upstreams": [POOL],
        "nginx_sites": [site(plain_http_listen=["0.0.0.0:8090"])],
    },
}


def org_key_file(workdir: Path) -> dict:
    """nginx.org's key from a file of the run's directory."""
    key_file = workdir / "nginx_signing.asc"
    key_file.write_text(KEY)
    return {**NGINX_ORG, "nginx_org_signing_key_file": str(key_file)}


PREFLIGHT = PreflightCases("nginx", CASES, {**GOOD, "nginx_good_nginx_org_key_file": org_key_file}, check_ran=True)
preflight = PREFLIGHT.fixture("preflight_nginx")
test_each_problem_fails_with_its_own_message = PREFLIGHT.problem_test()
test_good_variables_pass = PREFLIGHT.good_test()


def test_unknown_tls_protocol_fails_in_the_argument_spec(tmp_path):
    """The role itself, limited to its preflight tag on localhost: the argument spec names it."""
    process, failed = run_role_preflight(tmp_path, "nginx", {"nginx_tls_protocols": ["TLSv1.3", "SSLv3"]})
    assert_argument_error(process, failed, "nginx_tls_protocols", "SSLv3")


def test_unknown_repository_fails_in_the_argument_spec(tmp_path):
    process, failed = run_role_preflight(tmp_path, "nginx", {"nginx_repository": "nginx.com"})
    assert_argument_error(process, failed, "nginx_repository", "nginx.com")
