"""An OAuth 2.1 authorization server for the MCP tests, built on Authlib's AuthorizationServer and its
client credentials grant, served as a Starlette app (Authlib has no Starlette server integration, so the
small request adapter below stands in for one).

It issues RS256-signed JWT access tokens (RFC 9068 style: ``aud`` is the ``resource`` of the request,
RFC 8707) to the clients of :data:`CLIENTS`, authenticated with ``client_secret_basic``,
``client_secret_post`` or ``private_key_jwt`` (RFC 7523, Authlib's JWTBearerClientAssertion). Its metadata
(RFC 8414) is at ``/.well-known/oauth-authorization-server``; ``/stats`` counts token requests per client.
:class:`JwtVerifier` is the token verifier of the MCP servers that accept these tokens.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import jwt
from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import ClientCredentialsGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import import_key
from mcp.server.auth.provider import AccessToken
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

SCOPE = "mcp:read"
# client id -> (secret or None, auth method, public key file in the cert dir or None, token lifetime shift)
CLIENTS: dict[str, dict[str, Any]] = {
    "corvid-basic": {"secret": "basic-secret-7d1e", "method": "client_secret_basic"},
    "corvid-post": {"secret": "post-secret-2b8a", "method": "client_secret_post"},
    "corvid-jwt-rsa": {"key": "jwt-rsa.pub", "method": "private_key_jwt"},
    "corvid-jwt-ec": {"key": "jwt-ec.pub", "method": "private_key_jwt"},
    # Tokens whose exp lies an hour in the past though expires_in says an hour: a clock an hour apart.
    "corvid-stale": {"secret": "stale-secret-41c0", "method": "client_secret_basic", "shift": -7200},
}
LIFETIME = 3600
SIGNING_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


class Client(ClientMixin):
    def __init__(self, client_id: str, spec: dict[str, Any], cert_dir: Path | None):
        self.client_id = client_id
        self.spec = spec
        key_file = cert_dir / spec["key"] if spec.get("key") and cert_dir else None
        self.public_key = key_file.read_text() if key_file and key_file.exists() else None

    def get_client_id(self):
        return self.client_id

    def check_client_secret(self, client_secret):
        return self.spec.get("secret") is not None and client_secret == self.spec["secret"]

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.spec["method"]

    def check_grant_type(self, grant_type):
        return grant_type == "client_credentials"

    def get_allowed_scope(self, scope):
        return " ".join(s for s in (scope or SCOPE).split() if s == SCOPE)


class PrivateKeyJwt(JWTBearerClientAssertion):
    CLIENT_AUTH_METHOD = "private_key_jwt"

    def __init__(self, audiences):
        super().__init__(validate_jti=True)
        self.audiences = audiences
        self.seen: set[str] = set()

    def get_audiences(self):
        return self.audiences()

    def validate_jti(self, claims, jti):
        if jti in self.seen:
            return False
        self.seen.add(jti)
        return True

    def resolve_client_public_key(self, client):
        return import_key(client.public_key)


class ResourceClientCredentials(ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS: ClassVar[list[str]] = ["client_secret_basic", "client_secret_post", "private_key_jwt"]

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        client = self.request.client
        now = int(time.time()) + client.spec.get("shift", 0)
        server = self.server
        claims = {
            "iss": server.issuer,
            "sub": client.client_id,
            "client_id": client.client_id,
            "aud": self.request.payload.data.get("resource") or server.issuer,
            "scope": client.get_allowed_scope(scope),
            "iat": now,
            "exp": now + LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        token = jwt.encode(claims, SIGNING_KEY, algorithm="RS256")
        return {"access_token": token, "token_type": "Bearer", "expires_in": LIFETIME, "scope": claims["scope"]}


class FormRequest(OAuth2Request):
    """What Authlib needs of a request: method, URL, headers and the form, read beforehand."""

    def __init__(self, method: str, url: str, headers, form: dict[str, str]):
        super().__init__(method, url, headers=headers)
        self._form = form
        self.payload = BasicOAuth2Payload(form)

    @property
    def form(self):
        return self._form

    @property
    def args(self):
        return {}


class CorvidAuthorizationServer(AuthorizationServer):
    def __init__(self, cert_dir: Path | None):
        super().__init__(scopes_supported=[SCOPE])
        self.issuer = ""
        self.clients = {cid: Client(cid, spec, cert_dir) for cid, spec in CLIENTS.items()}
        self.token_requests: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.register_grant(ResourceClientCredentials)
        self.register_client_auth_method(
            "private_key_jwt", PrivateKeyJwt(lambda: [self.issuer + "/token", self.issuer])
        )

    def query_client(self, client_id):
        return self.clients.get(client_id)

    def save_token(self, token, request):
        return None

    def send_signal(self, name, *args, **kwargs):
        return None

    def create_oauth2_request(self, request):
        return request

    def handle_response(self, status, body, headers):
        return Response(json.dumps(body), status_code=status, headers=dict(headers), media_type="application/json")


def authorization_server_app(cert_dir: Path | None) -> tuple[Starlette, CorvidAuthorizationServer]:
    """The app and its server object; set ``server.issuer`` once the URL is known."""
    server = CorvidAuthorizationServer(cert_dir)

    async def metadata(request: Request):
        return JSONResponse(
            {
                "issuer": server.issuer,
                "token_endpoint": server.issuer + "/token",
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                    "private_key_jwt",
                ],
                "token_endpoint_auth_signing_alg_values_supported": ["RS256", "ES256"],
                "scopes_supported": [SCOPE],
                "response_types_supported": ["token"],
            }
        )

    async def token(request: Request):
        form = dict(parse_qsl((await request.body()).decode()))
        client_id = form.get("client_id") or ("basic" if "authorization" in request.headers else "?")
        with server.lock:
            server.token_requests["all"] += 1
            server.token_requests[client_id] += 1
        oauth_request = FormRequest(request.method, str(request.url), request.headers, form)
        return server.create_token_response(oauth_request)

    async def stats(request: Request):
        with server.lock:
            return JSONResponse(dict(server.token_requests))

    app = Starlette(
        routes=[
            Route("/.well-known/oauth-authorization-server", metadata),
            Route("/token", token, methods=["POST"]),
            Route("/stats", stats),
        ]
    )
    return app, server


class JwtVerifier:
    """Token verifier of the MCP servers: a JWT signed by the authorization server; the SDK's bearer
    middleware then checks its expiry and that its resource (``aud``) is the server's own URL."""

    def __init__(self, issuer: str):
        self.issuer = issuer

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            claims = jwt.decode(
                token,
                SIGNING_KEY.public_key(),
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            return None
        return AccessToken(
            token=token,
            client_id=claims["client_id"],
            scopes=claims.get("scope", "").split(),
            expires_at=int(claims["exp"]),
            resource=claims.get("aud") if isinstance(claims.get("aud"), str) else None,
        )
