"""The monitoring UIs through the lab's edge: edge1's :443 (published on 127.0.0.1:8443) serves
Prometheus on prometheus.edge1 and Alertmanager on alertmanager.edge1, both on mon1, reached by
the edge over HTTPS verified against the lab CA (inventories/lab/group_vars/edge).

Never open: the edge adds no authentication of its own and passes the client's Authorization
header through, so Prometheus's and Alertmanager's own basic auth answers. Without credentials
(or with wrong ones) every path is 401; with the lab's (read from the inventory and its vault,
as tests/lab/test_monitoring.py reads them) the APIs answer 200. The client connects to
127.0.0.1:8443 with each UI's name as SNI and Host, verifies the edge's certificate for that
name with the lab CA, and sees TLS 1.3.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl

import pytest
from conftest import ROOT
from test_monitoring import mon1_settings

pytestmark = pytest.mark.lab

CA = ROOT / ".cache/pki/lab/ca.crt"
EDGE = ("127.0.0.1", 8443)
# UI: (server name on the edge, an API path that answers 200 with JSON once authenticated).
UIS = {
    "prometheus": ("prometheus.edge1", "/api/v1/status/buildinfo"),
    "alertmanager": ("alertmanager.edge1", "/api/v2/status"),
}


@pytest.fixture(scope="module")
def context() -> ssl.SSLContext:
    if not CA.is_file():
        pytest.skip(f"{CA} is missing: the lab's site CA is made by `make lab`")
    return ssl.create_default_context(cafile=str(CA))


@pytest.fixture(scope="module")
def credentials(context) -> dict[str, tuple[str, str]]:
    """UI: (user, password) of the lab inventory (Alertmanager's is its admin web user)."""
    settings = mon1_settings()
    return {ui: tuple(settings[ui]) for ui in UIS}


def through_edge(
    context: ssl.SSLContext, server_name: str, path: str, user_password: tuple[str, str] | None = None
) -> dict:
    """GET `path` from the edge's site `server_name` (SNI and Host), optionally with basic auth."""
    raw = socket.create_connection(EDGE, timeout=10)
    sock = context.wrap_socket(raw, server_hostname=server_name)
    connection = http.client.HTTPSConnection(server_name, EDGE[1], context=context, timeout=10)
    connection.sock = sock
    headers = {}
    if user_password:
        token = base64.b64encode(":".join(user_password).encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        return {
            "status": response.status,
            "headers": {name.lower(): value for name, value in response.getheaders()},
            "body": response.read(),
            "tls": sock.version(),
        }
    finally:
        connection.close()


@pytest.mark.parametrize("ui", UIS)
def test_without_credentials_every_path_is_refused(context, credentials, ui):
    server_name, api = UIS[ui]
    user, password = credentials[ui]
    for path in ("/", api):
        for attempt in (None, (user, password + "-wrong"), ("nobody", password)):
            answer = through_edge(context, server_name, path, attempt)
            assert answer["status"] == 401, (ui, path, attempt and attempt[0], answer["status"], answer["body"][:200])
            # The UI's own challenge, passed back by the edge: a browser asks for the credentials.
            assert answer["headers"].get("www-authenticate", "").startswith("Basic"), answer["headers"]
            assert answer["tls"] == "TLSv1.3"


def test_prometheus_answers_with_the_lab_credentials(context, credentials):
    server_name, api = UIS["prometheus"]
    answer = through_edge(context, server_name, api, credentials["prometheus"])
    assert answer["status"] == 200, answer["body"][:300]
    assert answer["tls"] == "TLSv1.3"
    buildinfo = json.loads(answer["body"])
    assert buildinfo["status"] == "success", buildinfo
    assert buildinfo["data"]["version"], buildinfo


def test_alertmanager_answers_with_the_lab_credentials(context, credentials):
    server_name, api = UIS["alertmanager"]
    answer = through_edge(context, server_name, api, credentials["alertmanager"])
    assert answer["status"] == 200, answer["body"][:300]
    assert answer["tls"] == "TLSv1.3"
    status = json.loads(answer["body"])
    assert status["versionInfo"]["version"], status
    assert status["cluster"]["status"], status


@pytest.mark.parametrize("ui", UIS)
def test_the_edge_serves_tls13_only_for_the_ui_name(context, ui):
    """The handshake above verified the edge's certificate for the UI's name (check_hostname);
    TLS 1.2 is refused on the same name."""
    server_name, _ = UIS[ui]
    old = ssl.create_default_context(cafile=str(CA))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(EDGE, timeout=10) as raw,
        pytest.raises(ssl.SSLError),
        old.wrap_socket(raw, server_hostname=server_name),
    ):
        pass
