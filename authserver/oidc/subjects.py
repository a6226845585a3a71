"""The subject identifier a client sees for a person (OpenID Connect Core section 8).

Every `sub` sent to a client (id_token, userinfo, access token, introspection, logout
token) comes from `subject_for`, so that the subject type a client registered is applied
on every path; every `sub` a client sends back (an `id_token_hint`, a bearer token) is
compared with `is_subject_of`, for the person the server already has in hand.

Section 8.1: a pairwise `sub` is HMAC-SHA-256, keyed with the server's
`pairwise_secret`, of the client's sector identifier (clients/sector.py) and the
person's public `sub` (random, never reassigned, never the e-mail or the row id), as
unpadded base64url (43 characters). It is stable for one sector, unrelated across
sectors, and cannot be reversed or correlated without the key. Changing the key changes
every pairwise `sub`.

No table maps pairwise values back to people: each place that receives one already
knows whom it must be about (the grant behind an access token, the signed-in person
for an `id_token_hint`) and recomputes that person's value for the client.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from flask import current_app

from ..clients.sector import sector_identifier
from ..core.secrets import encode, same_secret

DOMAIN = b"authserver pairwise sub v1"


def subject_for(user: Any, client: Any) -> str:
    """Section 8: the `sub` this client receives for this person.

    `client` is a client row or its cached snapshot (anything with `subject_type`,
    `sector_identifier_uri` and `redirect_uris`); a public client gets the public `sub`.
    """
    sector = _sector_of(client)
    if sector is None:
        return str(user.sub)
    return pairwise_subject(sector, str(user.sub), current_app.config["AUTHSERVER"].pairwise_secret)


def is_subject_of(sub: Any, user: Any, client: Any) -> bool:
    """True when `sub` is the one `subject_for(user, client)` gives (compared in constant time)."""
    return isinstance(sub, str) and same_secret(sub, subject_for(user, client))


def pairwise_subject(sector: str, public_sub: str, secret: str) -> str:
    """Section 8.1: HMAC-SHA-256(secret, sector identifier, public sub), base64url."""
    if not secret:
        raise RuntimeError("pairwise subjects need AUTHSERVER_PAIRWISE_SECRET")
    message = b"\x00".join((DOMAIN, encode(sector), encode(public_sub)))
    digest = hmac.new(encode(secret), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _sector_of(client: Any) -> str | None:
    return sector_identifier(
        client.subject_type, client.sector_identifier_uri, client.redirect_uris
    )
