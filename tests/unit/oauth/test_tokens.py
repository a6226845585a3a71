"""Access tokens: a verified token is remembered, but never past its expiry or its key."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from authserver.keys import current_keyring
from authserver.oauth.tokens import VERIFIED_CACHE, decode_access_token, issue_access_token
from tests.factories import make_client
from tests.unit.keys.conftest import clear_signing_keys, fresh_keys  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("fresh_keys")


def a_token(app: Flask) -> str:
    client, _ = make_client(grant_types=("client_credentials",))
    token, _ = issue_access_token(
        client_id=client.client_id,
        subject=client.client_id,
        scope="openid",
        audience="https://api.example",
        grant_id=None,
    )
    return token


def test_a_token_verified_once_is_remembered_and_still_decodes(app_factory: Any) -> None:
    app = app_factory()
    with app.app_context():
        token = a_token(app)
        first = decode_access_token(token)
        assert first is not None
        assert token in app.extensions[VERIFIED_CACHE]
        again = decode_access_token(token)
        assert again is not None and again.claims == first.claims


def test_a_remembered_token_fails_once_its_key_is_no_longer_published(app_factory: Any) -> None:
    app = app_factory()
    with app.app_context():
        token = a_token(app)
        assert decode_access_token(token) is not None
    clear_signing_keys(app)
    with app.app_context():
        current_keyring().refresh()  # as every instance does within cache_ttl
        assert decode_access_token(token) is None
        assert token not in app.extensions[VERIFIED_CACHE]


def test_a_remembered_token_fails_once_it_expires(app_factory: Any) -> None:
    app = app_factory()
    with app.app_context():
        token = a_token(app)
        assert decode_access_token(token) is not None
        _, claims = app.extensions[VERIFIED_CACHE][token]
        claims["exp"] = 1  # as if the clock had passed it
        assert decode_access_token(token) is None


def test_a_forged_token_is_not_remembered(app_factory: Any) -> None:
    app = app_factory()
    with app.app_context():
        header, payload, signature = a_token(app).split(".")
        forged = f"{header}.{payload}.{signature[::-1]}"
        assert decode_access_token(forged) is None
        assert forged not in app.extensions.get(VERIFIED_CACHE, {})
