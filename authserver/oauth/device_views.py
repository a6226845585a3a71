"""RFC 8628 pages: user code entry and confirmation."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("device", __name__)
