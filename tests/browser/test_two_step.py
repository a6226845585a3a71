"""Two-step verification: enrol an authenticator app, then sign in with its codes."""

from __future__ import annotations

import time

import pyotp

from tests.browser.flows import CodeRequest, exchange_code, sign_in, verify_id_token
from tests.browser.pages import Tour, Tours
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer


def enrol(tour: Tour) -> tuple[pyotp.TOTP, list[str]]:
    """Turn two-step verification on from its page; returns the app's TOTP and recovery codes."""
    page = tour.page
    tour.goto("/account/two-step", "sign-in")
    sign_in(tour)
    assert page.get_by_role("heading", name="Two-step verification is off").is_visible()
    tour.submit("Turn on", "scan-qr-code")

    qr = page.get_by_role("img", name="QR code for setting up your authenticator app")
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0"), "the QR code did not load"
    # The key is shown in groups of four for typing; the app ignores the spaces.
    app = pyotp.TOTP("".join(page.locator("#totp-secret").inner_text().split()))
    page.get_by_label("6-digit code").fill(app.now())
    tour.submit("Turn on", "recovery-codes")

    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10 and len(set(codes)) == 10
    tour.click(page.get_by_role("link", name="I have saved them"), "two-step-on")
    assert page.get_by_role("heading", name="Two-step verification is on").is_visible()
    return app, codes


def test_enrol_then_sign_in_to_a_relying_party_with_a_code(
    live: LiveServer, tours: Tours, relying_party: RelyingParty
) -> None:
    live.make_user()
    client_id, secret = live.make_client((relying_party.redirect_uri,))
    app, _ = enrol(tours.new())

    # Another browser: the password alone is not enough any more.
    tour = tours.new("other-browser")
    page = tour.page
    request = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    assert page.get_by_role("heading", name="Two-step verification").is_visible()
    page.get_by_label("6-digit code").fill("000000" if app.now() != "000000" else "111111")
    tour.submit("Verify", "wrong-code")
    assert page.get_by_role("alert").is_visible()
    assert page.get_by_label("6-digit code").get_attribute("aria-invalid") == "true"

    # The next time step's code: the enrolment used this one, and codes are single-use.
    page.get_by_label("6-digit code").fill(app.at(time.time() + 30))
    tour.submit("Verify", "consent")
    tour.submit("Allow", "callback")
    tokens = exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])
    claims = verify_id_token(live, tokens["id_token"], client_id, request.nonce)
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == "2"


def test_sign_in_with_a_recovery_code_uses_it_up(live: LiveServer, tours: Tours) -> None:
    live.make_user()
    _, codes = enrol(tours.new())

    tour = tours.new("lost-phone")
    page = tour.page
    tour.goto("/account", "sign-in")
    sign_in(tour)
    tour.click(page.get_by_role("link", name="Use a recovery code instead"), "recovery-code")
    page.get_by_label("Recovery code").fill(codes[0])
    tour.submit("Verify", "account")
    assert page.get_by_role("heading", name="Your account").is_visible()

    tour.goto("/account/two-step", "nine-codes-left")
    assert "9 unused recovery codes" in page.inner_text("main")
