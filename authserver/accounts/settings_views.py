"""The account page: profile, password, sessions, connected apps."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("account", __name__)
