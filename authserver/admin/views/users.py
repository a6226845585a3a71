"""The console's pages about people: search, create, and act on one person."""

from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ...accounts.models import User
from ...roles.ceiling import PrivilegeError
from ..forms import ActiveForm, CreateUserForm, SearchForm, UserRolesForm
from ..services import users as services
from ..services.base import AdminError
from .base import (
    INVALID_FORM_STATUS,
    actor,
    all_roles,
    bp,
    field_errors,
    grantable_role_names,
    require_permission,
    sentence,
)

USERS_PER_PAGE = 25


@bp.get("/users")
@require_permission("users:read")
def users() -> ResponseReturnValue:
    """Search people by e-mail or name, one page at a time."""
    form = SearchForm(request.args)
    query = form.q.data if form.validate() else ""
    page = form.page.data or 1 if not form.errors else 1
    people, total = services.search_users(
        query or "", limit=USERS_PER_PAGE, offset=(page - 1) * USERS_PER_PAGE
    )
    pages = max(1, -(-total // USERS_PER_PAGE))
    return render_template(
        "admin/users.html",
        section="users",
        form=form,
        query=query or "",
        people=people,
        total=total,
        page=page,
        pages=pages,
    )


@bp.route("/users/new", methods=["GET", "POST"])
@require_permission("users:write")
def create_user() -> ResponseReturnValue:
    """Create a person, optionally e-mailing them a link to set their password."""
    form = CreateUserForm()
    form.offer_roles([role.name for role in all_roles()])
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = services.create_user_as_admin(
                form.email.data,
                form.name.data or "",
                form.password.data or None,
                form.roles.data or [],
                send_reset=form.send_reset.data,
                actor=actor(),
            )
        except PrivilegeError as error:
            errors["roles"] = sentence(str(error))
        except AdminError as error:
            errors["email"] = str(error)
        else:
            flash(f"Created {user.email}.")
            return redirect(url_for("admin.user", sub=user.sub))
    errors = errors or field_errors(form)
    status = INVALID_FORM_STATUS if errors else 200
    page = render_template(
        "admin/user_new.html",
        section="users",
        form=form,
        errors=errors,
        grantable=grantable_role_names(),
    )
    return page, status


@bp.get("/users/<sub>")
@require_permission("users:read")
def user(sub: str) -> ResponseReturnValue:
    """One person: status, roles, and what an admin can do for them."""
    person = _user_or_404(sub)
    return _user_page(person, None), 200


@bp.post("/users/<sub>/active")
@require_permission("users:write")
def set_user_active(sub: str) -> ResponseReturnValue:
    """Enable or disable a person; disabling signs them out everywhere."""
    person = _user_or_404(sub)
    form = ActiveForm()
    if not form.validate_on_submit():
        abort(400)
    active = form.active.data == "1"
    return _user_action(
        person,
        lambda: services.set_user_active(person, active, actor=actor()),
        f"{person.email} is {'enabled' if active else 'disabled'}.",
    )


@bp.post("/users/<sub>/verify-email")
@require_permission("users:write")
def verify_email(sub: str) -> ResponseReturnValue:
    """Mark the person's e-mail address as verified."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.mark_email_verified(person, actor=actor()),
        f"{person.email} is verified.",
    )


@bp.post("/users/<sub>/reset")
@require_permission("users:write")
def send_reset(sub: str) -> ResponseReturnValue:
    """E-mail the person a password reset link."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.send_password_reset(person, actor=actor()),
        f"A password reset link was sent to {person.email}.",
    )


@bp.post("/users/<sub>/roles")
@require_permission("users:write")
def set_roles(sub: str) -> ResponseReturnValue:
    """Save the roles the person holds."""
    person = _user_or_404(sub)
    form = UserRolesForm()
    form.offer_roles([role.name for role in all_roles()])
    if not form.validate_on_submit():
        abort(400)
    return _user_action(
        person,
        lambda: services.set_user_roles(person, form.roles.data or [], actor=actor()),
        f"Roles of {person.email} saved.",
    )


@bp.post("/users/<sub>/sign-out")
@require_permission("users:write")
def sign_out_everywhere(sub: str) -> ResponseReturnValue:
    """End every session of the person and revoke their tokens."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.sign_out_everywhere(person, actor=actor()),
        f"{person.email} is signed out everywhere.",
    )


def _user_action(person: User, action: Callable[[], object], done: str) -> ResponseReturnValue:
    """Run an action on a person (CSRFProtect has checked the form); back to their page.

    Refused by the rules of the data: 409; above the actor's ceiling: 403; both shown on
    the person's page.
    """
    try:
        action()
    except PrivilegeError as error:
        return _user_page(person, sentence(str(error))), 403
    except AdminError as error:
        return _user_page(person, str(error)), 409
    flash(done)
    return redirect(url_for("admin.user", sub=person.sub))


def _user_page(person: User, error: str | None) -> str:
    """A person's page; write buttons only for what the signed-in person may do to them."""
    return render_template(
        "admin/user.html",
        section="users",
        person=person,
        roles=all_roles(),
        grantable=grantable_role_names(),
        may_act=services.may_act_on_person(actor(), person),
        error=error,
    )


def _user_or_404(sub: str) -> User:
    user = services.get_user(sub)
    if user is None:
        abort(404)
    return user
