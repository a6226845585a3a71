"""RFC 7515 compact JWS signing for tokens we issue, straight on the cached key objects.

joserfc's general-purpose `jwt.encode` validates and re-serializes the header and
converts claims on every call; for our own fixed headers that is about half the
cost of issuing an access token (bench/). Here the header segment is encoded once
per (header) and the signature is made by `cryptography` on the key object the key
ring already holds. Verification stays with joserfc (`oauth.tokens`).
"""

from __future__ import annotations

import json
from base64 import urlsafe_b64encode
from functools import lru_cache
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
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
