"""keys.jws: our compact JWS signer produces tokens joserfc verifies, with the exact header."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from authserver.keys.jws import compact_header, sign_compact, verify_compact


def segment(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    return dict(json.loads(urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.mark.parametrize(
    ("alg", "key"),
    [
        ("ES256", ECKey.generate_key("P-256", private=True)),
        ("RS256", RSAKey.generate_key(2048, private=True)),
    ],
)
def test_signed_tokens_verify_with_the_public_key(alg: str, key: ECKey | RSAKey) -> None:
    claims = {"iss": "https://id.example", "sub": "é-unicode", "aud": ["a", "b"], "exp": 2}

    token = sign_compact(claims, key, alg=alg, kid="k1", typ="at+jwt")

    public = type(key).import_key(key.as_dict(private=False))
    decoded = jwt.decode(token, public, algorithms=[alg])
    assert decoded.header == {"typ": "at+jwt", "alg": alg, "kid": "k1"}
    assert decoded.claims == claims
    assert "=" not in token


def test_es256_signatures_are_raw_r_and_s_not_der() -> None:
    key = ECKey.generate_key("P-256", private=True)
    token = sign_compact({"a": 1}, key, alg="ES256", kid="k", typ="JWT")
    signature = token.split(".")[2]
    assert len(urlsafe_b64decode(signature + "=" * (-len(signature) % 4))) == 64


def test_a_tampered_payload_fails_verification() -> None:
    key = ECKey.generate_key("P-256", private=True)
    header, _, signature = sign_compact(
        {"scope": "read"}, key, alg="ES256", kid="k", typ="JWT"
    ).split(".")
    forged = sign_compact({"scope": "admin"}, key, alg="ES256", kid="k", typ="JWT").split(".")[1]
    public = ECKey.import_key(key.as_dict(private=False))
    with pytest.raises(Exception, match="signature"):
        jwt.decode(f"{header}.{forged}.{signature}", public, algorithms=["ES256"])


def test_other_algorithms_are_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        sign_compact({}, ECKey.generate_key("P-256", private=True), alg="HS256", kid="k", typ="JWT")


EC_KEY = ECKey.generate_key("P-256", private=True)
RSA_KEY = RSAKey.generate_key(2048, private=True)


@pytest.mark.parametrize(("alg", "key"), [("ES256", EC_KEY), ("RS256", RSA_KEY)])
def test_verify_compact_accepts_what_joserfc_signed(alg: str, key: ECKey | RSAKey) -> None:
    """The verifier against joserfc's own signer, not only against ours."""
    claims = {"iss": "https://id.example", "sub": "s", "exp": 2}
    token = jwt.encode({"alg": alg, "typ": "at+jwt", "kid": "k"}, claims, key)
    public = type(key).import_key(key.as_dict(private=False))

    assert compact_header(token) == {"alg": alg, "typ": "at+jwt", "kid": "k"}
    assert verify_compact(token, public, alg) == claims


def test_verify_compact_refuses_a_tampered_payload_or_signature() -> None:
    token = sign_compact({"scope": "read"}, EC_KEY, alg="ES256", kid="k", typ="JWT")
    header, _, signature = token.split(".")
    forged = sign_compact({"scope": "admin"}, EC_KEY, alg="ES256", kid="k", typ="JWT").split(".")[1]
    flipped = signature[:-2] + ("AA" if signature[-2:] != "AA" else "BB")

    assert verify_compact(f"{header}.{forged}.{signature}", EC_KEY, "ES256") is None
    assert verify_compact(f"{header}.{token.split('.')[1]}.{flipped}", EC_KEY, "ES256") is None
    assert verify_compact(token + "=", EC_KEY, "ES256") is None
    assert verify_compact(token.replace(".", ".!", 1), EC_KEY, "ES256") is None


def test_each_algorithm_verifies_only_with_its_own_key_type() -> None:
    """RFC 8725 section 2.1: no algorithm confusion, no `none`, no HMAC with a public key."""
    es = sign_compact({"a": 1}, EC_KEY, alg="ES256", kid="k", typ="JWT")
    rs = sign_compact({"a": 1}, RSA_KEY, alg="RS256", kid="k", typ="JWT")

    assert verify_compact(es, RSA_KEY, "ES256") is None
    assert verify_compact(rs, EC_KEY, "RS256") is None
    assert verify_compact(es, EC_KEY, "RS256") is None
    assert verify_compact(es, EC_KEY, "none") is None
    assert verify_compact(es, EC_KEY, "HS256") is None


def test_a_header_that_is_not_a_json_object_is_no_header() -> None:
    assert compact_header("a.b") is None
    assert compact_header("bm90IGpzb24.e30.x") is None  # "not json"
    assert compact_header("WzFd.e30.x") is None  # [1]
