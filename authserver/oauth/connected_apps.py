"""The account page's connected apps: the clients a person consented to or holds grants with.

accounts (a layer below) shows them through `accounts.apps`; `register` plugs this module
in at start-up.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask
from sqlalchemy import select

from ..accounts.apps import AppsProvider, ConnectedApp, register_connected_apps
from ..accounts.models import User
from ..audit import record
from ..clients.models import Client
from ..extensions import db, utcnow
from .consent import SCOPE_DESCRIPTIONS, describe_scopes
from .models import Consent, Grant
from .services import revoke_all_grants


def register(app: Flask) -> None:
    """Answer the account page's questions about connected apps."""
    register_connected_apps(app, AppsProvider(list_apps=connected_apps, revoke_app=revoke_app))


def connected_apps(user: User) -> list[ConnectedApp]:
    """Clients the person consented to or that hold live grants, oldest first."""
    apps: dict[str, ConnectedApp] = {}
    scopes: dict[str, list[str]] = {}
    for client_id, name, scope, since in _authorizations(user):
        app = apps.setdefault(client_id, ConnectedApp(client_id, name or client_id, since))
        app.first_allowed = min(app.first_allowed, since)
        known = scopes.setdefault(client_id, [])
        known.extend(item for item in scope.split() if item not in known)
    for client_id, app in apps.items():
        app.scopes = describe_scopes(" ".join(sorted(scopes[client_id], key=_scope_order)))
    return sorted(apps.values(), key=lambda app: (app.first_allowed, app.name))


def _scope_order(scope: str) -> tuple[int, str]:
    """Well-known scopes first, in the order the consent page describes them."""
    known = list(SCOPE_DESCRIPTIONS)
    return (known.index(scope) if scope in known else len(known), scope)


def _authorizations(user: User) -> list[tuple[str, str, str, datetime]]:
    """(client_id, client name, scope, created_at) of each consent and live grant."""
    consents = db.session.execute(
        select(Consent.client_id, Client.name, Consent.scope, Consent.created_at)
        .join(Client, Client.client_id == Consent.client_id)
        .where(Consent.user_id == user.id)
        .order_by(Consent.created_at)
    )
    grants = db.session.execute(
        select(Grant.client_id, Client.name, Grant.scope, Grant.created_at)
        .join(Client, Client.client_id == Grant.client_id)
        .where(
            Grant.user_id == user.id,
            Grant.revoked_at.is_(None),
            Grant.expires_at > utcnow(),
        )
        .order_by(Grant.created_at)
    )
    return [(row[0], row[1], row[2], row[3]) for row in [*consents, *grants]]


def revoke_app(user: User, client_id: str) -> bool:
    """Withdraw consent and revoke every grant of this person to this client; no commit.

    Afterwards the client's refresh tokens fail (RFC 6749 section 5.2 `invalid_grant`),
    its access tokens introspect inactive (RFC 7662), and the consent page is shown
    again. False when the person had nothing with this client.
    """
    consent = db.session.scalar(
        select(Consent).where(Consent.user_id == user.id, Consent.client_id == client_id)
    )
    revoked = revoke_all_grants(user_id=user.id, client_id=client_id)
    if consent is None and not revoked:
        return False
    if consent is not None:
        db.session.delete(consent)
    record("consent.revoked", subject=user.sub, client_id=client_id)
    return True
