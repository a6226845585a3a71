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


def test_rotate_publishes_a_next_key_and_says_when_it_signs(app: Flask) -> None:
    run(app, "keys", "ensure")
    old_kid, _ = current_keyring().signing_key("ES256")

    rotated = run(app, "keys", "rotate", "--alg", "ES256")

    # Keys outlive tests (KEPT_TABLES): another test's rotation may have left a "next" key.
    (new,) = [k for k in current_keyring().list_keys() if k.status == "next" and k.kid in rotated]
    assert new.kid in rotated and "signing from" in rotated
    assert f"{new.activates_at:%Y-%m-%d %H:%M:%S}" in rotated
    assert current_keyring().signing_key("ES256")[0] == old_kid
    published = {jwk["kid"] for jwk in current_keyring().jwks()["keys"]}
    assert {old_kid, new.kid} <= published
    listed = run(app, "keys", "list")
    assert old_kid in listed and "signing" in listed and "next" in listed


def test_rotate_now_signs_at_once_and_says_what_it_costs(app: Flask) -> None:
    run(app, "keys", "ensure")
    old_kid, _ = current_keyring().signing_key("ES256")

    rotated = run(app, "keys", "rotate", "--alg", "ES256", "--now")

    new_kid, _ = current_keyring().signing_key("ES256")
    assert new_kid != old_kid and new_kid in rotated
    assert "cannot verify its tokens until they fetch it again" in rotated
    assert old_kid in {jwk["kid"] for jwk in current_keyring().jwks()["keys"]}


def test_an_emergency_rotation_asks_first_then_revokes_the_old_key(app: Flask) -> None:
    run(app, "keys", "ensure")
    old_kid, _ = current_keyring().signing_key("ES256")

    declined = app.test_cli_runner().invoke(
        args=["keys", "rotate", "--alg", "ES256", "--emergency"], input="n\n"
    )
    assert declined.exit_code == 1
    assert "stops verifying" in declined.output
    assert current_keyring().signing_key("ES256")[0] == old_kid

    rotated = run(app, "keys", "rotate", "--alg", "ES256", "--emergency", "--yes")

    new_kid, _ = current_keyring().signing_key("ES256")
    assert new_kid != old_kid and new_kid in rotated
    assert "Revoked: every older key of ES256" in rotated
    assert old_kid not in {jwk["kid"] for jwk in current_keyring().jwks()["keys"]}
    assert current_keyring().verification_key(old_kid) is None
