"""What a client may receive: its registration, the person's consent and holdings, no more.

The `claims` parameter only chooses where covered claims go; the organization context
is the `org:<slug>` scope, registered, consented (by name) and held; the consent page
offers exactly the grantable scopes and the person may untick any but `openid`.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from werkzeug.test import TestResponse

from authserver.orgs.membership import add_member
from authserver.orgs.models import Organization
from authserver.orgs.services import create_organization
from tests.factories import REDIRECT_URI, make_client, make_user
from tests.oauth_helpers import (
    authorize_params,
    consent,
    exchange,
    pkce_pair,
    query,
    sign_in,
)

EVERYTHING = json.dumps(
    {
        "id_token": {
            name: {"essential": True}
            for name in ("email", "email_verified", "name", "roles", "org_id", "org_roles")
        },
        "userinfo": {name: None for name in ("email", "name", "updated_at", "roles", "org_id")},
    }
)
OFFERED_RE = re.compile(r'<input type="checkbox" name="granted" value="([^"]*)"')


def claims_of(browser: FlaskClient, token: str) -> dict[str, Any]:
    keys = KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())
    return dict(jwt.decode(token, keys).claims)


def userinfo(browser: FlaskClient, access_token: str) -> dict[str, Any]:
    response = browser.get("/userinfo", headers={"Authorization": f"Bearer {access_token}"})
    assert response.status_code == 200, response.text
    return dict(response.get_json())


def authorize(browser: FlaskClient, client_id: str, challenge: str, **extra: Any) -> TestResponse:
    return browser.get("/authorize", query_string=authorize_params(client_id, challenge, **extra))


def redeem(
    browser: FlaskClient, rp: tuple[Any, str | None], response: TestResponse, verifier: str
) -> dict[str, Any]:
    assert response.status_code == 302, response.text
    got = query(response)
    assert "code" in got, got
    exchanged = exchange(browser, rp[0].client_id, rp[1], got["code"], verifier)
    assert exchanged.status_code == 200, exchanged.text
    body: dict[str, Any] = exchanged.get_json()
    return body


def offered(page: TestResponse) -> set[str]:
    assert page.status_code == 200 and 'value="allow"' in page.text, page.status_code
    return set(OFFERED_RE.findall(page.text))


def org(name: str, *members: tuple[Any, str]) -> Organization:
    organization = create_organization(name)
    for user, role in members:
        add_member(organization, user, role)
    return organization


# The claims parameter never widens


def test_a_client_registered_for_openid_only_gets_no_claim_by_asking_for_it(
    app: Flask, client: FlaskClient
) -> None:
    make_user(roles=["viewer"])
    rp = make_client(scope="openid")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="openid", claims=EVERYTHING)
    body = redeem(client, rp, consent(client, page), verifier)
    id_token = claims_of(client, body["id_token"])
    assert not {"email", "email_verified", "name", "roles", "org_id"} & set(id_token)
    assert set(userinfo(client, body["access_token"])) == {"sub"}
    assert "roles" not in claims_of(client, body["access_token"])
    assert offered(page) == {"openid"}


def test_asking_again_with_prompt_none_releases_nothing_more(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp = make_client(scope="openid profile email")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="openid")
    redeem(client, rp, consent(client, page), verifier)
    # Allowed `openid` once; a silent request asks for e-mail and name by claim.
    verifier, challenge = pkce_pair()
    silent = authorize(
        client, rp[0].client_id, challenge, scope="openid", prompt="none", claims=EVERYTHING
    )
    body = redeem(client, rp, silent, verifier)
    assert not {"email", "name"} & set(claims_of(client, body["id_token"]))
    assert set(userinfo(client, body["access_token"])) == {"sub"}


def test_the_claims_parameter_moves_a_covered_claim_into_the_id_token(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp = make_client(scope="openid email profile")
    sign_in(client)
    verifier, challenge = pkce_pair()
    claims = json.dumps({"id_token": {"email": {"essential": True}, "name": None}})
    page = authorize(client, rp[0].client_id, challenge, scope="openid email", claims=claims)
    body = redeem(client, rp, consent(client, page), verifier)
    id_token = claims_of(client, body["id_token"])
    assert id_token["email"] == "alice@example.com"
    assert "name" not in id_token  # asked for, but `profile` was not granted


# Organizations: a registered, consented, held scope


def test_the_organization_parameter_needs_a_client_registered_for_organizations(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "admin"))
    rp = make_client(scope="openid profile roles")
    sign_in(client)
    _, challenge = pkce_pair()
    for organization in ("acme", "select", ""):
        response = authorize(client, rp[0].client_id, challenge, organization=organization)
        assert response.status_code == 302, response.text
        got = query(response)
        assert response.headers["Location"].startswith(REDIRECT_URI + "?")
        assert got["error"] == "invalid_request" and "code" not in got
        assert got["state"] == "xyz-state"


def test_a_client_registered_for_one_organization_may_not_ask_for_another(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "admin"))
    org("Globex", (user, "admin"))
    rp = make_client(scope="openid org:acme")
    sign_in(client)
    verifier, challenge = pkce_pair()
    refused = authorize(client, rp[0].client_id, challenge, scope="openid", organization="globex")
    assert query(refused)["error"] == "invalid_request"
    # `select` offers only the organization it is registered for: Acme, without asking.
    page = authorize(client, rp[0].client_id, challenge, scope="openid", organization="select")
    assert offered(page) == {"openid", "org:acme"}
    body = redeem(client, rp, consent(client, page), verifier)
    assert claims_of(client, body["access_token"])["org_id"] == "acme"


def test_consent_names_the_organization_and_covers_only_that_one(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Beta Labs", (user, "developer"))
    org("Globex", (user, "viewer"))
    rp = make_client(scope="openid roles org:*")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(
        client, rp[0].client_id, challenge, scope="openid roles", organization="beta-labs"
    )
    assert "Act for you in the organization Beta Labs" in page.text
    assert offered(page) == {"openid", "roles", "org:beta-labs"}
    body = redeem(client, rp, consent(client, page), verifier)
    assert body["scope"] == "openid roles org:beta-labs"
    access = claims_of(client, body["access_token"])
    assert (access["org_id"], access["org_roles"]) == ("beta-labs", ["developer"])
    # Remembered consent for Beta Labs does not cover Globex: asked again, by name.
    _, challenge = pkce_pair()
    silent = authorize(
        client,
        rp[0].client_id,
        challenge,
        scope="openid roles",
        organization="globex",
        prompt="none",
    )
    assert query(silent)["error"] == "consent_required"
    page = authorize(
        client, rp[0].client_id, challenge, scope="openid roles", organization="globex"
    )
    assert "Act for you in the organization Globex" in page.text


def test_unticking_the_organization_leaves_it_out_of_every_token(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user(roles=["viewer"])
    org("Acme", (user, "admin"))
    rp = make_client(scope="openid roles org:*")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="openid roles", organization="acme")
    body = redeem(client, rp, consent(client, page, granted=["roles"]), verifier)
    assert body["scope"] == "openid roles"
    for claims in (
        claims_of(client, body["access_token"]),
        claims_of(client, body["id_token"]),
        userinfo(client, body["access_token"]),
    ):
        assert "org_id" not in claims and "org_roles" not in claims
        assert claims["roles"] == ["viewer"]


# The consent page: exactly the grantable set, each scope the person's choice


def test_the_consent_page_offers_exactly_what_may_be_granted(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    org("Acme", (user, "viewer"))
    org("Initech")
    rp = make_client(scope="openid profile email org:*")
    sign_in(client)
    _, challenge = pkce_pair()
    page = authorize(
        client,
        rp[0].client_id,
        challenge,
        scope="openid email roles admin offline_access org:initech unknown",
    )
    assert offered(page) == {"openid", "email"}
    assert 'value="openid" checked disabled>' in page.text  # signing in is not optional


def test_an_unticked_scope_is_not_granted_and_is_asked_for_again(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp = make_client(scope="openid profile email")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="openid profile email")
    body = redeem(client, rp, consent(client, page, granted=["profile"]), verifier)
    assert body["scope"] == "openid profile"
    assert "email" not in userinfo(client, body["access_token"])
    _, challenge = pkce_pair()
    silent = authorize(
        client, rp[0].client_id, challenge, scope="openid profile email", prompt="none"
    )
    assert query(silent)["error"] == "consent_required"


def test_a_later_no_replaces_an_earlier_yes(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp = make_client(scope="openid profile email")
    sign_in(client)
    verifier, challenge = pkce_pair()
    redeem(client, rp, consent(client, authorize(client, rp[0].client_id, challenge)), verifier)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, prompt="consent", scope="openid email")
    redeem(client, rp, consent(client, page, granted=[]), verifier)
    _, challenge = pkce_pair()
    silent = authorize(client, rp[0].client_id, challenge, scope="openid email", prompt="none")
    assert query(silent)["error"] == "consent_required"


def test_the_form_cannot_grant_what_it_did_not_offer(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp = make_client(scope="openid profile")
    sign_in(client)
    verifier, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="openid profile email admin")
    assert offered(page) == {"openid", "profile"}
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    forged = [*fields.items(), ("decision", "allow")]
    forged += [("granted", item) for item in ("profile", "email", "admin", "roles")]
    from werkzeug.datastructures import MultiDict

    response = client.post("/authorize/decision", data=MultiDict(forged))
    body = redeem(client, rp, response, verifier)
    assert body["scope"] == "openid profile"


def test_allowing_nothing_of_an_oauth_request_is_a_denial(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp = make_client(scope="openid profile offline_access")
    sign_in(client)
    _, challenge = pkce_pair()
    page = authorize(client, rp[0].client_id, challenge, scope="profile offline_access")
    got = query(consent(client, page, granted=[]))
    assert got["error"] == "access_denied"


def test_the_device_page_offers_only_what_approving_grants(app: Flask, client: FlaskClient) -> None:
    from tests.functional.test_device_flow import make_device_client, start
    from tests.oauth_helpers import csrf_token

    make_user()
    rp, secret = make_device_client(scope="openid profile admin")
    code = start(client, rp, secret, scope="openid profile admin").get_json()["user_code"]
    sign_in(client)
    entry = client.get("/device")
    page = client.post("/device", data={"user_code": code, "csrf_token": csrf_token(entry.text)})
    assert page.status_code == 200 and "Living Room TV" in page.text
    assert '<code class="scope-name">profile</code>' in page.text
    assert "admin</code>" not in page.text  # Alice is no admin: approving would not grant it
