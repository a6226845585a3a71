"""The privilege ceiling at every door: no one grants, obtains or hands a client more than
they hold, nor changes a person or client holding more (authserver/roles/ceiling.py).

Every route that changes roles, permissions, people, or a client's roles, scopes,
first-party status, state or secret is a row of CASES below, with what the change needs
beyond the route's own permission. Each row is tried by every kind of actor: a person in
the console, a person's token and a service's token at the admin API, each holding one of
the built-in roles or a partial custom role (`helpdesk`: users:write only; `rolesmith`:
roles:read and roles:write). What lies within the actor succeeds and records its audit
event; what exceeds it is refused, changes nothing in the database and records no success.
The expectations restate the rule here (`holds`) rather than call the code under test.
The routes of the app are checked against the table, so a route added later without a row
fails `test_every_route_that_writes_is_in_the_table`.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from authserver.accounts.models import Role, User
from authserver.audit.models import AuditEvent
from authserver.clients.models import Client
from authserver.clients.services import get_client
from authserver.extensions import db
from authserver.orgs.membership import add_member
from authserver.orgs.models import Membership, Organization
from authserver.orgs.services import create_organization
from authserver.roles.ceiling import SYSTEM, PrivilegeError
from authserver.roles.permissions import BUILTIN_PERMISSIONS, PERMISSIONS
from authserver.roles.services import create_role, get_role
from tests.factories import REDIRECT_URI, make_client, make_initial_access_token, make_user
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, sign_in

API = "/admin/api/v1"
ALL = "*"
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# What each role of the test world allows; restated, not read from the code under test.
POWER: dict[str, frozenset[str]] = {
    **{name: frozenset(perms) for name, perms in BUILTIN_PERMISSIONS.items()},
    "helpdesk": frozenset({"users:write"}),
    "rolesmith": frozenset({"roles:read", "roles:write"}),
}
ACTOR_ROLES = ["admin", "developer", "viewer", "helpdesk", "rolesmith"]
# Events that only a change that went through records.
SUCCESS_EVENTS = ("admin.", "org.", "client.")
_serial = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


def holds(power: frozenset[str], wanted: frozenset[str] | set[str]) -> bool:
    """The rule: `*` covers everything; otherwise every wanted permission is held."""
    return ALL in power or set(wanted) <= power


def power_of(*role_names: str) -> frozenset[str]:
    return frozenset().union(*(POWER[name] for name in role_names))


@pytest.fixture
def app(app_factory: Any) -> Iterator[Flask]:
    app = app_factory(ratelimit_enabled=False, dynamic_registration=True)
    with app.app_context():
        yield app


@dataclass
class World:
    """The custom roles, an organization nobody here belongs to, and an admin tool."""

    tool_id: str
    tool_secret: str
    org: Organization


@pytest.fixture
def world(app: Flask) -> World:
    create_role("helpdesk", permissions=["users:write"], actor=SYSTEM)
    create_role("rolesmith", permissions=["roles:read", "roles:write"], actor=SYSTEM)
    make_user("root@example.com", roles=["admin"])  # so no admin here is the last one
    tool, secret = make_client(
        name="Admin tool", scope="openid offline_access admin", roles=["admin"]
    )
    assert secret is not None
    org = create_organization("Acme", actor=SYSTEM)
    db.session.commit()  # the fixture is the edge: services do not commit
    return World(tool.client_id, secret, org)


# The database, before and after


IGNORED_TABLES = {"audit_events", "alembic_version"}
# Written by reads or by background delivery, never by an admin change.
VOLATILE_COLUMNS = {"last_seen_at", "status", "attempts", "next_attempt_at", "locked_until"}
VOLATILE_COLUMNS |= {"reason", "sent_at", "message"}


def snapshot() -> dict[str, list[str]]:
    """Every row of every table (audit log aside), as comparable text."""
    db.session.expire_all()
    state: dict[str, list[str]] = {}
    for table in db.metadata.sorted_tables:
        if table.name in IGNORED_TABLES:
            continue
        columns = [column for column in table.columns if column.name not in VOLATILE_COLUMNS]
        state[table.name] = sorted(repr(tuple(row)) for row in db.session.execute(select(*columns)))
    return state


def last_event_id() -> int:
    return int(db.session.scalar(select(func.max(AuditEvent.id))) or 0)


def successes_since(event_id: int) -> list[str]:
    events = db.session.scalars(select(AuditEvent.event).where(AuditEvent.id > event_id))
    return [event for event in events if event.startswith(SUCCESS_EVENTS)]


def changed_tables(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    return sorted(name for name in before if before[name] != after.get(name))


# Actors


@dataclass
class Actor:
    """Someone calling the console or the admin API, and what they hold."""

    surface: str  # "console", "api-person" or "api-service"
    role: str
    browser: FlaskClient
    sub: str | None = None
    client_id: str | None = None
    token: str | None = None
    csrf: str | None = None

    @property
    def power(self) -> frozenset[str]:
        return POWER[self.role]

    def __str__(self) -> str:
        return f"{self.surface} {self.role}"

    def send(self, method: str, path: str, data: Any) -> TestResponse:
        if self.surface == "console":
            assert method == "POST"
            return self.browser.post(path, data={"csrf_token": self.csrf, **(data or {})})
        headers = {"Authorization": f"Bearer {self.token}"}
        response = self.browser.open(path, method=method, headers=headers, json=data)
        response.get_data()
        return response


def person_actor(app: Flask, world: World, surface: str, role: str) -> Actor:
    email = f"{role}-{surface}@example.com"
    user = make_user(email, roles=[role])
    browser = app.test_client()
    sign_in(browser, email)
    actor = Actor(surface, role, browser, sub=user.sub)
    if surface == "console":
        actor.csrf = csrf_token(browser.get("/login?reauth=1").text)
    else:
        verifier, challenge = pkce_pair()
        code, _ = get_code(browser, world.tool_id, challenge, scope="openid admin")
        response = exchange(browser, world.tool_id, world.tool_secret, code, verifier)
        assert response.status_code == 200, response.text
        assert "admin" in response.get_json()["scope"].split()  # every role here is staff
        actor.token = response.get_json()["access_token"]
    return actor


def service_actor(app: Flask, role: str) -> Actor:
    service, secret = make_client(
        name=f"{role} service",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope="admin",
        roles=[role],
    )
    assert secret is not None
    browser = app.test_client()
    response = browser.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(service.client_id, secret),
    )
    assert response.status_code == 200, response.text
    token = response.get_json()["access_token"]
    return Actor("api-service", role, browser, client_id=service.client_id, token=token)


# The table


@dataclass
class Step:
    """One attempt: what it needs beyond the route's permission, and its request bodies."""

    wanted: frozenset[str]
    params: dict[str, str] = field(default_factory=dict)
    console: dict[str, Any] | None = None
    api: Any = None


@dataclass(frozen=True)
class Case:
    """A change, by the console route and the API route that make it."""

    name: str
    permission: str
    console: str | None  # "METHOD rule", as in app.url_map
    api: str | None
    build: Callable[[Actor], Step]
    who: str = "any"  # "any", "person" (acts on themselves) or "service" (on itself)

    def applies_to(self, actor: Actor) -> bool:
        if self.who == "person":
            return actor.surface != "api-service"
        if self.who == "service":
            return actor.surface == "api-service"
        return True

    def route(self, surface: str) -> str | None:
        return self.console if surface == "console" else self.api


def fill(rule: str, params: dict[str, str]) -> str:
    """A concrete path from a url_map rule (`<sub>`, `<int:membership_id>`)."""
    return re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", lambda m: str(params[m.group(1)]), rule)


def person(*roles: str, verified: bool = True) -> User:
    return make_user(unique("target") + "@example.com", roles=list(roles), email_verified=verified)


def service(
    *roles: str,
    scope: str = "api",
    grants: tuple[str, ...] = ("client_credentials",),
    skip_consent: bool = False,
    active: bool = True,
) -> Client:
    redirects = [REDIRECT_URI] if "authorization_code" in grants else []
    made, _ = make_client(
        name=unique("Target "),
        redirect_uris=redirects,
        grant_types=list(grants),
        scope=scope,
        roles=list(roles),
        skip_consent=skip_consent,
    )
    if not active:
        made.is_active = False
        db.session.commit()
    return made


def client_power(target: Client) -> frozenset[str]:
    """What a client holds: its roles, and users:read when first-party."""
    held = power_of(*target.role_names)
    return held | {"users:read"} if target.skip_consent else held


def own_scope_needs(grants: list[str], scope: str) -> frozenset[str]:
    """The permissions standing in for the scopes of a client's own tokens (no one here is a
    member of an organization; every actor is staff, which the admin scope needs)."""
    if "client_credentials" not in grants:
        return frozenset()
    return frozenset("orgs:write" for item in scope.split() if item.startswith("org:"))


def client_needs(target: Client) -> frozenset[str]:
    return client_power(target) | own_scope_needs(list(target.grant_types), target.scope)


def client_form(target: Client | None, **changes: Any) -> dict[str, Any]:
    """The console's client form: every field, as the page would post it."""
    values: dict[str, Any] = {
        "name": target.name if target else unique("New "),
        "redirect_uris": "\n".join(target.redirect_uris) if target else "",
        "grant_types": list(target.grant_types) if target else ["client_credentials"],
        "scope": target.scope if target else "api",
        "roles": target.role_names if target else [],
        "skip_consent": bool(target and target.skip_consent),
        "is_resource_server": bool(target and target.is_resource_server),
    }
    values.update(changes)
    if target is None:
        values["token_endpoint_auth_method"] = "client_secret_basic"
    for flag in ("skip_consent", "is_resource_server"):
        if values.pop(flag):
            values[flag] = "y"
    return values


def create_client_step(
    wanted: frozenset[str], *, roles: tuple[str, ...] = (), **metadata: Any
) -> Step:
    grants = metadata.pop("grant_types", ["client_credentials"])
    scope = metadata.pop("scope", "api")
    redirects = [REDIRECT_URI] if "authorization_code" in grants else []
    console = client_form(None, grant_types=grants, scope=scope, roles=list(roles), **metadata) | {
        "redirect_uris": "\n".join(redirects)
    }
    api = {
        "client_name": unique("New "),
        "grant_types": grants,
        "scope": scope,
        "redirect_uris": redirects,
        "roles": list(roles),
        **metadata,
    }
    return Step(wanted, console=console, api=api)


def update_client_step(target: Client, extra: frozenset[str] = frozenset(), **changes: Any) -> Step:
    """Change a client: needs what it holds now, and what it will hold."""
    api = {("client_name" if key == "name" else key): value for key, value in changes.items()}
    new_roles = changes.get("roles", target.role_names)
    new_skip = changes.get("skip_consent", target.skip_consent)
    new_grants = changes.get("grant_types", list(target.grant_types))
    new_scope = changes.get("scope", target.scope)
    after = power_of(*new_roles) | ({"users:read"} if new_skip else set())
    wanted = client_needs(target) | after | own_scope_needs(new_grants, new_scope) | extra
    return Step(
        wanted,
        params={"client_id": target.client_id},
        console=client_form(target, **changes),
        api=api,
    )


def act_on_client(target: Client, console: dict[str, Any] | None = None, api: Any = None) -> Step:
    return Step(client_needs(target), {"client_id": target.client_id}, console or {}, api)


def set_roles_step(target: User, roles: list[str]) -> Step:
    """Give or take roles: needs what the person holds, and every role given or taken."""
    before = set(target.role_names)
    wanted = power_of(*before) | power_of(*(before ^ set(roles)))
    return Step(wanted, {"sub": target.sub}, {"roles": roles}, {"roles": roles})


def act_on_person(target: User, console: dict[str, Any] | None, api: Any) -> Step:
    return Step(power_of(*target.role_names), {"sub": target.sub}, console or {}, api)


def new_role_step(permissions: list[str]) -> Step:
    name = unique("made-")
    return Step(
        frozenset(permissions),
        console={"name": name, "description": "", "permissions": permissions},
        api={"name": name, "permissions": permissions},
    )


def custom_role(permissions: list[str]) -> Role:
    role = create_role(unique("custom-"), permissions=permissions, actor=SYSTEM)
    db.session.commit()
    return role


def update_role_step(role: Role, permissions: list[str] | None, description: str = "x") -> Step:
    old = frozenset(role.permissions or [])
    console: dict[str, Any] = {"name": role.name, "description": description}
    api: dict[str, Any] = {"description": description}
    if permissions is not None:
        console["permissions"] = permissions
        api["permissions"] = permissions
    return Step(old | frozenset(permissions or []), {"name": role.name}, console, api)


def give_myself_admin(actor: Actor) -> Step:
    user = db.session.scalar(select(User).where(User.sub == actor.sub))
    assert user is not None
    return set_roles_step(user, sorted({*user.role_names, "admin"}))


def widen_my_role(actor: Actor) -> Step:
    """A roles:write holder adds permissions to a role it holds; a built-in role's are fixed,
    so there it only describes it anew (which needs all the role holds)."""
    role = get_role(actor.role)
    assert role is not None
    if role.builtin:
        return update_role_step(role, None, "Mine")
    return update_role_step(role, sorted({*role.permissions, "users:write", "clients:write"}))


def give_myself_admin_as_a_service(actor: Actor) -> Step:
    me = get_client(actor.client_id or "")
    assert me is not None
    return update_client_step(me, roles=sorted({*me.role_names, "admin"}))


U, C, R = "/admin/users", "/admin/clients", "/admin/roles"
A = API

CASES: list[Case] = [
    # People: created with roles, given roles, changed.
    *[
        Case(
            f"create a person holding {roles or 'no role'}",
            "users:write",
            f"POST {U}/new",
            f"POST {A}/users",
            lambda _a, roles=roles: Step(
                power_of(*roles),
                console={"email": unique("new") + "@example.com", "roles": roles},
                api={"email": unique("new") + "@example.com", "roles": roles},
            ),
        )
        for roles in ([], ["viewer"], ["developer"], ["helpdesk"], ["admin"])
    ],
    *[
        Case(
            f"change the roles {before} of a person to {after}",
            "users:write",
            f"POST {U}/<sub>/roles",
            f"PATCH {A}/users/<sub>",
            lambda _a, before=before, after=after: set_roles_step(person(*before), after),
        )
        for before, after in (
            ([], ["admin"]),
            ([], ["helpdesk"]),
            ([], ["developer", "viewer"]),
            (["admin"], []),
            (["viewer"], ["viewer", "helpdesk"]),
            (["helpdesk"], []),
        )
    ],
    Case(
        "give myself the admin role",
        "users:write",
        f"POST {U}/<sub>/roles",
        f"PATCH {A}/users/<sub>",
        give_myself_admin,
        who="person",
    ),
    *[
        case
        for held in ([], ["helpdesk"], ["developer"], ["admin"])
        for case in (
            Case(
                f"disable a person holding {held or 'no role'}",
                "users:write",
                f"POST {U}/<sub>/active",
                f"PATCH {A}/users/<sub>",
                lambda _a, held=held: act_on_person(
                    person(*held), {"active": "0"}, {"is_active": False}
                ),
            ),
            Case(
                f"verify the address of a person holding {held or 'no role'}",
                "users:write",
                f"POST {U}/<sub>/verify-email",
                f"PATCH {A}/users/<sub>",
                lambda _a, held=held: act_on_person(
                    person(*held, verified=False), {}, {"email_verified": True}
                ),
            ),
            Case(
                f"send a reset link to a person holding {held or 'no role'}",
                "users:write",
                f"POST {U}/<sub>/reset",
                f"POST {A}/users/<sub>/password-reset",
                lambda _a, held=held: act_on_person(person(*held), {}, None),
            ),
            Case(
                f"sign out everywhere a person holding {held or 'no role'}",
                "users:write",
                f"POST {U}/<sub>/sign-out",
                f"POST {A}/users/<sub>/sign-out",
                lambda _a, held=held: act_on_person(person(*held), {}, None),
            ),
            Case(
                f"rename a person holding {held or 'no role'}",
                "users:write",
                None,
                f"PATCH {A}/users/<sub>",
                lambda _a, held=held: act_on_person(person(*held), None, {"name": "Renamed"}),
            ),
        )
    ],
    Case(
        "enable a disabled admin",
        "users:write",
        f"POST {U}/<sub>/active",
        f"PATCH {A}/users/<sub>",
        lambda _a: act_on_person(_disabled(person("admin")), {"active": "1"}, {"is_active": True}),
    ),
    # Roles: made, changed, deleted.
    *[
        Case(
            f"create a role with {permissions or 'no permission'}",
            "roles:write",
            f"POST {R}/new",
            f"POST {A}/roles",
            lambda _a, permissions=permissions: new_role_step(permissions),
        )
        for permissions in (
            [],
            ["users:read"],
            ["roles:read", "roles:write"],
            ["users:write"],
            ["clients:write", "keys:write"],
            sorted(PERMISSIONS),
        )
    ],
    *[
        Case(
            f"change a role's permissions from {old} to {new}",
            "roles:write",
            f"POST {R}/<name>",
            f"PATCH {A}/roles/<name>",
            lambda _a, old=old, new=new: update_role_step(custom_role(old), new),
        )
        for old, new in (
            (["users:read"], ["users:read", "keys:write"]),
            (["users:write"], ["users:read"]),
            (["roles:write"], ["roles:write"]),
            ([], ["orgs:write"]),
        )
    ],
    Case(
        "describe the built-in admin role anew",
        "roles:write",
        f"POST {R}/<name>",
        f"PATCH {A}/roles/<name>",
        lambda _a: update_role_step(_role("admin"), None, "All of it"),
    ),
    Case(
        "add permissions to a role I hold",
        "roles:write",
        f"POST {R}/<name>",
        f"PATCH {A}/roles/<name>",
        widen_my_role,
        who="person",
    ),
    *[
        Case(
            f"delete a role with {old}",
            "roles:write",
            f"POST {R}/<name>/delete",
            f"DELETE {A}/roles/<name>",
            lambda _a, old=old: (lambda role: Step(frozenset(old), {"name": role.name}, {}, None))(
                custom_role(old)
            ),
        )
        for old in (["users:read"], ["users:write"], ["keys:write", "roles:write"])
    ],
    # Clients: registered, changed, given a new secret, disabled, enabled, deleted.
    *[
        Case(
            f"register a client: {name}",
            "clients:write",
            f"POST {C}/new",
            f"POST {A}/clients",
            lambda _a, wanted=wanted, meta=meta: create_client_step(wanted, **meta),
        )
        for name, wanted, meta in (
            ("web app", frozenset(), {"grant_types": ["authorization_code"], "scope": "openid"}),
            ("service without roles", frozenset(), {}),
            ("service with the admin scope, no role", frozenset(), {"scope": "admin"}),
            (
                "service with the admin scope and role",
                frozenset({ALL}),
                {"scope": "admin", "roles": ("admin",)},
            ),
            ("developer service", POWER["developer"], {"roles": ("developer",)}),
            ("helpdesk service", POWER["helpdesk"], {"roles": ("helpdesk",)}),
            (
                "first-party web app",
                frozenset({"users:read"}),
                {"grant_types": ["authorization_code"], "scope": "openid", "skip_consent": True},
            ),
            ("service with an org scope", frozenset({"orgs:write"}), {"scope": "api org:acme"}),
            ("service with every org", frozenset({"orgs:write"}), {"scope": "org:*"}),
            (
                "web app asking for any org",
                frozenset(),
                {"grant_types": ["authorization_code"], "scope": "openid org:*"},
            ),
            ("resource server", frozenset(), {"is_resource_server": True}),
        )
    ],
    *[
        Case(
            f"change a client: {name}",
            "clients:write",
            f"POST {C}/<client_id>",
            f"PATCH {A}/clients/<client_id>",
            lambda _a, make=make, changes=changes: update_client_step(make(), **changes),
        )
        for name, make, changes in (
            ("rename a plain service", service, {"name": "Renamed"}),
            ("give a service the admin role", service, {"roles": ["admin"]}),
            ("give a service the helpdesk role", service, {"roles": ["helpdesk"]}),
            ("give a service the admin scope", service, {"scope": "api admin"}),
            ("give a service an org scope", service, {"scope": "org:acme"}),
            (
                "make a web app first-party",
                lambda: service(grants=("authorization_code",), scope="openid"),
                {"skip_consent": True},
            ),
            ("rename an admin service", lambda: service("admin", scope="admin"), {"name": "R"}),
            ("take the developer role away", lambda: service("developer"), {"roles": []}),
            (
                "rename a first-party web app",
                lambda: service(grants=("authorization_code",), scope="openid", skip_consent=True),
                {"name": "Renamed"},
            ),
            (
                "rename a service with an org scope",
                lambda: service(scope="org:acme"),
                {"name": "R"},
            ),
        )
    ],
    Case(
        "give myself the admin role (a service)",
        "clients:write",
        None,
        f"PATCH {A}/clients/<client_id>",
        give_myself_admin_as_a_service,
        who="service",
    ),
    *[
        case
        for name, make in (
            ("a plain service", service),
            ("an admin service", lambda: service("admin", scope="admin")),
            ("a developer service", lambda: service("developer")),
            (
                "a first-party web app",
                lambda: service(grants=("authorization_code",), scope="openid", skip_consent=True),
            ),
            ("a service with an org scope", lambda: service(scope="api org:acme")),
        )
        for case in (
            Case(
                f"rotate the secret of {name}",
                "clients:write",
                f"POST {C}/<client_id>/secret",
                f"POST {A}/clients/<client_id>/secret",
                lambda _a, make=make: act_on_client(make()),
            ),
            Case(
                f"disable {name}",
                "clients:write",
                f"POST {C}/<client_id>/active",
                f"PATCH {A}/clients/<client_id>",
                lambda _a, make=make: act_on_client(make(), {"active": "0"}, {"is_active": False}),
            ),
            Case(
                f"delete {name}",
                "clients:write",
                f"POST {C}/<client_id>/delete",
                f"DELETE {A}/clients/<client_id>",
                lambda _a, make=make: act_on_client(make()),
            ),
        )
    ],
    Case(
        "enable a disabled admin service",
        "clients:write",
        f"POST {C}/<client_id>/active",
        f"PATCH {A}/clients/<client_id>",
        lambda _a: act_on_client(
            service("admin", scope="admin", active=False), {"active": "1"}, {"is_active": True}
        ),
    ),
    # No ceiling beyond the permission: an initial access token registers under a policy
    # holding nothing (see the dynamic registration tests); keys grant no one anything.
    Case(
        "issue an initial access token",
        "clients:write",
        f"POST {C}/initial-token",
        f"POST {A}/initial-access-tokens",
        lambda _a: Step(frozenset(), console={"note": "x"}, api={"note": "x"}),
    ),
    Case(
        "rotate the signing keys",
        "keys:write",
        "POST /admin/keys/rotate",
        f"POST {A}/keys/rotate",
        lambda _a: Step(frozenset(), console={"alg": "ES256"}, api={"alg": "ES256"}),
    ),
]


def _disabled(user: User) -> User:
    user.is_active = False
    db.session.commit()
    return user


def _role(name: str) -> Role:
    role = get_role(name)
    assert role is not None
    return role


# Every route that writes is in the table


# Routes tried by other tests of this module (named), or changing no privilege (why).
ELSEWHERE = {
    "POST /oauth2/register": "test_dynamic_registration_gives_no_roles_no_first_party_and_no_"
    "privileged_scope",
    "PUT /oauth2/register/<client_id>": "test_dynamic_registration_updates_go_through_the_same_"
    "ceiling",
    "DELETE /oauth2/register/<client_id>": "test_dynamic_registration_updates_go_through_the_"
    "same_ceiling",
}
EXEMPT = {
    "POST /orgs/invitations/<token>": "accepting joins with the role a manager chose (invite)",
}
ORG_ROUTES = {
    "POST /orgs/new",
    "POST /orgs/<slug>/members/<int:membership_id>/role",
    "POST /orgs/<slug>/members/<int:membership_id>/remove",
    "POST /orgs/<slug>/invitations",
    "POST /orgs/<slug>/invitations/<int:invitation_id>/revoke",
}
GUARDED_BLUEPRINTS = ("admin", "admin_api", "orgs", "registration")


def test_every_route_that_writes_is_in_the_table(app: Flask) -> None:
    writes = {
        f"{method} {rule.rule}"
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in GUARDED_BLUEPRINTS
        for method in (rule.methods or set()) & WRITE_METHODS
    }
    covered = {route for case in CASES for route in (case.console, case.api) if route}
    assert writes == covered | ORG_ROUTES | set(ELSEWHERE) | set(EXEMPT)
    assert all(callable(globals().get(test)) for test in ELSEWHERE.values())
    for route in covered:
        method, rule = route.split(" ", 1)
        assert (rule.startswith(API) or rule.startswith("/admin/")) and method in WRITE_METHODS


# The ceiling at the console and at the admin API


def attempt(app: Flask, actor: Actor, case: Case, failures: list[str]) -> None:
    """Try one case as one actor; record what went against the rule."""
    route = case.route(actor.surface)
    if route is None or not case.applies_to(actor):
        return
    step = case.build(actor)
    body = step.console if actor.surface == "console" else step.api
    method, rule = route.split(" ", 1)
    path = fill(rule, step.params)
    adapter = app.url_map.bind("localhost")
    assert adapter.match(path, method=method)[0] == _endpoint(app, method, rule), path
    allowed = holds(actor.power, {case.permission}) and holds(actor.power, step.wanted)
    before, since = snapshot(), last_event_id()

    response = actor.send(method, path, body)

    after, events = snapshot(), successes_since(since)
    where = f"{actor}: {case.name} ({route}) -> {response.status_code}"
    if allowed:
        ok_statuses = {200, 302} if actor.surface == "console" else {200, 201, 204}
        if response.status_code not in ok_statuses or not events:
            failures.append(f"{where}: should succeed; events {events}; {response.text[:300]}")
        return
    refused = {403, 422} if actor.surface == "console" else {403}
    if response.status_code not in refused:
        failures.append(f"{where}: should be refused; {response.text[:300]}")
    if before != after:
        failures.append(f"{where}: refused but changed {changed_tables(before, after)}")
    if events:
        failures.append(f"{where}: refused but recorded {events}")


def _endpoint(app: Flask, method: str, rule: str) -> str:
    for candidate in app.url_map.iter_rules():
        if candidate.rule == rule and method in (candidate.methods or set()):
            return candidate.endpoint
    raise AssertionError(f"no route {method} {rule}")


def run_cases(app: Flask, actor: Actor) -> None:
    failures: list[str] = []
    for case in CASES:
        attempt(app, actor, case, failures)
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("role", ACTOR_ROLES)
@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_the_console_keeps_each_person_under_their_ceiling(
    app: Flask, world: World, role: str
) -> None:
    run_cases(app, person_actor(app, world, "console", role))


@pytest.mark.parametrize("role", ACTOR_ROLES)
@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_the_api_keeps_each_persons_token_under_their_ceiling(
    app: Flask, world: World, role: str
) -> None:
    run_cases(app, person_actor(app, world, "api-person", role))


@pytest.mark.parametrize("role", ACTOR_ROLES)
@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_the_api_keeps_each_service_under_its_roles(app: Flask, world: World, role: str) -> None:
    run_cases(app, service_actor(app, role))


# The reviewer's exploits, each as it was tried


def test_a_developer_cannot_turn_a_console_client_into_an_admin_api_key(
    app: Flask, world: World
) -> None:
    """Review, section 1: a developer registered a client_credentials client with the admin
    scope in the console and acted as `*` through the admin API with its token."""
    developer = person_actor(app, world, "console", "developer")
    for roles in (["admin"], []):
        form = {
            "name": unique("Backdoor "),
            "grant_types": ["client_credentials"],
            "scope": "admin",
            "token_endpoint_auth_method": "client_secret_basic",
            "roles": roles,
        }
        response = developer.send("POST", "/admin/clients/new", form)
        if response.status_code != 200:
            assert roles and response.status_code == 422
            assert "cannot give a client the permission * (everything)" in response.text
            assert db.session.scalar(select(Client).where(Client.name == form["name"])) is None
            continue
        secret = response.text.split('id="client-secret">')[1].split("<")[0]
        made = db.session.scalar(select(Client).where(Client.name == form["name"]))
        assert made is not None and made.role_names == []
        token = app.test_client().post(
            "/oauth2/token",
            data={"grant_type": "client_credentials"},
            headers=basic(made.client_id, secret),
        )
        access = token.get_json()["access_token"]
        headers = {"Authorization": f"Bearer {access}"}
        for method, path, body in (
            ("GET", "/users", None),
            ("POST", "/users", {"email": "mallory@example.com", "roles": ["admin"]}),
            ("POST", "/roles", {"name": "backdoor", "permissions": sorted(PERMISSIONS)}),
            ("GET", "/clients", None),
        ):
            answer = app.test_client().open(API + path, method=method, headers=headers, json=body)
            assert answer.status_code == 403, (path, answer.text)
        assert db.session.scalar(select(User).where(User.email == "mallory@example.com")) is None


def console_then_api(app: Flask, world: World, role: str) -> Iterator[Actor]:
    """The same person's attempt in the console, then with a token; and a service's."""
    yield person_actor(app, world, "console", role)
    yield person_actor(app, world, "api-person", role)
    yield service_actor(app, role)


def test_a_developer_cannot_rotate_the_secret_of_an_admin_client(app: Flask, world: World) -> None:
    """Review, section 1: a developer rotated the secret of an existing admin-scoped client
    and used the new secret to act as an admin."""
    admin_service = service("admin", scope="admin")
    old_hash = admin_service.client_secret_hash
    for actor in console_then_api(app, world, "developer"):
        base = "/admin/clients/" if actor.surface == "console" else API + "/clients/"
        response = actor.send("POST", f"{base}{admin_service.client_id}/secret", {})
        assert response.status_code == 403, (str(actor), response.text)
        assert "client_secret" not in response.text and 'id="client-secret"' not in response.text
        db.session.refresh(admin_service)
        assert admin_service.client_secret_hash == old_hash
        assert admin_service.tokens_not_before is None


def test_helpdesk_cannot_give_itself_the_admin_role(app: Flask, world: World) -> None:
    """Review, section 1: users:write let its holder give anyone, itself included, admin."""
    for actor in console_then_api(app, world, "helpdesk"):
        if actor.surface == "api-service":
            continue  # a service is no person; its own roles: test_the_api_keeps_each_service_*
        if actor.surface == "console":
            response = actor.send(
                "POST", f"/admin/users/{actor.sub}/roles", {"roles": ["helpdesk", "admin"]}
            )
            assert "cannot give the permission * (everything)" in response.text
        else:
            response = actor.send(
                "PATCH", f"{API}/users/{actor.sub}", {"roles": ["helpdesk", "admin"]}
            )
            assert response.get_json()["error"] == "forbidden"
        assert response.status_code == 403
        user = db.session.scalar(select(User).where(User.sub == actor.sub))
        db.session.refresh(user)
        assert user is not None and user.role_names == ["helpdesk"]
        victim = make_user(unique("victim") + "@example.com")
        if actor.surface == "console":
            other = actor.send("POST", f"/admin/users/{victim.sub}/roles", {"roles": ["admin"]})
        else:
            other = actor.send("PATCH", f"{API}/users/{victim.sub}", {"roles": ["admin"]})
        assert other.status_code == 403
        db.session.refresh(victim)
        assert victim.role_names == []


def test_a_roles_writer_cannot_add_permissions_to_its_own_role(app: Flask, world: World) -> None:
    """Review, section 1: roles:write let its holder add any permission to a role it held."""
    wider = ["roles:read", "roles:write", "users:write"]
    for actor in console_then_api(app, world, "rolesmith"):
        if actor.surface == "console":
            response = actor.send(
                "POST",
                "/admin/roles/rolesmith",
                {"name": "rolesmith", "description": "", "permissions": wider},
            )
            assert response.status_code == 422
            assert "cannot give the permission users:write" in response.text
        else:
            response = actor.send("PATCH", f"{API}/roles/rolesmith", {"permissions": wider})
            assert response.status_code == 403
        assert _role("rolesmith").permissions == ["roles:read", "roles:write"]


# Through which client a person comes


def test_a_persons_token_carries_no_more_than_the_roles_of_its_client(
    app: Flask, world: World
) -> None:
    """An admin signing in to a tool registered by a developer (no roles, or developer)
    acts within the tool's roles: an admin-scoped client never carries an admin's power."""
    make_user("boss@example.com", roles=["admin"])
    for roles, users_status, clients_status in (([], 403, 403), (["developer"], 403, 200)):
        tool, secret = make_client(name=unique("Tool "), scope="openid admin", roles=roles)
        browser = app.test_client()
        sign_in(browser, "boss@example.com")
        verifier, challenge = pkce_pair()
        code, _ = get_code(browser, tool.client_id, challenge, scope="openid admin")
        access = exchange(browser, tool.client_id, secret, code, verifier).get_json()
        assert "admin" in access["scope"].split()
        headers = {"Authorization": f"Bearer {access['access_token']}"}
        assert browser.get(API + "/users", headers=headers).status_code == users_status
        assert browser.get(API + "/clients", headers=headers).status_code == clients_status


# What the console offers


def test_the_console_offers_only_what_the_person_may_give(app: Flask, world: World) -> None:
    helpdesk = person_actor(app, world, "console", "helpdesk")
    new_user = helpdesk.browser.get("/admin/users/new").text
    assert 'value="helpdesk"' in new_user and 'value="admin"' not in new_user
    assert 'value="developer"' not in new_user
    plain = make_user(unique("plain") + "@example.com")
    page = helpdesk.browser.get(f"/admin/users/{plain.sub}")
    assert page.status_code == 403  # helpdesk cannot read people (users:read)

    developer = person_actor(app, world, "console", "developer")
    form = developer.browser.get("/admin/clients/new").text
    assert 'name="roles" value="developer"' in form
    assert 'name="roles" value="admin"' not in form and 'name="skip_consent"' not in form
    admin_service = service("admin", scope="admin")
    shown = developer.browser.get(f"/admin/clients/{admin_service.client_id}").text
    assert "Rotate secret" not in shown and "Save changes" not in shown
    assert "holds permissions you do not hold" in shown

    admin = person_actor(app, world, "console", "admin")
    form = admin.browser.get("/admin/clients/new").text
    assert 'name="roles" value="admin"' in form and 'name="skip_consent"' in form
    rolesmith = person_actor(app, world, "console", "rolesmith")
    role_form = rolesmith.browser.get("/admin/roles/new").text
    assert 'value="roles:write"' in role_form and 'value="users:write"' not in role_form


# New client settings on every surface


def test_roles_and_the_resource_server_flag_on_every_surface(app: Flask, world: World) -> None:
    api = service_actor(app, "admin")
    made = api.send(
        "POST",
        f"{API}/clients",
        {
            "client_name": "Introspector",
            "grant_types": ["client_credentials"],
            "scope": "api",
            "roles": ["viewer"],
            "is_resource_server": True,
        },
    )
    assert made.status_code == 201, made.text
    body = made.get_json()
    assert body["roles"] == ["viewer"] and body["is_resource_server"] is True
    changed = api.send(
        "PATCH",
        f"{API}/clients/{body['client_id']}",
        {"roles": ["developer"], "is_resource_server": False},
    ).get_json()
    assert changed["roles"] == ["developer"] and changed["is_resource_server"] is False

    console = person_actor(app, world, "console", "admin")
    form = client_form(None, roles=["viewer"], is_resource_server=True, name="From console")
    assert console.send("POST", "/admin/clients/new", form).status_code == 200
    registered = db.session.scalar(select(Client).where(Client.name == "From console"))
    assert registered is not None and registered.role_names == ["viewer"]
    assert registered.is_resource_server

    runner = app.test_cli_runner()
    result = runner.invoke(
        args=[
            "clients", "create", "--name", "From the CLI", "--grant-type", "client_credentials",
            "--scope", "admin", "--auth-method", "client_secret_basic", "--role", "admin",
            "--role", "viewer", "--resource-server", "--json",
        ]
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["roles"] == ["admin", "viewer"] and printed["is_resource_server"] is True


# Secrets and disabling end what was issued before


def test_rotating_and_disabling_set_the_clients_token_cut_off(app: Flask, world: World) -> None:
    admin = service_actor(app, "admin")
    target = service()
    assert target.tokens_not_before is None
    admin.send("POST", f"{API}/clients/{target.client_id}/secret", None)
    db.session.refresh(target)
    rotated = target.tokens_not_before
    assert rotated is not None
    admin.send("PATCH", f"{API}/clients/{target.client_id}", {"is_active": False})
    db.session.refresh(target)
    assert target.tokens_not_before is not None and target.tokens_not_before >= rotated
    admin.send("PATCH", f"{API}/clients/{target.client_id}", {"is_active": True})
    db.session.refresh(target)
    assert target.tokens_not_before is not None  # enabling again does not revive old tokens


# The command line acts as the system, through the same services


CLI_COMMANDS = {
    # Commands that change people, roles or clients: each goes through the ceiling (as the
    # system, with every permission) and is audited as system/cli.
    "users create": ["users", "create", "cli-made@example.com", "--password",
                     "a long enough passphrase", "--role", "admin"],
    "users disable": ["users", "disable", "target@example.com"],
    "users enable": ["users", "enable", "target@example.com"],
    "users add-role": ["users", "add-role", "target@example.com", "admin"],
    "users remove-role": ["users", "remove-role", "target@example.com", "admin"],
    "users set-password": ["users", "set-password", "target@example.com", "--password",
                           "another long passphrase"],
    "roles create": ["roles", "create", "everything-but", "--permission", "users:write"],
    "roles delete": ["roles", "delete", "everything-but"],
    "clients create": ["clients", "create", "--name", "CLI admin", "--grant-type",
                       "client_credentials", "--scope", "admin org:*", "--auth-method",
                       "client_secret_basic", "--role", "admin", "--skip-consent"],
    "clients set-logout": [
        "clients", "set-logout", "--backchannel-logout-session-required", "--", "<admin-client>"
    ],
    "clients rotate-secret": ["clients", "rotate-secret", "--", "<admin-client>"],
    "clients disable": ["clients", "disable", "--", "<admin-client>"],
    "clients delete": ["clients", "delete", "--yes", "--", "<admin-client>"],
}  # fmt: skip
# Commands that change nothing of the above.
CLI_READ_ONLY = {
    "users list", "clients list", "clients show", "clients initial-token", "roles list",
    "roles show",
}  # fmt: skip


def test_every_cli_command_that_writes_is_covered(app: Flask) -> None:
    commands = {
        f"{group} {name}"
        for group in ("users", "clients", "roles")
        for name in getattr(app.cli.commands[group], "commands", {})
    }
    assert commands == set(CLI_COMMANDS) | CLI_READ_ONLY


def test_the_cli_acts_as_the_system_with_every_permission(app: Flask, world: World) -> None:
    make_user("target@example.com")
    admin_client = service("admin", scope="admin")
    runner = app.test_cli_runner()
    for name, args in CLI_COMMANDS.items():
        args = [admin_client.client_id if arg == "<admin-client>" else arg for arg in args]
        since = last_event_id()
        result = runner.invoke(args=args)
        assert result.exit_code == 0, (name, result.output)
        db.session.rollback()
        rows = db.session.scalars(select(AuditEvent).where(AuditEvent.id > since)).all()
        assert rows and all((row.actor_type, row.actor) == ("system", "cli") for row in rows), name
    made = db.session.scalar(select(User).where(User.email == "cli-made@example.com"))
    assert made is not None and made.role_names == ["admin"] and made.email_verified


# Dynamic registration: the policy holds no permission


def test_dynamic_registration_gives_no_roles_no_first_party_and_no_privileged_scope(
    app: Flask, world: World, client: FlaskClient
) -> None:
    def register(metadata: dict[str, Any], token: str | None = None) -> TestResponse:
        token = token or make_initial_access_token(note="test")
        return client.post(
            "/oauth2/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
        )

    service_metadata = {"grant_types": ["client_credentials"], "response_types": []}
    for scope in ("admin", "api admin", "org:acme", "org:*", "api org:acme"):
        token = make_initial_access_token(note="test")
        before = snapshot()
        refused = register({**service_metadata, "scope": scope}, token)
        assert refused.status_code == 400, (scope, refused.text)
        assert refused.get_json()["error"] == "invalid_client_metadata"
        assert snapshot() == before
    web = {"redirect_uris": [REDIRECT_URI], "scope": "openid org:*"}
    kept = register({**web, "roles": ["admin"], "skip_consent": True, "is_resource_server": True})
    assert kept.status_code == 201, kept.text
    stored = get_client(kept.get_json()["client_id"])
    assert stored is not None
    assert (stored.role_names, stored.skip_consent, stored.is_resource_server) == ([], False, False)


def test_dynamic_registration_updates_go_through_the_same_ceiling(
    app: Flask, world: World, client: FlaskClient
) -> None:
    token = make_initial_access_token(note="test")
    made = client.post(
        "/oauth2/register",
        json={"grant_types": ["client_credentials"], "response_types": [], "scope": "api"},
        headers={"Authorization": f"Bearer {token}"},
    ).get_json()
    path = f"/oauth2/register/{made['client_id']}"
    headers = {"Authorization": f"Bearer {made['registration_access_token']}"}
    metadata = {
        "client_id": made["client_id"],
        "grant_types": ["client_credentials"],
        "response_types": [],
    }
    for scope in ("api admin", "api org:acme", "org:*"):
        before = snapshot()
        refused = client.put(path, json={**metadata, "scope": scope}, headers=headers)
        assert refused.status_code == 400, refused.text
        assert snapshot() == before

    # An admin gave the client a role since: self-service may no longer change or delete it.
    stored = get_client(made["client_id"])
    assert stored is not None
    stored.roles = [_role("viewer")]
    db.session.commit()
    before = snapshot()
    for method in ("PUT", "DELETE"):
        answer = client.open(
            path, method=method, json={**metadata, "scope": "api"}, headers=headers
        )
        assert answer.status_code == 403, answer.text
        assert answer.get_json()["error"] == "access_denied"
    assert snapshot() == before


# Organization pages: the ceiling there is one's standing there


@dataclass
class Org:
    organization: Organization
    member: Membership
    invitation_id: int


def org_world(app: Flask) -> Org:
    create_role("orgkeeper", permissions=["orgs:write"], actor=SYSTEM)
    create_role("helpdesk", permissions=["users:write"], actor=SYSTEM)
    boss = make_user("org-admin@example.com")
    organization = create_organization("Initech", owner=boss, actor=SYSTEM)
    add_member(organization, make_user("org-developer@example.com"), "developer", actor=SYSTEM)
    member = add_member(organization, make_user("member@example.com"), "viewer", actor=SYSTEM)
    make_user("orgkeeper@example.com", roles=["orgkeeper"])
    make_user("server-admin@example.com", roles=["admin"])
    make_user("helpdesk@example.com", roles=["helpdesk"])
    make_user("stranger@example.com")
    from authserver.orgs.invitations import invite

    invitation = invite(organization, "later@example.com", "viewer", actor=SYSTEM)
    db.session.commit()
    return Org(organization, member, invitation.id)


# Who manages Initech: its admin, and holders of orgs:write (server admins included).
ORG_ACTORS = {
    "org-admin@example.com": True,
    "orgkeeper@example.com": True,
    "server-admin@example.com": True,
    "org-developer@example.com": False,
    "helpdesk@example.com": False,
    "stranger@example.com": False,
}
CREATORS = {"orgkeeper@example.com", "server-admin@example.com"}


@pytest.mark.parametrize("email", sorted(ORG_ACTORS))
def test_organization_pages_keep_each_person_within_their_standing(app: Flask, email: str) -> None:
    world = org_world(app)
    slug = world.organization.slug
    browser = app.test_client()
    sign_in(browser, email)
    token = csrf_token(browser.get("/login?reauth=1").text)
    attempts = [
        ("POST /orgs/<slug>/members/<int:membership_id>/role", {"role": "admin"}),
        ("POST /orgs/<slug>/invitations", {"email": "new@example.com", "role": "admin"}),
        ("POST /orgs/<slug>/invitations/<int:invitation_id>/revoke", {}),
        ("POST /orgs/<slug>/members/<int:membership_id>/remove", {}),
        ("POST /orgs/new", {"name": unique("Org ")}),
    ]
    assert {route for route, _ in attempts} == ORG_ROUTES
    params = {
        "slug": slug,
        "membership_id": str(world.member.id),
        "invitation_id": str(world.invitation_id),
    }
    failures = []
    for route, form in attempts:
        rule = route.split(" ", 1)[1]
        allowed = email in CREATORS if rule == "/orgs/new" else ORG_ACTORS[email]
        before, since = snapshot(), last_event_id()
        response = browser.post(fill(rule, params), data={"csrf_token": token, **form})
        after, events = snapshot(), successes_since(since)
        if allowed and (response.status_code != 302 or not events):
            failures.append(f"{route}: should succeed; {response.status_code} {events}")
        if not allowed and (response.status_code not in (403, 404) or before != after or events):
            failures.append(f"{route}: should be refused; {response.status_code} {events}")
    assert not failures, "\n".join(failures)


def test_organization_roles_grant_no_server_permission(app: Flask) -> None:
    world = org_world(app)
    boss = db.session.scalar(select(User).where(User.email == "org-admin@example.com"))
    from authserver.admin.services.base import is_staff, person_permissions

    assert boss is not None and person_permissions(boss) == set() and not is_staff(boss)
    browser = app.test_client()
    sign_in(browser, "org-admin@example.com")
    assert browser.get("/admin").status_code == 403
    assert browser.get(f"/orgs/{world.organization.slug}").status_code == 200


def test_the_organization_services_refuse_anyone_without_standing(app: Flask) -> None:
    from authserver.orgs import invitations, membership
    from authserver.orgs import services as orgs
    from authserver.roles.ceiling import person_actor

    world = org_world(app)
    invitation = invitations.get_invitation(world.organization, world.invitation_id)
    newcomer = make_user("newcomer@example.com")
    assert invitation is not None
    for email, manager in ORG_ACTORS.items():
        user = db.session.scalar(select(User).where(User.email == email))
        assert user is not None
        if manager:
            continue  # the pages above show managers succeed
        actor = person_actor(user)
        before = snapshot()
        with pytest.raises(PrivilegeError):
            membership.change_member_role(world.member, "admin", actor=actor)
        with pytest.raises(PrivilegeError):
            membership.add_member(world.organization, newcomer, "admin", actor=actor)
        with pytest.raises(PrivilegeError):
            invitations.invite(world.organization, "x@example.com", "admin", actor=actor)
        with pytest.raises(PrivilegeError):
            invitations.revoke_invitation(invitation, actor=actor)
        with pytest.raises(PrivilegeError):
            membership.remove_member(world.member, actor=actor)
        db.session.rollback()
        assert snapshot() == before
    nobody = person_actor(make_user(unique("n") + "@example.com"))
    with pytest.raises(PrivilegeError, match="orgs:write"):
        orgs.create_organization("Nope", actor=nobody)
