"""_mcp/jws.py: private_key_jwt assertions signed with the standard library, verified with cryptography."""

from __future__ import annotations

import base64
import json

import pytest
from ansible_collections.corvid.platform.plugins.module_utils._mcp.jws import (
    KeyProblem,
    load_private_key,
    sign_jwt,
    unverified_claims,
)
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

CLAIMS = {"iss": "corvid-jwt", "sub": "corvid-jwt", "aud": "https://as.example/token", "jti": "j-1", "exp": 2}


def b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def pem(key, fmt) -> str:
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def split(token: str):
    header, claims, signature = token.split(".")
    return json.loads(b64decode(header)), json.loads(b64decode(claims)), f"{header}.{claims}".encode(), signature


@pytest.fixture(scope="module")
def rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_rs256_verifies(rsa_key, fmt):
    token = sign_jwt(load_private_key(pem(rsa_key, fmt)), CLAIMS, key_id="k1")
    header, claims, signing_input, signature = split(token)
    assert header == {"alg": "RS256", "typ": "JWT", "kid": "k1"} and claims == CLAIMS
    rsa_key.public_key().verify(b64decode(signature), signing_input, padding.PKCS1v15(), hashes.SHA256())


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_es256_verifies_and_is_deterministic(fmt):
    key = ec.generate_private_key(ec.SECP256R1())
    signing_key = load_private_key(pem(key, fmt))
    token = sign_jwt(signing_key, CLAIMS)
    header, _claims, signing_input, signature = split(token)
    assert header["alg"] == "ES256" and "kid" not in header
    raw = b64decode(signature)
    assert len(raw) == 64
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.public_key().verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        key.public_key().verify(der, signing_input + b"x", ec.ECDSA(hashes.SHA256()))
    assert sign_jwt(signing_key, CLAIMS) == token  # RFC 6979: no random source


def test_bad_keys_say_why_without_key_material(tmp_path):
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - refused on purpose
    p384 = ec.generate_private_key(ec.SECP384R1())
    encrypted = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    ).decode()
    cases = [
        ("not a key at all", "no -----BEGIN"),
        ("-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----", "not valid base64"),
        ("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----", "parse"),
        (pem(small, serialization.PrivateFormat.PKCS8), "1024 bits"),
        (pem(p384, serialization.PrivateFormat.PKCS8), "P-256"),
        (encrypted, "encrypted"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "CERTIFICATE, not a private key"),
    ]
    for text, fragment in cases:
        with pytest.raises(KeyProblem) as caught:
            load_private_key(text)
        assert fragment in str(caught.value), (fragment, str(caught.value))
        assert "AAAA" not in str(caught.value)


def test_unverified_claims():
    payload = base64.urlsafe_b64encode(b'{"aud":"x"}').decode().rstrip("=")
    assert unverified_claims(f"a.{payload}.c") == {"aud": "x"}
    assert unverified_claims("opaque-token") is None
    assert unverified_claims("a.!!.c") is None
