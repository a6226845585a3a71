"""Encryption at rest for private signing keys.

Each private JWK is stored as a Fernet token (AES-128-CBC + HMAC-SHA256). The Fernet
key is derived from `AUTHSERVER_SECRET_KEY` with HKDF-SHA256 (RFC 5869), so the
database alone never reveals a private key. `AUTHSERVER_SECRET_KEY_FALLBACKS` lets an
operator rotate the secret: old secrets still decrypt, the current one encrypts, and
`reencrypt` moves a token to the current secret.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HKDF_INFO = b"authserver signing keys"


class KeyDecryptionError(RuntimeError):
    """A stored private key cannot be decrypted with the configured secrets."""


def derive_fernet_key(secret: str) -> bytes:
    """RFC 5869: derive a 256-bit Fernet key from the application secret."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=HKDF_INFO)
    return base64.urlsafe_b64encode(hkdf.derive(secret.encode("utf-8")))


class KeyCipher:
    """Encrypts with the current secret; decrypts with the current or any fallback secret."""

    def __init__(self, secret: str, fallbacks: Iterable[str] = ()) -> None:
        if not secret:
            raise ValueError("a secret is required to encrypt signing keys")
        secrets = [secret, *(s for s in fallbacks if s and s != secret)]
        self._fernet = MultiFernet([Fernet(derive_fernet_key(s)) for s in secrets])

    def encrypt(self, plaintext: str) -> str:
        """Encrypt with the current secret."""
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, *, kid: str = "") -> str:
        """Decrypt with the current secret or a fallback; a clear error otherwise."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise KeyDecryptionError(_undecryptable(kid)) from exc

    def reencrypt(self, token: str, *, kid: str = "") -> str:
        """Re-encrypt a token (made with any known secret) under the current secret."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise KeyDecryptionError(_undecryptable(kid)) from exc


def _undecryptable(kid: str) -> str:
    which = f"signing key {kid}" if kid else "a signing key"
    return (
        f"{which} cannot be decrypted with AUTHSERVER_SECRET_KEY or any of "
        "AUTHSERVER_SECRET_KEY_FALLBACKS; was the secret changed without keeping the old "
        "one as a fallback?"
    )
