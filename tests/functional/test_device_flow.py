"""RFC 8628: a device polls the token endpoint while a person approves it in a browser."""

from __future__ import annotations

import hashlib
import re
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from werkzeug.test import TestResponse

from authserver.extensions import db, utcnow
from authserver.oauth.endpoints.device_authorization import DeviceAuthorizationEndpoint
from authserver.oauth.models import DeviceCode, Grant
from authserver.sessions.models import LoginSession
from tests.factories import make_client, make_user
from tests.oauth_helpers import basic, csrf_token, sign_in

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
USER_CODE_RE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")
INVALID_CODE = "That code is not valid or has expired."


def make_device_client(
    auth_method: str = "client_secret_basic",
    grant_types: tuple[str, ...] = (DEVICE_GRANT, "refresh_token"),
    scope: str = "openid profile email offline_access",
    name: str = "Living Room TV",
) -> tuple[Any, str | None]:
    return make_client(
        name=name, redirect_uris=(), grant_types=grant_types, scope=scope, auth_method=auth_method
    )


def authenticated(rp: Any, secret: str | None, data: dict[str, str]) -> dict[str, Any]:
    """Client authentication as registered: Basic for confidential, client_id for public."""
    if secret is None:
        return {"data": {**data, "client_id": rp.client_id}}
    return {"data": data, "headers": basic(rp.client_id, secret)}


def start(device: FlaskClient, rp: Any, secret: str | None, **data: str) -> TestResponse:
    """Section 3.1: the device authorization request."""
    return device.post("/oauth2/device_authorization", **authenticated(rp, secret, data))


def poll(device: FlaskClient, rp: Any, secret: str | None, device_code: str) -> TestResponse:
    """Section 3.4: the device access token request."""
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
    return device.post("/oauth2/token", **authenticated(rp, secret, data))


def stored(user_code: str) -> DeviceCode:
    """The row behind a user code, read fresh from the database."""
    db.session.expire_all()
    row = db.session.scalar(
        select(DeviceCode).where(DeviceCode.user_code == user_code.replace("-", ""))
    )
    assert row is not None
    return row


def let_interval_pass(user_code: str) -> None:
    """Move the last poll back by the interval, as if the device had waited."""
    row = stored(user_code)
    assert row.last_polled_at is not None
    earlier = row.last_polled_at - timedelta(seconds=row.interval)
    db.session.execute(
        update(DeviceCode).where(DeviceCode.id == row.id).values(last_polled_at=earlier)
    )
    db.session.commit()


def enter_code(browser: FlaskClient, user_code: str) -> TestResponse:
    """The person opens the entry page and submits the code."""
    page = browser.get("/device")
    assert page.status_code == 200, page.text
    return browser.post(
        "/device", data={"user_code": user_code, "csrf_token": csrf_token(page.text)}
    )


def decide(browser: FlaskClient, confirm_page: TestResponse, decision: str) -> TestResponse:
    """Press Allow or Deny on the confirm page."""
    user_code = re.search(r'name="user_code" value="([^"]+)"', confirm_page.text)
    assert user_code is not None
    data = {
        "user_code": user_code.group(1),
        "decision": decision,
        "csrf_token": csrf_token(confirm_page.text),
    }
    return browser.post("/device/decision", data=data)


def approve(browser: FlaskClient, user_code: str, decision: str = "allow") -> TestResponse:
    confirm = enter_code(browser, user_code)
    assert confirm.status_code == 200, confirm.text
    done = decide(browser, confirm, decision)
    assert done.status_code == 302, done.text
    return done


def error_of(response: TestResponse) -> str:
    return str(response.get_json()["error"])


def test_the_device_authorization_response_has_every_field(app: Flask, client: FlaskClient) -> None:
    rp, secret = make_device_client()
    response = start(client, rp, secret, scope="openid profile")

    assert response.status_code == 200, response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    body = response.get_json()
    issuer = app.config["AUTHSERVER"].issuer
    assert USER_CODE_RE.match(body["user_code"])
    assert body["verification_uri"] == f"{issuer}/device"
    assert body["verification_uri_complete"] == f"{issuer}/device?user_code={body['user_code']}"
    assert body["expires_in"] == 600
    assert body["interval"] == 5
    assert len(body["device_code"]) >= 43

    row = stored(body["user_code"])
    assert row.user_code == body["user_code"].replace("-", "")
    assert row.device_code_hash == hashlib.sha256(body["device_code"].encode()).hexdigest()
    assert row.status == "pending" and row.client_id == rp.client_id
    assert row.scope == "openid profile"
    assert timedelta(seconds=590) < row.expires_at - utcnow() <= timedelta(seconds=600)


def test_lifetime_and_interval_come_from_the_configuration(app_factory: Any) -> None:
    app = app_factory(device_code_ttl=120, device_poll_interval=2)
    with app.app_context():
        rp, secret = make_device_client()
        body = start(app.test_client(), rp, secret).get_json()
        assert (body["expires_in"], body["interval"]) == (120, 2)
        assert stored(body["user_code"]).interval == 2


def test_a_person_approves_and_the_polling_device_gets_tokens_once(
    app: Flask, client: FlaskClient
) -> None:
    user = make_user()
    rp, secret = make_device_client()
    device, browser = client, app.test_client()
    body = start(device, rp, secret, scope="openid profile offline_access").get_json()
    user_code, device_code = body["user_code"], body["device_code"]

    pending = poll(device, rp, secret, device_code)
    assert pending.status_code == 400
    assert error_of(pending) == "authorization_pending"
    assert pending.headers["Cache-Control"] == "no-store"

    sign_in(browser)
    let_interval_pass(user_code)
    assert error_of(poll(device, rp, secret, device_code)) == "authorization_pending"
    done = approve(browser, user_code)
    assert done.headers["Location"] == "/device/done?outcome=approved"
    assert "return to your device" in browser.get(done.headers["Location"]).text

    row = stored(user_code)
    session = db.session.scalar(select(LoginSession).where(LoginSession.user_id == user.id))
    assert session is not None
    assert row.status == "approved" and row.user_id == user.id
    assert (row.session_id, row.auth_time, row.amr) == (session.id, session.auth_time, ["pwd"])

    # Approved: tokens at once, even right after the previous poll.
    tokens = poll(device, rp, secret, device_code)
    assert tokens.status_code == 200, tokens.text
    assert tokens.headers["Cache-Control"] == "no-store"
    token = tokens.get_json()
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "openid profile offline_access"
    assert token["refresh_token"]
    keys = KeySet.import_key_set(device.get("/.well-known/jwks.json").get_json())
    access = jwt.decode(token["access_token"], keys)
    assert access.claims["sub"] == user.sub and access.claims["client_id"] == rp.client_id
    id_token = jwt.decode(token["id_token"], keys)
    assert id_token.claims["aud"] == rp.client_id
    assert id_token.claims["sub"] == user.sub
    assert id_token.claims["auth_time"] == int(session.auth_time.timestamp())
    assert id_token.claims["amr"] == ["pwd"]
    assert "nonce" not in id_token.claims

    row = stored(user_code)
    assert row.status == "used"
    grant = db.session.get(Grant, row.grant_id)
    assert grant is not None and grant.user_id == user.id and grant.client_id == rp.client_id

    again = poll(device, rp, secret, device_code)
    assert again.status_code == 400
    assert error_of(again) == "invalid_grant"

    refreshed = device.post(
        "/oauth2/token",
        data={"grant_type": "refresh_token", "refresh_token": token["refresh_token"]},
        headers=basic(rp.client_id, secret),
    )
    assert refreshed.status_code == 200, refreshed.text


def test_polling_faster_than_the_interval_gets_slow_down_and_a_longer_interval(
    app_factory: Any,
) -> None:
    app = app_factory(device_poll_interval=1)
    with app.app_context():
        rp, secret = make_device_client()
        device = app.test_client()
        body = start(device, rp, secret).get_json()
        assert body["interval"] == 1

        assert error_of(poll(device, rp, secret, body["device_code"])) == "authorization_pending"
        time.sleep(1.05)
        assert error_of(poll(device, rp, secret, body["device_code"])) == "authorization_pending"
        too_fast = poll(device, rp, secret, body["device_code"])
        assert too_fast.status_code == 400
        assert error_of(too_fast) == "slow_down"
        assert stored(body["user_code"]).interval == 6
        # Section 3.5: the longer interval holds for all subsequent requests.
        time.sleep(1.05)
        assert error_of(poll(device, rp, secret, body["device_code"])) == "slow_down"
        assert stored(body["user_code"]).interval == 11


def test_a_person_denies_and_the_device_gets_access_denied(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    sign_in(browser)

    done = approve(browser, body["user_code"], decision="deny")
    assert done.headers["Location"] == "/device/done?outcome=denied"
    assert "Device not connected" in browser.get(done.headers["Location"]).text
    denied = poll(client, rp, secret, body["device_code"])
    assert denied.status_code == 400
    assert error_of(denied) == "access_denied"
    assert stored(body["user_code"]).user_id is None


def test_an_expired_code_gets_expired_token_and_is_refused_on_the_entry_page(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    db.session.execute(
        update(DeviceCode)
        .where(DeviceCode.user_code == body["user_code"].replace("-", ""))
        .values(expires_at=utcnow() - timedelta(seconds=1))
    )
    db.session.commit()

    expired = poll(client, rp, secret, body["device_code"])
    assert expired.status_code == 400
    assert error_of(expired) == "expired_token"
    sign_in(browser)
    page = enter_code(browser, body["user_code"])
    assert page.status_code == 422
    assert INVALID_CODE in page.text


def test_an_approved_code_that_expired_before_redemption_gets_expired_token(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    sign_in(browser)
    approve(browser, body["user_code"])
    row = stored(body["user_code"])
    row.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()

    assert error_of(poll(client, rp, secret, body["device_code"])) == "expired_token"
    assert stored(body["user_code"]).status == "approved"


def test_a_wrong_code_gets_the_same_message_next_to_the_field(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    sign_in(client)
    for wrong in ("BCDF-GHJK", "not a code", ""):
        page = enter_code(client, wrong)
        assert page.status_code == 422
        assert INVALID_CODE in page.text
        assert 'role="alert" id="user-code-error"' in page.text
        assert 'aria-invalid="true"' in page.text
        assert re.search(r'aria-describedby="[^"]*user-code-error', page.text)


def test_the_code_may_be_typed_in_lower_case_with_spaces_and_dashes(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    user_code = start(client, rp, secret).get_json()["user_code"]
    sign_in(browser)
    raw = user_code.replace("-", "")
    for typed in (raw.lower(), f" {raw[:4].lower()} {raw[4:]} ", f"{raw[:2]}-{raw[2:6]}-{raw[6:]}"):
        page = enter_code(browser, typed)
        assert page.status_code == 200, typed
        assert user_code in page.text


def test_the_confirm_page_names_the_client_the_scopes_and_the_code(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client(name="Kitchen Radio")
    browser = app.test_client()
    user_code = start(client, rp, secret, scope="openid email").get_json()["user_code"]
    sign_in(browser)

    page = enter_code(browser, user_code)
    assert page.status_code == 200
    assert "Kitchen Radio" in page.text
    assert "See your e-mail address" in page.text
    assert "Sign you in with your account" in page.text
    assert f"<code>{user_code}</code>" in page.text
    assert "matches" in page.text or "match" in page.text
    assert re.search(r'<button[^>]*value="allow"[^>]*>Allow</button>', page.text)
    assert re.search(r'<button[^>]*value="deny"[^>]*>Deny</button>', page.text)
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Cache-Control"] == "no-store"
    assert stored(user_code).status == "pending"


def test_verification_uri_complete_prefills_the_code_after_sign_in(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    path = body["verification_uri_complete"].removeprefix(app.config["AUTHSERVER"].issuer)

    signed_out = browser.get(path)
    assert signed_out.status_code == 302
    assert signed_out.headers["Location"].startswith("/login?next=")
    sign_in(browser)
    login = browser.get(signed_out.headers["Location"])
    assert login.status_code == 302
    page = browser.get(login.headers["Location"])
    assert page.status_code == 200
    field = re.search(r"<input[^>]*name=\"user_code\"[^>]*>", page.text)
    assert field is not None
    assert f'value="{body["user_code"]}"' in field.group(0)
    assert 'autocomplete="off"' in field.group(0)
    assert 'autocapitalize="characters"' in field.group(0)
    assert '<label for="user_code">' in page.text


def test_the_forms_need_their_csrf_token(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    user_code = start(client, rp, secret).get_json()["user_code"]
    sign_in(browser)

    assert browser.post("/device", data={"user_code": user_code}).status_code == 400
    forged = browser.post("/device/decision", data={"user_code": user_code, "decision": "allow"})
    assert forged.status_code == 400
    assert stored(user_code).status == "pending"


def test_a_decision_is_taken_once(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    user_code = start(client, rp, secret).get_json()["user_code"]
    sign_in(browser)
    confirm = enter_code(browser, user_code)
    assert decide(browser, confirm, "allow").status_code == 302

    second = decide(browser, confirm, "deny")
    assert second.status_code == 422
    assert INVALID_CODE in second.text
    assert stored(user_code).status == "approved"


def test_a_decision_acts_only_on_the_code_confirmed_through_the_entry_page(
    app: Flask, client: FlaskClient
) -> None:
    """Section 5.1: the entry page is rate limited; posting codes straight to the decision
    would skip it, so a code this browser did not confirm there is refused."""
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    confirmed_code = start(client, rp, secret).get_json()["user_code"]
    guessed_code = start(client, rp, secret).get_json()["user_code"]
    sign_in(browser)
    page = browser.get("/device")

    # Straight to the decision, never through the entry page: refused.
    direct = browser.post(
        "/device/decision",
        data={"user_code": guessed_code, "decision": "allow", "csrf_token": csrf_token(page.text)},
    )
    assert direct.status_code == 422
    assert INVALID_CODE in direct.text
    assert stored(guessed_code).status == "pending"

    # Confirm one code, then post the other one to the decision: refused too.
    confirm = enter_code(browser, confirmed_code)
    swapped = browser.post(
        "/device/decision",
        data={
            "user_code": guessed_code,
            "decision": "allow",
            "csrf_token": csrf_token(confirm.text),
        },
    )
    assert swapped.status_code == 422
    assert stored(guessed_code).status == "pending"
    # The confirmation is spent by that attempt; the person confirms again and decides.
    assert stored(confirmed_code).status == "pending"
    approve(browser, confirmed_code)
    assert stored(confirmed_code).status == "approved"


def test_decisions_count_against_the_page_rate_limit(app_factory: Any) -> None:
    app = app_factory(ratelimit_pages="3/minute")
    browser = app.test_client()
    with app.app_context():
        make_user()
    sign_in(browser)
    page = browser.get("/device")
    statuses = [
        browser.post(
            "/device/decision",
            data={
                "user_code": "BCDF-GHJK",
                "decision": "allow",
                "csrf_token": csrf_token(page.text),
            },
        ).status_code
        for _ in range(5)
    ]
    assert 429 in statuses


def test_signing_out_before_deciding_asks_to_sign_in_again(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    user_code = start(client, rp, secret).get_json()["user_code"]
    sign_in(browser)
    confirm = enter_code(browser, user_code)
    browser.delete_cookie("authserver_session")

    response = decide(browser, confirm, "allow")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    assert user_code in response.headers["Location"]
    assert stored(user_code).status == "pending"


def test_a_public_client_uses_its_client_id_only(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client(auth_method="none", scope="profile")
    assert secret is None
    browser = app.test_client()
    body = start(client, rp, None, scope="profile").get_json()
    sign_in(browser)
    approve(browser, body["user_code"])

    tokens = poll(client, rp, None, body["device_code"])
    assert tokens.status_code == 200, tokens.text
    assert tokens.get_json()["scope"] == "profile"
    assert "id_token" not in tokens.get_json()


def test_a_confidential_client_must_authenticate(app: Flask, client: FlaskClient) -> None:
    rp, _secret = make_device_client()
    unauthenticated = client.post("/oauth2/device_authorization", data={"client_id": rp.client_id})
    assert unauthenticated.status_code == 401
    assert error_of(unauthenticated) == "invalid_client"
    wrong = client.post("/oauth2/device_authorization", headers=basic(rp.client_id, "wrong"))
    assert wrong.status_code == 401
    assert db.session.scalar(select(DeviceCode)) is None


def test_a_client_without_the_grant_type_is_unauthorized(app: Flask, client: FlaskClient) -> None:
    rp, secret = make_device_client(grant_types=("client_credentials",))
    refused = start(client, rp, secret)
    assert refused.status_code == 400
    assert error_of(refused) == "unauthorized_client"
    assert refused.headers["Cache-Control"] == "no-store"
    assert db.session.scalar(select(DeviceCode)) is None

    device_rp, device_secret = make_device_client()
    device_code = start(client, device_rp, device_secret).get_json()["device_code"]
    at_token = poll(client, rp, secret, device_code)
    assert error_of(at_token) == "unauthorized_client"


def test_a_client_cannot_redeem_another_clients_device_code(
    app: Flask, client: FlaskClient
) -> None:
    make_user()
    rp, secret = make_device_client()
    other, other_secret = make_device_client(name="Other TV")
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    sign_in(browser)
    approve(browser, body["user_code"])

    stolen = poll(client, other, other_secret, body["device_code"])
    assert stolen.status_code == 400
    assert error_of(stolen) == "invalid_grant"
    assert error_of(poll(client, rp, secret, "not-a-device-code")) == "invalid_grant"
    missing = client.post(
        "/oauth2/token", data={"grant_type": DEVICE_GRANT}, headers=basic(rp.client_id, secret)
    )
    assert error_of(missing) == "invalid_request"
    assert stored(body["user_code"]).status == "approved"
    assert poll(client, rp, secret, body["device_code"]).status_code == 200


def test_scope_is_narrowed_to_what_the_client_is_registered_for(
    app: Flask, client: FlaskClient
) -> None:
    rp, secret = make_device_client(scope="openid profile")
    body = start(client, rp, secret, scope="openid email profile admin").get_json()
    assert stored(body["user_code"]).scope == "openid profile"


def test_a_user_code_collision_draws_another_code(
    app: Flask, client: FlaskClient, monkeypatch: Any
) -> None:
    rp, secret = make_device_client()
    taken = start(client, rp, secret).get_json()["user_code"]
    draws = iter([taken, "BCDF-GHJK"])
    monkeypatch.setattr(DeviceAuthorizationEndpoint, "generate_user_code", lambda self: next(draws))

    response = start(client, rp, secret)
    assert response.status_code == 200, response.text
    assert response.get_json()["user_code"] == "BCDF-GHJK"
    assert stored("BCDF-GHJK").client_id == rp.client_id


@pytest.mark.commits  # two threads redeem at once, each on a connection of its own
def test_two_concurrent_redemptions_issue_tokens_once(app: Flask, client: FlaskClient) -> None:
    make_user()
    rp, secret = make_device_client()
    browser = app.test_client()
    body = start(client, rp, secret).get_json()
    sign_in(browser)
    approve(browser, body["user_code"])
    data = {"grant_type": DEVICE_GRANT, "device_code": body["device_code"]}
    headers = basic(rp.client_id, secret)
    db.session.remove()

    results: list[int] = []
    barrier = threading.Barrier(2)

    def redeem() -> None:
        device = app.test_client()
        barrier.wait()
        results.append(device.post("/oauth2/token", data=data, headers=headers).status_code)

    threads = [threading.Thread(target=redeem) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [200, 400]


def test_discovery_advertises_the_endpoint_and_the_grant_type(
    app: Flask, client: FlaskClient
) -> None:
    document = client.get("/.well-known/openid-configuration").get_json()
    issuer = app.config["AUTHSERVER"].issuer
    assert document["device_authorization_endpoint"] == f"{issuer}/oauth2/device_authorization"
    assert DEVICE_GRANT in document["grant_types_supported"]
    rp, secret = make_device_client()
    path = document["device_authorization_endpoint"].removeprefix(issuer)
    assert client.post(path, headers=basic(rp.client_id, secret)).status_code == 200
