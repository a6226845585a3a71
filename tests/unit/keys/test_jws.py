"""keys.jws: our compact JWS signer produces tokens joserfc verifies, with the exact header."""

from __future__ import annotations

import json
from base64 import urlsafe_b64decode

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, RSAKey

from authserver.keys.jws import sign_compact


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
