"""Sign up from a relying party's sign-in, verify the e-mail through real SMTP, come back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.flows import (
    CodeRequest,
    exchange_code,
    verify_id_token,
)
from tests.browser.mailbox import Mailbox, link_in
from tests.browser.pages import Tour
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer

NEW_PASSWORD = "plum tree under the bridge"


def userinfo(live: LiveServer, access_token: str) -> dict[str, Any]:
    response = live.http.get(
        f"{live.url}/userinfo", headers={"Authorization": f"Bearer {access_token}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.server(mail=True)
def test_sign_up_verify_email_then_sign_in_to_the_relying_party(
    live: LiveServer, tour: Tour, relying_party: RelyingParty, mailbox: Mailbox
) -> None:
    client_id, secret = live.make_client((relying_party.redirect_uri,), name="Photo Album")
    request = CodeRequest(client_id, relying_party.redirect_uri)
    page = tour.page

    tour.goto(request.url(live), "sign-in")
    tour.click(page.locator('main a[href^="/signup"]'), "sign-up")
    page.get_by_label("Name").fill("Dinah Cat")
    page.get_by_label("E-mail").fill("Dinah@Example.com")
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("Password again").fill(NEW_PASSWORD)
    tour.submit("Create account", "check-your-mail")
    assert page.get_by_role("heading", name="Check your e-mail").is_visible()
    assert "dinah@example.com" in page.inner_text("main")

    # An unverified account can sign in already; the claim says it is not verified.
    tour.click(page.locator("main").get_by_role("link", name="Sign in"), "sign-in-unverified")
    assert page.get_by_label("E-mail").input_value() == "dinah@example.com"
    page.get_by_label("Password", exact=True).fill(NEW_PASSWORD)
    tour.submit("Sign in", "consent")
    tour.submit("Allow", "callback")
    assert relying_party.callbacks[-1]["state"] == request.state
    tokens = exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])
    verify_id_token(live, tokens["id_token"], client_id, request.nonce)
    claims = userinfo(live, tokens["access_token"])
    assert claims["email"] == "dinah@example.com" and claims["name"] == "Dinah Cat"
    assert claims["email_verified"] is False
    tour.goto("/", "home-asks-to-verify")
    assert page.locator("#verify-reminder").is_visible()

    # The link from the real mail confirms the address (with a button: scanners only GET).
    mail = mailbox.wait_for("dinah@example.com")
    assert "Confirm your e-mail address" in mail["Subject"]
    assert mail.get_body(preferencelist=("html",)) is not None, "no HTML part"
    link = link_in(mail, "/verify-email/")
    assert link.startswith(live.url + "/verify-email/")
    tour.goto(link, "confirm-address")
    tour.submit("Confirm my address", "email-verified")
    assert page.get_by_role("heading", name="E-mail address confirmed").is_visible()
    response = tour.goto(link, "verify-link-used")
    assert response is not None and response.status == 404

    # Signed in and consented: the relying party gets a code at once, and the claim changed.
    again = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(again.url(live), "callback-verified")
    assert relying_party.callbacks[-1]["state"] == again.state
    tokens = exchange_code(live, again, secret, relying_party.callbacks[-1]["code"])
    assert userinfo(live, tokens["access_token"])["email_verified"] is True
    tour.goto("/", "home-verified")
    assert page.locator("#verify-reminder").count() == 0


@pytest.mark.server(signup=False)
def test_sign_up_switched_off_is_not_found(live: LiveServer, tour: Tour) -> None:
    response = tour.goto("/signup", "no-sign-up")
    assert response is not None and response.status == 404
    tour.goto("/login", "sign-in-without-sign-up-link")
    assert tour.page.locator('a[href^="/signup"]').count() == 0
