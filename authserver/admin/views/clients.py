"""The console's pages about clients: list, register, change, rotate, disable, delete."""

from __future__ import annotations

from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from ...clients.initial_access import issue_initial_access_token
from ...clients.metadata import MAX_REFRESH_TOKEN_GRACE_PERIOD
from ...clients.models import Client
from ...clients.services import get_client, list_clients
from ...roles import ceiling
from ...roles.ceiling import PrivilegeError
from ..forms import ActiveForm, ClientForm, ConfirmForm, CreateClientForm, lines
from ..services import clients as services
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


@bp.get("/clients")
@require_permission("clients:read")
def clients() -> ResponseReturnValue:
    """Every registered client."""
    return render_template("admin/clients.html", section="clients", clients=list_clients())


@bp.route("/clients/new", methods=["GET", "POST"])
@require_permission("clients:write")
def create_client() -> ResponseReturnValue:
    """Register a client; a confidential client's secret is shown on the next page, once."""
    form = CreateClientForm()
    form.offer_roles([role.name for role in all_roles()])
    if request.method == "GET":
        form.grant_types.data = ["authorization_code", "refresh_token"]
        form.scope.data = "openid profile email"
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            client, secret = services.create_client_as_admin(
                actor=actor(),
                token_endpoint_auth_method=form.token_endpoint_auth_method.data,
                **_client_metadata(form),
            )
        except (AdminError, PrivilegeError) as error:
            errors["form"] = sentence(str(error))
        else:
            return render_template(
                "admin/client_secret.html", section="clients", client=client, secret=secret
            )
    errors = errors or field_errors(form)
    status = INVALID_FORM_STATUS if errors else 200
    page = render_template(
        "admin/client_new.html", section="clients", form=form, errors=errors, **_offers()
    )
    return page, status


@bp.post("/clients/initial-token")
@require_permission("clients:write")
def issue_initial_token() -> ResponseReturnValue:
    """RFC 7591 section 3: a single-use token allowing one dynamic registration, shown once."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    note = (request.form.get("note") or "").strip()[:200]
    token = issue_initial_access_token(note=note, created_by=actor().id)
    return render_template("admin/initial_token.html", section="clients", token=token, note=note)


@bp.get("/clients/<client_id>")
@require_permission("clients:read")
def client(client_id: str) -> ResponseReturnValue:
    """One client: its metadata, an edit form, and its actions."""
    target = _client_or_404(client_id)
    form = ClientForm(formdata=None, data=_client_form_data(target))
    return _client_page(target, form, {})


@bp.post("/clients/<client_id>")
@require_permission("clients:write")
def update_client(client_id: str) -> ResponseReturnValue:
    """Save changed metadata, checked by the same rules as registration."""
    target = _client_or_404(client_id)
    form = ClientForm()
    form.offer_roles([role.name for role in all_roles()])
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            services.update_client(target, actor=actor(), **_client_metadata(form))
        except (AdminError, PrivilegeError) as error:
            errors["form"] = sentence(str(error))
        else:
            flash(f"{target.name} was saved.")
            return redirect(url_for("admin.client", client_id=target.client_id))
    errors = errors or field_errors(form)
    return _client_page(target, form, errors), INVALID_FORM_STATUS


def _client_page(target: Client, form: ClientForm, errors: dict[str, str]) -> str:
    """A client's page; its forms and buttons only when the signed-in person may change it."""
    return render_template(
        "admin/client.html",
        section="clients",
        client=target,
        form=form,
        errors=errors,
        may_manage=services.may_manage_client(actor(), target),
        **_offers(),
    )


def _offers() -> dict[str, Any]:
    """What a client form offers the signed-in person: the roles they may give, and whether
    they may make a client first-party (it then reads profiles, as users:read allows)."""
    return {
        "grantable": grantable_role_names(),
        "may_skip_consent": ceiling.within(actor().power, ceiling.FIRST_PARTY_POWER),
        "max_refresh_token_grace_period": MAX_REFRESH_TOKEN_GRACE_PERIOD,
    }


@bp.post("/clients/<client_id>/secret")
@require_permission("clients:write")
def rotate_secret(client_id: str) -> ResponseReturnValue:
    """Give the client a new secret and show it once; the old one stops working."""
    target = _client_or_404(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        secret = services.rotate_client_secret(target, actor=actor())
    except AdminError as error:
        flash(str(error))
        return redirect(url_for("admin.client", client_id=target.client_id))
    return render_template(
        "admin/client_secret.html", section="clients", client=target, secret=secret, rotated=True
    )


@bp.post("/clients/<client_id>/active")
@require_permission("clients:write")
def set_client_active(client_id: str) -> ResponseReturnValue:
    """Enable or disable a client; disabling revokes its tokens."""
    target = _client_or_404(client_id)
    form = ActiveForm()
    if not form.validate_on_submit():
        abort(400)
    active = form.active.data == "1"
    services.set_client_active(target, active, actor=actor())
    flash(f"{target.name} is {'enabled' if active else 'disabled'}.")
    return redirect(url_for("admin.client", client_id=target.client_id))


@bp.route("/clients/<client_id>/delete", methods=["GET", "POST"])
@require_permission("clients:write")
def delete_client(client_id: str) -> ResponseReturnValue:
    """Ask for confirmation, then delete the client and everything issued to it."""
    target = _client_or_404(client_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        name = target.name
        services.delete_client(target, actor=actor())
        flash(f"{name} was deleted.")
        return redirect(url_for("admin.clients"))
    return render_template("admin/client_delete.html", section="clients", client=target)


def _client_metadata(form: ClientForm) -> dict[str, Any]:
    """The form's values as client metadata keyword arguments."""
    metadata: dict[str, Any] = {
        "name": form.name.data or "",
        "redirect_uris": lines(form.redirect_uris.data),
        "post_logout_redirect_uris": lines(form.post_logout_redirect_uris.data),
        "grant_types": form.grant_types.data or [],
        "scope": " ".join((form.scope.data or "").split()),
        "web_origins": lines(form.web_origins.data),
        "resources": lines(form.resources.data),
        "skip_consent": bool(form.skip_consent.data),
        "roles": form.roles.data or [],
        "is_resource_server": bool(form.is_resource_server.data),
        "claims_in_id_token": bool(form.claims_in_id_token.data),
        "subject_type": form.subject_type.data or None,
        "sector_identifier_uri": (form.sector_identifier_uri.data or "").strip(),
        # An empty field removes the URI.
        "backchannel_logout_uri": (form.backchannel_logout_uri.data or "").strip(),
        "backchannel_logout_session_required": bool(form.backchannel_logout_session_required.data),
        "frontchannel_logout_uri": (form.frontchannel_logout_uri.data or "").strip(),
        "frontchannel_logout_session_required": bool(
            form.frontchannel_logout_session_required.data
        ),
    }
    grace = form.refresh_token_grace_period_seconds.data
    if grace is not None:
        # An empty field keeps what the client has (0 for a new one).
        metadata["refresh_token_grace_period_seconds"] = grace
    return metadata


def _client_form_data(target: Client) -> dict[str, Any]:
    """A client's metadata as the edit form's initial values."""
    return {
        "name": target.name,
        "redirect_uris": "\n".join(target.redirect_uris),
        "post_logout_redirect_uris": "\n".join(target.post_logout_redirect_uris),
        "grant_types": list(target.grant_types),
        "scope": target.scope,
        "web_origins": "\n".join(target.web_origins),
        "resources": "\n".join(target.resources),
        "skip_consent": target.skip_consent,
        "roles": target.role_names,
        "is_resource_server": target.is_resource_server,
        "claims_in_id_token": target.claims_in_id_token,
        "refresh_token_grace_period_seconds": target.refresh_token_grace_period_seconds,
        "subject_type": target.subject_type,
        "sector_identifier_uri": target.sector_identifier_uri or "",
        "backchannel_logout_uri": target.backchannel_logout_uri or "",
        "backchannel_logout_session_required": target.backchannel_logout_session_required,
        "frontchannel_logout_uri": target.frontchannel_logout_uri or "",
        "frontchannel_logout_session_required": target.frontchannel_logout_session_required,
    }


def _client_or_404(client_id: str) -> Client:
    client = get_client(client_id)
    if client is None:
        abort(404)
    return client
