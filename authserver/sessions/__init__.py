"""Browser sign-in state: the current session and user, auth_time, amr."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.local import LocalProxy

from ..accounts.models import User
from ..extensions import db
from ..security.errors import is_database_unavailable
from .cookie import CookieSessionInterface
from .services import current_user, write_cookie

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Write the session cookie after each request and expose `current_user` to templates."""
    app.session_interface = CookieSessionInterface()
    app.after_request(write_cookie)
    app.context_processor(_template_context)


def _template_context() -> dict[str, Any]:
    """`current_user` in templates, looked up only when a template uses it."""
    return {"current_user": LocalProxy(_user_for_templates)}


def _user_for_templates() -> User | None:
    """The signed-in person, or None when the database cannot say (e.g. on an error page)."""
    try:
        return current_user()
    except SQLAlchemyError as error:
        if is_database_unavailable(error):
            log.warning("could not load the signed-in user: the database is unavailable")
        else:
            log.exception("could not load the signed-in user for a page")
        db.session.rollback()
        return None
