"""The admin console at /admin: people, clients, roles, signing keys and the audit log.

Each view names the permission it needs (`require_permission`). People without it get
403; signed-out people go to the sign-in page; a sign-in older than
`config.admin_reauth_after` seconds must be repeated (re-authentication) before any
admin page opens. Views parse the form, call admin.services or roles.services with the
signed-in person as the actor, and render. The services refuse a change above the
person's ceiling (roles.ceiling): the form shows why (422), or a 403 page does. Forms
offer only the roles and permissions the person may give.
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
    flash,
    g,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask.typing import ResponseReturnValue

from ..accounts.models import User
from ..clients.models import Client
from ..roles import ceiling
from ..roles import services as role_services
from ..roles.ceiling import Actor, PrivilegeError
from ..roles.permissions import PERMISSIONS
from ..sessions.services import auth_age_seconds, current_session
from . import services
from .forms import (
    ActiveForm,
    AuditFilterForm,
    ClientForm,
    ConfirmForm,
    CreateClientForm,
    CreateUserForm,
    RoleForm,
    RotateKeysForm,
    SearchForm,
    UserRolesForm,
    lines,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")

USERS_PER_PAGE = 25
AUDIT_PER_PAGE = 50
# A form shown again with errors next to its fields.
INVALID_FORM_STATUS = 422
View = Callable[..., ResponseReturnValue]


# Access


def require_permission(permission: str | None) -> Callable[[View], View]:
    """Decorator: a signed-in, recently authenticated person with `permission` (None: any)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            login_session = current_session()
            if login_session is None:
                return redirect(url_for("accounts.login", next=_return_path()))
            user = login_session.user
            allowed = (
                services.is_staff(user)
                if permission is None
                else services.can_person(user, permission)
            )
            if not allowed:
                abort(403)
            max_age = current_app.config["AUTHSERVER"].admin_reauth_after
            if auth_age_seconds(login_session) > max_age:
                return redirect(url_for("accounts.login", reauth=1, next=_return_path()))
            g.admin_user = user
            g.admin_actor = Actor.person(user)
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
    g.pop("admin_actor", None)


@bp.errorhandler(PrivilegeError)
def above_ceiling(error: PrivilegeError) -> ResponseReturnValue:
    """A change above the person's ceiling that no form shows: a 403 page saying why."""
    page = render_template(
        "errors/error.html",
        title="Forbidden",
        message=_sentence(str(error)),
        status=403,
        error="forbidden",
    )
    return page, 403


def _actor() -> Actor:
    """The signed-in person acting in this request (set by `require_permission`)."""
    actor: Actor = g.admin_actor
    return actor


def _sentence(text: str) -> str:
    """A service message as a sentence for a page."""
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "." if text else text


@bp.context_processor
def console_helpers() -> dict[str, Any]:
    """`can(permission)` for templates: show write buttons only to those who may use them."""
    user = g.get("admin_user")
    return {"can": lambda permission: services.can_person(user, permission)}


def _grantable_role_names() -> list[str]:
    """The names of the roles the signed-in person may give."""
    return [role.name for role in services.grantable_roles(_actor())]


def _user_or_404(sub: str) -> User:
    user = services.get_user(sub)
    if user is None:
        abort(404)
    return user


def _client_or_404(client_id: str) -> Client:
    from ..clients.services import get_client

    client = get_client(client_id)
    if client is None:
        abort(404)
    return client


def _field_errors(form: Any) -> dict[str, str]:
    """The first error of each invalid field, for messages next to the fields."""
    return {name: messages[0] for name, messages in form.errors.items() if messages}


# Dashboard


@bp.get("")
@require_permission(None)
def dashboard() -> ResponseReturnValue:
    """The console's front page: what there is to manage."""
    return render_template("admin/dashboard.html", section="dashboard")


# Users


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
    form.offer_roles([role.name for role in _all_roles()])
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            user = services.create_user_as_admin(
                form.email.data,
                form.name.data or "",
                form.password.data or None,
                form.roles.data or [],
                send_reset=form.send_reset.data,
                actor=_actor(),
            )
        except PrivilegeError as error:
            errors["roles"] = _sentence(str(error))
        except services.AdminError as error:
            errors["email"] = str(error)
        else:
            flash(f"Created {user.email}.")
            return redirect(url_for("admin.user", sub=user.sub))
    errors = errors or _field_errors(form)
    status = INVALID_FORM_STATUS if errors else 200
    page = render_template(
        "admin/user_new.html",
        section="users",
        form=form,
        errors=errors,
        grantable=_grantable_role_names(),
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
        lambda: services.set_user_active(person, active, actor=_actor()),
        f"{person.email} is {'enabled' if active else 'disabled'}.",
    )


@bp.post("/users/<sub>/verify-email")
@require_permission("users:write")
def verify_email(sub: str) -> ResponseReturnValue:
    """Mark the person's e-mail address as verified."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.mark_email_verified(person, actor=_actor()),
        f"{person.email} is verified.",
    )


@bp.post("/users/<sub>/reset")
@require_permission("users:write")
def send_reset(sub: str) -> ResponseReturnValue:
    """E-mail the person a password reset link."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.send_password_reset(person, actor=_actor()),
        f"A password reset link was sent to {person.email}.",
    )


@bp.post("/users/<sub>/roles")
@require_permission("users:write")
def set_roles(sub: str) -> ResponseReturnValue:
    """Save the roles the person holds."""
    person = _user_or_404(sub)
    form = UserRolesForm()
    form.offer_roles([role.name for role in _all_roles()])
    if not form.validate_on_submit():
        abort(400)
    return _user_action(
        person,
        lambda: services.set_user_roles(person, form.roles.data or [], actor=_actor()),
        f"Roles of {person.email} saved.",
    )


@bp.post("/users/<sub>/sign-out")
@require_permission("users:write")
def sign_out_everywhere(sub: str) -> ResponseReturnValue:
    """End every session of the person and revoke their tokens."""
    person = _user_or_404(sub)
    return _user_action(
        person,
        lambda: services.sign_out_everywhere(person, actor=_actor()),
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
        return _user_page(person, _sentence(str(error))), 403
    except services.AdminError as error:
        return _user_page(person, str(error)), 409
    flash(done)
    return redirect(url_for("admin.user", sub=person.sub))


def _user_page(person: User, error: str | None) -> str:
    """A person's page; write buttons only for what the signed-in person may do to them."""
    return render_template(
        "admin/user.html",
        section="users",
        person=person,
        roles=_all_roles(),
        grantable=_grantable_role_names(),
        may_act=services.may_act_on_person(_actor(), person),
        error=error,
    )


def _all_roles() -> list[Any]:
    """Every role, by name."""
    return list(role_services.list_roles())


# Clients


@bp.get("/clients")
@require_permission("clients:read")
def clients() -> ResponseReturnValue:
    """Every registered client."""
    from ..clients.services import list_clients

    return render_template("admin/clients.html", section="clients", clients=list_clients())


@bp.route("/clients/new", methods=["GET", "POST"])
@require_permission("clients:write")
def create_client() -> ResponseReturnValue:
    """Register a client; a confidential client's secret is shown on the next page, once."""
    form = CreateClientForm()
    form.offer_roles([role.name for role in _all_roles()])
    if request.method == "GET":
        form.grant_types.data = ["authorization_code", "refresh_token"]
        form.scope.data = "openid profile email"
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            client, secret = services.create_client_as_admin(
                actor=_actor(),
                token_endpoint_auth_method=form.token_endpoint_auth_method.data,
                **_client_metadata(form),
            )
        except (services.AdminError, PrivilegeError) as error:
            errors["form"] = _sentence(str(error))
        else:
            return render_template(
                "admin/client_secret.html", section="clients", client=client, secret=secret
            )
    errors = errors or _field_errors(form)
    status = INVALID_FORM_STATUS if errors else 200
    page = render_template(
        "admin/client_new.html", section="clients", form=form, errors=errors, **_offers()
    )
    return page, status


@bp.post("/clients/initial-token")
@require_permission("clients:write")
def issue_initial_token() -> ResponseReturnValue:
    """RFC 7591 section 3: a single-use token allowing one dynamic registration, shown once."""
    from ..clients.registration import issue_initial_access_token

    if not ConfirmForm().validate_on_submit():
        abort(400)
    note = (request.form.get("note") or "").strip()[:200]
    token = issue_initial_access_token(note=note, created_by=g.admin_actor.id)
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
    form.offer_roles([role.name for role in _all_roles()])
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            services.update_client(target, actor=_actor(), **_client_metadata(form))
        except (services.AdminError, PrivilegeError) as error:
            errors["form"] = _sentence(str(error))
        else:
            flash(f"{target.name} was saved.")
            return redirect(url_for("admin.client", client_id=target.client_id))
    errors = errors or _field_errors(form)
    return _client_page(target, form, errors), INVALID_FORM_STATUS


def _client_page(target: Client, form: ClientForm, errors: dict[str, str]) -> str:
    """A client's page; its forms and buttons only when the signed-in person may change it."""
    return render_template(
        "admin/client.html",
        section="clients",
        client=target,
        form=form,
        errors=errors,
        may_manage=services.may_manage_client(_actor(), target),
        **_offers(),
    )


def _offers() -> dict[str, Any]:
    """What a client form offers the signed-in person: the roles they may give, and whether
    they may make a client first-party (it then reads profiles, as users:read allows)."""
    return {
        "grantable": _grantable_role_names(),
        "may_skip_consent": ceiling.within(_actor().power, ceiling.FIRST_PARTY_POWER),
    }


@bp.post("/clients/<client_id>/secret")
@require_permission("clients:write")
def rotate_secret(client_id: str) -> ResponseReturnValue:
    """Give the client a new secret and show it once; the old one stops working."""
    target = _client_or_404(client_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        secret = services.rotate_client_secret(target, actor=_actor())
    except services.AdminError as error:
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
    services.set_client_active(target, active, actor=_actor())
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
        services.delete_client(target, actor=_actor())
        flash(f"{name} was deleted.")
        return redirect(url_for("admin.clients"))
    return render_template("admin/client_delete.html", section="clients", client=target)


def _client_metadata(form: ClientForm) -> dict[str, Any]:
    """The form's values as client metadata keyword arguments."""
    return {
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
    }


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
    }


# Roles


@bp.get("/roles")
@require_permission("roles:read")
def roles() -> ResponseReturnValue:
    """Every role with its permissions."""
    return render_template("admin/roles.html", section="roles", roles=_all_roles())


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
                actor=_actor(),
            )
        except (role_services.RoleError, PrivilegeError) as error:
            errors["form"] = _sentence(str(error))
        else:
            flash(f"Role {role.name} created.")
            return redirect(url_for("admin.roles"))
    return _role_page(form, None, errors or _field_errors(form))


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
    if not services.can_person(g.admin_user, "roles:write"):
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
                actor=_actor(),
            )
        except (role_services.RoleError, PrivilegeError) as error:
            errors["form"] = _sentence(str(error))
        else:
            flash(f"Role {target.name} saved.")
            return redirect(url_for("admin.roles"))
    return _role_page(form, target, errors or _field_errors(form))


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
            role_services.delete_role(target, actor=_actor())
        except PrivilegeError as refused:
            error, status = _sentence(str(refused)), 403
        except role_services.RoleError as refused:
            error, status = str(refused), 409
        else:
            flash(f"Role {name} deleted.")
            return redirect(url_for("admin.roles"))
    page = render_template("admin/role_delete.html", section="roles", role=target, error=error)
    return page, status


def _role_page(form: RoleForm, target: Any, errors: dict[str, str]) -> ResponseReturnValue:
    """The create or edit form of a role, with errors next to the fields; only the
    permissions the person holds are offered, and a role holding more is shown read-only."""
    power = _actor().power
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


# Signing keys


@bp.get("/keys")
@require_permission("keys:read")
def keys() -> ResponseReturnValue:
    """Every signing key with its status."""
    return render_template(
        "admin/keys.html", section="keys", keys=services.list_signing_keys(), form=RotateKeysForm()
    )


@bp.post("/keys/rotate")
@require_permission("keys:write")
def rotate_keys() -> ResponseReturnValue:
    """Make new signing keys and retire the old ones (still published for verification)."""
    form = RotateKeysForm()
    if not form.validate_on_submit():
        abort(400)
    kids = services.rotate_signing_keys(form.alg.data or None, actor=_actor())
    flash(f"New signing keys: {', '.join(kids)}.")
    return redirect(url_for("admin.keys"))


# Audit log


@bp.get("/audit")
@require_permission("audit:read")
def audit() -> ResponseReturnValue:
    """The audit log, newest first, filtered, one page at a time."""
    from ..audit import services as audit_log

    form = AuditFilterForm(request.args)
    valid = form.validate()
    filters = form.filters() if valid else {}
    before = form.before.data if valid else None
    events = audit_log.query(**filters, limit=AUDIT_PER_PAGE + 1, before=before)
    older = events[AUDIT_PER_PAGE - 1].id if len(events) > AUDIT_PER_PAGE else None
    page = render_template(
        "admin/audit.html",
        section="audit",
        form=form,
        events=events[:AUDIT_PER_PAGE],
        older=older,
        paged=before is not None,
        filters=form.query_args() if valid else {},
        errors=_field_errors(form),
    )
    return page, 200 if valid else 400


@bp.get("/audit/export")
@require_permission("audit:read")
def export_audit() -> ResponseReturnValue:
    """The filtered audit log as JSON lines (one event a line), newest first, to download."""
    from ..audit import services as audit_log

    form = AuditFilterForm(request.args)
    if not form.validate():
        abort(400)
    body = stream_with_context(audit_log.export_jsonl(**form.filters()))
    return Response(
        body,
        mimetype="application/x-ndjson",
        headers={"Content-Disposition": 'attachment; filename="audit-log.jsonl"'},
    )
