"""authserver.resource under hostile tokens: anything malformed is a 401 invalid_token, never a 500.

The tokens are signed with the issuer's real key (so they get past the signature), with
headers and claims of every JSON type, and as random text.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from flask import Flask, jsonify
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authserver.keys import current_keyring
from authserver.keys.jws import b64url
from authserver.resource import ResourceServer, TokenError

API = "https://api.example.com/"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
CLAIM_NAMES = ("iss", "sub", "aud", "exp", "nbf", "iat", "scope", "roles", "client_id", "jti")
HEADER_NAMES = ("typ", "alg", "kid", "cty", "crit", "jku", "jwk", "x5u")


@pytest.fixture
def resource_api(app: Flask) -> tuple[FlaskClient, ResourceServer]:
    """A Flask API guarded by a ResourceServer that reads the issuer's real JWKS."""
    issuer_client = app.test_client()
    issuer = app.config["AUTHSERVER"].issuer

    def fetch(url: str) -> Any:
        return issuer_client.get(url.removeprefix(issuer)).get_json()

    rs = ResourceServer(issuer=issuer, audience=API, fetch=fetch, refresh_interval=0)
    api = Flask("api")

    @api.get("/notes")
    @rs.require_token(scopes=["notes:read"], roles=["reader"])
    def notes() -> Any:
        return jsonify(ok=True)

    return api.test_client(), rs


def signed(header: dict[str, Any], claims: Any) -> str:
    """A compact JWS over `claims` with `header`, signed by the issuer's real ES256 key.

    Built by hand (RFC 7515 section 7.1): joserfc refuses to sign the odd headers this
    fuzzes, but a hostile issuer-side bug or a forged-then-leaked key would not.
    """
    kid, key = current_keyring().signing_key("ES256")
    protected = {"typ": "at+jwt", **header, "alg": "ES256", "kid": kid}
    head = b64url(json.dumps(protected).encode())
    body = b64url(json.dumps(claims).encode())
    signing_input = head + b"." + body
    r, s = decode_dss_signature(key.private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    return (signing_input + b"." + b64url(signature)).decode("ascii")


def valid_claims(app: Flask) -> dict[str, Any]:
    import time

    now = int(time.time())
    return {
        "iss": app.config["AUTHSERVER"].issuer,
        "sub": "someone",
        "aud": API,
        "exp": now + 60,
        "iat": now,
        "scope": "notes:read",
        "roles": ["reader"],
        "client_id": "c",
        "jti": "j",
    }


def check_answer(api_client: FlaskClient, rs: ResourceServer, token: str) -> None:
    """verify() returns claims or raises TokenError(401); the view answers 200, 401 or 403."""
    try:
        claims = rs.verify(token)
    except TokenError as error:
        assert error.status == 401
        assert error.error == "invalid_token"
    else:
        assert isinstance(claims, dict)
    response = api_client.get("/notes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code in (200, 401, 403), response.text
    if response.status_code == 401:
        assert response.get_json()["error"] == "invalid_token"


def test_a_typ_that_is_not_a_string_is_invalid_token(app: Flask, resource_api) -> None:
    api_client, rs = resource_api
    for typ in (1, None, ["at+jwt"], {"a": 1}, True):
        token = signed({"typ": typ}, valid_claims(app))
        with pytest.raises(TokenError) as refused:
            rs.verify(token)
        assert refused.value.status == 401
        assert (
            api_client.get("/notes", headers={"Authorization": f"Bearer {token}"}).status_code
            == 401
        )


def test_claims_of_the_wrong_type_are_invalid_token(app: Flask, resource_api) -> None:
    api_client, rs = resource_api
    for name, value in (
        ("roles", 5),
        ("roles", "reader"),
        ("scope", ["notes:read"]),
        ("sub", 7),
        ("exp", True),
        ("exp", "9999999999"),
        ("nbf", "soon"),
    ):
        token = signed({"typ": "at+jwt"}, {**valid_claims(app), name: value})
        with pytest.raises(TokenError):
            rs.verify(token)
        check_answer(api_client, rs, token)
    # A payload that is JSON but not an object.
    check_answer(api_client, rs, signed({"typ": "at+jwt"}, ["not", "an", "object"]))


def test_a_well_formed_token_still_passes(app: Flask, resource_api) -> None:
    api_client, _ = resource_api
    token = signed({"typ": "at+jwt"}, valid_claims(app))
    response = api_client.get("/notes", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text


@FUZZ
@given(
    header=st.dictionaries(st.sampled_from(HEADER_NAMES), JSON, max_size=4),
    changes=st.dictionaries(st.sampled_from(CLAIM_NAMES), JSON, max_size=4),
    dropped=st.sets(st.sampled_from(CLAIM_NAMES), max_size=3),
)
def test_signed_tokens_with_any_header_and_claims_never_500(
    app: Flask, resource_api, header: dict[str, Any], changes: dict[str, Any], dropped: set[str]
) -> None:
    api_client, rs = resource_api
    claims = {k: v for k, v in {**valid_claims(app), **changes}.items() if k not in dropped}
    try:
        token = signed(header, claims)
    except ValueError:
        return  # not serializable as JSON (e.g. NaN is, but circular data is not)
    check_answer(api_client, rs, token)


@FUZZ
@given(token=st.text(max_size=300) | st.from_regex(r"[A-Za-z0-9_=.\-]{0,200}", fullmatch=True))
def test_random_text_is_invalid_token(resource_api, token: str) -> None:
    api_client, rs = resource_api
    if not token.strip() or any(ch in token for ch in "\r\n\x00"):
        return  # not sendable in a header
    with pytest.raises(TokenError) as refused:
        rs.verify(token)
    assert refused.value.status == 401
    try:
        response = api_client.get("/notes", headers={"Authorization": f"Bearer {token}"})
    except ValueError:
        return  # the test client refuses to send header values it cannot encode
    assert response.status_code in (400, 401), response.text
