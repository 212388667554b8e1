# -*- coding: utf-8 -*-
# Copyright (c) 2026, corvid platform engineering
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Signed JWTs (RFC 7515/7519) for ``private_key_jwt`` client authentication (RFC 7523), standard library only.

Reads unencrypted PEM private keys (PKCS#8 ``PRIVATE KEY``, PKCS#1 ``RSA PRIVATE KEY``, SEC 1
``EC PRIVATE KEY`` on P-256) and signs with RS256 (RSASSA-PKCS1-v1_5, SHA-256) or ES256 (ECDSA on P-256
with SHA-256, the nonce derived as RFC 6979 describes, so no random source is needed).

The arithmetic is Python's integers: correct, but not hardened against timing side channels. That suits a
health check that signs one short-lived assertion per run on a host it trusts; it is no general crypto library.

Private to the corvid.platform collection: not a public API, no compatibility promise.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # noqa: UP001 - the boilerplate ansible-test expects

import base64
import binascii
import hashlib
import hmac
import json
import re


class KeyProblem(ValueError):
    """The private key cannot be used; the message never contains key material."""


class _DerError(ValueError):
    pass


OID_RSA = "1.2.840.113549.1.1.1"
OID_EC = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
# DigestInfo prefix of SHA-256 (RFC 8017, section 9.2, note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")

# P-256 (FIPS 186-4, D.1.2.3)
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
A = P - 3
N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----(.*?)-----END \1-----", re.S)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- DER


def _tlv(data, offset):
    """(tag, value, next offset) of the DER element at ``offset``."""
    if offset + 2 > len(data):
        raise _DerError("truncated DER")
    tag = data[offset]
    length = data[offset + 1]
    offset += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or offset + count > len(data):
            raise _DerError("bad DER length")
        length = int.from_bytes(data[offset : offset + count], "big")
        offset += count
    if offset + length > len(data):
        raise _DerError("truncated DER")
    return tag, data[offset : offset + length], offset + length


def _children(value):
    items = []
    offset = 0
    while offset < len(value):
        tag, inner, offset = _tlv(value, offset)
        items.append((tag, inner))
    return items


def _sequence(data):
    tag, value, _end = _tlv(data, 0)
    if tag != 0x30:
        raise _DerError("not a DER SEQUENCE")
    return _children(value)


def _integer(item):
    tag, value = item
    if tag != 0x02:
        raise _DerError("expected a DER INTEGER")
    return int.from_bytes(value, "big")


def _oid(value):
    first = value[0]
    parts = [first // 40, first % 40]
    number = 0
    for byte in value[1:]:
        number = (number << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(number)
            number = 0
    return ".".join(str(part) for part in parts)


# --------------------------------------------------------------------------- keys


class SigningKey:
    """An RSA key (``n``, ``d``) or a P-256 key (``d``); ``alg`` is RS256 or ES256."""

    def __init__(self, alg, d, n=None):
        self.alg = alg
        self.d = d
        self.n = n


def _rsa_from_pkcs1(der):
    items = _sequence(der)
    if len(items) < 4:
        raise KeyProblem("not an RSA private key")
    n, d = _integer(items[1]), _integer(items[3])
    if n.bit_length() < 2048:
        raise KeyProblem("the RSA key has %d bits; at least 2048 are needed" % n.bit_length())
    return SigningKey("RS256", d, n)


def _ec_from_sec1(der, curve=None):
    items = _sequence(der)
    if len(items) < 2 or items[1][0] != 0x04:
        raise KeyProblem("not an EC private key")
    for tag, value in items[2:]:
        if tag == 0xA0:
            curve = _oid(_tlv(value, 0)[1])
    if curve != OID_P256:
        raise KeyProblem("only EC keys on the P-256 curve (ES256) are supported")
    d = int.from_bytes(items[1][1], "big")
    if not 0 < d < N:
        raise KeyProblem("the EC private key is out of range")
    return SigningKey("ES256", d)


def load_private_key(pem):
    """A SigningKey from PEM text; raises KeyProblem saying why it cannot be used."""
    if not isinstance(pem, str):
        raise KeyProblem("must be PEM text")
    match = PEM.search(pem)
    if match is None:
        raise KeyProblem("is not a PEM private key (no -----BEGIN ... PRIVATE KEY----- block)")
    kind = match.group(1)
    if "ENCRYPTED" in kind or "Proc-Type: 4,ENCRYPTED" in match.group(2):
        raise KeyProblem("is encrypted; give the key unencrypted (keep it in Ansible Vault instead)")
    try:
        der = base64.b64decode("".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyProblem("is not valid base64 PEM") from None
    try:
        if kind == "RSA PRIVATE KEY":
            return _rsa_from_pkcs1(der)
        if kind == "EC PRIVATE KEY":
            return _ec_from_sec1(der)
        if kind != "PRIVATE KEY":
            raise KeyProblem("is a %s, not a private key" % kind)
        items = _sequence(der)
        algorithm = _children(items[1][1])
        oid = _oid(algorithm[0][1])
        if items[2][0] != 0x04:
            raise KeyProblem("not a PKCS#8 private key")
        if oid == OID_RSA:
            return _rsa_from_pkcs1(items[2][1])
        if oid == OID_EC:
            curve = _oid(algorithm[1][1]) if len(algorithm) > 1 and algorithm[1][0] == 0x06 else None
            return _ec_from_sec1(items[2][1], curve)
        raise KeyProblem("has algorithm %s; only RSA (RS256) and P-256 EC (ES256) keys are supported" % oid)
    except (IndexError, _DerError) as exc:
        raise KeyProblem("does not parse as a private key (%s)" % (exc or "truncated")) from None


# --------------------------------------------------------------------------- signatures


def _rs256(key, message):
    size = (key.n.bit_length() + 7) // 8
    digest = SHA256_DIGEST_INFO + hashlib.sha256(message).digest()
    encoded = b"\x00\x01" + b"\xff" * (size - len(digest) - 3) + b"\x00" + digest
    return pow(int.from_bytes(encoded, "big"), key.d, key.n).to_bytes(size, "big")


def _point_add(p1, p2):
    """Add two points in affine coordinates (None is the point at infinity)."""
    if p1 is None:
        return p2
    if p2 is None:
        return p1
    x1, y1 = p1
    x2, y2 = p2
    if x1 == x2:
        if (y1 + y2) % P == 0:
            return None
        slope = (3 * x1 * x1 + A) * pow(2 * y1, P - 2, P) % P
    else:
        slope = (y2 - y1) * pow(x2 - x1, P - 2, P) % P
    x3 = (slope * slope - x1 - x2) % P
    return x3, (slope * (x1 - x3) - y1) % P


def _scalar_mult(k, point):
    result = None
    addend = point
    while k:
        if k & 1:
            result = _point_add(result, addend)
        addend = _point_add(addend, addend)
        k >>= 1
    return result


def _rfc6979_nonces(d, digest):
    """Deterministic ECDSA nonces for private key ``d`` and message hash ``digest`` (RFC 6979, 3.2)."""
    x = d.to_bytes(32, "big")
    h = (int.from_bytes(digest, "big") % N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = hmac.new(k, v + b"\x00" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    k = hmac.new(k, v + b"\x01" + x + h, hashlib.sha256).digest()
    v = hmac.new(k, v, hashlib.sha256).digest()
    while True:
        v = hmac.new(k, v, hashlib.sha256).digest()
        candidate = int.from_bytes(v, "big")
        if 0 < candidate < N:
            yield candidate
        k = hmac.new(k, v + b"\x00", hashlib.sha256).digest()
        v = hmac.new(k, v, hashlib.sha256).digest()


def _es256(key, message):
    digest = hashlib.sha256(message).digest()
    z = int.from_bytes(digest, "big")
    for nonce in _rfc6979_nonces(key.d, digest):
        point = _scalar_mult(nonce, (GX, GY))
        r = point[0] % N
        if r == 0:
            continue
        s = pow(nonce, N - 2, N) * (z + r * key.d) % N
        if s != 0:
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    raise AssertionError("unreachable")  # pragma: no cover


def sign_jwt(key, claims, key_id=None):
    """A compact JWS of ``claims`` signed with ``key``."""
    header = {"alg": key.alg, "typ": "JWT"}
    if key_id:
        header["kid"] = key_id
    signing_input = "%s.%s" % (
        b64url(json.dumps(header, separators=(",", ":")).encode("utf-8")),
        b64url(json.dumps(claims, separators=(",", ":")).encode("utf-8")),
    )
    sign = _rs256 if key.alg == "RS256" else _es256
    return "%s.%s" % (signing_input, b64url(sign(key, signing_input.encode("ascii"))))


def unverified_claims(token):
    """The claims of a JWT, unverified (only to explain why a server refused it), or None."""
    if not isinstance(token, str) or token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode("utf-8"))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None
