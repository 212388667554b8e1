"""Secrets in what servers answer: masked before an excerpt is cut, what a cut leaves of one masked too,
encoded copies masked, and a token answer's body never quoted."""

from __future__ import annotations

import base64
import html
import json
from urllib.parse import quote, quote_plus

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import MASK, excerpt, secret_forms
from mcp_scripted import check, mcp_handler, send_json, send_response
from test_oauth import SECRET, World, oauth

TOKEN = "tok-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def leaked_parts(text, secret, shortest=4):
    """The prefixes of ``secret`` (``shortest`` characters or more) found in ``text``."""
    return [secret[:size] for size in range(shortest, len(secret) + 1) if secret[:size] in text]


def test_excerpt_masks_before_the_cut_and_what_the_cut_leaves():
    text = "x" * 190 + "Bearer " + TOKEN + " tail"
    shown = excerpt(text, [TOKEN, "Bearer " + TOKEN], 200)
    assert shown == "x" * 190 + MASK + " t"
    assert excerpt("abc " + TOKEN, [TOKEN], 200) == "abc " + MASK
    # a secret the server itself cut short: what is left of it at the cut is masked from 4 characters on
    assert excerpt("y" * 190 + TOKEN[:20], [TOKEN], 200) == "y" * 190 + MASK
    assert excerpt("y" * 196 + TOKEN[:20], [TOKEN], 200) == "y" * 196 + MASK
    assert excerpt("y" * 198 + TOKEN[:20], [TOKEN], 200) == "y" * 198 + TOKEN[:2]


@pytest.mark.parametrize("pad", [170, 175, 180, 185, 188])
def test_a_padded_error_page_does_not_leak_part_of_the_bearer_token(scripted, pad):
    def echo(request, conn):
        body = "x" * pad + "Headers: " + request.headers["authorization"]
        send_response(conn, 500, body.encode(), {"Content-Type": "text/plain"})

    server = scripted(mcp_handler(initialize=echo))
    res = check(server.url(), bearer_token=TOKEN)
    assert res["failed_stage"] == "initialize", res
    assert leaked_parts(json.dumps(res), TOKEN) == []


@pytest.mark.parametrize("pad", [160, 170, 180, 185])
def test_a_padded_error_page_does_not_leak_part_of_the_url_password(scripted, pad):
    password = "pw-0123456789abcdefghij"
    basic = base64.b64encode(f"monitor:{password}".encode()).decode()

    def echo(request, conn):
        body = "x" * pad + "Headers: " + request.headers["authorization"]
        send_response(conn, 500, body.encode(), {"Content-Type": "text/plain"})

    server = scripted(mcp_handler(initialize=echo))
    res = check(server.url().replace("127.0.0.1", f"monitor:{password}@127.0.0.1", 1))
    assert res["failed_stage"] == "initialize", res
    text = json.dumps(res)
    assert leaked_parts(text, basic) == [] and leaked_parts(text, password) == []


class TokenWorld(World):
    """The World of test_oauth, whose token endpoint can answer raw bytes."""

    token_raw = None
    token_status = 200
    token_type = "application/json"

    def handle(self, request, conn):
        if request.path == "/token" and self.token_raw is not None:
            self.token_posts.append(request)
            raw = self.token_raw(request) if callable(self.token_raw) else self.token_raw
            send_response(conn, self.token_status, raw, {"Content-Type": self.token_type})
            return None
        return super().handle(request, conn)


@pytest.fixture
def tworld(scripted):
    return TokenWorld(scripted)


@pytest.mark.parametrize("pad", [150, 170, 180, 185, 190])
def test_a_padded_error_description_does_not_leak_part_of_the_client_secret(tworld, pad):
    tworld.token_raw = lambda request: json.dumps(
        {"error": "invalid_client", "error_description": "x" * pad + "secret=" + SECRET}
    ).encode()
    tworld.token_status = 401
    res = check(tworld.url, oauth=oauth(auth_method="client_secret_post"))
    assert res["failed_stage"] == "token", res
    assert leaked_parts(json.dumps(res), SECRET) == []


@pytest.mark.parametrize("pad", [150, 170, 185])
def test_a_padded_plain_refusal_does_not_leak_part_of_the_basic_credentials(tworld, pad):
    tworld.token_raw = lambda request: ("x" * pad + "auth=" + request.headers["authorization"]).encode()
    tworld.token_status = 401
    tworld.token_type = "text/plain"
    res = check(tworld.url, oauth=oauth())
    assert res["failed_stage"] == "token", res
    basic = base64.b64encode(f"corvid-monitor:{SECRET}".encode()).decode()
    assert leaked_parts(json.dumps(res), basic) == []


@pytest.mark.parametrize(
    "body",
    [
        b"access_token=TOKEN-0123456789abcdef&token_type=bearer&expires_in=3600",
        b'{"access_token": "TOKEN-0123456789abcdef", "token_type": "Bearer",}',
        b'{"access_token": "TOKEN-0123456789abcdef", "token_type": "Bearer", "expires_in": ' + b"9" * 5000 + b"}",
        b'["TOKEN-0123456789abcdef"]',
    ],
    ids=["form", "trailing-comma", "huge-number", "array"],
)
def test_an_unparsable_token_answer_is_never_quoted(tworld, body):
    tworld.token_raw = body
    tworld.token_type = "application/x-www-form-urlencoded" if body.startswith(b"access") else "application/json"
    res = check(tworld.url, oauth=oauth())
    assert res["failed_stage"] == "token", res
    assert "is not a JSON object with the token" in res["error"]
    assert leaked_parts(json.dumps(res), "TOKEN-0123456789abcdef") == []


def test_a_token_in_a_201_answer_is_not_quoted(tworld):
    tworld.token_raw = b'{"access_token": "TOKEN-0123456789abcdef", "token_type": "Bearer"}'
    tworld.token_status = 201
    res = check(tworld.url, oauth=oauth())
    assert res["failed_stage"] == "token" and "(HTTP 201)" in res["error"], res
    assert "TOKEN-0123" not in json.dumps(res)


ODD_SECRET = "a/b+c&d=e f<g>\"h\\i'j-0123"


def test_secret_forms_cover_encodings():
    forms = secret_forms([ODD_SECRET])
    encoded = (quote(ODD_SECRET, safe=""), quote_plus(ODD_SECRET), html.escape(ODD_SECRET))
    encoded += (json.dumps(ODD_SECRET)[1:-1],)
    for form in encoded:
        assert form in forms
    assert forms == sorted(forms, key=len, reverse=True)


@pytest.mark.parametrize("method", ["client_secret_post", "client_secret_basic"])
def test_encoded_copies_of_the_client_secret_are_masked(tworld, method):
    encoded = [
        quote(ODD_SECRET, safe=""),
        quote_plus(ODD_SECRET),
        html.escape(ODD_SECRET),
        json.dumps(ODD_SECRET)[1:-1],
    ]

    def echo(request):
        description = f"body={request.body.decode()} | {' | '.join(encoded)}"
        return json.dumps({"error": "invalid_client", "error_description": description}).encode()

    tworld.token_raw = echo
    tworld.token_status = 400
    res = check(tworld.url, oauth=oauth(client_secret=ODD_SECRET, auth_method=method))
    assert res["failed_stage"] == "token", res
    text = json.dumps(res["oauth_error"]) + res["error"]
    for form in [ODD_SECRET, *encoded]:
        assert form not in text and form not in res["oauth_error"]["error_description"], form


def test_encoded_copies_of_the_bearer_token_are_masked(scripted):
    token = "tok/with+odd&chars=0123456789"

    def echo(request, conn):
        body = f"seen {quote(token, safe='')} and {quote_plus(token)} and {html.escape(token)}"
        send_json(conn, {"jsonrpc": "2.0", "id": request.rpc_id, "error": {"code": -1, "message": body}})

    server = scripted(mcp_handler(initialize=echo))
    res = check(server.url(), bearer_token=token)
    assert res["failed_stage"] == "initialize", res
    text = json.dumps(res)
    for form in (quote(token, safe=""), quote_plus(token), html.escape(token)):
        assert form not in text
