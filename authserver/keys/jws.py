"""RFC 7515 compact JWS signing and verification of our own tokens, on the cached keys.

joserfc's general-purpose `jwt.encode` validates and re-serializes the header and
converts claims on every call; for our own fixed headers that is about half the
cost of issuing an access token (bench/). Here the header segment is encoded once
per (header) and the signature is made by `cryptography` on the key object the key
ring already holds. Verification of the tokens we issued is the mirror image
(`verify_compact`): the two algorithms we sign with, each bound to its key type, the
signature checked on the bytes as received. Tokens from elsewhere (a client's signed
request object, a `private_key_jwt` assertion) go through joserfc.
"""

from __future__ import annotations

import binascii
import json
from base64 import b64decode, urlsafe_b64encode
from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc.jwk import Key

# RFC 7518 section 3.4: an ES256 signature is R || S, each 32 bytes, not DER.
_ES256_PART = 32


def b64url(data: bytes) -> bytes:
    """RFC 7515 section 2: base64url without padding."""
    return urlsafe_b64encode(data).rstrip(b"=")


@lru_cache(maxsize=64)
def _header_segment(typ: str, alg: str, kid: str) -> bytes:
    return b64url(json.dumps({"typ": typ, "alg": alg, "kid": kid}, separators=(",", ":")).encode())


def sign_compact(claims: dict[str, Any], key: Key, *, alg: str, kid: str, typ: str) -> str:
    """RFC 7515 section 7.1: `header.payload.signature` with ES256 or RS256."""
    payload = json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode()
    signing_input = _header_segment(typ, alg, kid) + b"." + b64url(payload)
    private_key: Any = key.private_key
    if alg == "ES256":
        r, s = decode_dss_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        signature = r.to_bytes(_ES256_PART, "big") + s.to_bytes(_ES256_PART, "big")
    elif alg == "RS256":
        signature = private_key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}")
    return (signing_input + b"." + b64url(signature)).decode("ascii")


def b64url_decode(segment: bytes) -> bytes:
    """RFC 7515 section 2: base64url without padding, strictly (no other characters)."""
    if b"=" in segment:
        raise ValueError("padded base64url")
    return b64decode(segment + b"=" * (-len(segment) % 4), altchars=b"-_", validate=True)


def compact_header(token: str) -> dict[str, Any] | None:
    """The protected header of a compact JWS of three segments, unverified; else None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        header = json.loads(b64url_decode(parts[0].encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    return header if isinstance(header, dict) else None


def verify_compact(token: str, key: Key, alg: str) -> dict[str, Any] | None:
    """RFC 7515 section 5.2: the JSON payload of `token` if its signature is valid under
    `key` for `alg` (ES256 on a P-256 key, RS256 on an RSA key); None otherwise."""
    try:
        signing_input, _, signature_segment = token.encode("ascii").rpartition(b".")
        signature = b64url_decode(signature_segment)
        if not _signature_valid(key.public_key, alg, signature, signing_input):
            return None
        payload = json.loads(b64url_decode(signing_input.partition(b".")[2]))
    except (ValueError, UnicodeError, binascii.Error):
        return None
    return payload if isinstance(payload, dict) else None


def _signature_valid(public_key: Any, alg: str, signature: bytes, signing_input: bytes) -> bool:
    """RFC 7518 sections 3.3 and 3.4; the key's type must be the algorithm's."""
    try:
        if alg == "ES256" and isinstance(public_key, ec.EllipticCurvePublicKey):
            if not isinstance(public_key.curve, ec.SECP256R1) or len(signature) != 2 * _ES256_PART:
                return False
            r = int.from_bytes(signature[:_ES256_PART], "big")
            s = int.from_bytes(signature[_ES256_PART:], "big")
            public_key.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
            return True
        if alg == "RS256" and isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
            return True
    except InvalidSignature:
        return False
    return False
