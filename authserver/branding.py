"""The hosted pages' branding: accent colour and logo from configuration."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("branding", __name__)
