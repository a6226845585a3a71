"""Secrets: how they are made, stored and compared, in one encoding.

Every secret the server hands out (e-mailed links, session cookies, refresh tokens,
client secrets, registration tokens) is `new_token()`: 32 random bytes, URL-safe base64
without padding (43 characters; RFC 6749 section 10.10 asks for a guess probability of
2^-128 or less, this is 2^-256). The database keeps only `hash_secret(value)`, the SHA-256
of its UTF-8 bytes as lowercase hex, so a leaked table gives out no usable credential;
values are compared with `same_secret`, in constant time.

UTF-8 with `surrogatepass`: whatever string arrives (even a lone surrogate from a
decoded query string) hashes without error and distinct strings never share a hash.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

TOKEN_BYTES = 32
ENCODING = "utf-8"
ERRORS = "surrogatepass"


def new_token(nbytes: int = TOKEN_BYTES) -> str:
    """A fresh random secret: `nbytes` random bytes as URL-safe base64 (no padding)."""
    return secrets.token_urlsafe(nbytes)


def new_hex_id(nbytes: int = 16) -> str:
    """A fresh random identifier as lowercase hex (2 characters per byte)."""
    return secrets.token_hex(nbytes)


def encode(value: str) -> bytes:
    """The bytes a secret is hashed and compared as (the one encoding)."""
    return value.encode(ENCODING, ERRORS)


def hash_secret(value: str) -> str:
    """The stored form of a secret: SHA-256 of its UTF-8 bytes, lowercase hex (64 chars)."""
    return hashlib.sha256(encode(value)).hexdigest()


def same_secret(first: str | bytes, second: str | bytes) -> bool:
    """True when both are equal, compared in constant time (no timing oracle)."""
    left = encode(first) if isinstance(first, str) else first
    right = encode(second) if isinstance(second, str) else second
    return hmac.compare_digest(left, right)


def matches_hash(value: str, stored_hash: str | None) -> bool:
    """True when `value` hashes to `stored_hash`; the same work when there is no hash."""
    return same_secret(hash_secret(value), stored_hash or "")
