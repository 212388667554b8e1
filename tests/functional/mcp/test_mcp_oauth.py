"""corvid.platform.mcp_check through Ansible against an OAuth authorization server (Authlib, client
credentials, JWT access tokens, over TLS) in front of SDK MCP servers that want its tokens."""

from __future__ import annotations

import json
import re
import ssl
import urllib.request

import pytest
from conftest import HAVE_AUTHLIB, ROOT, metric_lines, run_module, run_playbook

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not HAVE_AUTHLIB, reason="the test authorization server needs Authlib"),
]

BASIC_SECRET = "basic-secret-7d1e"  # see oauth_server.CLIENTS
POST_SECRET = "post-secret-2b8a"
STALE_SECRET = "stale-secret-41c0"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")


@pytest.fixture
def token_requests(servers, certs):
    """A function returning how many token requests the authorization server answered, per client."""
    context = ssl.create_default_context(cafile=str(certs / "ca.pem"))

    def count() -> dict[str, int]:
        url = servers.url("oauth_as") + "/stats"
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310 - https only
            return json.loads(response.read())

    return count


def endpoint(servers, certs, name, client_id, kind="oauth_mcp", **oauth):
    return {
        "name": name,
        "url": servers.url(kind),
        "ca_path": str(certs / "ca.pem"),  # the authorization server speaks TLS with the test CA
        "oauth": {"client_id": client_id, **oauth},
    }


def test_every_client_authentication_method(servers, certs, token_requests):
    before = token_requests()
    key = certs / "jwt-ec.key"
    endpoints = [
        endpoint(servers, certs, "basic", "corvid-basic", client_secret=BASIC_SECRET),
        endpoint(servers, certs, "post", "corvid-post", client_secret=POST_SECRET, auth_method="client_secret_post"),
        endpoint(servers, certs, "jwt-rsa", "corvid-jwt-rsa", private_key=str(certs / "jwt-rsa.key")),
        endpoint(servers, certs, "jwt-ec", "corvid-jwt-ec", private_key=key.read_text()),  # PEM text, as from a vault
    ]
    run = run_module({"endpoints": endpoints, "failure_policy": "never"})
    assert run.rc == 0, run.stdout + run.stderr
    methods = {
        "basic": "client_secret_basic",
        "post": "client_secret_post",
        "jwt-rsa": "private_key_jwt",
        "jwt-ec": "private_key_jwt",
    }
    for name, method in methods.items():
        res = run.endpoint(name)
        assert res["healthy"], res
        info = res["oauth"]
        assert info["auth_method"] == method and info["token_source"] == "fetched"
        assert info["issuer"] == servers.url("oauth_as") + "/" and info["token_endpoint"].endswith("/token")
        assert info["resource"] == servers.url("oauth_mcp") and info["scopes"] == ["mcp:read"]
        assert res["latency_ms"]["auth_discovery"] > 0 and res["latency_ms"]["token"] > 0
    after = token_requests()
    assert after["all"] - before.get("all", 0) == 4


def test_each_failure_has_its_own_stage_and_message(servers, certs, token_requests):
    endpoints = [
        endpoint(servers, certs, "wrong-secret", "corvid-basic", client_secret="not-the-secret-5e"),
        endpoint(
            servers,
            certs,
            "wrong-audience",
            "corvid-basic",
            client_secret=BASIC_SECRET,
            resource="http://127.0.0.1:1/elsewhere",
        ),
        endpoint(servers, certs, "expired", "corvid-stale", client_secret=STALE_SECRET),
        endpoint(servers, certs, "no-metadata", "corvid-basic", kind="oauth_nometa", client_secret=BASIC_SECRET),
    ]
    run = run_module({"endpoints": endpoints, "failure_policy": "never"})
    assert run.rc == 0, run.stdout + run.stderr

    res = run.endpoint("wrong-secret")
    assert not res["up"] and res["failed_stage"] == "token", res
    assert "refused the request with HTTP 401: invalid_client" in res["error"]
    assert res["oauth_error"]["error"] == "invalid_client"

    res = run.endpoint("wrong-audience")
    assert not res["up"] and res["failed_stage"] == "initialize" and res["http_status"] == 401, res
    assert "refused a freshly issued access token" in res["error"]
    assert f"issued for the audience http://127.0.0.1:1/elsewhere, not {servers.url('oauth_mcp')}" in res["error"]

    res = run.endpoint("expired")
    assert not res["up"] and res["failed_stage"] == "initialize", res
    assert "refused a freshly issued access token" in res["error"]
    assert re.search(r"it expired 36\d\d s before this host's clock by its exp claim", res["error"]), res["error"]

    res = run.endpoint("no-metadata")
    assert not res["up"] and res["failed_stage"] == "auth_discovery", res
    assert "no authorization server metadata found" in res["error"]
    assert "/.well-known/oauth-authorization-server/nowhere (HTTP 404)" in res["error"]
    assert res["oauth"]["token_source"] is None

    stages = [run.endpoint(e["name"])["failed_stage"] for e in endpoints]
    assert stages == ["token", "initialize", "initialize", "auth_discovery"]


def test_one_token_serves_many_endpoints(servers, certs, token_requests):
    before = token_requests().get("corvid-post", 0)
    endpoints = [
        endpoint(servers, certs, f"e{i}", "corvid-post", client_secret=POST_SECRET, auth_method="client_secret_post")
        for i in range(20)
    ]
    run = run_module({"endpoints": endpoints, "workers": 8})
    assert run.rc == 0 and run.result["summary"]["healthy"] == 20, run.result.get("msg")
    assert token_requests().get("corvid-post", 0) - before == 1
    sources = [e["oauth"]["token_source"] for e in run.result["endpoints"]]
    assert sources.count("fetched") == 1 and sources.count("cached") == 19


def test_oauth_secrets_never_show(servers, certs, ansible_tmp):
    metrics = ansible_tmp / "mcp.prom"
    key_text = (certs / "jwt-rsa.key").read_text()
    endpoints = [
        endpoint(servers, certs, "basic", "corvid-basic", client_secret=BASIC_SECRET),
        endpoint(servers, certs, "jwt", "corvid-jwt-rsa", private_key=key_text),
        endpoint(servers, certs, "refused", "corvid-basic", client_secret="wrong-secret-88e1"),
    ]
    args = {"endpoints": endpoints, "failure_policy": "never", "textfile_path": str(metrics)}
    key_line = key_text.splitlines()[1]
    for callback in ("ansible.posix.json", "ansible.builtin.default"):
        run = run_module(args, "-vvv", "-e", "ansible_inject_invocation=true", callback=callback)
        output = run.stdout + run.stderr
        assert run.rc == 0, output
        for secret in (BASIC_SECRET, "wrong-secret-88e1", key_line):
            assert secret not in output, f"{secret} leaked with {callback}"
        assert not JWT.search(output), f"a token or an assertion leaked with {callback}"
    text = metrics.read_text()
    assert BASIC_SECRET not in text and not JWT.search(text)
    assert 'mcp_endpoint_healthy{endpoint="jwt"} 1' in metric_lines(metrics)


@pytest.mark.parametrize(
    ("oauth", "message"),
    [
        (
            {"client_id": "corvid-basic", "client_secret": "sekrit-1", "private_key": "-----BEGIN PRIVATE KEY-----"},
            "endpoints[0].oauth.private_key: cannot be combined with oauth.client_secret",
        ),
        (
            {"client_id": "corvid-basic", "client_secret": "sekrit-1", "token_url": "http://127.0.0.1:9/token"},
            "endpoints[0].oauth.token_url: http://127.0.0.1:9/token is not an https:// URL",
        ),
        (
            {"client_id": "corvid-basic", "client_secret": "sekrit-1", "scopes": "mcp:read"},
            "endpoints[0].oauth.scopes: must be a list",
        ),
        (
            {
                "client_id": "corvid-jwt-rsa",
                "private_key": "-----BEGIN PRIVATE KEY-----\nsekrit\n-----END PRIVATE KEY-----",
            },
            "endpoints[0].oauth.private_key: the key is not valid base64 PEM",
        ),
    ],
)
def test_bad_oauth_input_fails_before_any_request(servers, token_requests, oauth, message):
    before = token_requests()
    run = run_module({"endpoints": [{"url": servers.url("oauth_mcp"), "oauth": oauth}]}, "-vvv")
    assert run.rc != 0 and run.failed
    assert message in run.result["msg"], run.result["msg"]
    assert "endpoints" not in run.result
    assert "sekrit" not in run.stdout + run.stderr
    assert token_requests() == before


def test_health_playbook_with_an_oauth_endpoint(servers, certs, ansible_tmp):
    """The scheduled job (playbooks/mcp_health.yml, the mcp_health role) takes oauth per endpoint."""
    variables = {
        "mcp_health_hosts": "localhost",
        "ansible_become": False,
        "mcp_health_textfile_path": str(ansible_tmp / "mcp.prom"),
        "mcp_health_endpoints": [
            endpoint(servers, certs, "oauth", "corvid-basic", client_secret=BASIC_SECRET)
            | {"tls_min_version": "TLSv1.3"}
        ],
    }
    extra = ansible_tmp / "vars.json"
    extra.write_text(json.dumps(variables))
    completed = run_playbook(
        ROOT / "playbooks" / "mcp_health.yml", "-i", "localhost,", "-c", "local", "-e", f"@{extra}", "-v"
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    assert "1 of 1 MCP endpoints healthy" in output and "oauth: up" in output
    assert BASIC_SECRET not in output and not JWT.search(output)
