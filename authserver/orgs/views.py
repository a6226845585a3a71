"""Organization pages: your organizations, an organization's members and invitations,
accepting an invitation, creating an organization, and the picker of the authorization flow."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectField, StringField
from wtforms.validators import DataRequired, Length

from ..accounts.models import User
from ..accounts.services import normalize_email
from ..audit.actor import Actor
from ..roles.ceiling import PrivilegeError, person_actor
from ..roles.services import list_roles
from ..sessions.services import current_user
from . import invitations, membership, services
from .models import Organization

bp = Blueprint("orgs", __name__, url_prefix="/orgs")
INVALID_FORM_STATUS = 422


class NewOrganizationForm(FlaskForm):
    """A name, and optionally the public identifier (derived from the name otherwise)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=services.MAX_NAME_LENGTH)])
    slug = StringField("Identifier (optional)", validators=[Length(max=64)])


class InviteForm(FlaskForm):
    """Who to invite, and with which role."""

    email = StringField("E-mail", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", validate_choice=False)


class RoleForm(FlaskForm):
    """A member's new role."""

    role = SelectField("Role", validate_choice=False)


class ConfirmForm(FlaskForm):
    """A button with nothing but the CSRF token."""


def signed_in(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """Send signed-out people to the sign-in page, coming back here."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        user = current_user()
        if user is None:
            return redirect(url_for("accounts.login", next=request.full_path.rstrip("?")))
        return view(user, *args, **kwargs)

    return wrapper


def managed(view: Callable[..., ResponseReturnValue]) -> Callable[..., ResponseReturnValue]:
    """The organization of the URL, for its admins and server admins; 403 for other members."""

    @wraps(view)
    def wrapper(user: User, slug: str, *args: Any, **kwargs: Any) -> ResponseReturnValue:
        organization = services.get_organization(slug)
        if organization is None:
            abort(404)
        if not services.can_manage(user, organization):
            abort(403 if membership.membership(organization, user) is not None else 404)
        return view(user, organization, *args, **kwargs)

    return wrapper


@bp.errorhandler(PrivilegeError)
def above_ceiling(error: PrivilegeError) -> ResponseReturnValue:
    """A change above the actor's standing in the organization (services enforce it too)."""
    page = render_template(
        "errors/error.html",
        title="Forbidden",
        message=_sentence(str(error)),
        status=403,
        error="forbidden",
    )
    return page, 403


@bp.after_request
def never_store(response: Response) -> Response:
    """These pages show members and e-mail addresses: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
@signed_in
def index(user: User) -> ResponseReturnValue:
    """The person's organizations, with the role held in each."""
    return render_template(
        "orgs/index.html",
        memberships=membership.memberships_of(user),
        can_create=services.can_create_organizations(user),
        organizations=services.list_organizations()
        if services.can_create_organizations(user)
        else [],
    )


@bp.route("/new", methods=["GET", "POST"])
@signed_in
def new(user: User) -> ResponseReturnValue:
    """Create an organization (server admins); its creator becomes its first admin."""
    if not services.can_create_organizations(user):
        abort(403)
    form = NewOrganizationForm()
    error = None
    if form.validate_on_submit():
        try:
            organization = services.create_organization(
                form.name.data or "", slug=form.slug.data or None, owner=user, actor=_actor(user)
            )
        except services.OrgError as exc:
            error = str(exc)
        else:
            flash(f"Created {organization.name}.")
            return redirect(url_for("orgs.manage", slug=organization.slug))
    elif form.is_submitted():
        error = "Enter a name."
    status = INVALID_FORM_STATUS if error else 200
    return render_template("orgs/new.html", form=form, error=error), status


@bp.get("/<slug>")
@signed_in
@managed
def manage(user: User, organization: Organization) -> ResponseReturnValue:
    """An organization's members and pending invitations, with what its admins can change."""
    return _manage_page(organization)


@bp.post("/<slug>/members/<int:membership_id>/role")
@signed_in
@managed
def change_role(user: User, organization: Organization, membership_id: int) -> Response:
    """Give a member another role."""
    form = RoleForm()
    found = membership.get_membership(organization, membership_id)
    if found is None:
        abort(404)
    if not form.validate_on_submit():
        abort(400)
    try:
        membership.change_member_role(found, form.role.data or "", actor=_actor(user))
    except services.OrgError as exc:
        flash(_sentence(str(exc)))
    else:
        flash(f"{found.user.email} is now {found.role.name}.")
    return _back(organization)


@bp.post("/<slug>/members/<int:membership_id>/remove")
@signed_in
@managed
def remove(user: User, organization: Organization, membership_id: int) -> Response:
    """End a membership."""
    found = membership.get_membership(organization, membership_id)
    if found is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    email = found.user.email
    try:
        membership.remove_member(found, actor=_actor(user))
    except services.OrgError as exc:
        flash(_sentence(str(exc)))
    else:
        flash(f"Removed {email}.")
    return _back(organization)


@bp.post("/<slug>/invitations")
@signed_in
@managed
def invite(user: User, organization: Organization) -> ResponseReturnValue:
    """E-mail an invitation link."""
    form = InviteForm()
    error = None
    if not form.validate_on_submit():
        error = "Enter an e-mail address."
    else:
        try:
            invitations.invite(
                organization,
                form.email.data or "",
                form.role.data or "",
                invited_by=user,
                actor=_actor(user),
            )
        except services.OrgError as exc:
            error = _sentence(str(exc))
    if error:
        return _manage_page(organization, invite_error=error), INVALID_FORM_STATUS
    flash(f"Invitation sent to {normalize_email(form.email.data or '')}.")
    return _back(organization)


@bp.post("/<slug>/invitations/<int:invitation_id>/revoke")
@signed_in
@managed
def revoke(user: User, organization: Organization, invitation_id: int) -> Response:
    """Make an invitation's link stop working."""
    invitation = invitations.get_invitation(organization, invitation_id)
    if invitation is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    invitations.revoke_invitation(invitation, actor=_actor(user))
    flash(f"Revoked the invitation of {invitation.email}.")
    return _back(organization)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
@signed_in
def invitation(user: User, token: str) -> ResponseReturnValue:
    """Accept an invitation: GET shows what it is, POST joins (as the invited address only)."""
    found = invitations.find_invitation(token)
    if found is None:
        return _invitation_error("This invitation is not valid any more.", 404)
    if normalize_email(user.email) != found.email:
        return _invitation_error(
            "This invitation is for another e-mail address. Sign in with the address it was "
            "sent to.",
            403,
        )
    if not user.email_verified:
        # accept_invitation refuses too; said here before the person presses "Join".
        return _invitation_error(_sentence(invitations.UNVERIFIED_INVITEE), 403)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            joined = invitations.accept_invitation(token, user)
        except services.OrgError as exc:
            return _invitation_error(_sentence(str(exc)), 409)
        flash(f"You joined {joined.organization.name}.")
        return redirect(url_for("orgs.index"))
    return render_template(
        "orgs/invitation.html",
        form=form,
        organization=invitations.invitation_organization(found),
        role=invitations.invitation_role(found),
    )


def render_organization_picker(req: Any, organizations: list[Organization]) -> str:
    """The hosted page of the authorization flow: pick one organization, then carry on.

    The form re-posts the authorization request to /authorize with `organization=<slug>`;
    the pipeline checks membership again and then asks for consent as usual.
    """
    hidden = [
        (name, value)
        for name, value in req.params.items(multi=True)
        if name not in {"csrf_token", "decision", "organization"}
    ]
    return render_template(
        "orgs/select.html",
        client_name=req.client.client_name,
        organizations=organizations,
        hidden_fields=hidden,
        user=req.user,
    )


def _manage_page(organization: Organization, invite_error: str | None = None) -> str:
    roles = [role.name for role in list_roles()]
    return render_template(
        "orgs/manage.html",
        organization=organization,
        members=membership.members(organization),
        invitations=invitations.pending_invitations(organization),
        roles=roles,
        form=ConfirmForm(),
        invite_error=invite_error,
        invite_email=request.form.get("email", "") if invite_error else "",
    )


def _invitation_error(message: str, status: int) -> ResponseReturnValue:
    return (
        render_template(
            "errors/error.html",
            title="Invitation",
            message=message,
            status=status,
            error="invalid_invitation",
        ),
        status,
    )


def _actor(user: User) -> Actor:
    """The signed-in person acting on these pages, with their server-wide power."""
    return person_actor(user)


def _back(organization: Organization) -> Response:
    """Post/redirect/get: back to the organization page after a change."""
    return redirect(url_for("orgs.manage", slug=organization.slug))


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text
