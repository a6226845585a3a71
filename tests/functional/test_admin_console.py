"""The admin console at /admin: who may open which page, re-authentication, and the main tasks."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from authserver.accounts.models import User
from authserver.audit.models import AuditEvent
from authserver.clients.models import Client
from authserver.extensions import db, utcnow
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user
from tests.oauth_helpers import basic, csrf_token, sign_in

ADMIN = "root@example.com"
VIEWER = "auditor@example.com"
DEVELOPER = "dev@example.com"
NOBODY = "plain@example.com"
TARGET = "bob@example.com"


@dataclass
class World:
    """Everything the admin pages act on."""

    target_sub: str
    client_id: str
    secret: str
    role: str


@pytest.fixture
def world(app: Flask) -> World:
    make_user(ADMIN, roles=["admin"])
    make_user(VIEWER, roles=["viewer"])
    make_user(DEVELOPER, roles=["developer"])
    make_user(NOBODY)
    target = make_user(TARGET, name="Bob Builder")
    client, secret = make_client(
        name="Back office", redirect_uris=(), grant_types=("client_credentials",), scope="api"
    )
    assert secret is not None
    from authserver.roles import services as roles

    roles.create_role("support", description="Help desk", permissions=["users:read"])
    return World(target.sub, client.client_id, secret, "support")


# (method, path, permission); POSTs may be refused by validation (400/422), never by 403.
ROUTES = [
    ("GET", "/admin", None),
    ("GET", "/admin/users", "users:read"),
    ("GET", "/admin/users?q=bob&page=1", "users:read"),
    ("GET", "/admin/users/{sub}", "users:read"),
    ("GET", "/admin/users/new", "users:write"),
    ("POST", "/admin/users/new", "users:write"),
    ("POST", "/admin/users/{sub}/active", "users:write"),
    ("POST", "/admin/users/{sub}/verify-email", "users:write"),
    ("POST", "/admin/users/{sub}/reset", "users:write"),
    ("POST", "/admin/users/{sub}/roles", "users:write"),
    ("POST", "/admin/users/{sub}/sign-out", "users:write"),
    ("GET", "/admin/clients", "clients:read"),
    ("GET", "/admin/clients/{client_id}", "clients:read"),
    ("GET", "/admin/clients/new", "clients:write"),
    ("POST", "/admin/clients/new", "clients:write"),
    ("POST", "/admin/clients/initial-token", "clients:write"),
    ("POST", "/admin/clients/{client_id}", "clients:write"),
    ("POST", "/admin/clients/{client_id}/secret", "clients:write"),
    ("POST", "/admin/clients/{client_id}/active", "clients:write"),
    ("GET", "/admin/clients/{client_id}/delete", "clients:write"),
    ("POST", "/admin/clients/{client_id}/delete", "clients:write"),
    ("GET", "/admin/roles", "roles:read"),
    ("GET", "/admin/roles/{role}", "roles:read"),
    ("POST", "/admin/roles/{role}", "roles:write"),
    ("GET", "/admin/roles/new", "roles:write"),
    ("POST", "/admin/roles/new", "roles:write"),
    ("GET", "/admin/roles/{role}/delete", "roles:write"),
    ("POST", "/admin/roles/{role}/delete", "roles:write"),
    ("GET", "/admin/keys", "keys:read"),
    ("POST", "/admin/keys/rotate", "keys:write"),
    ("GET", "/admin/audit", "audit:read"),
    ("GET", "/admin/audit?event=admin.&actor=x", "audit:read"),
    ("GET", "/admin/audit/export", "audit:read"),
]
ROUTE_IDS = [f"{method} {path}" for method, path, _ in ROUTES]


def _url(path: str, world: World) -> str:
    return path.format(sub=world.target_sub, client_id=world.client_id, role=world.role)


def _token(browser: FlaskClient) -> str:
    """The CSRF token of this browser's flow session (any page's form carries it)."""
    return csrf_token(browser.get("/login?reauth=1").text)


def _call(browser: FlaskClient, method: str, url: str, data: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    if method == "GET":
        return browser.get(url)
    return browser.post(url, data={"csrf_token": _token(browser), **(data or {})})


def _signed_in(app: Flask, email: str) -> FlaskClient:
    browser = app.test_client()
    sign_in(browser, email)
    return browser


# Who may open what


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=ROUTE_IDS)
def test_signed_out_people_are_sent_to_sign_in(
    client: FlaskClient, world: World, method: str, path: str, permission: str | None
) -> None:
    response = _call(client, method, _url(path, world))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("/login?")
    back = parse_qs(urlsplit(location).query)["next"][0]
    assert back == (_url(path, world) if method == "GET" else "/admin")


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=ROUTE_IDS)
def test_people_without_an_admin_role_are_refused(
    app: Flask, world: World, method: str, path: str, permission: str | None
) -> None:
    browser = _signed_in(app, NOBODY)
    response = _call(browser, method, _url(path, world))
    assert response.status_code == 403
    assert "text/html" in response.content_type


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=ROUTE_IDS)
def test_viewers_read_but_never_write(
    app: Flask, world: World, method: str, path: str, permission: str | None
) -> None:
    browser = _signed_in(app, VIEWER)
    response = _call(browser, method, _url(path, world))
    if permission is None or permission.endswith(":read"):
        assert response.status_code == 200 if method == "GET" else 403
    else:
        assert response.status_code == 403
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=ROUTE_IDS)
def test_admins_may_use_every_route(
    app: Flask, world: World, method: str, path: str, permission: str | None
) -> None:
    browser = _signed_in(app, ADMIN)
    response = _call(browser, method, _url(path, world))
    if method == "GET":
        assert response.status_code == 200
    else:
        assert response.status_code in (200, 302, 400, 409, 422)
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("method", "path", "permission"), ROUTES, ids=ROUTE_IDS)
def test_developers_manage_clients_only(
    app: Flask, world: World, method: str, path: str, permission: str | None
) -> None:
    browser = _signed_in(app, DEVELOPER)
    response = _call(browser, method, _url(path, world))
    if permission is not None and not permission.startswith("clients:"):
        assert response.status_code == 403
    else:
        assert response.status_code != 403


def test_viewers_see_no_write_buttons(app: Flask, world: World) -> None:
    browser = _signed_in(app, VIEWER)
    user_page = browser.get(f"/admin/users/{world.target_sub}").text
    client_page = browser.get(f"/admin/clients/{world.client_id}").text
    assert "Disable user" not in user_page and "Save roles" not in user_page
    assert "Rotate secret" not in client_page and "Save changes" not in client_page
    assert 'method="post"' not in browser.get("/admin/keys").text


def test_a_stale_sign_in_must_be_repeated(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    assert browser.get("/admin/users").status_code == 200
    db.session.execute(update(LoginSession).values(auth_time=utcnow() - timedelta(minutes=16)))
    db.session.commit()

    response = browser.get("/admin/users?q=bob")
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query) == {"reauth": ["1"], "next": ["/admin/users?q=bob"]}
    refused = _call(browser, "POST", f"/admin/users/{world.target_sub}/sign-out")
    assert refused.status_code == 302 and "reauth=1" in refused.headers["Location"]

    login = browser.get(response.headers["Location"])
    assert login.status_code == 200  # shown although signed in
    again = browser.post(
        "/login",
        data={
            "email": ADMIN,
            "password": PASSWORD,
            "next": "/admin/users?q=bob",
            "csrf_token": csrf_token(login.text),
        },
    )
    assert again.headers["Location"] == "/admin/users?q=bob"
    assert browser.get("/admin/users?q=bob").status_code == 200


def test_fourteen_minutes_old_is_recent_enough(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    db.session.execute(update(LoginSession).values(auth_time=utcnow() - timedelta(minutes=14)))
    db.session.commit()
    assert browser.get("/admin").status_code == 200


# Users


def test_search_finds_people_by_email_or_name_and_pages(app: Flask, world: World) -> None:
    for n in range(30):
        make_user(f"member{n:02d}@example.com", name=f"Member {n}", password=PASSWORD)
    browser = _signed_in(app, ADMIN)
    by_name = browser.get("/admin/users?q=builder").text
    assert f">{TARGET}</a>" in by_name and f">{ADMIN}</a>" not in by_name
    first = browser.get("/admin/users?q=MEMBER").text
    assert "30 people" in first and "member00@example.com" in first
    assert "member29@example.com" not in first and "Next page" in first
    second = browser.get("/admin/users?q=member&page=2").text
    assert "member29@example.com" in second and "member00@example.com" not in second
    wildcard = browser.get("/admin/users?q=%25").text
    assert "0 people" in wildcard


def test_an_admin_creates_a_user_with_roles(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    response = _call(
        browser,
        "POST",
        "/admin/users/new",
        {"email": "New.Person@Example.com", "name": "New Person", "roles": ["developer"]},
    )
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user is not None and user.role_names == ["developer"] and user.password_hash is None
    assert response.headers["Location"] == f"/admin/users/{user.sub}"
    admin = db.session.scalar(select(User).where(User.email == ADMIN))
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "admin.user.created"))
    assert event is not None and event.actor == admin.sub and event.subject == user.sub

    duplicate = _call(browser, "POST", "/admin/users/new", {"email": TARGET})
    assert duplicate.status_code == 422 and "already exists" in duplicate.text


def test_disabling_a_user_ends_their_session(app: Flask, world: World) -> None:
    bob = _signed_in(app, TARGET)
    assert bob.get("/account").status_code == 200
    browser = _signed_in(app, ADMIN)

    response = _call(browser, "POST", f"/admin/users/{world.target_sub}/active", {"active": "0"})

    assert response.status_code == 302
    assert bob.get("/account").status_code == 302
    target = db.session.scalar(select(User).where(User.sub == world.target_sub))
    assert target is not None and target.is_active is False
    assert "Disabled" in browser.get(f"/admin/users/{world.target_sub}").text
    enabled = _call(browser, "POST", f"/admin/users/{world.target_sub}/active", {"active": "1"})
    assert enabled.status_code == 302
    db.session.refresh(target)
    assert target.is_active is True


def test_sign_out_everywhere_ends_every_session(app: Flask, world: World) -> None:
    bob = _signed_in(app, TARGET)
    browser = _signed_in(app, ADMIN)
    assert _call(browser, "POST", f"/admin/users/{world.target_sub}/sign-out").status_code == 302
    assert bob.get("/account").status_code == 302


def test_assigning_roles_and_verifying_an_email(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    url = f"/admin/users/{world.target_sub}"
    assert (
        _call(browser, "POST", f"{url}/roles", {"roles": ["viewer", "support"]}).status_code == 302
    )
    assert _call(browser, "POST", f"{url}/verify-email").status_code == 302
    target = db.session.scalar(select(User).where(User.sub == world.target_sub))
    assert target is not None
    db.session.refresh(target)
    assert target.role_names == ["support", "viewer"] and target.email_verified
    bob = _signed_in(app, TARGET)
    assert bob.get("/admin/audit").status_code == 200  # viewer now


def test_the_last_admin_cannot_demote_themselves(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    admin = db.session.scalar(select(User).where(User.email == ADMIN))
    assert admin is not None
    response = _call(browser, "POST", f"/admin/users/{admin.sub}/roles", {"roles": ["viewer"]})
    assert response.status_code == 409 and "last active admin" in response.text
    assert browser.get("/admin").status_code == 200


# Clients


def _token_request(client_id: str, secret: str, client: FlaskClient):  # type: ignore[no-untyped-def]
    return client.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


def test_an_admin_registers_a_client_and_sees_its_secret_once(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    response = _call(
        browser,
        "POST",
        "/admin/clients/new",
        {
            "name": "Reports",
            "grant_types": ["client_credentials"],
            "scope": "api",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    registered = db.session.scalar(select(Client).where(Client.name == "Reports"))
    assert registered is not None
    secret = response.text.split('id="client-secret">')[1].split("<")[0]
    assert _token_request(registered.client_id, secret, app.test_client()).status_code == 200
    assert secret not in browser.get(f"/admin/clients/{registered.client_id}").text


def test_registration_refuses_what_the_rules_refuse(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    response = _call(
        browser,
        "POST",
        "/admin/clients/new",
        {
            "name": "Web",
            "grant_types": ["authorization_code"],
            "redirect_uris": "http://rp.example.com/cb",
            "token_endpoint_auth_method": "client_secret_basic",
        },
    )
    assert response.status_code == 422 and "must use https" in response.text
    assert db.session.scalar(select(Client).where(Client.name == "Web")) is None


def test_editing_redirect_uris_and_scopes(app: Flask, world: World) -> None:
    client, _ = make_client(name="Shop")
    browser = _signed_in(app, ADMIN)
    form = {
        "name": "Shop",
        "redirect_uris": "https://shop.example.com/cb\r\nhttps://shop.example.com/cb2\r\n",
        "post_logout_redirect_uris": "https://shop.example.com/bye",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid  email",
        "web_origins": "https://Shop.example.com:443",
    }
    response = _call(browser, "POST", f"/admin/clients/{client.client_id}", form)
    assert response.status_code == 302
    db.session.refresh(client)
    assert client.redirect_uris == ["https://shop.example.com/cb", "https://shop.example.com/cb2"]
    assert client.post_logout_redirect_uris == ["https://shop.example.com/bye"]
    assert client.scope == "openid email"
    assert client.web_origins == ["https://shop.example.com"]
    assert client.claims_in_id_token is False
    ticked = {**form, "claims_in_id_token": "y"}
    assert _call(browser, "POST", f"/admin/clients/{client.client_id}", ticked).status_code == 302
    db.session.refresh(client)
    assert client.claims_in_id_token is True
    page = browser.get(f"/admin/clients/{client.client_id}").text
    assert "Claims in the id_token" in page

    refused = _call(
        browser, "POST", f"/admin/clients/{client.client_id}", {**form, "redirect_uris": ""}
    )
    assert refused.status_code == 422 and "needs at least one redirect URI" in refused.text
    db.session.refresh(client)
    assert len(client.redirect_uris) == 2


def test_setting_the_refresh_token_grace_period(app: Flask, world: World) -> None:
    client, _ = make_client(name="Tabs")
    browser = _signed_in(app, ADMIN)
    page = browser.get(f"/admin/clients/{client.client_id}").text
    assert 'name="refresh_token_grace_period_seconds"' in page and 'max="60"' in page
    form = {
        "name": "Tabs",
        "redirect_uris": "https://rp.example.com/callback",
        "grant_types": ["authorization_code", "refresh_token"],
        "scope": "openid offline_access",
        "refresh_token_grace_period_seconds": "15",
    }
    assert _call(browser, "POST", f"/admin/clients/{client.client_id}", form).status_code == 302
    db.session.refresh(client)
    assert client.refresh_token_grace_period_seconds == 15
    assert 'value="15"' in browser.get(f"/admin/clients/{client.client_id}").text

    too_long = {**form, "refresh_token_grace_period_seconds": "600"}
    refused = _call(browser, "POST", f"/admin/clients/{client.client_id}", too_long)
    assert refused.status_code == 422
    db.session.refresh(client)
    assert client.refresh_token_grace_period_seconds == 15


def test_rotating_a_secret_retires_the_old_one(app: Flask, world: World) -> None:
    rp = app.test_client()
    assert _token_request(world.client_id, world.secret, rp).status_code == 200
    browser = _signed_in(app, ADMIN)

    response = _call(browser, "POST", f"/admin/clients/{world.client_id}/secret")

    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    new_secret = response.text.split('id="client-secret">')[1].split("<")[0]
    assert new_secret != world.secret
    assert _token_request(world.client_id, world.secret, rp).status_code == 401
    assert _token_request(world.client_id, new_secret, rp).status_code == 200


def test_an_admin_issues_an_initial_access_token_that_registers_once(app_factory) -> None:
    app = app_factory(dynamic_registration=True)
    with app.app_context():
        make_user(ADMIN, roles=["admin"])
        browser = _signed_in(app, ADMIN)
        assert "Issue an initial access token" in browser.get("/admin/clients").text

        page = _call(browser, "POST", "/admin/clients/initial-token", {"note": "partner"})

        assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
        token = page.text.split('id="initial-access-token">')[1].split("<")[0]
        metadata = {"redirect_uris": ["https://partner.example/cb"], "client_name": "Partner"}
        register = app.test_client().post(
            "/oauth2/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
        )
        assert register.status_code == 201
        again = app.test_client().post(
            "/oauth2/register", json=metadata, headers={"Authorization": f"Bearer {token}"}
        )
        assert again.status_code == 401


def test_disabling_a_client_stops_its_tokens(app: Flask, world: World) -> None:
    rp = app.test_client()
    browser = _signed_in(app, ADMIN)
    url = f"/admin/clients/{world.client_id}/active"
    assert _call(browser, "POST", url, {"active": "0"}).status_code == 302
    assert _token_request(world.client_id, world.secret, rp).status_code == 401
    assert _call(browser, "POST", url, {"active": "1"}).status_code == 302
    assert _token_request(world.client_id, world.secret, rp).status_code == 200


def test_deleting_a_client_asks_first(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    url = f"/admin/clients/{world.client_id}/delete"
    assert "Delete for good" in browser.get(url).text
    assert _call(browser, "POST", url).status_code == 302
    assert db.session.scalar(select(Client).where(Client.client_id == world.client_id)) is None
    assert _token_request(world.client_id, world.secret, app.test_client()).status_code == 401


# Roles and keys


def test_custom_roles_are_created_edited_and_deleted(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    made = _call(
        browser,
        "POST",
        "/admin/roles/new",
        {"name": "auditor", "description": "Reads the log", "permissions": ["audit:read"]},
    )
    assert made.status_code == 302
    assert "Reads the log" in browser.get("/admin/roles").text
    edited = _call(
        browser,
        "POST",
        "/admin/roles/auditor",
        {"name": "auditor", "description": "Log", "permissions": ["audit:read", "keys:read"]},
    )
    assert edited.status_code == 302
    from authserver.roles import services as roles

    role = roles.get_role("auditor")
    assert role is not None and role.permissions == ["audit:read", "keys:read"]
    assert _call(browser, "POST", "/admin/roles/auditor/delete").status_code == 302
    assert roles.get_role("auditor") is None
    refused = _call(browser, "POST", "/admin/roles/admin/delete")
    assert refused.status_code == 409 and roles.get_role("admin") is not None


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_rotating_signing_keys_publishes_a_new_key(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    before = {key["kid"] for key in browser.get("/.well-known/jwks.json").json["keys"]}
    response = _call(browser, "POST", "/admin/keys/rotate", {"alg": "ES256"})
    assert response.status_code == 302
    page = browser.get("/admin/keys").text
    from authserver.keys import current_keyring

    current_keyring().refresh()
    after = {key["kid"] for key in browser.get("/.well-known/jwks.json").json["keys"]}
    new = after - before
    assert len(new) == 1 and new.pop() in page
    assert "next" in page  # published now, signing after the pre-publication time


# Audit log


def test_the_audit_log_filters_and_exports(app: Flask, world: World) -> None:
    browser = _signed_in(app, ADMIN)
    _call(browser, "POST", f"/admin/clients/{world.client_id}/secret")
    _call(browser, "POST", f"/admin/users/{world.target_sub}/verify-email")

    page = browser.get("/admin/audit?event=admin.client").text
    assert "admin.client.secret_rotated" in page and "admin.user.email_verified" not in page
    by_subject = browser.get(f"/admin/audit?subject={world.target_sub}").text
    assert "admin.user.email_verified" in by_subject
    future = browser.get("/admin/audit?since=2999-01-01T00:00").text
    assert "No events match" in future
    bad = browser.get("/admin/audit?since=2024-02-01T00:00&until=2024-01-01T00:00")
    assert bad.status_code == 400

    export = browser.get(f"/admin/audit/export?event=admin.&client_id={world.client_id}")
    assert export.status_code == 200
    assert "attachment" in export.headers["Content-Disposition"]
    events = [json.loads(line) for line in export.text.splitlines()]
    assert [event["event"] for event in events] == ["admin.client.secret_rotated"]


def test_the_audit_log_pages_newest_first(app: Flask, world: World) -> None:
    from authserver.audit import record

    for n in range(55):
        record(f"test.event{n:02d}", actor="system", actor_type="system")
    db.session.commit()
    browser = _signed_in(app, ADMIN)
    first = browser.get("/admin/audit?event=test.").text
    assert "test.event54" in first and "test.event05" in first and "test.event04" not in first
    older = first.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = browser.get(older.replace("&amp;", "&")).text
    assert "test.event04" in second and "test.event05" not in second
