"""OAuth URLs in results redacted, the token cache keyed by the client credential, Last-Event-ID values that
cannot be sent refused before a request, NaN and Infinity refused in OAuth documents."""

from __future__ import annotations

import json

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.runner import run_checks
from mcp_scripted import check, end_chunks, mcp_handler, send_chunk, send_json, start_sse
from test_leaks import TokenWorld
from test_oauth import World, oauth


@pytest.fixture
def world(scripted):
    return World(scripted)


def test_issuer_and_resource_in_results_are_redacted(world):
    issuer = f"http://carol:aspw-0078@127.0.0.1:{world.port}/?t=ASECRET-9"
    resource = world.url + "?tenant=RSECRET-3"
    res = check(world.url, oauth=oauth(token_url=world.base + "/token", authorization_server=issuer, resource=resource))
    assert res["healthy"], res
    assert res["oauth"]["issuer"] == f"http://127.0.0.1:{world.port}/?t=REDACTED"
    assert res["oauth"]["resource"] == world.url + "?tenant=REDACTED"
    text = json.dumps(res)
    for secret in ("aspw-0078", "ASECRET-9", "RSECRET-3", "carol"):
        assert secret not in text


class PickyWorld(World):
    """The token endpoint refuses the client secret "wrong-secret-1" (client_secret_post)."""

    def handle(self, request, conn):
        if request.path == "/token" and b"client_secret=wrong-secret-1" in request.body:
            self.token_posts.append(request)
            send_json(conn, {"error": "invalid_client"}, status=401)
            return None
        return super().handle(request, conn)


def test_clients_with_the_same_id_and_other_secrets_share_neither_tokens_nor_refusals(scripted):
    world = PickyWorld(scripted)
    configs = [
        {
            "url": world.url,
            "name": "wrong",
            "oauth": oauth(client_secret="wrong-secret-1", auth_method="client_secret_post"),
        },
        {
            "url": world.url,
            "name": "right",
            "oauth": oauth(client_secret="right-secret-2", auth_method="client_secret_post"),
        },
    ]
    wrong, right = run_checks(configs, workers=1)
    assert wrong["failed_stage"] == "token" and "invalid_client" in wrong["error"], wrong
    assert right["healthy"] and right["oauth"]["token_source"] == "fetched", right
    # the other order: a token fetched with one secret does not serve the other
    wrong, right = run_checks(configs[::-1], workers=1)[::-1]
    assert right["healthy"] and wrong["failed_stage"] == "token", (right, wrong)
    assert len(world.token_posts) == 4


def test_the_same_credential_still_shares_its_token(world):
    configs = [{"url": world.url, "name": f"e{i}", "oauth": oauth()} for i in range(3)]
    results = run_checks(configs, workers=1)
    assert all(r["healthy"] for r in results) and len(world.token_posts) == 1


@pytest.mark.parametrize(
    ("event_id", "reason"),
    [
        ("e" * 1025, "longer than 1024 characters"),
        ("id\x01x", "control character"),
        ("id\u20acx", "outside Latin-1"),
    ],
    ids=["long", "control", "euro"],
)
def test_an_event_id_that_cannot_be_sent_back_is_not_resumed(scripted, event_id, reason):
    def tools_list(request, conn):
        start_sse(conn)
        send_chunk(conn, f"id: {event_id}\nretry: 10\ndata: \n\n".encode())
        end_chunks(conn)

    server = scripted(mcp_handler(**{"tools/list": tools_list}))
    res = check(server.url())
    assert res["failed_stage"] == "list", res
    assert "event id it handed out cannot be sent back" in res["error"] and reason in res["error"]
    assert res["resumptions"] == 0
    assert [r for r in server.requests if r.method == "GET"] == []


def test_a_latin1_event_id_is_sent_back(scripted):
    state = {}

    def tools_list(request, conn):
        state["request"] = request
        start_sse(conn)
        send_chunk(conn, "id: s-\u00e91\nretry: 10\ndata: \n\n".encode())
        end_chunks(conn)

    def get(request, conn):
        start_sse(conn)
        message = {"jsonrpc": "2.0", "id": state["request"].rpc_id, "result": {"tools": []}}
        send_chunk(conn, b"data: " + json.dumps(message).encode() + b"\n\n")
        end_chunks(conn)

    server = scripted(mcp_handler(**{"tools/list": tools_list, "GET": get}))
    res = check(server.url())
    assert res["up"] and res["resumptions"] == 1, res


@pytest.mark.parametrize("number", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_token_answer_with_a_non_finite_number_is_refused(scripted, number):
    world = TokenWorld(scripted)
    world.token_raw = b'{"access_token": "tok-nan-0123456789", "token_type": "Bearer", "expires_in": ' + number + b"}"
    res = check(world.url, oauth=oauth())
    assert res["failed_stage"] == "token", res
    assert "is not a JSON object with the token (invalid JSON)" in res["error"]
    assert "tok-nan" not in json.dumps(res)
