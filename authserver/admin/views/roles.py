"""The console's pages about roles: list, create, change and delete custom roles."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ...accounts.models import Role
from ...roles import ceiling
from ...roles import services as role_services
from ...roles.ceiling import PrivilegeError
from ...roles.permissions import PERMISSIONS
from ..forms import ConfirmForm, RoleForm
from ..services.base import can_person
from .base import (
    INVALID_FORM_STATUS,
    actor,
    all_roles,
    bp,
    field_errors,
    require_permission,
    sentence,
)


@bp.get("/roles")
@require_permission("roles:read")
def roles() -> ResponseReturnValue:
    """Every role with its permissions."""
    return render_template("admin/roles.html", section="roles", roles=all_roles())


@bp.route("/roles/new", methods=["GET", "POST"])
@require_permission("roles:write")
def create_role() -> ResponseReturnValue:
    """Make a custom role from permissions of the catalogue the person holds."""
    form = RoleForm()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            role = role_services.create_role(
                form.name.data,
                description=form.description.data or "",
                permissions=form.permissions.data or [],
                actor=actor(),
            )
        except (role_services.RoleError, PrivilegeError) as error:
            errors["form"] = sentence(str(error))
        else:
            flash(f"Role {role.name} created.")
            return redirect(url_for("admin.roles"))
    return _role_page(form, None, errors or field_errors(form))


@bp.route("/roles/<name>", methods=["GET", "POST"])
@require_permission("roles:read")
def role(name: str) -> ResponseReturnValue:
    """One role; with roles:write, its description and (custom roles) permissions change."""
    target = role_services.get_role(name)
    if target is None:
        abort(404)
    if request.method == "GET":
        form = RoleForm(formdata=None, obj=target)
        return _role_page(form, target, {})
    if not can_person(g.admin_user, "roles:write"):
        abort(403)
    form = RoleForm()
    form.name.data = target.name
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            role_services.update_role(
                target,
                description=form.description.data or "",
                permissions=None if target.builtin else form.permissions.data or [],
                actor=actor(),
            )
        except (role_services.RoleError, PrivilegeError) as error:
            errors["form"] = sentence(str(error))
        else:
            flash(f"Role {target.name} saved.")
            return redirect(url_for("admin.roles"))
    return _role_page(form, target, errors or field_errors(form))


@bp.route("/roles/<name>/delete", methods=["GET", "POST"])
@require_permission("roles:write")
def delete_role(name: str) -> ResponseReturnValue:
    """Ask for confirmation, then delete a custom role (people holding it lose it)."""
    target = role_services.get_role(name)
    if target is None:
        abort(404)
    error, status = None, 200
    if ConfirmForm().validate_on_submit():
        try:
            role_services.delete_role(target, actor=actor())
        except PrivilegeError as refused:
            error, status = sentence(str(refused)), 403
        except role_services.RoleError as refused:
            error, status = str(refused), 409
        else:
            flash(f"Role {name} deleted.")
            return redirect(url_for("admin.roles"))
    page = render_template("admin/role_delete.html", section="roles", role=target, error=error)
    return page, status


def _role_page(form: RoleForm, target: Role | None, errors: dict[str, str]) -> ResponseReturnValue:
    """The create or edit form of a role, with errors next to the fields; only the
    permissions the person holds are offered, and a role holding more is shown read-only."""
    power = actor().power
    page = render_template(
        "admin/role_form.html",
        section="roles",
        form=form,
        role=target,
        errors=errors,
        catalogue=PERMISSIONS,
        offered=[permission for permission in PERMISSIONS if ceiling.within(power, [permission])],
        may_manage=target is None or ceiling.within(power, target.permissions or []),
    )
    return page, INVALID_FORM_STATUS if errors else 200
