"""Private keys are encrypted under a key derived from the secret, and survive its rotation."""

from __future__ import annotations

import pytest

from authserver.keys.crypto import KeyCipher, KeyDecryptionError, derive_fernet_key

OLD = "old-secret-" + "o" * 32
NEW = "new-secret-" + "n" * 32
PLAINTEXT = '{"kty":"EC","d":"private"}'


def test_the_derived_key_depends_only_on_the_secret() -> None:
    assert derive_fernet_key(OLD) == derive_fernet_key(OLD)
    assert derive_fernet_key(OLD) != derive_fernet_key(NEW)
    # The secret itself never is the encryption key.
    assert OLD.encode() not in derive_fernet_key(OLD)


def test_encryption_hides_the_plaintext_and_round_trips() -> None:
    cipher = KeyCipher(OLD)
    token = cipher.encrypt(PLAINTEXT)
    assert '"d"' not in token and "private" not in token
    assert cipher.decrypt(token) == PLAINTEXT


def test_a_wrong_secret_fails_with_a_clear_error() -> None:
    token = KeyCipher(OLD).encrypt(PLAINTEXT)
    with pytest.raises(KeyDecryptionError, match="AUTHSERVER_SECRET_KEY") as info:
        KeyCipher(NEW).decrypt(token, kid="abc")
    assert "abc" in str(info.value)


def test_a_fallback_secret_still_decrypts() -> None:
    token = KeyCipher(OLD).encrypt(PLAINTEXT)
    assert KeyCipher(NEW, fallbacks=(OLD,)).decrypt(token) == PLAINTEXT


def test_reencrypt_moves_a_token_to_the_current_secret() -> None:
    token = KeyCipher(OLD).encrypt(PLAINTEXT)
    moved = KeyCipher(NEW, fallbacks=(OLD,)).reencrypt(token)
    assert KeyCipher(NEW).decrypt(moved) == PLAINTEXT
    with pytest.raises(KeyDecryptionError):
        KeyCipher(OLD).decrypt(moved)


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        KeyCipher("")
