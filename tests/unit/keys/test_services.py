"""The key ring signs with cached keys, rotates, and publishes keys as long as tokens live."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import event, select, update

from authserver.extensions import db, utcnow
from authserver.keys import current_keyring
from authserver.keys.crypto import KeyCipher, KeyDecryptionError
from authserver.keys.models import SigningKey
from authserver.keys.schedule import NEXT, RETIRED, RETIRING, REVOKED, SIGNING
from authserver.keys.services import (
    PRIVATE_MEMBERS,
    SUPPORTED_ALGS,
    KeyRing,
)
from tests.conftest import TEST_SECRET

from .conftest import FakeClock

pytestmark = pytest.mark.usefixtures("fresh_keys")

NEW_SECRET = "rotated-secret-" + "r" * 32


def keyring_of(app: Flask, clock: FakeClock | None = None) -> KeyRing:
    with app.app_context():
        keyring = current_keyring()
    if clock is not None:
        keyring.clock = clock
    return keyring


def stored_rows(app: Flask) -> list[SigningKey]:
    with app.app_context():
        rows = db.session.scalars(select(SigningKey)).all()
        db.session.expunge_all()
        return list(rows)


def set_retired_at(app: Flask, kid: str, seconds_ago: int) -> None:
    with app.app_context():
        db.session.execute(
            update(SigningKey)
            .where(SigningKey.kid == kid)
            .values(retired_at=utcnow() - timedelta(seconds=seconds_ago))
        )
        db.session.commit()


@contextmanager
def counting_queries(app: Flask) -> Iterator[list[str]]:
    """Record every SQL statement the app's engine runs."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        statements.append(args[2])

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


def sign(keyring: KeyRing, alg: str, **claims: Any) -> str:
    kid, key = keyring.signing_key(alg)
    return jwt.encode({"alg": alg, "kid": kid}, {"sub": "alice", **claims}, key)


# -- signing and verification -------------------------------------------------------


@pytest.mark.parametrize("alg", SUPPORTED_ALGS)
def test_a_signer_is_made_on_first_use_and_verifies_against_the_jwks(
    app_factory: Any, alg: str
) -> None:
    keyring = keyring_of(app_factory())
    token = sign(keyring, alg)
    header = jwt.decode(token, keyring.verification_key(keyring.signing_key(alg)[0])).header
    assert header["alg"] == alg
    published = KeySet.import_key_set(keyring.jwks())  # type: ignore[arg-type]
    assert jwt.decode(token, published).claims["sub"] == "alice"


def test_the_kid_is_the_rfc7638_thumbprint(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    for alg in SUPPORTED_ALGS:
        kid, key = keyring.signing_key(alg)
        assert kid == key.thumbprint() == key.kid
        assert key.is_private


def test_ensure_keys_makes_one_signer_per_algorithm(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    keyring.ensure_keys()
    keyring.ensure_keys()
    assert sorted(k.alg for k in keyring.list_keys()) == ["ES256", "RS256"]
    assert {k.status for k in keyring.list_keys()} == {SIGNING}


def test_signing_keys_are_cached_without_touching_the_database(app_factory: Any) -> None:
    app = app_factory()
    keyring = keyring_of(app)
    kid, key = keyring.signing_key("RS256")
    with counting_queries(app) as statements:
        for _ in range(50):
            assert keyring.signing_key("RS256") == (kid, key)
            assert keyring.verification_key(kid) is not None
        keyring.jwks_json()
    assert statements == []


def test_an_unsupported_algorithm_is_refused(app_factory: Any) -> None:
    with pytest.raises(ValueError, match="HS256"):
        keyring_of(app_factory()).signing_key("HS256")


def test_unknown_kids_reload_the_table_at_most_once_per_interval(
    app_factory: Any, clock: FakeClock
) -> None:
    app = app_factory()
    keyring = keyring_of(app, clock)
    keyring.ensure_keys()
    with counting_queries(app) as statements:
        for n in range(100):
            assert keyring.verification_key(f"forged-{n}") is None
    assert len(statements) == 1
    clock.advance(5)
    with counting_queries(app) as statements:
        assert keyring.verification_key("forged-again") is None
    assert len(statements) == 1


def test_a_non_string_kid_finds_nothing(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    keyring.ensure_keys()
    assert keyring.verification_key(None) is None  # type: ignore[arg-type]
    assert keyring.verification_key(["x"]) is None  # type: ignore[arg-type]


# -- storage --------------------------------------------------------------------------


def test_the_private_key_is_stored_encrypted(app_factory: Any) -> None:
    app = app_factory()
    keyring_of(app).ensure_keys()
    rows = stored_rows(app)
    assert len(rows) == 2
    for row in rows:
        assert '"d"' not in row.private_jwk_encrypted
        private = json.loads(KeyCipher(TEST_SECRET).decrypt(row.private_jwk_encrypted))
        assert private["kid"] == row.kid and "d" in private
        assert not PRIVATE_MEMBERS & set(row.public_jwk)
        assert {row.public_jwk[m] for m in ("kid", "alg", "use")} == {row.kid, row.alg, "sig"}


def test_a_wrong_secret_cannot_load_the_keys(app_factory: Any) -> None:
    keyring_of(app_factory()).ensure_keys()
    stranger = keyring_of(app_factory(secret_key=NEW_SECRET))
    with pytest.raises(KeyDecryptionError, match="AUTHSERVER_SECRET_KEY_FALLBACKS"):
        stranger.signing_key("RS256")
    with pytest.raises(KeyDecryptionError):
        stranger.ensure_keys()


def test_the_old_secret_as_a_fallback_still_loads_and_reencrypt_moves_on(
    app_factory: Any,
) -> None:
    original = keyring_of(app_factory())
    kid, _ = original.signing_key("ES256")
    rotating = keyring_of(app_factory(secret_key=NEW_SECRET, secret_key_fallbacks=(TEST_SECRET,)))
    assert rotating.signing_key("ES256")[0] == kid
    assert rotating.reencrypt_all() == 1
    after = keyring_of(app_factory(secret_key=NEW_SECRET))
    token = sign(after, "ES256")
    assert jwt.decode(token, after.verification_key(kid)).claims["sub"] == "alice"
    with pytest.raises(KeyDecryptionError):
        keyring_of(app_factory()).signing_key("ES256")


# -- rotation and publication -----------------------------------------------------------


def later(keyring: KeyRing, seconds: int) -> None:
    """Move the key ring's wall clock `seconds` ahead of the real one (the schedule reads it)."""
    keyring.wall = lambda: utcnow() + timedelta(seconds=seconds)


def test_rotate_publishes_new_keys_at_once_and_signs_with_them_after_prepublication(
    app_factory: Any,
) -> None:
    app = app_factory(key_prepublish_seconds=900)
    keyring = keyring_of(app)
    keyring.ensure_keys()
    old = {alg: keyring.signing_key(alg)[0] for alg in SUPPORTED_ALGS}
    old_token = sign(keyring, "RS256")

    made = keyring.rotate()

    assert sorted(k.alg for k in made) == sorted(SUPPORTED_ALGS)
    published = {jwk["kid"] for jwk in keyring.jwks()["keys"]}
    assert published == set(old.values()) | {k.kid for k in made}
    for alg in SUPPORTED_ALGS:  # published, not signing yet
        assert keyring.signing_key(alg)[0] == old[alg]
    statuses = {k.kid: k.status for k in keyring.list_keys()}
    assert {statuses[k.kid] for k in made} == {NEXT}
    assert {statuses[kid] for kid in old.values()} == {SIGNING}

    later(keyring, 890)
    assert {keyring.signing_key(alg)[0] for alg in SUPPORTED_ALGS} == set(old.values())
    later(keyring, 901)
    for alg in SUPPORTED_ALGS:
        assert keyring.signing_key(alg)[0] == next(k.kid for k in made if k.alg == alg)
    assert jwt.decode(old_token, KeySet.import_key_set(keyring.jwks()))  # type: ignore[arg-type]
    statuses = {k.kid: k.status for k in keyring.list_keys()}
    assert {statuses[kid] for kid in old.values()} == {RETIRING}
    assert {statuses[k.kid] for k in made} == {SIGNING}


def test_rotate_now_signs_at_once_and_keeps_the_old_key_published(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    old_kid = keyring.signing_key("ES256")[0]
    old_token = sign(keyring, "ES256")

    (made,) = keyring.rotate("ES256", immediately=True)

    assert keyring.signing_key("ES256")[0] == made.kid
    assert {k.kid: k.status for k in keyring.list_keys()}[old_kid] == RETIRING
    assert keyring.verification_key(old_kid) is not None
    assert jwt.decode(old_token, KeySet.import_key_set(keyring.jwks()))  # type: ignore[arg-type]


def test_an_emergency_rotation_revokes_every_older_key_at_once(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    old_kid = keyring.signing_key("ES256")[0]
    (pending,) = keyring.rotate("ES256")  # a scheduled successor, stored beside the leaked key
    rs_kid = keyring.signing_key("RS256")[0]

    (made,) = keyring.rotate("ES256", revoke=True)

    assert keyring.signing_key("ES256")[0] == made.kid
    published = {jwk["kid"] for jwk in keyring.jwks()["keys"]}
    assert old_kid not in published and pending.kid not in published
    assert {made.kid, rs_kid} <= published
    assert keyring.verification_key(old_kid) is None
    statuses = {k.kid: k.status for k in keyring.list_keys()}
    assert statuses[old_kid] == statuses[pending.kid] == REVOKED
    assert statuses[rs_kid] == SIGNING
    assert keyring.prune() == 0  # listed for one publication window, then pruned
    later(keyring, 30 + 15 * 60 + 60 + 1)
    assert keyring.prune() == 2


def test_rotate_one_algorithm_leaves_the_other_signer(app_factory: Any) -> None:
    keyring = keyring_of(app_factory())
    keyring.ensure_keys()
    rs_kid = keyring.signing_key("RS256")[0]
    (made,) = keyring.rotate("ES256", immediately=True)
    assert made.alg == "ES256"
    assert keyring.signing_key("ES256")[0] == made.kid
    assert keyring.signing_key("RS256")[0] == rs_kid


def test_a_retired_key_leaves_the_jwks_once_its_tokens_expired(app_factory: Any) -> None:
    app = app_factory(access_token_ttl=600, id_token_ttl=900, cache_ttl=30)
    keyring = keyring_of(app)
    old_kid = keyring.signing_key("ES256")[0]
    keyring.rotate("ES256", immediately=True)
    window = 900 + 30 + 60  # longest token lifetime, cache_ttl, clock skew

    set_retired_at(app, old_kid, seconds_ago=window - 30)
    keyring.refresh()
    assert old_kid in {jwk["kid"] for jwk in keyring.jwks()["keys"]}
    assert keyring.verification_key(old_kid) is not None

    set_retired_at(app, old_kid, seconds_ago=window + 1)
    keyring.refresh()
    assert old_kid not in {jwk["kid"] for jwk in keyring.jwks()["keys"]}
    assert keyring.verification_key(old_kid) is None
    assert {k.kid: k.status for k in keyring.list_keys()}[old_kid] == RETIRED

    assert keyring.prune() == 1
    assert old_kid not in {row.kid for row in stored_rows(app)}


def test_another_instance_picks_up_a_rotation_after_cache_ttl(
    app_factory: Any, clock: FakeClock
) -> None:
    first = keyring_of(app_factory(cache_ttl=10))
    second = keyring_of(app_factory(cache_ttl=10), clock)
    old_kid = second.signing_key("ES256")[0]
    assert first.signing_key("ES256")[0] == old_kid

    (new,) = first.rotate("ES256", immediately=True)

    clock.advance(9)
    assert second.signing_key("ES256")[0] == old_kid  # still trusting its cache
    # A token from the new key is verifiable at once: the unknown kid triggers a reload.
    assert second.verification_key(new.kid) is not None
    clock.advance(11)
    assert second.signing_key("ES256")[0] == new.kid
    assert new.kid.encode() in second.jwks_json()


def test_instances_racing_to_make_the_first_key_agree_on_one_signer(app_factory: Any) -> None:
    keyrings = [keyring_of(app_factory()) for _ in range(3)]
    start = threading.Barrier(len(keyrings))
    kids: list[str] = []

    def first_use(keyring: KeyRing) -> None:
        start.wait()
        kids.append(keyring.signing_key("ES256")[0])

    threads = [threading.Thread(target=first_use, args=(k,)) for k in keyrings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(kids) == len(keyrings)
    for keyring in keyrings:
        keyring.refresh()
    signers = {keyring.signing_key("ES256")[0] for keyring in keyrings}
    assert len(signers) == 1
    active = [k for k in keyrings[0].list_keys() if k.alg == "ES256" and k.status == SIGNING]
    assert [k.kid for k in active] == list(signers)
    # Whatever key any of them signed with is still published.
    assert set(kids) <= {jwk["kid"] for jwk in keyrings[0].jwks()["keys"]}
