"""Two-step verification pages: the sign-in step and enrolment."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("two_step", __name__)
