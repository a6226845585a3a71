"""Every route, every method, hostile values in the path, the query, the form and JSON bodies.

The class test of "bad input never gets a 5xx": the routes are read from the app's own
URL map, so a route added later is fuzzed without anyone remembering to. Each request
comes from a signed-in admin (fresh enough for the console) with a valid CSRF token, and
admin API requests carry an admin token, so the hostile values reach the views and the
database rather than stopping at the door. The suite runs on SQLite and, in CI, again on
PostgreSQL, which refuses NUL in text and integers beyond 64 bits: both must be a 400.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from flask import Flask, Request, g
from flask.testing import FlaskClient
from flask_wtf import FlaskForm
from werkzeug.datastructures import ImmutableMultiDict
from werkzeug.routing import IntegerConverter, Rule
from wtforms.fields.core import UnboundField

from authserver.accounts.models import Role
from authserver.core.capabilities import REPORTS_BAD_PARAMETERS_TO_THE_CLIENT
from authserver.extensions import db, utcnow
from authserver.orgs.models import Invitation, Membership, Organization
from tests.factories import make_client, make_user
from tests.oauth_helpers import basic, csrf_token, sign_in

NUL = "\x00"
# Values that break parsers and databases: NUL, integers past 32 and 64 bits, floats past
# double, control and bidi characters, quotes, paths, and a long value.
NASTY = (
    NUL,
    "9223372036854775808",
    "-1",
    "1e400",
    "%00",
    "\r\n\x1b[2J\u202e\u2028",
    "' OR 1=1 --",
    "../../etc/passwd",
    "x" * 3000,
)
# Sent one parameter at a time to the names a view reads.
ONE_AT_A_TIME = (NUL, "9223372036854775808", "-1")
NASTY_INTS = ("0", "2147483648", "9223372036854775808", "99999999999999999999999999")
# JSON member values of every type, for the JSON endpoints.
NASTY_JSON: tuple[Any, ...] = (
    NUL,
    {"a\x00": 1},
    2**64,
    -(2**70),
    1e308,
    [NUL],
    [[[[["deep"]]]]],
    None,
    True,
    "",
)
PROTOCOL_PARAMETERS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "prompt",
    "max_age",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
    "claims",
    "id_token_hint",
    "response_mode",
    "request",
    "request_uri",
    "acr_values",
    "ui_locales",
    "display",
    "organization",
    "resource",
    "grant_type",
    "code",
    "code_verifier",
    "refresh_token",
    "device_code",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
    "token",
    "token_type_hint",
    "user_code",
    "decision",
    "post_logout_redirect_uri",
    "logout_hint",
    "confirm",
    "access_token",
    "next",
    "reauth",
    "q",
    "page",
    "limit",
    "offset",
    "before",
    "event",
    "actor",
    "subject",
    "since",
    "until",
    "authserver_reauth",
    "method",
)
OPENAPI = Path(__file__).resolve().parents[2] / "authserver" / "admin" / "openapi.json"
DCR_FIELDS = (
    "client_id",
    "client_secret",
    "client_name",
    "redirect_uris",
    "post_logout_redirect_uris",
    "grant_types",
    "response_types",
    "scope",
    "token_endpoint_auth_method",
    "id_token_signed_response_alg",
)
_serial = itertools.count()


def _all_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def form_field_names() -> set[str]:
    """Every field name of every form the app defines (they are all imported by create_app)."""
    names: set[str] = set()
    for form in _all_subclasses(FlaskForm):
        if form.__module__.startswith("authserver"):
            names.update(n for n in dir(form) if isinstance(getattr(form, n), UnboundField))
    return names


def json_field_names() -> set[str]:
    """Every property name in the admin API's OpenAPI document, and the RFC 7591 fields."""
    names: set[str] = set(DCR_FIELDS)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            names.update(node.get("properties", {}))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(OPENAPI.read_text()))
    return names


READ: set[str] = set()


class RecordingMultiDict(ImmutableMultiDict):  # type: ignore[type-arg]
    """Query and form storage that notes which names a view reads."""

    def __getitem__(self, key: Any) -> Any:
        READ.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None, type: Any = None) -> Any:
        READ.add(key)
        return super().get(key, default, type)

    def getlist(self, key: Any, type: Any = None) -> Any:
        READ.add(key)
        return super().getlist(key, type)

    def __contains__(self, key: object) -> bool:
        READ.add(str(key))
        return super().__contains__(key)


class RecordingDict(dict):  # type: ignore[type-arg]
    """A JSON body that notes which members a view reads."""

    def __getitem__(self, key: Any) -> Any:
        READ.add(key)
        return super().__getitem__(key)

    def get(self, key: Any, default: Any = None) -> Any:
        READ.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        READ.add(str(key))
        return super().__contains__(key)


class RecordingRequest(Request):
    parameter_storage_class = RecordingMultiDict

    def get_json(self, *args: Any, **kwargs: Any) -> Any:
        body = super().get_json(*args, **kwargs)
        return RecordingDict(body) if isinstance(body, dict) else body


@dataclass
class World:
    """One set of records for one route: every URL argument has a real value to point at."""

    browser: FlaskClient
    admin_token: str
    values: dict[str, str]
    csrf: str = ""


def seed(app: Flask) -> World:
    """A fresh signed-in admin, a client, a role, an organization, a member, an invitation."""
    n = next(_serial)
    admin_email = f"admin{n}@example.com"
    make_user(email=admin_email, roles=["admin"])
    member = make_user(email=f"member{n}@example.com")
    client, _ = make_client(name=f"RP {n}")
    service, secret = make_client(
        name=f"Service {n}", redirect_uris=[], grant_types=["client_credentials"], scope="admin"
    )
    # The service acts as a full admin in the API (held through the admin role).
    admin_role = db.session.query(Role).filter_by(name="admin").one()
    if admin_role not in service.roles:
        service.roles.append(admin_role)
    role = Role(name=f"custom{n}", description="", permissions=["users:read"], builtin=False)
    org = Organization(slug=f"org{n}", name=f"Org {n}")
    db.session.add_all([role, org])
    db.session.flush()
    membership = Membership(organization_id=org.id, user_id=member.id, role_id=role.id)
    invitation = Invitation(
        organization_id=org.id,
        email=f"invitee{n}@example.com",
        role_id=role.id,
        token_hash=f"{n:064d}",
        created_at=utcnow(),
        expires_at=utcnow() + timedelta(days=1),
    )
    db.session.add_all([membership, invitation])
    db.session.commit()
    browser = app.test_client()
    sign_in(browser, admin_email)
    assert secret is not None
    token = browser.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "admin"},
        headers=basic(service.client_id, secret),
    ).get_json()["access_token"]
    values = {
        "sub": member.sub,
        "client_id": client.client_id,
        "name": role.name,
        "slug": org.slug,
        "membership_id": str(membership.id),
        "invitation_id": str(invitation.id),
        "token": "not-a-real-token",
        "filename": "css/site.css",
    }
    return World(browser, token, values)


def routes(app: Flask) -> list[tuple[Rule, str]]:
    """(rule, method) for every route but static files, in a stable order."""
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return sorted(found, key=lambda item: (item[0].rule, item[1]))


def build_path(rule: Rule, values: dict[str, str], override: dict[str, str] | None = None) -> str:
    """The rule's path with each argument filled in (percent-encoded)."""
    path = rule.rule
    for name in rule.arguments:
        value = quote((override or {}).get(name, values[name]), safe="")
        path = re.sub(rf"<(?:[^:>]+:)?{name}>", lambda _, v=value: v, path)  # type: ignore[misc]
    return path


def is_int_argument(rule: Rule, name: str) -> bool:
    return isinstance(rule._converters[name], IntegerConverter)


def send(world: World, rule: Rule, method: str, path: str, **kwargs: Any) -> Any:
    """One request as the admin's browser (CSRF token fresh) or with the admin token."""
    g.pop("csrf_token", None)
    headers = dict(kwargs.pop("headers", {}))
    if rule.rule.startswith("/admin/api/"):
        headers["Authorization"] = f"Bearer {world.admin_token}"
    return world.browser.open(path, method=method, headers=headers, **kwargs)


def fresh_csrf(world: World) -> str:
    """The browser's CSRF token (valid until its session changes: sign-in, sign-out)."""
    if not world.csrf:
        g.pop("csrf_token", None)
        world.csrf = csrf_token(world.browser.get("/login?reauth=1").text)
    return world.csrf


def contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return NUL in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(contains_nul(item) for item in value)
    return False


@pytest.fixture
def fuzz_app(app_factory: Any) -> Iterator[Flask]:
    app = app_factory(dynamic_registration=True, ratelimit_enabled=False)
    app.request_class = RecordingRequest
    with app.app_context():
        yield app


def check(response: Any, what: str, *, nul: bool) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code}\n{response.text[:2000]}"
    if nul:
        assert response.status_code == 400, f"{what}: NUL must be refused at the edge"


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_every_route_survives_hostile_path_query_form_and_json(fuzz_app: Flask) -> None:
    form_names = sorted(form_field_names() | set(PROTOCOL_PARAMETERS))
    json_names = sorted(json_field_names())
    covered: set[str] = set()
    for rule, method in routes(fuzz_app):
        world = seed(fuzz_app)
        covered.add(rule.endpoint)
        where = f"{method} {rule.rule}"
        # The authorization endpoint reports bad parameters to the client (a redirect).
        edge_refuses = rule.endpoint not in REPORTS_BAD_PARAMETERS_TO_THE_CLIENT
        # Hostile URL arguments, one at a time.
        for name in rule.arguments:
            candidates = NASTY_INTS if is_int_argument(rule, name) else NASTY
            for value in candidates:
                path = build_path(rule, world.values, {name: value})
                response = send(world, rule, method, path, data={"csrf_token": fresh_csrf(world)})
                check(response, f"{where} with {name}={value!r}", nul=NUL in value)
        path = build_path(rule, world.values)
        # The names this view reads, then each of them alone with each hostile value:
        # a value behind an earlier check that fails is reached this way.
        READ.clear()
        benign = {name: "1" for name in form_names}
        send(world, rule, method, path, query_string=benign)
        if method != "GET":
            send(world, rule, method, path, data=benign | {"csrf_token": fresh_csrf(world)})
        for name in sorted(READ & set(form_names)):
            for value in ONE_AT_A_TIME:
                response = send(world, rule, method, path, query_string={name: value})
                check(response, f"{where} ?{name}={value!r}", nul=NUL in value and edge_refuses)
                if method != "GET":
                    form = {name: value, "csrf_token": fresh_csrf(world)}
                    response = send(world, rule, method, path, data=form)
                    check(
                        response,
                        f"{where} form {name}={value!r}",
                        nul=NUL in value and edge_refuses,
                    )
        for value in NASTY:
            query = {name: value for name in form_names}
            response = send(world, rule, method, path, query_string=query)
            check(response, f"{where} ?*={value!r}", nul=NUL in value and edge_refuses)
            if method != "GET":
                form = {name: value for name in form_names} | {"csrf_token": fresh_csrf(world)}
                response = send(world, rule, method, path, data=form)
                check(response, f"{where} form *={value!r}", nul=NUL in value and edge_refuses)
        if method in ("POST", "PUT", "PATCH"):
            for value in NASTY_JSON:
                body = {name: value for name in json_names}
                response = send(world, rule, method, path, json=body)
                check(response, f"{where} json *={value!r}", nul=contains_nul(value))
            # The members this view reads, one at a time, so a valid rest reaches the value.
            READ.clear()
            send(world, rule, method, path, json={name: "1" for name in json_names})
            for name in sorted(READ & set(json_names)):
                for value in (NUL, 2**64, [2**64], {"x": NUL}):
                    response = send(world, rule, method, path, json={name: value})
                    check(response, f"{where} json {name}={value!r}", nul=contains_nul(value))
    assert {"admin.audit", "admin_api.list_audit_events", "orgs.change_role"} <= covered


def test_json_nested_past_the_parsers_stack_is_a_400(fuzz_app: Flask) -> None:
    world = seed(fuzz_app)
    body = "[" * 30_000 + "]" * 30_000
    for path in ("/admin/api/v1/users", "/oauth2/register"):
        response = world.browser.post(
            path,
            data=body,
            content_type="application/json",
            headers={"Authorization": f"Bearer {world.admin_token}"},
        )
        assert response.status_code == 400, response.text
