# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""OAuth 2.1 client credentials for MCP endpoints, as the MCP authorization specification describes.

Discovery: the ``resource_metadata`` of a 401's ``WWW-Authenticate`` (else the well-known URLs of RFC 9728)
names the protected resource metadata, whose first authorization server (unless one is pinned) has its
metadata at the well-known URLs of RFC 8414 or OpenID Connect Discovery. The token request uses the
client credentials grant with ``client_secret_basic``, ``client_secret_post`` or ``private_key_jwt``
(RFC 7523), the ``resource`` parameter (RFC 8707) and the scopes of the options, the challenge or the
metadata. :class:`OAuthSession` keeps documents and tokens for the whole run, so one token request serves
every endpoint that shares the authorization server, the client, the resource and the scopes.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import base64
import hashlib
import json
import threading
import time
import uuid
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from ansible_collections.corvid.platform.plugins.module_utils._mcp.constants import USER_AGENT
from ansible_collections.corvid.platform.plugins.module_utils._mcp.errors import CheckError, ConfigError, ProtocolError
from ansible_collections.corvid.platform.plugins.module_utils._mcp.helpers import (
    excerpt,
    media_type,
    parse_www_authenticate,
    redact_url,
    validate_header_value,
    validate_url,
)
from ansible_collections.corvid.platform.plugins.module_utils._mcp.jws import sign_jwt, unverified_claims
from ansible_collections.corvid.platform.plugins.module_utils._mcp.oauth_options import https_url
from ansible_collections.corvid.platform.plugins.module_utils._mcp.plumbing import (
    Target,
    decode_json,
    error_text,
    read_body,
    refuse_constant,
)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_METADATA_BODY = 1024 * 1024
ASSERTION_SECONDS = 60
# A token is renewed this long before its end (at most a tenth of its lifetime).
EXPIRY_MARGIN = 30.0

# --------------------------------------------------------------------------- helpers


def auth_params(value):
    """The parameters of a (Bearer) challenge: ``Bearer error="x", scope="a b"`` -> {'error': 'x', 'scope': 'a b'}."""
    params = {}
    if not value:
        return params
    text = value.strip()
    scheme, _sep, rest = text.partition(" ")
    if "=" in scheme:
        rest = text
    index = 0
    while index < len(rest):
        while index < len(rest) and rest[index] in " ,\t":
            index += 1
        equals = rest.find("=", index)
        if equals == -1:
            break
        name = rest[index:equals].strip().lower()
        index = equals + 1
        if index < len(rest) and rest[index] == '"':
            out = []
            index += 1
            while index < len(rest) and rest[index] != '"':
                if rest[index] == "\\" and index + 1 < len(rest):
                    index += 1
                out.append(rest[index])
                index += 1
            index += 1
            params[name] = "".join(out)
        else:
            end = rest.find(",", index)
            end = len(rest) if end == -1 else end
            params[name] = rest[index:end].strip()
            index = end
    return params


def _origin_and_path(url):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], "", "", "")), parts.path.rstrip("/")


def protected_resource_urls(endpoint_url):
    """The well-known URLs of the endpoint's protected resource metadata (RFC 9728, section 3.1), in order."""
    origin, path = _origin_and_path(endpoint_url)
    urls = ["%s/.well-known/oauth-protected-resource%s" % (origin, path)] if path else []
    urls.append("%s/.well-known/oauth-protected-resource" % origin)
    return urls


def authorization_server_urls(issuer):
    """Where the metadata of ``issuer`` may be: RFC 8414 first, then OpenID Connect Discovery."""
    origin, path = _origin_and_path(issuer)
    urls = [
        "%s/.well-known/oauth-authorization-server%s" % (origin, path),
        "%s/.well-known/openid-configuration%s" % (origin, path),
    ]
    if path:
        urls.append("%s%s/.well-known/openid-configuration" % (origin, path))
    return urls


def _canonical(url):
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    port = parts.port
    netloc = host if port in (None, default) else "%s:%s" % (host, port)
    return parts.scheme.lower(), netloc, parts.path.rstrip("/")


def covers(resource, endpoint_url):
    """True when ``resource`` is the endpoint's URL, or a prefix of it that ends at a path segment."""
    try:
        res, end = _canonical(resource), _canonical(endpoint_url)
    except ValueError:
        return False
    return res[:2] == end[:2] and (end[2] == res[2] or end[2].startswith(res[2] + "/"))


class Token:
    """An access token and when to stop using it (monotonic seconds; None: until a server rejects it)."""

    def __init__(self, access_token, expires_in=None, clock=time.monotonic):
        self.access_token = access_token
        self.clock = clock
        self.expires_at = None
        if expires_in is not None:
            self.expires_at = clock() + expires_in - min(EXPIRY_MARGIN, expires_in / 10.0)

    def expired(self):
        return self.expires_at is not None and self.clock() >= self.expires_at


class Plan:
    """What discovery found: where to ask for a token, and for which resource and scopes."""

    def __init__(self, issuer, token_endpoint, resource, scopes, methods=None):
        self.issuer = issuer
        self.token_endpoint = token_endpoint
        self.resource = resource
        self.scopes = scopes
        self.methods = methods


# --------------------------------------------------------------------------- the run's caches


class OAuthSession:
    """Metadata documents and tokens shared by every endpoint of one run. Each document and each token is
    fetched by one endpoint at a time; the others wait for it (within their own deadlines) and reuse it.
    A failure the server answered with is kept too, so it is not asked again in the same run."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._values = {}
        self._busy = set()
        self._endpoint_keys = {}
        self.token_requests = 0

    def _wait(self, deadline):
        left = deadline.remaining()
        self._cond.wait(min(left, 1.0))

    def shared(self, key, produce, deadline, usable=None, stale=None):
        """The value cached for ``key`` (or the failure kept for it); else ``produce()``'s, stored.

        ``usable(value)`` false (an expired token) or ``value is stale`` (a rejected token) fetches anew.
        Returns (value, produced)."""
        with self._cond:
            if stale is not None and self._values.get(key) is stale:
                del self._values[key]
            while True:
                value = self._values.get(key)
                if isinstance(value, CheckError):  # a copy: several threads may raise it at once
                    raise answered(value.stage, value.message, getattr(value, "oauth_error", None))
                if value is not None and (usable is None or usable(value)):
                    return value, False
                if key not in self._busy:
                    break
                self._wait(deadline)
            self._busy.add(key)
        value = None
        try:
            value = produce()
        except CheckError as exc:
            if getattr(exc, "answered", False):
                value = exc
            raise
        finally:
            with self._cond:
                self._busy.discard(key)
                if value is not None:
                    self._values[key] = value
                self._cond.notify_all()
        return value, True

    def peek(self, key):
        with self._cond:
            value = self._values.get(key)
        return value if isinstance(value, Token) and not value.expired() else None

    def remember(self, endpoint_key, token_key):
        with self._cond:
            self._endpoint_keys[endpoint_key] = token_key

    def token_key_for(self, endpoint_key):
        with self._cond:
            return self._endpoint_keys.get(endpoint_key)

    def counted(self):
        with self._cond:
            self.token_requests += 1


def answered(stage, message, oauth_error=None):
    """A CheckError for an answer of the server (kept for the run, see OAuthSession.shared); ``oauth_error``
    is the OAuth error object of a token endpoint that refused."""
    error = CheckError(stage, message)
    error.answered = True
    error.oauth_error = oauth_error
    return error


def credential_digest(oauth):
    """A SHA-256 digest of the client credential (secret, or private key and key id): tells clients with
    the same id apart in the run's caches without keeping the secret in them."""
    if oauth.get("client_secret"):
        material = "secret\0%s" % oauth["client_secret"]
    else:
        material = "key\0%s\0%s" % (oauth.get("private_key") or "", oauth.get("private_key_id") or "")
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def json_problem(raw):
    """Where the JSON of a token answer breaks (never its text, which may hold the token), or ""."""
    try:
        json.loads(raw.decode("utf-8"), parse_constant=refuse_constant)
    except UnicodeDecodeError:
        return " (it is not UTF-8)"
    except RecursionError:
        return " (JSON nested too deep)"
    except json.JSONDecodeError as exc:
        return " (invalid JSON at character %s)" % exc.pos
    except ValueError:
        return " (invalid JSON)"  # NaN, Infinity, a number of too many digits
    return ""


# --------------------------------------------------------------------------- one endpoint


class EndpointAuth:
    """OAuth for one endpoint check: discovery and the token, through the check's HTTP client."""

    def __init__(self, session, oauth, endpoint_url, http, deadline, *, result):
        self.session = session
        self.oauth = oauth
        self.endpoint_url = endpoint_url
        self.http = http
        self.deadline = deadline
        self.result = result
        self.secrets = [oauth["client_secret"]] if oauth.get("client_secret") else []
        self.token = None
        self.plan = None
        self.stage = "auth_discovery"
        self.info = {
            "client_id": oauth["client_id"],
            "issuer": None,
            "token_endpoint": None,
            "auth_method": None,
            "resource": None,
            "scopes": None,
            "token_source": None,
        }
        result["oauth"] = self.info
        # Tokens and refusals are shared by the endpoints with the same client credential, never another.
        self.credential = credential_digest(oauth)

    def _endpoint_key(self):
        return (self.endpoint_url, self.oauth["client_id"], self.credential, tuple(self.oauth.get("scopes") or ()))

    def cached(self):
        """A token another endpoint of this run fetched for this URL and client, or None."""
        key = self.session.token_key_for(self._endpoint_key())
        token = self.session.peek(key) if key else None
        if token is not None:
            self.token = token
            self.info["token_source"] = "cached"  # noqa: S105 - where the token came from, not a token
        return token

    # -- HTTP

    def _fetch(self, method, url, body=None, headers=()):
        target = Target(url)
        sent = [("User-Agent", USER_AGENT), ("Accept", "application/json")]
        sent.extend(headers)
        try:
            conn, _reused = self.http.acquire(target)
        except CheckError as exc:  # connect and TLS failures are the authorization server's, at this stage
            raise CheckError(self.stage, "%s (authorization server)" % exc.message) from None
        try:
            response = conn.send(method, target, sent, body)
            raw = read_body(conn, response, MAX_METADATA_BODY)
        except BaseException:
            conn.close()
            raise
        self.http.release(conn, response)
        document = None
        if raw.strip().startswith(b"{") or media_type(response.getheader("Content-Type")) == "application/json":
            try:
                document = decode_json(raw, "the answer of %s" % redact_url(url), finite=True)
            except ProtocolError:
                document = None
        if not isinstance(document, dict):
            document = None
        return response.status, document, raw

    def _document(self, urls, what, check):
        """The first of ``urls`` that answers 200 with a JSON object ``check`` accepts (it returns a reason
        to refuse it, or None); every document is fetched once per run."""
        tried = []
        for url in urls:

            def produce(url=url):
                status, document, _raw = self._fetch("GET", url)
                if status != 200 or document is None:
                    return ("missing", "HTTP %s%s" % (status, "" if status != 200 else " without a JSON object"))
                return ("found", document)

            (state, value), _produced = self.session.shared(("doc", url), produce, self.deadline)
            if state == "found":
                problem = check(value)
                if problem is None:
                    return url, value
                raise answered("auth_discovery", "the %s at %s %s" % (what, redact_url(url), problem))
            tried.append("%s (%s)" % (redact_url(url), value))
        raise answered("auth_discovery", "no %s found: %s" % (what, "; ".join(tried)))

    # -- discovery

    def discover(self, www_authenticate):
        oauth = self.oauth
        challenge = auth_params(www_authenticate)
        allow_http = oauth["allow_http"]
        if oauth["token_url"]:
            resource = oauth["resource"] or self.endpoint_url
            scopes = oauth["scopes"] or (challenge.get("scope") or "").split() or None
            return Plan(oauth["authorization_server"], oauth["token_url"], resource, scopes)
        named = parse_www_authenticate(www_authenticate)
        if named:
            try:
                # As the well-known URLs of the endpoint, its own origin may be http; any other must be https.
                validate_url(named, "resource_metadata")
                if Target(named).origin != Target(self.endpoint_url).origin:
                    https_url(named, "resource_metadata", allow_http)
            except ConfigError as exc:
                raise answered(
                    "auth_discovery",
                    "the resource_metadata of the server's WWW-Authenticate header cannot be used: %s" % exc.message,
                ) from None
        urls = [named] if named else protected_resource_urls(self.endpoint_url)
        _url, prm = self._document(urls, "protected resource metadata", self._check_resource)
        resource = oauth["resource"] or prm["resource"]
        issuer = oauth["authorization_server"] or prm["authorization_servers"][0]
        try:
            https_url(issuer, "the authorization server", allow_http)
        except ConfigError as exc:
            raise answered("auth_discovery", "the protected resource metadata names %s" % exc.message) from None

        def check_server(document):
            published = document.get("issuer")
            if not isinstance(published, str) or published.rstrip("/") != issuer.rstrip("/"):
                return "is for issuer %r, not %s" % (document.get("issuer"), issuer)
            token_endpoint = document.get("token_endpoint")
            if not isinstance(token_endpoint, str):
                return "has no token_endpoint"
            try:
                https_url(token_endpoint, "its token_endpoint", allow_http)
            except ConfigError as exc:
                return "names %s" % exc.message
            grants = document.get("grant_types_supported")
            if isinstance(grants, list) and "client_credentials" not in grants:
                return "does not list the client_credentials grant"
            return None

        _url, metadata = self._document(
            authorization_server_urls(issuer), "authorization server metadata", check_server
        )
        scopes = oauth["scopes"] or (challenge.get("scope") or "").split() or None
        if scopes is None and isinstance(prm.get("scopes_supported"), list):
            scopes = [s for s in prm["scopes_supported"] if isinstance(s, str) and s and " " not in s] or None
        methods = metadata.get("token_endpoint_auth_methods_supported")
        methods = methods if isinstance(methods, list) else None
        return Plan(issuer, metadata["token_endpoint"], resource, scopes, methods)

    def _check_resource(self, document):
        resource = document.get("resource")
        servers = document.get("authorization_servers")
        if not isinstance(resource, str):
            return "has no resource"
        if not self.oauth["resource"] and not covers(resource, self.endpoint_url):
            return "is for the resource %s, not %s" % (redact_url(resource), redact_url(self.endpoint_url))
        if not self.oauth["authorization_server"] and (
            not isinstance(servers, list) or not servers or not isinstance(servers[0], str)
        ):
            return "names no authorization server"
        return None

    # -- token

    def _method(self, plan):
        oauth = self.oauth
        if oauth["auth_method"] != "auto":
            return oauth["auth_method"]
        if oauth.get("key") is not None:
            return "private_key_jwt"
        methods = plan.methods or []
        if "client_secret_basic" not in methods and "client_secret_post" in methods:
            return "client_secret_post"
        return "client_secret_basic"

    def request_token(self, plan, method):
        oauth = self.oauth
        form = [("grant_type", "client_credentials")]
        if plan.scopes:
            form.append(("scope", " ".join(plan.scopes)))
        if plan.resource:
            form.append(("resource", plan.resource))
        headers = [("Content-Type", "application/x-www-form-urlencoded")]
        if method == "client_secret_basic":
            pair = "%s:%s" % (quote(oauth["client_id"], safe=""), quote(oauth["client_secret"], safe=""))
            basic = base64.b64encode(pair.encode("utf-8")).decode("ascii")
            self.secrets.extend((basic, "Basic " + basic))
            headers.append(("Authorization", "Basic " + basic))
        elif method == "client_secret_post":
            form.extend((("client_id", oauth["client_id"]), ("client_secret", oauth["client_secret"])))
        else:
            now = int(time.time())
            claims = {
                "iss": oauth["client_id"],
                "sub": oauth["client_id"],
                "aud": plan.token_endpoint,
                "iat": now,
                "exp": now + ASSERTION_SECONDS,
                "jti": uuid.uuid4().hex,
            }
            assertion = sign_jwt(oauth["key"], claims, oauth["private_key_id"])
            self.secrets.append(assertion)
            form.extend(
                (("client_id", oauth["client_id"]), ("client_assertion_type", ASSERTION_TYPE)),
            )
            form.append(("client_assertion", assertion))
        self.session.counted()
        status, document, raw = self._fetch("POST", plan.token_endpoint, urlencode(form).encode("ascii"), headers)
        where = redact_url(plan.token_endpoint)
        if 200 <= status < 300 and (status != 200 or document is None):
            # A success answer carries the token: its body is never quoted, whatever its form.
            raise answered(
                "token",
                "the answer of the token endpoint %s (HTTP %s) is not a JSON object with the token%s"
                % (where, status, json_problem(raw)),
            )
        if status != 200 or document is None:
            error = (document or {}).get("error")
            oauth_error = None
            if isinstance(error, str):
                description = (document or {}).get("error_description")
                description = excerpt(description, self.secrets) if isinstance(description, str) else None
                oauth_error = {"error": error, "error_description": description}
                detail = error + (" (%s)" % description if description else "")
            else:
                detail = error_text(raw, self.secrets) or "no OAuth error in the answer"
            raise answered(
                "token",
                "the token endpoint %s refused the request with HTTP %s: %s" % (where, status, detail),
                oauth_error,
            )
        access_token = document.get("access_token")
        token_type = document.get("token_type")
        if not isinstance(access_token, str) or not access_token:
            raise answered("token", "the answer of the token endpoint %s has no access_token" % where)
        self.secrets.append(access_token)
        if not isinstance(token_type, str) or token_type.lower() != "bearer":
            raise answered("token", "the token endpoint %s issued a %r token, not a Bearer token" % (where, token_type))
        try:
            validate_header_value(access_token, "access_token", "the access token")
        except ConfigError:
            raise answered("token", "the access token from %s cannot be sent in an HTTP header" % where) from None
        expires_in = document.get("expires_in")
        if isinstance(expires_in, bool) or not isinstance(expires_in, (int, float)) or not 0 <= expires_in < 1e12:
            expires_in = None
        return Token(access_token, expires_in)

    def obtain(self, www_authenticate, call):
        """A token for this endpoint: discovery (stage auth_discovery) and the token (stage token), each
        shared with the other endpoints of the run. ``call(stage, doing, func, *args)`` runs a stage.

        Returns (token, fetched): fetched is true when this endpoint asked for it just now."""
        self.stage = "auth_discovery"
        plan = call("auth_discovery", "OAuth discovery", self.discover, www_authenticate)
        self.stage = "token"
        self.plan = plan
        method = self._method(plan)
        self.info.update(
            issuer=redact_url(plan.issuer) if plan.issuer else plan.issuer,
            token_endpoint=redact_url(plan.token_endpoint),
            auth_method=method,
            resource=redact_url(plan.resource) if plan.resource else plan.resource,
            scopes=plan.scopes,
        )
        scopes = tuple(plan.scopes or ())
        client = (self.oauth["client_id"], self.credential)
        key = ("token", plan.issuer, plan.token_endpoint, client, plan.resource, scopes)
        stale = self.token
        try:
            token, fetched = call(
                "token",
                "the token request",
                self.session.shared,
                key,
                lambda: self.request_token(plan, method),
                self.deadline,
                lambda value: not value.expired(),
                stale,
            )
        except CheckError as exc:
            if getattr(exc, "oauth_error", None):
                self.result["oauth_error"] = exc.oauth_error
            raise
        self.secrets.append(token.access_token)
        self.session.remember(self._endpoint_key(), key)
        self.token = token
        self.info["token_source"] = "fetched" if fetched else "cached"
        return token, fetched

    def rejected(self, failure):
        """The failure of a server that refused a freshly issued token, with what the token's claims say."""
        hints = []
        claims = unverified_claims(self.token.access_token if self.token else None) or {}
        audience = claims.get("aud")
        if audience is not None:
            audiences = audience if isinstance(audience, list) else [audience]
            if not any(isinstance(a, str) and covers(a, self.endpoint_url) for a in audiences):
                hints.append(
                    "it was issued for the audience %s, not %s"
                    % (", ".join(map(str, audiences)), redact_url(self.endpoint_url))
                )
        expiry = claims.get("exp")
        if isinstance(expiry, (int, float)) and not isinstance(expiry, bool) and expiry <= time.time():
            hints.append(
                "it expired %d s before this host's clock by its exp claim (are the clocks of the authorization "
                "server and this host apart?)" % (time.time() - expiry)
            )
        issuer = self.plan.issuer if self.plan and self.plan.issuer else "the authorization server"
        message = "the server refused a freshly issued access token from %s%s; %s" % (
            issuer,
            ": " + "; ".join(hints) if hints else "",
            failure.message,
        )
        return CheckError(
            failure.stage,
            message,
            http_status=failure.http_status,
            www_authenticate=failure.www_authenticate,
            resource_metadata=failure.resource_metadata,
        )
