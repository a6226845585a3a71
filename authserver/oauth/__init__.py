"""The RFC 6749 family: authorization, token, revocation and introspection endpoints."""

from __future__ import annotations

from flask import Flask

from ..accounts.models import User
from ..clients.models import Client
from ..core import epoch
from . import connected_apps, services
from .models import Grant, RevokedAccessToken
from .server import create_authorization_server
from .views import bp


def init_app(app: Flask) -> None:
    """Create this app's authorization server and register the endpoints."""
    app.extensions["authserver.oauth"] = create_authorization_server(app)
    app.register_blueprint(bp)
    services.connect_signals(app)
    connected_apps.register(app)
    watch_revocations(app)


def watch_revocations(app: Flask) -> None:
    """The changes that revoke access tokens (oauth.tokens.is_revoked), for core.epoch.

    A revoked token's record, a revoked or deleted grant (family revocation), a client
    disabled, deleted or rotated (`tokens_not_before`), a person disabled or deleted.
    """
    epoch.watch(app, RevokedAccessToken, inserts=True)
    epoch.watch(app, Grant, columns=("revoked_at",))
    epoch.watch(app, Client, columns=("is_active", "tokens_not_before"))
    epoch.watch(app, User, columns=("is_active",))
