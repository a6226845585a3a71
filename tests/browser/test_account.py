"""The account page: what a person changes there takes effect at the token endpoint."""

from __future__ import annotations

from tests.browser.flows import CodeRequest, exchange_code, refresh, sign_in
from tests.browser.pages import Tour, Tours
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer

PHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)


def test_revoking_a_connected_app_stops_its_refresh_token(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    live.make_user()
    client_id, secret = live.make_client((relying_party.redirect_uri,), name="Photo Album")
    assert secret is not None
    request = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    tour.submit("Allow", "callback")
    tokens = exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])
    # The refresh token works (and rotates) before the person revokes the app.
    refreshed = refresh(live, client_id, secret, tokens["refresh_token"])
    assert refreshed.status_code == 200, refreshed.text
    refresh_token = refreshed.json()["refresh_token"]

    page = tour.page
    tour.goto("/account", "account")
    apps = page.locator("#apps")
    assert "Photo Album" in apps.inner_text()
    tour.submit("Revoke access of Photo Album", "app-revoked")

    assert "No apps are connected" in page.locator("#apps").inner_text()
    refused = refresh(live, client_id, secret, refresh_token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"

    # Consent went with it: the next sign-in to the app asks again.
    again = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(again.url(live), "consent-asked-again")
    assert page.get_by_role("button", name="Allow").is_visible()


def test_signing_out_another_session_from_the_account_page(live: LiveServer, tours: Tours) -> None:
    live.make_user()
    laptop = tours.new()
    phone = tours.new("phone", user_agent=PHONE)
    for browser in (phone, laptop):
        browser.goto("/account", "sign-in")
        sign_in(browser)
        assert browser.page.get_by_role("heading", name="Your account").is_visible()

    sessions = laptop.page.locator("#sessions li.item")
    laptop.goto("/account", "two-sessions")
    assert sessions.count() == 2
    other = sessions.filter(has_not=laptop.page.locator(".badge.current"))
    assert other.count() == 1
    laptop.click(other.get_by_role("button"), "other-signed-out")

    assert sessions.count() == 1
    assert laptop.page.locator("#sessions .badge.current").count() == 1
    # The phone's cookie no longer signs anyone in.
    phone.goto("/account", "phone-signed-out")
    assert phone.page.get_by_role("heading", name="Sign in").is_visible()
