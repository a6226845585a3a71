"""`authserver keys ensure|list|rotate` manage the signing keys in the JWKS."""

from __future__ import annotations

from flask import Flask

from authserver.keys import current_keyring


def run(app: Flask, *args: str) -> str:
    result = app.test_cli_runner().invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_ensure_then_list_shows_an_active_key_per_algorithm(app: Flask) -> None:
    run(app, "keys", "ensure")

    listed = run(app, "keys", "list")

    for key in current_keyring().list_keys():
        assert key.kid in listed
    assert "RS256" in listed and "ES256" in listed


def test_rotate_makes_a_new_signer_and_keeps_the_old_key_published(app: Flask) -> None:
    run(app, "keys", "ensure")
    old_kid, _ = current_keyring().signing_key("ES256")

    rotated = run(app, "keys", "rotate", "--alg", "ES256")

    new_kid, _ = current_keyring().signing_key("ES256")
    assert new_kid != old_kid
    assert new_kid in rotated
    published = {jwk["kid"] for jwk in current_keyring().jwks()["keys"]}
    assert {old_kid, new_kid} <= published
    assert old_kid in run(app, "keys", "list")
