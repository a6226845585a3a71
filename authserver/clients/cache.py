"""Client look-ups for the hot path: an immutable snapshot per client, cached per process.

Authlib calls `query_client` several times per request; the snapshot answers
its `ClientMixin` questions without touching the database. The cache expires
after `cache_ttl` seconds, so every instance sees a change made on another one
within that bound; a change made here is seen at once (`invalidate_client_cache`).
A change that revokes the client's tokens (disabled, deleted, secret rotated) moves
core.epoch's counter, which empties the cache on every instance within a second.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy import event, select

from ..core import epoch
from ..core.secrets import matches_hash
from ..extensions import db
from .models import Client
from .origins import invalidate_origin_cache
from .redirect_uris import redirect_uri_allowed

CACHE_KEY = "authserver.clients"
# Where a session keeps the client_ids to forget once it commits.
PENDING_KEY = "authserver.clients.changed"


@dataclass(frozen=True)
class OAuthClient:
    """What the protocol needs to know about a client, detached from any session."""

    client_id: str
    client_secret_hash: str | None
    client_name: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    response_types: tuple[str, ...]
    scope: str
    token_endpoint_auth_method: str
    id_token_signed_response_alg: str | None
    resources: tuple[str, ...]
    web_origins: tuple[str, ...]
    skip_consent: bool
    # RFC 7662 section 4: may introspect access tokens issued to other clients.
    is_resource_server: bool = False
    # Seconds since the epoch: access tokens of this client issued before then are revoked.
    tokens_not_before: float | None = None
    # The claims of the granted scopes go in the id_token too (oidc/claims.py).
    claims_in_id_token: bool = False
    # Seconds a rotated refresh token stays usable (oauth/grants/refresh_token.py); 0: none.
    refresh_token_grace_period_seconds: int = 0
    # OIDC Core section 8: "public" or "pairwise", and the sector_identifier_uri, if any.
    subject_type: str = "public"
    sector_identifier_uri: str | None = None
    # OpenID Connect Back-Channel and Front-Channel Logout 1.0 (section 2 of each).
    backchannel_logout_uri: str | None = None
    backchannel_logout_session_required: bool = False
    frontchannel_logout_uri: str | None = None
    frontchannel_logout_session_required: bool = False

    @classmethod
    def from_model(cls, client: Client) -> OAuthClient:
        return cls(
            client_id=client.client_id,
            client_secret_hash=client.client_secret_hash,
            client_name=client.name,
            redirect_uris=tuple(client.redirect_uris or ()),
            post_logout_redirect_uris=tuple(client.post_logout_redirect_uris or ()),
            grant_types=tuple(client.grant_types or ()),
            response_types=tuple(client.response_types or ()),
            scope=client.scope or "",
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            id_token_signed_response_alg=client.id_token_signed_response_alg,
            resources=tuple(client.resources or ()),
            web_origins=tuple(client.web_origins or ()),
            skip_consent=bool(client.skip_consent),
            is_resource_server=bool(client.is_resource_server),
            tokens_not_before=(
                client.tokens_not_before.timestamp() if client.tokens_not_before else None
            ),
            claims_in_id_token=bool(client.claims_in_id_token),
            refresh_token_grace_period_seconds=client.refresh_token_grace_period_seconds or 0,
            subject_type=client.subject_type,
            sector_identifier_uri=client.sector_identifier_uri,
            backchannel_logout_uri=client.backchannel_logout_uri or None,
            backchannel_logout_session_required=bool(client.backchannel_logout_session_required),
            frontchannel_logout_uri=client.frontchannel_logout_uri or None,
            frontchannel_logout_session_required=bool(client.frontchannel_logout_session_required),
        )

    def issued_too_early(self, iat: Any) -> bool:
        """True for a token issued before the client's secret rotation or disabling.

        `iat` has whole seconds, so a token from the very second of the change counts as
        before it (`issue_at` makes new tokens wait for the next second instead).
        """
        if self.tokens_not_before is None:
            return False
        return not isinstance(iat, int) or iat < math.ceil(self.tokens_not_before)

    def issue_at(self, now: float) -> int:
        """The `iat` for a token issued at `now`: never one `issued_too_early` would refuse.

        Only in the second after a rotation does this wait, for what is left of it.
        """
        if self.tokens_not_before is not None and now < math.ceil(self.tokens_not_before):
            time.sleep(math.ceil(self.tokens_not_before) - now)
            now = math.ceil(self.tokens_not_before)
        return int(now)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    # Authlib's ClientMixin, answered from the snapshot.

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str | None:
        """RFC 6749 section 3.1.2.3: redirect_uri may be omitted only when one is registered."""
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        """The requested scopes this client is registered for, in request order."""
        if not scope:
            return ""
        allowed = self.scopes
        seen: list[str] = []
        for item in scope.split():
            if item in allowed and item not in seen:
                seen.append(item)
        return " ".join(seen)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        """RFC 9700 section 4.1.3 exact matching, RFC 8252 section 7.3's loopback port aside."""
        return redirect_uri_allowed(self.redirect_uris, redirect_uri)

    def check_client_secret(self, client_secret: str) -> bool:
        """Constant-time comparison of SHA-256 digests."""
        if not self.client_secret_hash or not isinstance(client_secret, str):
            return False
        return matches_hash(client_secret, self.client_secret_hash)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        """A client authenticates only with the method it registered, at every endpoint."""
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type: str) -> bool:
        return response_type in self.response_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def load_client(client_id: str | None) -> OAuthClient | None:
    """The active client with this id, from the per-process cache or the database."""
    if not client_id or not isinstance(client_id, str) or len(client_id) > 64:
        return None
    if "\x00" in client_id:
        # No client id holds NUL, and PostgreSQL refuses it in a query parameter.
        return None
    cache: dict[str, tuple[float, int, OAuthClient]] = current_app.extensions.setdefault(
        CACHE_KEY, {}
    )
    now = time.monotonic()
    # Disabling a client or rotating its secret revokes its tokens: core.epoch bounds how
    # long another instance may go on using the snapshot it had (a second).
    at = epoch.current()
    hit = cache.get(client_id)
    if hit is not None and hit[0] > now and hit[1] == at:
        return hit[2]
    row = db.session.scalar(select(Client).where(Client.client_id == client_id))
    if row is None or not row.is_active:
        # Misses are not cached: a client created on another instance works at once.
        return None
    snapshot = OAuthClient.from_model(row)
    if len(cache) > 10_000:
        cache.clear()
    cache[client_id] = (now + current_app.config["AUTHSERVER"].cache_ttl, at, snapshot)
    return snapshot


def invalidate_client_cache(client_id: str) -> None:
    """Forget a client in this process after it changed, with the CORS origins it allowed."""
    current_app.extensions.get(CACHE_KEY, {}).pop(client_id, None)
    invalidate_origin_cache()


def invalidate_on_commit(client_id: str) -> None:
    """Forget the client in this process once the current transaction commits.

    Not before: a request reading the client in between would cache the old row again.
    """
    session = db.session()
    session.info.setdefault(PENDING_KEY, set()).add(client_id)
    # One listener per session, for all its transactions: a `once` listener would fire for
    # the first commit only, and SQLAlchemy does not add the same function twice.
    if not event.contains(session, "after_commit", _forget_pending):
        event.listen(session, "after_commit", _forget_pending)


def _forget_pending(session: Any) -> None:
    """after_commit: forget every client changed in the transaction just committed.

    Not when a savepoint is released: the transaction holding the change is still open.
    """
    if session.in_nested_transaction():
        return
    for client_id in session.info.pop(PENDING_KEY, set()):
        invalidate_client_cache(client_id)
