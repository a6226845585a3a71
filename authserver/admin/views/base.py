"""The console's blueprint and what every page shares: who may open it, and how it answers.

Each view names the permission it needs (`require_permission`). People without it get
403; signed-out people go to the sign-in page; a sign-in older than
`config.admin_reauth_after` seconds must be repeated (re-authentication) before any
admin page opens.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue

from ...accounts.models import Role
from ...audit.actor import Actor, act_as, clear_actor, declared_actor
from ...roles import services as role_services
from ...roles.ceiling import PrivilegeError, person_actor
from ...sessions.services import auth_age_seconds, current_session
from ..services.base import can_person, is_staff
from ..services.users import grantable_roles

bp = Blueprint("admin", __name__, url_prefix="/admin")

# A form shown again with errors next to its fields.
INVALID_FORM_STATUS = 422
View = Callable[..., ResponseReturnValue]


def require_permission(permission: str | None) -> Callable[[View], View]:
    """Decorator: a signed-in, recently authenticated person with `permission` (None: any)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            login_session = current_session()
            if login_session is None:
                return redirect(url_for("accounts.login", next=_return_path()))
            user = login_session.user
            allowed = is_staff(user) if permission is None else can_person(user, permission)
            if not allowed:
                abort(403)
            max_age = current_app.config["AUTHSERVER"].admin_reauth_after
            if auth_age_seconds(login_session) > max_age:
                return redirect(url_for("accounts.login", reauth=1, next=_return_path()))
            g.admin_user = user
            act_as(person_actor(user))
            return view(*args, **kwargs)

        return wrapper

    return decorate


def _return_path() -> str:
    """Where to come back after signing in: this page, or for a form post the console."""
    if request.method == "GET":
        return request.full_path.rstrip("?")
    return url_for("admin.dashboard")


@bp.after_request
def never_store(response: Response) -> Response:
    """Admin pages show personal data and secrets: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.teardown_request
def forget_admin(_error: BaseException | None) -> None:
    """The person acting belongs to one request only (g can outlive it, as in tests)."""
    g.pop("admin_user", None)
    clear_actor()


@bp.errorhandler(PrivilegeError)
def above_ceiling(error: PrivilegeError) -> ResponseReturnValue:
    """A change above the person's ceiling that no form shows: a 403 page saying why."""
    page = render_template(
        "errors/error.html",
        title="Forbidden",
        message=sentence(str(error)),
        status=403,
        error="forbidden",
    )
    return page, 403


def actor() -> Actor:
    """The signed-in person acting in this request (set by `require_permission`)."""
    actor = declared_actor()
    assert actor is not None  # set by the before_request hook above
    return actor


def sentence(text: str) -> str:
    """A service message as a sentence for a page."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


@bp.context_processor
def console_helpers() -> dict[str, Any]:
    """`can(permission)` for templates: show write buttons only to those who may use them."""
    user = g.get("admin_user")
    return {"can": lambda permission: can_person(user, permission)}


def grantable_role_names() -> list[str]:
    """The names of the roles the signed-in person may give."""
    return [role.name for role in grantable_roles(actor())]


def all_roles() -> list[Role]:
    """Every role, by name."""
    return list(role_services.list_roles())


def field_errors(form: Any) -> dict[str, str]:
    """The first error of each invalid field, for messages next to the fields."""
    return {name: messages[0] for name, messages in form.errors.items() if messages}


@bp.get("")
@require_permission(None)
def dashboard() -> ResponseReturnValue:
    """The console's front page: what there is to manage."""
    return render_template("admin/dashboard.html", section="dashboard")
