"""GET /.well-known/jwks.json publishes public keys only, cacheable, from precomputed bytes."""

from __future__ import annotations

from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import ECKey, KeySet, RSAKey

from authserver.core import hotpath
from authserver.keys import current_keyring
from authserver.keys.services import PRIVATE_MEMBERS

pytestmark = pytest.mark.usefixtures("fresh_keys")


def test_the_jwks_has_both_algorithms_with_public_members_only(app_factory: Any) -> None:
    response = app_factory().test_client().get("/.well-known/jwks.json")

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    keys = response.get_json()["keys"]
    assert sorted(k["alg"] for k in keys) == ["ES256", "RS256"]
    for jwk in keys:
        assert jwk["use"] == "sig"
        assert not PRIVATE_MEMBERS & set(jwk), jwk
        key_class = RSAKey if jwk["kty"] == "RSA" else ECKey
        assert jwk["kid"] == key_class.import_key(jwk).thumbprint()


def test_the_jwks_is_cacheable(app_factory: Any) -> None:
    response = app_factory(cache_ttl=30).test_client().get("/.well-known/jwks.json")
    assert response.headers["Cache-Control"] == "public, max-age=60"
    long_ttl = (
        app_factory(cache_ttl=3600, key_prepublish_seconds=7200)
        .test_client()
        .get("/.well-known/jwks.json")
    )
    assert long_ttl.headers["Cache-Control"] == "public, max-age=300"


def test_a_token_signed_by_the_server_verifies_against_the_served_jwks(app_factory: Any) -> None:
    app = app_factory()
    body = app.test_client().get("/.well-known/jwks.json").get_json()
    with app.app_context():
        kid, key = current_keyring().signing_key("RS256")
    token = jwt.encode({"alg": "RS256", "kid": kid}, {"iss": "me"}, key)
    assert jwt.decode(token, KeySet.import_key_set(body)).claims == {"iss": "me"}


def test_a_rotation_shows_up_at_once_in_the_jwks_the_thin_layer_serves(app_factory: Any) -> None:
    app = app_factory()
    client = app.test_client()
    before = {key["kid"] for key in client.get("/.well-known/jwks.json").get_json()["keys"]}
    with app.app_context():
        (rotated,) = current_keyring().rotate("ES256")

    response = client.get("/.well-known/jwks.json")

    assert {key["kid"] for key in response.get_json()["keys"]} == before | {rotated.kid}
    assert response.headers["Content-Length"] == str(len(response.data))
    served = app.extensions[hotpath.EXTENSION].routes["/.well-known/jwks.json"].answer
    assert served.document.body == response.data


def test_head_works_and_post_is_not_allowed(app_factory: Any) -> None:
    client = app_factory().test_client()
    assert client.head("/.well-known/jwks.json").status_code == 200
    assert client.post("/.well-known/jwks.json").status_code == 405
