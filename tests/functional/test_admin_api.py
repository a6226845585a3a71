"""The JSON admin API: who may call each endpoint, what each does, and its OpenAPI document."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from authserver.accounts.models import User
from authserver.extensions import db
from authserver.roles import services as roles
from authserver.roles.permissions import PERMISSIONS
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in

API = "/admin/api/v1"
_serial = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}{next(_serial)}"


# Getting real tokens


@dataclass
class AdminTool:
    """A client registered for the admin scope and holding the admin role, used by people."""

    client_id: str
    secret: str


def person_token(app: Flask, tool: AdminTool, email: str, scope: str = "openid admin") -> dict:
    """Sign in as an admin (made here) and run the code flow; the token response."""
    make_user(email=email, roles=["admin"])
    browser = app.test_client()
    sign_in(browser, email)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, tool.client_id, challenge, scope=scope)
    response = exchange(browser, tool.client_id, tool.secret, code, verifier)
    assert response.status_code == 200, response.text
    return response.get_json()


def service_token(browser: FlaskClient, client_id: str, secret: str, **extra: str) -> TestResponse:
    """RFC 6749 section 4.4: a service's token for itself."""
    return browser.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", **extra},
        headers=basic(client_id, secret),
    )


def make_service(scope: str = "admin", **extra: Any) -> tuple[str, str]:
    """A client_credentials service; it holds the admin role unless `roles` says otherwise."""
    extra.setdefault("roles", ["admin"])
    service, secret = make_client(
        name="Provisioner",
        redirect_uris=[],
        grant_types=["client_credentials"],
        scope=scope,
        **extra,
    )
    assert secret is not None
    return service.client_id, secret


def hold_only(email: str, permissions: list[str]) -> None:
    """Give the person a single custom role with exactly these permissions (a demotion)."""
    role = roles.create_role(unique("only-"), permissions=permissions)
    user = db.session.query(User).filter_by(email=email).one()
    user.roles = [role]
    db.session.commit()


@pytest.fixture
def tool(app: Flask) -> AdminTool:
    client, secret = make_client(
        name="Admin tool", scope="openid offline_access admin", roles=["admin"]
    )
    assert secret is not None
    return AdminTool(client.client_id, secret)


@pytest.fixture
def admin(app: Flask, tool: AdminTool) -> str:
    return person_token(app, tool, "root@example.com")["access_token"]


def call(
    browser: FlaskClient, method: str, path: str, token: str | None = None, body: Any = None
) -> TestResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = browser.open(API + path, method=method, headers=headers, json=body)
    response.get_data()  # read streamed bodies now, inside this request's context
    return response


# The permission model, at every endpoint


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    permission: str
    status: int
    body: Callable[[], Any] | None = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("GET", "/users", "users:read", 200),
    Endpoint("POST", "/users", "users:write", 201, lambda: {"email": unique("new") + "@x.org"}),
    Endpoint("GET", "/users/{sub}", "users:read", 200),
    Endpoint("PATCH", "/users/{sub}", "users:write", 200, lambda: {"email_verified": True}),
    Endpoint("POST", "/users/{sub}/password-reset", "users:write", 204),
    Endpoint("POST", "/users/{sub}/sign-out", "users:write", 204),
    Endpoint("GET", "/clients", "clients:read", 200),
    Endpoint(
        "POST",
        "/clients",
        "clients:write",
        201,
        lambda: {"client_name": "New app", "redirect_uris": [REDIRECT_URI]},
    ),
    Endpoint("GET", "/clients/{client_id}", "clients:read", 200),
    Endpoint("PATCH", "/clients/{client_id}", "clients:write", 200, lambda: {"client_name": "B"}),
    Endpoint("DELETE", "/clients/{client_id}", "clients:write", 204),
    Endpoint("POST", "/clients/{client_id}/secret", "clients:write", 200),
    Endpoint("GET", "/roles", "roles:read", 200),
    Endpoint("POST", "/roles", "roles:write", 201, lambda: {"name": unique("auditor-")}),
    Endpoint("GET", "/roles/{name}", "roles:read", 200),
    Endpoint("PATCH", "/roles/{name}", "roles:write", 200, lambda: {"description": "Reads"}),
    Endpoint("DELETE", "/roles/{name}", "roles:write", 204),
    Endpoint("GET", "/keys", "keys:read", 200),
    Endpoint("POST", "/keys/rotate", "keys:write", 200, lambda: {"alg": "ES256"}),
    Endpoint("POST", "/initial-access-tokens", "clients:write", 201, lambda: {"note": "x"}),
    Endpoint("GET", "/audit", "audit:read", 200),
    Endpoint("GET", "/audit/export", "audit:read", 200),
]


def targets(path: str) -> dict[str, str]:
    """Fresh things for an endpoint to act on: a person, a client or a custom role."""
    made = {}
    if "{sub}" in path:
        made["sub"] = make_user(email=unique("target") + "@example.com").sub
    if "{client_id}" in path:
        made["client_id"] = make_client(name="Target app")[0].client_id
    if "{name}" in path:
        made["name"] = roles.create_role(unique("target-"), permissions=["users:read"]).name
    return made


def hit(browser: FlaskClient, endpoint: Endpoint, token: str | None) -> TestResponse:
    path = endpoint.path.format(**targets(endpoint.path))
    body = endpoint.body() if endpoint.body else None
    return call(browser, endpoint.method, path, token, body)


def expect(failures: list[str], endpoint: Endpoint, who: str, ok: bool, got: TestResponse) -> None:
    if not ok:
        failures.append(f"{endpoint} as {who}: {got.status_code} {got.text[:200]}")


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_every_endpoint_admits_admins_and_services_and_no_one_else(
    app: Flask, client: FlaskClient, tool: AdminTool, admin: str
) -> None:
    """No token 401; no admin scope 403; a person without the permission 403; admins pass.

    One set of real tokens serves every endpoint: the demoted person's roles are changed
    between endpoints, and the API reads them at each request.
    """
    plain = person_token(app, tool, "plain@example.com", scope="openid")["access_token"]
    lacking = person_token(app, tool, "demoted@example.com")["access_token"]
    service = service_token(client, *make_service()).get_json()["access_token"]
    failures: list[str] = []
    for endpoint in ENDPOINTS:
        got = hit(client, endpoint, None)
        ok = got.status_code == 401 and got.headers["WWW-Authenticate"] == 'Bearer realm="admin"'
        expect(failures, endpoint, "nobody", ok and got.headers["Cache-Control"] == "no-store", got)

        got = hit(client, endpoint, plain)
        challenge = got.headers.get("WWW-Authenticate", "")
        ok = got.status_code == 403 and got.get_json()["error"] == "insufficient_scope"
        ok = ok and challenge.startswith('Bearer realm="admin", error="insufficient_scope"')
        expect(
            failures, endpoint, "a token without admin", ok and 'scope="admin"' in challenge, got
        )

        hold_only("demoted@example.com", sorted(set(PERMISSIONS) - {endpoint.permission}))
        got = hit(client, endpoint, lacking)
        ok = got.status_code == 403 and got.get_json()["error"] == "forbidden"
        ok = ok and endpoint.permission in got.get_json()["error_description"]
        expect(failures, endpoint, "a person without the permission", ok, got)

        got = hit(client, endpoint, admin)
        ok = got.status_code == endpoint.status and got.headers["Cache-Control"] == "no-store"
        expect(failures, endpoint, "an admin", ok, got)

        got = hit(client, endpoint, service)
        expect(failures, endpoint, "an admin service", got.status_code == endpoint.status, got)
    assert not failures, "\n".join(failures)


def test_the_table_above_covers_every_route_with_its_permission(app: Flask) -> None:
    routes = {
        (method, rule.rule.removeprefix(API).replace("<", "{").replace(">", "}")): rule.endpoint
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("admin_api.")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    }
    assert set(routes) == {(e.method, e.path) for e in ENDPOINTS}
    for endpoint in ENDPOINTS:
        view = app.view_functions[routes[(endpoint.method, endpoint.path)]]
        assert view.permission == endpoint.permission  # type: ignore[attr-defined]


def test_a_viewer_reads_but_cannot_write(app: Flask, client: FlaskClient, tool: AdminTool) -> None:
    token = person_token(app, tool, "vera@example.com")["access_token"]
    vera = db.session.query(User).filter_by(email="vera@example.com").one()
    vera.roles = [roles.get_role("viewer")]
    db.session.commit()
    assert call(client, "GET", "/users", token).status_code == 200
    assert call(client, "GET", "/audit", token).status_code == 200
    refused = call(client, "POST", "/clients", token, {"client_name": "Mine"})
    assert refused.status_code == 403


def test_invalid_expired_and_revoked_tokens_are_refused(
    client: FlaskClient, tool: AdminTool, admin: str
) -> None:
    garbage = call(client, "GET", "/users", "not-a-token")
    assert garbage.status_code == 401
    assert garbage.get_json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in garbage.headers["WWW-Authenticate"]
    tampered = admin[:-4] + ("AAAA" if not admin.endswith("AAAA") else "BBBB")
    assert call(client, "GET", "/users", tampered).status_code == 401
    basic_auth = client.get(API + "/users", headers={"Authorization": "Basic dXNlcjpwdw=="})
    assert basic_auth.status_code == 400

    me = call(client, "GET", "/users?q=root", admin).get_json()["items"][0]
    assert call(client, "POST", f"/users/{me['sub']}/sign-out", admin).status_code == 204
    revoked = call(client, "GET", "/users", admin)
    assert revoked.status_code == 401
    assert revoked.get_json()["error"] == "invalid_token"


def test_a_token_for_another_audience_is_refused(client: FlaskClient) -> None:
    service = make_service(resources=["https://api.example.com/"])
    token = service_token(client, *service, resource="https://api.example.com/").get_json()
    assert "admin" in token["scope"].split()
    refused = call(client, "GET", "/users", token["access_token"])
    assert refused.status_code == 401
    assert "not issued for this server" in refused.get_json()["error_description"]


def test_a_disabled_service_loses_access_at_once(client: FlaskClient, admin: str) -> None:
    client_id, secret = make_service()
    token = service_token(client, client_id, secret).get_json()["access_token"]
    assert call(client, "GET", "/keys", token).status_code == 200
    disabled = call(client, "PATCH", f"/clients/{client_id}", admin, {"is_active": False})
    assert disabled.get_json()["is_active"] is False
    assert call(client, "GET", "/keys", token).status_code == 401


# What the endpoints do


def test_a_client_created_through_the_api_gets_tokens(client: FlaskClient, admin: str) -> None:
    body = {
        "client_name": "Billing",
        "grant_types": ["client_credentials"],
        "scope": "api:read",
        "token_endpoint_auth_method": "client_secret_post",
    }
    created = call(client, "POST", "/clients", admin, body)
    assert created.status_code == 201, created.text
    new = created.get_json()
    assert created.headers["Location"] == f"{API}/clients/{new['client_id']}"
    assert new["client_name"] == "Billing" and new["scope"] == "api:read"
    response = client.post(
        "/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": new["client_id"],
            "client_secret": new["client_secret"],
        },
    )
    assert response.status_code == 200, response.text
    assert response.get_json()["scope"] == "api:read"
    shown_again = call(client, "GET", f"/clients/{new['client_id']}", admin).get_json()
    assert "client_secret" not in shown_again


def test_rotating_a_secret_retires_the_old_one(client: FlaskClient, admin: str) -> None:
    client_id, old = make_service(scope="api:read")
    rotated = call(client, "POST", f"/clients/{client_id}/secret", admin)
    assert rotated.status_code == 200
    new = rotated.get_json()["client_secret"]
    assert new != old
    assert service_token(client, client_id, old).status_code == 401
    assert service_token(client, client_id, new).status_code == 200


def test_editing_and_deleting_a_client(client: FlaskClient, admin: str) -> None:
    rp, _ = make_client()
    path = f"/clients/{rp.client_id}"
    change = {"redirect_uris": ["https://rp.example.com/cb2"], "scope": "openid email"}
    changed = call(client, "PATCH", path, admin, change).get_json()
    assert changed["redirect_uris"] == ["https://rp.example.com/cb2"]
    assert changed["scope"] == "openid email"
    assert changed["claims_in_id_token"] is False
    option = call(client, "PATCH", path, admin, {"claims_in_id_token": True}).get_json()
    assert option["claims_in_id_token"] is True and option["scope"] == "openid email"
    refused = call(client, "PATCH", path, admin, {"redirect_uris": ["http://evil.example/cb"]})
    assert refused.status_code == 422
    assert "redirect_uri" in refused.get_json()["error_description"]
    assert call(client, "DELETE", path, admin).status_code == 204
    assert call(client, "GET", path, admin).status_code == 404


def test_the_refresh_token_grace_period_through_the_api(client: FlaskClient, admin: str) -> None:
    field = "refresh_token_grace_period_seconds"
    created = call(
        client, "POST", "/clients", admin, {"client_name": "Tabs", "redirect_uris": [REDIRECT_URI]}
    )
    assert created.status_code == 201 and created.get_json()[field] == 0
    path = f"/clients/{created.get_json()['client_id']}"
    assert call(client, "PATCH", path, admin, {field: 45}).get_json()[field] == 45
    assert call(client, "PATCH", path, admin, {"scope": "openid"}).get_json()[field] == 45
    for refused in (61, -1, "10", True):
        answer = call(client, "PATCH", path, admin, {field: refused})
        assert answer.status_code == 422 and field in answer.get_json()["error_description"]
    assert call(client, "GET", path, admin).get_json()[field] == 45


def test_a_disabled_person_cannot_refresh(
    app: Flask, client: FlaskClient, tool: AdminTool, admin: str
) -> None:
    rp, secret = make_client(name="Notes")
    bob = make_user(email="bob@example.com")
    browser = app.test_client()
    sign_in(browser, "bob@example.com")
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge)
    refresh_token = exchange(browser, rp.client_id, secret, code, verifier).get_json()[
        "refresh_token"
    ]

    disabled = call(client, "PATCH", f"/users/{bob.sub}", admin, {"is_active": False})
    assert disabled.status_code == 200
    assert disabled.get_json()["is_active"] is False
    refresh = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        headers=basic(rp.client_id, secret or ""),
    )
    assert refresh.status_code == 400
    assert refresh.get_json()["error"] == "invalid_grant"


def test_people_are_created_searched_paged_and_given_roles(client: FlaskClient, admin: str) -> None:
    created = call(client, "POST", "/users", admin, {"email": "Carol@Example.com", "name": "Carol"})
    assert created.status_code == 201, created.text
    carol = created.get_json()
    assert carol["email"] == "carol@example.com" and carol["roles"] == []
    duplicate = call(client, "POST", "/users", admin, {"email": "carol@example.com"})
    assert duplicate.status_code == 422

    found = call(client, "GET", "/users?q=CAROL", admin).get_json()
    assert [u["sub"] for u in found["items"]] == [carol["sub"]]
    first = call(client, "GET", "/users?limit=1", admin).get_json()
    assert first["total"] == 2 and first["next_offset"] == 1 and len(first["items"]) == 1
    second = call(client, "GET", "/users?limit=1&offset=1", admin).get_json()
    assert second["next_offset"] is None
    assert call(client, "GET", "/users?limit=0", admin).status_code == 422

    promoted = call(client, "PATCH", f"/users/{carol['sub']}", admin, {"roles": ["developer"]})
    assert promoted.get_json()["roles"] == ["developer"]
    unknown = call(client, "PATCH", f"/users/{carol['sub']}", admin, {"roles": ["wizard"]})
    assert unknown.status_code == 422
    assert "wizard" in unknown.get_json()["error_description"]


def test_renaming_a_person(client: FlaskClient, admin: str) -> None:
    dave = make_user(email="dave@example.com", name="Dave")
    renamed = call(client, "PATCH", f"/users/{dave.sub}", admin, {"name": "David"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.get_json()["name"] == "David"


def test_bad_requests_get_clear_errors(client: FlaskClient, admin: str) -> None:
    missing = call(client, "GET", "/users/nobody", admin)
    assert missing.status_code == 404
    assert missing.get_json() == {"error": "not_found", "error_description": "no such user"}
    typo = call(client, "POST", "/users", admin, {"email": "e@x.org", "rolez": []})
    assert typo.status_code == 422
    assert "rolez" in typo.get_json()["error_description"]
    wrong_type = call(client, "PATCH", "/roles/viewer", admin, {"permissions": "users:read"})
    assert wrong_type.status_code == 422
    not_json = client.post(
        API + "/roles", data="name=x", headers={"Authorization": f"Bearer {admin}"}
    )
    assert not_json.status_code == 415
    builtin = call(client, "DELETE", "/roles/admin", admin)
    assert builtin.status_code == 422
    assert "built-in" in builtin.get_json()["error_description"]


def test_the_last_admin_cannot_be_disabled(client: FlaskClient, admin: str) -> None:
    me = call(client, "GET", "/users", admin).get_json()["items"][0]
    refused = call(client, "PATCH", f"/users/{me['sub']}", admin, {"is_active": False})
    assert refused.status_code == 422
    assert "last active admin" in refused.get_json()["error_description"]


def test_roles_are_created_changed_and_deleted(client: FlaskClient, admin: str) -> None:
    body = {"name": "support", "description": "Helps people", "permissions": ["users:read"]}
    created = call(client, "POST", "/roles", admin, body)
    assert created.status_code == 201, created.text
    assert created.get_json() == {
        "name": "support",
        "description": "Helps people",
        "permissions": ["users:read"],
        "builtin": False,
    }
    changed = call(client, "PATCH", "/roles/support", admin, {"permissions": ["audit:read"]})
    assert changed.get_json()["permissions"] == ["audit:read"]
    names = [r["name"] for r in call(client, "GET", "/roles", admin).get_json()["items"]]
    assert {"admin", "developer", "viewer", "support"} <= set(names)
    assert call(client, "DELETE", "/roles/support", admin).status_code == 204
    assert call(client, "GET", "/roles/support", admin).status_code == 404


@pytest.mark.commits  # the key ring writes signing keys on its own connection
def test_keys_are_listed_without_secrets_and_rotated(client: FlaskClient, admin: str) -> None:
    before = call(client, "GET", "/keys", admin).get_json()["items"]
    fields = {"kid", "alg", "status", "created_at", "activates_at", "retired_at", "revoked_at"}
    assert before and all(set(k) == fields | {"unpublished_at"} for k in before)
    rotated = call(client, "POST", "/keys/rotate", admin, {"alg": "ES256"}).get_json()
    assert len(rotated["kids"]) == 1
    states = {k["kid"]: k["status"] for k in rotated["items"]}
    assert states[rotated["kids"][0]] == "next"
    assert call(client, "POST", "/keys/rotate", admin, {"now": "yes"}).status_code == 422
    assert call(client, "POST", "/keys/rotate", admin, {"alg": "HS256"}).status_code == 422
    emergency = call(
        client, "POST", "/keys/rotate", admin, {"alg": "ES256", "emergency": True}
    ).get_json()
    states = {k["kid"]: k["status"] for k in emergency["items"]}
    assert states[emergency["kids"][0]] == "signing"
    assert states[rotated["kids"][0]] == "revoked"
    # The admin's own access token was signed by a revoked ES256 key: it stops verifying.
    assert call(client, "GET", "/keys", admin).status_code == 401


def test_admin_actions_are_audited_and_exported_as_json_lines(
    client: FlaskClient, admin: str
) -> None:
    client_id = call(
        client,
        "POST",
        "/clients",
        admin,
        {"client_name": "Audited", "redirect_uris": [REDIRECT_URI]},
    ).get_json()["client_id"]
    call(client, "POST", f"/clients/{client_id}/secret", admin)
    me = call(client, "GET", "/users", admin).get_json()["items"][0]["sub"]

    page = call(client, "GET", f"/audit?actor={me}&event=admin.client.created", admin).get_json()
    assert [e["subject"] for e in page["items"]] == [client_id]
    assert page["items"][0]["actor_type"] == "user"

    export = call(client, "GET", f"/audit/export?client_id={client_id}", admin)
    assert export.status_code == 200
    assert export.mimetype == "application/x-ndjson"
    events = [json.loads(line) for line in export.text.splitlines()]
    assert {"admin.client.created", "admin.client.secret_rotated"} <= {e["event"] for e in events}
    assert all(e["actor"] == me for e in events if e["event"].startswith("admin."))

    assert call(client, "GET", "/audit?since=yesterday", admin).status_code == 422


def test_a_service_is_named_as_the_actor(client: FlaskClient) -> None:
    client_id, secret = make_service()
    token = service_token(client, client_id, secret).get_json()["access_token"]
    created = call(client, "POST", "/roles", token, {"name": "robots"})
    assert created.status_code == 201
    events = call(client, "GET", "/audit?event=admin.role.created", token).get_json()["items"]
    assert events[0]["actor"] == client_id and events[0]["actor_type"] == "client"


# The OpenAPI document


def test_the_openapi_document_is_valid_public_and_cacheable(client: FlaskClient) -> None:
    from openapi_spec_validator import validate

    response = client.get("/admin/api/openapi.json")
    assert response.status_code == 200
    assert "public" in response.headers["Cache-Control"]
    assert "max-age" in response.headers["Cache-Control"]
    document = response.get_json()
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["servers"][0]["url"].endswith(API)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_the_openapi_document_matches_the_routes(app: Flask, client: FlaskClient) -> None:
    document = client.get("/admin/api/openapi.json").get_json()
    documented = {
        (method.upper(), path, operation["x-permission"], operation["operationId"])
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("admin_api."):
            continue
        view = app.view_functions[rule.endpoint]
        path = rule.rule.removeprefix(API).replace("<", "{").replace(">", "}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            operation_id = rule.endpoint.removeprefix("admin_api.")
            routes.add((method, path, view.permission, operation_id))  # type: ignore[attr-defined]
    assert documented == routes
    for item in document["paths"].values():
        for operation in item.values():
            assert {"401", "403"} <= set(operation["responses"])
