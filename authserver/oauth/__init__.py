"""The RFC 6749 family: authorization, token, revocation and introspection endpoints."""

from __future__ import annotations

from flask import Flask

from . import connected_apps, services
from .server import create_authorization_server
from .views import bp


def init_app(app: Flask) -> None:
    """Create this app's authorization server and register the endpoints."""
    app.extensions["authserver.oauth"] = create_authorization_server(app)
    app.register_blueprint(bp)
    services.connect_signals(app)
    connected_apps.register(app)
