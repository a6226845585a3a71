"""core.secrets: one way to make, store and compare a secret."""

from __future__ import annotations

import hashlib

from authserver.core.secrets import hash_secret, matches_hash, new_hex_id, new_token, same_secret


def test_a_token_carries_256_bits_in_43_url_safe_characters() -> None:
    token = new_token()
    assert len(token) == 43
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert new_token() != token


def test_the_stored_form_is_sha256_hex_of_the_utf8_bytes() -> None:
    assert hash_secret("abc") == hashlib.sha256(b"abc").hexdigest()
    assert hash_secret("é") == hashlib.sha256("é".encode()).hexdigest()


def test_any_string_hashes_and_distinct_strings_do_not_collide() -> None:
    assert hash_secret("\ud800") != hash_secret("?")  # a lone surrogate is not replaced


def test_comparison_is_exact() -> None:
    assert same_secret("abc", "abc")
    assert same_secret(b"abc", "abc")
    assert not same_secret("abc", "abd")
    assert matches_hash("abc", hash_secret("abc"))
    assert not matches_hash("abc", None)


def test_hex_ids_have_two_characters_per_byte() -> None:
    assert len(new_hex_id(16)) == 32
    int(new_hex_id(), 16)
