"""_mcp/oauth.py and oauth_options.py: discovery and its fallbacks, the token request in every client
authentication method, the run's token cache, and the option checks - against a scripted server on 127.0.0.1
that plays both the MCP server and the authorization server."""

from __future__ import annotations

import base64
import json
import threading
from urllib.parse import parse_qsl

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import CheckError, ConfigError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.jws import unverified_claims
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth import (
    OAuthSession,
    Token,
    auth_params,
    authorization_server_urls,
    covers,
    protected_resource_urls,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth_options import validate_oauth
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import Deadline
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from mcp_scripted import check, mcp_handler, send_json, send_response

SECRET = "s3cr3t-client-9f1"


def jwt_like(claims: dict) -> str:
    part = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJub25lIn0.{part}.sig"


class World:
    """One scripted server: an MCP endpoint at /mcp that wants a token it issued, protected resource
    metadata, authorization server metadata and a token endpoint. Tests change the attributes to misbehave."""

    def __init__(self, scripted):
        self.port = None
        self.tokens: list[str] = []
        self.accepted: set[str] = set()
        self.token_posts: list = []
        self.prm_paths = {"/.well-known/oauth-protected-resource/mcp"}
        self.as_paths = {"/.well-known/oauth-authorization-server"}
        self.issuer_path = ""
        self.challenge = True
        self.token_error = None
        self.expires_in = 3600
        self.token_maker = None
        self.prm_resource = None
        self.lock = threading.Lock()
        self.server = scripted(self.handle)
        self.port = self.server.port
        self.mcp = mcp_handler()

    @property
    def base(self):
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self):
        return self.base + "/mcp"

    def handle(self, request, conn):
        path = request.path
        if path in self.prm_paths and request.method == "GET":
            send_json(
                conn,
                {
                    "resource": self.prm_resource or self.url,
                    "authorization_servers": [self.base + self.issuer_path],
                    "scopes_supported": ["mcp:read"],
                },
            )
        elif path in self.as_paths and request.method == "GET":
            send_json(
                conn,
                {
                    "issuer": self.base + self.issuer_path,
                    "token_endpoint": self.base + "/token",
                    "grant_types_supported": ["client_credentials"],
                },
            )
        elif path == "/token":
            self.token_posts.append(request)
            if self.token_error:
                send_json(conn, self.token_error, status=401)
                return None
            with self.lock:
                token = self.token_maker() if self.token_maker else f"tok-{len(self.tokens) + 1}-abcdef"
                self.tokens.append(token)
                self.accepted.add(token)
            send_json(conn, {"access_token": token, "token_type": "Bearer", "expires_in": self.expires_in})
        elif path == "/mcp":
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.accepted:
                www = 'Bearer error="invalid_token", error_description="token refused"'
                if self.challenge:
                    www += f', resource_metadata="{self.base}/.well-known/oauth-protected-resource/mcp"'
                send_response(conn, 401, b'{"error": "invalid_token"}', {"WWW-Authenticate": www})
                return None
            return self.mcp(request, conn)
        else:
            send_response(conn, 404)
        return None

    def form(self, index=-1):
        return dict(parse_qsl(self.token_posts[index].body.decode()))

    def gets(self):
        return [r.path for r in self.server.requests if r.method == "GET"]


@pytest.fixture
def world(scripted):
    return World(scripted)


def oauth(**extra):
    config = {"client_id": "corvid-monitor", "client_secret": SECRET, "allow_http": True}
    config.update(extra)
    return validate_oauth(config)


def test_discovery_from_the_challenge_and_a_basic_token(world):
    res = check(world.url, oauth=oauth())
    assert res["healthy"], res
    info = res["oauth"]
    assert info == {
        "client_id": "corvid-monitor",
        "issuer": world.base,
        "token_endpoint": world.base + "/token",
        "auth_method": "client_secret_basic",
        "resource": world.url,
        "scopes": ["mcp:read"],
        "token_source": "fetched",
    }
    form = world.form()
    assert form == {"grant_type": "client_credentials", "scope": "mcp:read", "resource": world.url}
    basic = base64.b64encode(f"corvid-monitor:{SECRET}".encode()).decode()
    assert world.token_posts[0].headers["authorization"] == f"Basic {basic}"
    assert world.gets() == ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-authorization-server"]
    assert res["latency_ms"]["auth_discovery"] > 0 and res["latency_ms"]["token"] > 0
    text = json.dumps(res)
    assert SECRET not in text and basic not in text and world.tokens[0] not in text


def test_protected_resource_metadata_well_known_fallback(world):
    world.challenge = False  # a 401 without resource_metadata
    world.prm_paths = {"/.well-known/oauth-protected-resource"}
    res = check(world.url, oauth=oauth())
    assert res["healthy"], res
    assert world.gets()[:2] == ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]


def test_authorization_server_metadata_openid_fallbacks(world):
    world.issuer_path = "/tenant"
    world.as_paths = {"/tenant/.well-known/openid-configuration"}
    res = check(world.url, oauth=oauth())
    assert res["healthy"], res
    assert world.gets()[1:] == [
        "/.well-known/oauth-authorization-server/tenant",
        "/.well-known/openid-configuration/tenant",
        "/tenant/.well-known/openid-configuration",
    ]


def test_missing_metadata_fails_discovery(world):
    world.as_paths = set()
    res = check(world.url, oauth=oauth())
    assert not res["up"] and res["failed_stage"] == "auth_discovery", res
    assert "no authorization server metadata found" in res["error"]
    assert "/.well-known/openid-configuration (HTTP 404)" in res["error"]
    assert world.token_posts == []
    world.prm_paths = set()
    res = check(world.url, oauth=oauth())
    assert res["failed_stage"] == "auth_discovery" and "no protected resource metadata found" in res["error"]


def test_metadata_for_another_resource_is_refused(world):
    world.prm_resource = "http://127.0.0.1:1/other"
    res = check(world.url, oauth=oauth())
    assert res["failed_stage"] == "auth_discovery" and "is for the resource http://127.0.0.1:1/other" in res["error"]
    assert world.token_posts == []


def test_a_discovered_http_token_endpoint_needs_allow_http(world):
    res = check(world.url, oauth=oauth(allow_http=False))
    assert res["failed_stage"] == "auth_discovery", res
    assert "is not an https:// URL (oauth.allow_http allows http for a lab)" in res["error"]
    assert world.token_posts == []


def test_token_endpoint_error_code_and_description(world):
    world.token_error = {"error": "invalid_client", "error_description": f"bad secret {SECRET}"}
    res = check(world.url, oauth=oauth())
    assert not res["up"] and res["failed_stage"] == "token", res
    assert "refused the request with HTTP 401: invalid_client (bad secret ********)" in res["error"]
    assert res["oauth_error"] == {"error": "invalid_client", "error_description": "bad secret ********"}
    assert SECRET not in json.dumps(res)


def test_client_secret_post(world):
    res = check(world.url, oauth=oauth(auth_method="client_secret_post", scopes=["a", "b"]))
    assert res["healthy"], res
    assert "authorization" not in world.token_posts[0].headers
    form = world.form()
    assert form["client_id"] == "corvid-monitor" and form["client_secret"] == SECRET and form["scope"] == "a b"
    assert res["oauth"]["auth_method"] == "client_secret_post" and SECRET not in json.dumps(res)


def test_private_key_jwt(world, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    path = tmp_path / "client.key"
    path.write_text(pem)
    config = validate_oauth({"client_id": "corvid-jwt", "private_key": str(path), "allow_http": True})
    res = check(world.url, oauth=config)
    assert res["healthy"] and res["oauth"]["auth_method"] == "private_key_jwt", res
    form = world.form()
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = unverified_claims(form["client_assertion"])
    assert claims["iss"] == claims["sub"] == "corvid-jwt" and claims["aud"] == world.base + "/token"
    assert claims["exp"] - claims["iat"] == 60 and len(claims["jti"]) == 32
    assert form["client_assertion"] not in json.dumps(res)


def test_one_token_serves_every_endpoint_of_the_run(world):
    configs = [{"url": world.url, "name": f"e{i}", "timeout": 5.0, "oauth": oauth()} for i in range(12)]
    results = run_checks(configs, workers=6)
    assert all(r["healthy"] for r in results), [r["error"] for r in results]
    assert len(world.token_posts) == 1
    sources = sorted(r["oauth"]["token_source"] for r in results)
    assert sources == ["cached"] * 11 + ["fetched"]
    # metadata documents were fetched once for the run too
    assert world.gets().count("/.well-known/oauth-authorization-server") == 1


def test_a_cached_token_the_server_refuses_is_replaced_once(world):
    session = OAuthSession()
    first = run_checks([{"url": world.url, "oauth": oauth()}], oauth_session=session)[0]
    assert first["healthy"]
    world.accepted.clear()  # the server forgets the token (revoked, say)
    second = run_checks([{"url": world.url, "oauth": oauth()}], oauth_session=session)[0]
    assert second["healthy"], second
    assert second["oauth"]["token_source"] == "fetched" and len(world.tokens) == 2 == session.token_requests
    third = run_checks([{"url": world.url, "oauth": oauth()}], oauth_session=session)[0]
    assert third["healthy"] and third["oauth"]["token_source"] == "cached" and len(world.tokens) == 2


def test_an_expired_token_is_fetched_anew(world):
    world.expires_in = 0
    session = OAuthSession()
    for _round in range(2):
        assert run_checks([{"url": world.url, "oauth": oauth()}], oauth_session=session)[0]["healthy"]
    assert len(world.tokens) == 2


def test_a_fresh_token_refused_says_what_its_claims_say(world):
    world.token_maker = lambda: jwt_like({"aud": "https://elsewhere.example/mcp", "exp": 1000})
    world.accepted = set()
    original = world.handle

    def refuse_all(request, conn):
        if request.path == "/mcp":
            world.accepted.clear()
        return original(request, conn)

    world.server.handler = refuse_all
    res = check(world.url, oauth=oauth())
    assert not res["up"] and res["failed_stage"] == "initialize" and res["http_status"] == 401, res
    assert "refused a freshly issued access token from " + world.base in res["error"]
    assert "issued for the audience https://elsewhere.example/mcp, not " + world.url in res["error"]
    assert "expired" in res["error"] and "clocks" in res["error"]
    assert len(world.token_posts) == 1  # one fresh token, refused: no second try


def test_token_url_skips_discovery(world):
    res = check(world.url, oauth=oauth(token_url=world.base + "/token"))
    assert res["healthy"], res
    assert world.gets() == [] and world.form()["resource"] == world.url


def test_session_shares_values_keeps_answered_failures_and_replaces_stale_ones():
    session = OAuthSession()
    deadline = Deadline(5)
    calls = []

    def produce():
        calls.append(1)
        return Token(f"t{len(calls)}", 3600)

    first, made = session.shared("k", produce, deadline)
    again, made_again = session.shared("k", produce, deadline)
    assert made and not made_again and again is first
    renewed, made = session.shared("k", produce, deadline, stale=first)
    assert made and renewed.access_token == "t2"
    expired, made = session.shared("k", produce, deadline, usable=lambda t: False)
    assert made and expired.access_token == "t3"

    def refused():
        error = CheckError("token", "invalid_client")
        error.answered = True
        raise error

    for _round in range(2):
        with pytest.raises(CheckError):
            session.shared("bad", refused, deadline)
    assert session._values["bad"].message == "invalid_client"


def test_token_expiry_with_a_clock():
    now = [100.0]
    token = Token("t", 60, clock=lambda: now[0])
    assert not token.expired()
    now[0] = 153.9
    assert not token.expired()
    now[0] = 154.0  # 60 s less a tenth
    assert token.expired()
    assert not Token("t", None).expired()


def test_url_helpers():
    assert protected_resource_urls("https://h.example:8443/api/mcp/") == [
        "https://h.example:8443/.well-known/oauth-protected-resource/api/mcp",
        "https://h.example:8443/.well-known/oauth-protected-resource",
    ]
    assert protected_resource_urls("https://u:p@h.example/") == [
        "https://h.example/.well-known/oauth-protected-resource"
    ]
    assert authorization_server_urls("https://as.example") == [
        "https://as.example/.well-known/oauth-authorization-server",
        "https://as.example/.well-known/openid-configuration",
    ]
    assert covers("https://H.example:443/", "https://h.example/mcp")
    assert covers("https://h.example/mcp", "https://h.example/mcp/")
    assert not covers("https://h.example/mc", "https://h.example/mcp")
    assert not covers("http://h.example/mcp", "https://h.example/mcp")
    params = auth_params('Bearer error="invalid_token", error_description="a \\"b\\", c", scope=mcp')
    assert params == {"error": "invalid_token", "error_description": 'a "b", c', "scope": "mcp"}


@pytest.mark.parametrize(
    ("config", "option", "fragment"),
    [
        ({"client_secret": "x", "private_key": "-----BEGIN PRIVATE KEY-----"}, "oauth.private_key", "cannot be"),
        ({}, "oauth.client_secret", "or oauth.private_key is required"),
        ({"client_secret": "x", "scopes": "mcp"}, "oauth.scopes", "must be a list"),
        ({"client_secret": "x", "scopes": ["a", 1]}, "oauth.scopes", "must be a list"),
        ({"client_secret": "x", "token_url": "http://as.example/token"}, "oauth.token_url", "oauth.allow_http"),
        ({"client_secret": "x", "authorization_server": "http://as"}, "oauth.authorization_server", "https"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"}, "oauth.private_key", "parse"),
        ({"private_key": "/nonexistent/key.pem"}, "oauth.private_key", "cannot read the key file"),
        ({"client_secret": "x", "auth_method": "private_key_jwt"}, "oauth.auth_method", "needs oauth.private_key"),
        ({"client_secret": "x\n"}, "oauth.client_secret", "line break"),
        ({"client_id": "", "client_secret": "x"}, "oauth.client_id", "required"),
    ],
)
def test_bad_oauth_options_name_the_option(config, option, fragment):
    config = {"client_id": "c", **config}
    with pytest.raises(ConfigError) as caught:
        validate_oauth(config)
    assert caught.value.option == option and fragment in caught.value.message, str(caught.value)
    assert "AAAA" not in str(caught.value)


def test_oauth_and_bearer_token_exclude_each_other():
    with pytest.raises(ConfigError) as caught:
        validate_oauth({"client_id": "c", "client_secret": "x"}, bearer_token="t")
    assert caught.value.option == "oauth" and "bearer_token" in caught.value.message
    assert validate_oauth({"client_id": "c", "client_secret": "x", "token_url": "http://a/t", "allow_http": True})


def test_a_refusal_is_asked_once_and_reported_by_every_endpoint(world):
    world.token_error = {"error": "invalid_client", "error_description": "unknown client"}
    configs = [{"url": world.url, "name": f"e{i}", "timeout": 5.0, "oauth": oauth()} for i in range(6)]
    results = run_checks(configs, workers=3)
    assert len(world.token_posts) == 1
    for res in results:
        assert res["failed_stage"] == "token" and "invalid_client (unknown client)" in res["error"], res
        assert res["oauth_error"] == {"error": "invalid_client", "error_description": "unknown client"}
