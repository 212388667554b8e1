"""The resource_metadata URL a 401 names is checked like every other discovered URL before it is fetched:
http(s) only, https unless oauth.allow_http, with a host."""

from __future__ import annotations

import pytest
from mcp_scripted import check, send_response
from test_oauth import World, oauth


class NamingWorld(World):
    """The MCP endpoint's 401 names ``named`` as its resource_metadata."""

    named = None

    def handle(self, request, conn):
        if request.path == "/mcp" and self.named is not None:
            www = f'Bearer error="invalid_token", resource_metadata="{self.named}"'
            send_response(conn, 401, b"", {"WWW-Authenticate": www})
            return None
        return super().handle(request, conn)


@pytest.fixture
def nworld(scripted):
    return NamingWorld(scripted)


@pytest.mark.parametrize(
    ("named", "allow_http", "reason"),
    [
        ("ftp://127.0.0.1/meta", True, "needs an http:// or https:// scheme"),
        ("/.well-known/oauth-protected-resource/mcp", True, "needs an http:// or https:// scheme"),
        ("http:///meta", True, "has no host"),
        ("http://127.0.0.1:1/meta", False, "is not an https:// URL"),
    ],
)
def test_an_unusable_resource_metadata_url_fails_discovery_without_a_request(nworld, named, allow_http, reason):
    nworld.named = named
    res = check(nworld.url, oauth=oauth(allow_http=allow_http))
    assert res["failed_stage"] == "auth_discovery", res
    assert "resource_metadata of the server's WWW-Authenticate header cannot be used" in res["error"]
    assert reason in res["error"] and "TypeError" not in res["error"]
    assert nworld.gets() == [] and nworld.token_posts == []


def test_a_resource_metadata_url_on_the_endpoints_own_origin_may_be_http(nworld):
    nworld.named = f"{nworld.base}/.well-known/oauth-protected-resource/mcp"
    res = check(nworld.url, oauth=oauth(allow_http=False))
    # fetched, as the well-known URLs of the endpoint would be; the http authorization server it names is not
    assert nworld.gets() == ["/.well-known/oauth-protected-resource/mcp"], res
    assert res["error"].startswith("the protected resource metadata names http://"), res["error"]
