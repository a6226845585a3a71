"""OpenID Connect RP-Initiated Logout 1.0: the end_session_endpoint."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("logout", __name__)
