"""argon2id password hashing with the configured cost."""

from __future__ import annotations

from typing import Any

from flask import Flask

from authserver.accounts.passwords import hash_password, needs_rehash, verify_password


def test_hash_is_argon2id_with_the_configured_cost(app: Flask) -> None:
    encoded = hash_password("correct horse battery staple")

    assert encoded.startswith("$argon2id$v=19$m=1024,t=1,p=1$")


def test_hash_uses_the_production_cost_by_default(app_factory: Any) -> None:
    production = app_factory(argon2_memory_cost=19 * 1024, argon2_time_cost=2)

    with production.app_context():
        encoded = hash_password("correct horse battery staple")

    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")


def test_the_same_password_hashes_differently_each_time(app: Flask) -> None:
    assert hash_password("same password") != hash_password("same password")


def test_verify_accepts_the_right_password_only(app: Flask) -> None:
    encoded = hash_password("correct horse battery staple")

    assert verify_password(encoded, "correct horse battery staple")
    assert not verify_password(encoded, "correct horse battery stapler")
    assert not verify_password(encoded, "")


def test_verify_is_false_for_a_malformed_hash(app: Flask) -> None:
    assert not verify_password("not-a-hash", "anything")
    assert not verify_password("", "anything")


def test_needs_rehash_when_the_cost_changed(app: Flask, app_factory: Any) -> None:
    cheap = hash_password("correct horse battery staple")
    assert not needs_rehash(cheap)

    stronger = app_factory(argon2_time_cost=2)
    with stronger.app_context():
        assert needs_rehash(cheap)
        assert not needs_rehash(hash_password("correct horse battery staple"))


def test_needs_rehash_for_a_malformed_hash(app: Flask) -> None:
    assert needs_rehash("not-a-hash")
