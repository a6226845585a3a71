"""A token never carries a scope its client or person may not have; roles and the chosen
organization travel in the tokens."""

from __future__ import annotations

import html
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet

from authserver.accounts.models import User
from authserver.oauth.services import limit_user_scope
from authserver.orgs.membership import add_member
from authserver.orgs.models import Organization
from authserver.orgs.services import create_organization
from authserver.roles.services import create_role, remove_role
from tests.factories import make_client, make_user
from tests.oauth_helpers import (
    authorize_params,
    basic,
    consent,
    exchange,
    get_code,
    pkce_pair,
    query,
    sign_in,
)


def claims_of(browser: FlaskClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())
    return dict(jwt.decode(token, keys).claims)


def tokens(browser: FlaskClient, scope: str, **extra: Any) -> dict[str, Any]:
    """Sign-in is done; authorize a fresh confidential client for `scope` and redeem the code."""
    rp, secret = make_client(scope=REGISTERED)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp.client_id, challenge, scope=scope, **extra)
    response = exchange(browser, rp.client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.get_json()
    body["client"] = (rp.client_id, secret)
    return body


def userinfo(browser: FlaskClient, access_token: str) -> dict[str, Any]:
    response = browser.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return dict(response.get_json())


REGISTERED = "openid profile email offline_access roles admin org:*"


def org(name: str, *members: tuple[User, str]) -> Organization:
    organization = create_organization(name)
    for user, role in members:
        add_member(organization, user, role)
    return organization


# Roles


def test_without_the_roles_scope_no_token_carries_the_roles(
    app: Flask, client: FlaskClient
) -> None:
    make_user(roles=["developer"])
    sign_in(client)
    body = tokens(client, "openid profile")
    assert "roles" not in claims_of(client, body["access_token"])
    assert "roles" not in claims_of(client, body["id_token"])
    assert "roles" not in userinfo(client, body["access_token"])


def test_with_the_roles_scope_the_access_token_carries_the_roles(
    app: Flask, client: FlaskClient
) -> None:
    make_user(roles=["developer"])
    sign_in(client)
    body = tokens(client, "openid roles")
    assert claims_of(client, body["access_token"])["roles"] == ["developer"]


def test_with_the_roles_scope_the_id_token_and_userinfo_carry_the_roles(
    app: Flask, client: FlaskClient
) -> None:
    make_user(roles=["developer", "viewer"])
    sign_in(client)
    body = tokens(client, "openid roles")
    assert body["scope"] == "openid roles"
    assert claims_of(client, body["id_token"])["roles"] == ["developer", "viewer"]
    assert userinfo(client, body["access_token"])["roles"] == ["developer", "viewer"]


def test_the_roles_scope_releases_an_empty_list_for_a_person_without_roles(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    sign_in(client)
    body = tokens(client, "openid roles")
    assert "roles" not in claims_of(client, body["access_token"])
    assert claims_of(client, body["id_token"])["roles"] == []


# The admin scope


def test_admin_scope_is_dropped_silently_for_someone_without_staff_permissions(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    sign_in(client)
    body = tokens(client, "openid admin")
    # RFC 6749 section 3.3: fewer scopes than asked, and the response says which.
    assert body["scope"] == "openid"
    assert claims_of(client, body["access_token"])["scope"] == "openid"


def test_admin_scope_is_granted_to_an_admin(app: Flask, client: FlaskClient) -> None:
    make_user(roles=["admin"])
    sign_in(client)
    body = tokens(client, "openid admin roles")
    assert body["scope"] == "openid admin roles"
    assert claims_of(client, body["access_token"])["roles"] == ["admin"]


def test_consent_page_does_not_offer_a_scope_that_will_be_dropped(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, _ = make_client(scope=REGISTERED)
    sign_in(client)
    _, challenge = pkce_pair()
    page = client.get(
        "/authorize", query_string=authorize_params(rp.client_id, challenge, scope="openid admin")
    )
    assert page.status_code == 200 and 'value="allow"' in page.text
    assert '<code class="scope-name">openid</code>' in page.text
    assert "admin</code>" not in page.text


def test_a_refresh_drops_admin_once_the_person_lost_the_role(
    app: Flask, client: FlaskClient
) -> None:
    create_role("member", permissions=[])  # a role that makes no one staff
    user = make_user(roles=["admin", "member"])
    make_user("bob@example.com", roles=["admin"])  # not the last admin
    sign_in(client)
    body = tokens(client, "offline_access admin roles")
    assert body["scope"] == "offline_access admin roles"
    remove_role(user, "admin")
    client_id, secret = body["client"]
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=basic(client_id, secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    assert refreshed.get_json()["scope"] == "offline_access roles"
    assert claims_of(client, refreshed.get_json()["access_token"])["roles"] == ["member"]


def test_a_service_gets_admin_only_when_registered_with_it(app: Flask, client: FlaskClient) -> None:
    allowed, allowed_secret = make_client(grant_types=["client_credentials"], scope="admin")
    other, other_secret = make_client(grant_types=["client_credentials"], scope="reports")
    answers = []
    for rp, secret in ((allowed, allowed_secret), (other, other_secret)):
        assert secret is not None
        answers.append(
            client.post(
                "/oauth2/token",
                data={"grant_type": "client_credentials", "scope": "admin"},
                headers=basic(rp.client_id, secret),
            )
        )
    assert answers[0].status_code == 200, answers[0].text
    assert answers[0].get_json()["scope"] == "admin"
    # RFC 6749 section 5.2: asking only for a scope the client is not registered for.
    assert answers[1].status_code == 400
    assert answers[1].get_json()["error"] == "invalid_scope"


def test_the_device_flow_applies_the_same_limit(app: Flask) -> None:
    plain = make_user()
    viewer = make_user("vera@example.com", roles=["viewer"])
    admin = make_user("root@example.com", roles=["admin"])
    assert limit_user_scope(plain, "openid admin profile") == "openid profile"
    # Any staff member may get the admin scope; the admin API then checks each permission.
    assert limit_user_scope(viewer, "openid admin profile") == "openid admin profile"
    assert limit_user_scope(admin, "openid admin profile") == "openid admin profile"


# Organizations in the authorization request


def test_org_scope_is_dropped_for_a_non_member_and_kept_for_a_member(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "developer"))
    org("Globex")
    sign_in(client)
    body = tokens(client, "openid org:acme org:globex")
    assert body["scope"] == "openid org:acme"
    access = claims_of(client, body["access_token"])
    assert access["org_id"] == "acme"
    assert access["org_roles"] == ["developer"]


def test_a_client_not_registered_for_org_scopes_does_not_get_them(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    rp, secret = make_client(scope="openid")
    sign_in(client)
    verifier, challenge = pkce_pair()
    code, _ = get_code(client, rp.client_id, challenge, scope="openid org:acme")
    body = exchange(client, rp.client_id, secret, code, verifier).get_json()
    assert body["scope"] == "openid"
    assert "org_id" not in claims_of(client, body["access_token"])


def test_the_one_organization_that_fits_is_used_without_asking(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user(roles=["viewer"])
    org("Acme", (user, "admin"))
    sign_in(client)
    body = tokens(client, "openid roles", organization="select")
    access = claims_of(client, body["access_token"])
    assert (access["org_id"], access["org_roles"], access["roles"]) == (
        "acme",
        ["admin"],
        ["viewer"],
    )
    id_token = claims_of(client, body["id_token"])
    assert (id_token["org_id"], id_token["org_roles"]) == ("acme", ["admin"])
    info = userinfo(client, body["access_token"])
    assert (info["org_id"], info["org_roles"], info["roles"]) == ("acme", ["admin"], ["viewer"])


def test_without_the_roles_scope_the_organization_stays_out_of_the_id_token(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    sign_in(client)
    body = tokens(client, "openid", organization="acme")
    assert claims_of(client, body["access_token"])["org_id"] == "acme"
    assert "org_id" not in claims_of(client, body["id_token"])
    assert "org_id" not in userinfo(client, body["access_token"])


def test_with_several_organizations_the_person_picks_one_and_it_lands_in_the_tokens(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    org("Beta Labs", (user, "developer"))
    rp, secret = make_client(scope=REGISTERED)
    sign_in(client)
    verifier, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, scope="openid", organization="select")
    page = client.get("/authorize", query_string=params)
    assert page.status_code == 200
    assert "Choose an organization" in page.text
    assert 'name="organization" value="acme"' in page.text
    assert 'name="organization" value="beta-labs"' in page.text

    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    fields = {html.unescape(k): html.unescape(v) for k, v in fields.items()}
    assert "organization" not in fields and fields["client_id"] == rp.client_id
    response = client.post("/authorize", data={**fields, "organization": "beta-labs"})
    assert response.status_code == 200 and 'value="allow"' in response.text
    response = consent(client, response)
    assert response.status_code == 302, response.text
    code = query(response)["code"]
    body = exchange(client, rp.client_id, secret, code, verifier).get_json()
    access = claims_of(client, body["access_token"])
    assert (access["org_id"], access["org_roles"]) == ("beta-labs", ["developer"])


def test_a_picked_organization_must_still_be_the_persons(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    org("Beta", (user, "viewer"))
    org("Initech")
    rp, _ = make_client(scope=REGISTERED)
    sign_in(client)
    _, challenge = pkce_pair()
    params = authorize_params(rp.client_id, challenge, organization="initech")
    response = client.post("/authorize", data=params)
    assert response.status_code == 302
    assert query(response)["error"] == "access_denied"


def test_a_non_member_asking_for_an_organization_gets_access_denied(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    org("Acme", (make_user("bob@example.com"), "admin"))
    rp, _ = make_client(scope=REGISTERED)
    sign_in(client)
    _, challenge = pkce_pair()
    for organization in ("acme", "select", ""):
        response = client.get(
            "/authorize",
            query_string=authorize_params(rp.client_id, challenge, organization=organization),
        )
        assert response.status_code == 302, response.text
        params = query(response)
        assert params["error"] == "access_denied"
        assert params["state"] == "xyz-state"


def test_prompt_none_cannot_show_the_picker(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    org("Beta", (user, "viewer"))
    rp, _ = make_client(scope=REGISTERED, skip_consent=True)
    sign_in(client)
    _, challenge = pkce_pair()
    response = client.get(
        "/authorize",
        query_string=authorize_params(
            rp.client_id, challenge, organization="select", prompt="none"
        ),
    )
    assert query(response)["error"] == "interaction_required"


def test_a_refresh_keeps_the_organization(app: Flask, client: FlaskClient) -> None:
    user = make_user()
    org("Acme", (user, "developer"))
    org("Beta", (user, "viewer"))
    sign_in(client)
    body = tokens(client, "openid offline_access roles", organization="acme")
    client_id, secret = body["client"]
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=basic(client_id, secret),
    )
    assert refreshed.status_code == 200, refreshed.text
    access = claims_of(client, refreshed.get_json()["access_token"])
    assert (access["org_id"], access["org_roles"]) == ("acme", ["developer"])
    assert claims_of(client, refreshed.get_json()["id_token"])["org_id"] == "acme"


def test_a_refresh_fails_once_the_person_left_the_organization(
    app: Flask, client: FlaskClient
) -> None:
    from authserver.orgs.membership import membership, remove_member

    user = make_user()
    acme = org("Acme", (make_user("boss@example.com"), "admin"), (user, "developer"))
    sign_in(client)
    body = tokens(client, "offline_access", organization="acme")
    found = membership(acme, user)
    assert found is not None
    remove_member(found)
    client_id, secret = body["client"]
    refreshed = client.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": body["refresh_token"]},
        headers=basic(client_id, secret),
    )
    assert refreshed.status_code == 400
    assert refreshed.get_json()["error"] == "invalid_grant"
