"""Forgot password: the e-mailed link (read from a real SMTP server) sets a new password,
ends the other sessions and revokes the refresh tokens."""

from __future__ import annotations

import pytest

from tests.browser.flows import CodeRequest, exchange_code, refresh, sign_in
from tests.browser.mailbox import Mailbox, link_in
from tests.browser.pages import Tour, Tours
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer

NEW_PASSWORD = "seven swans a-swimming"


def ask_for_reset_link(tour: Tour, email: str) -> str:
    """From the sign-in page to "check your mail"; returns the page's main text."""
    page = tour.page
    tour.goto("/login", "sign-in")
    tour.click(page.locator('main a[href^="/password/forgot"]'), "forgot-password")
    page.get_by_label("E-mail").fill(email)
    tour.submit("Send the link", "check-your-mail")
    return page.inner_text("main").replace(email, "<address>")


@pytest.mark.server(mail=True)
def test_reset_password_through_the_mailed_link(
    live: LiveServer, tours: Tours, relying_party: RelyingParty, mailbox: Mailbox
) -> None:
    live.make_user()
    client_id, secret = live.make_client((relying_party.redirect_uri,))
    assert secret is not None
    # Elsewhere the person is signed in, and an app holds a refresh token.
    elsewhere = tours.new("other-browser")
    request = CodeRequest(client_id, relying_party.redirect_uri)
    elsewhere.goto(request.url(live), "sign-in")
    sign_in(elsewhere)
    elsewhere.submit("Allow", "callback")
    tokens = exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])

    tour = tours.new()
    page = tour.page
    known = ask_for_reset_link(tour, "alice@example.com")
    unknown = ask_for_reset_link(tour, "nobody@example.com")
    # The same answer whether or not the address has an account.
    assert known == unknown

    mail = mailbox.wait_for("alice@example.com")
    assert "Reset your" in mail["Subject"]
    assert mailbox.sent_to("nobody@example.com") == []
    link = link_in(mail, "/password/reset/")
    tour.goto(link, "choose-new-password")
    page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
    page.get_by_label("New password again").fill(NEW_PASSWORD)
    tour.submit("Save the new password", "password-changed")
    assert page.get_by_role("heading", name="Password changed").is_visible()

    # The link is used up.
    response = tour.goto(link, "reset-link-used")
    assert response is not None and response.status == 404

    # The other browser is signed out and the app's refresh token is dead.
    elsewhere.goto("/account", "other-browser-signed-out")
    assert elsewhere.page.get_by_role("heading", name="Sign in").is_visible()
    refused = refresh(live, client_id, secret, tokens["refresh_token"])
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"

    # The old password is refused, the new one works.
    tour.goto("/account", "sign-in-old-password")
    sign_in(tour)
    assert page.get_by_role("alert").is_visible()
    sign_in(tour, password=NEW_PASSWORD)
    assert page.get_by_role("heading", name="Your account").is_visible()
