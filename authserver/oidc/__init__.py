"""OpenID Connect: ID Tokens, claims, UserInfo and discovery."""

from __future__ import annotations

from flask import Flask

from . import backchannel, discovery
from .userinfo import bp


def init_app(app: Flask) -> None:
    """Register the UserInfo and discovery endpoints and the back-channel logout sender."""
    app.register_blueprint(bp)
    discovery.init_app(app)
    backchannel.init_app(app)
