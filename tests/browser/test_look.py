"""Look and feel: dark mode on a phone, and error pages with a way back."""

from __future__ import annotations

from typing import Any

import pytest

from tests.browser.flows import CodeRequest, sign_in
from tests.browser.pages import Tour, Tours
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer

PHONE: dict[str, Any] = {
    "viewport": {"width": 360, "height": 740},
    "is_mobile": True,
    "has_touch": True,
}
OVERFLOW_SCRIPT = "() => document.documentElement.scrollWidth - window.innerWidth"


def assert_fits(tour: Tour) -> None:
    """Nothing sticks out sideways: no horizontal scrolling on a narrow screen."""
    overflow = tour.page.evaluate(OVERFLOW_SCRIPT)
    assert overflow <= 0, f"{tour.page.url} is {overflow}px wider than the screen"


def test_dark_mode_on_a_phone(live: LiveServer, tours: Tours, relying_party: RelyingParty) -> None:
    """axe checks contrast again in the dark scheme; every page fits a 360px screen."""
    live.make_user()
    client_id, _ = live.make_client((relying_party.redirect_uri,), name="Photo Album")
    tour = tours.new(color_scheme="dark", **PHONE)
    page = tour.page
    background = "() => getComputedStyle(document.body).backgroundColor"

    tour.goto(CodeRequest(client_id, relying_party.redirect_uri).url(live), "sign-in")
    assert_fits(tour)
    assert page.evaluate(background) != "rgb(255, 255, 255)", "no dark background"
    sign_in(tour)
    assert_fits(tour)
    tour.submit("Allow", "callback")
    for path, label in (("/account", "account"), ("/device", "device"), ("/", "home")):
        tour.goto(path, label)
        assert_fits(tour)


@pytest.mark.parametrize(
    ("path", "status"),
    [("/no-such-page", 404), ("/authorize", 400)],
    ids=["not-found", "bad-authorize"],
)
def test_error_pages_offer_a_way_back(live: LiveServer, tour: Tour, path: str, status: int) -> None:
    response = tour.goto(path, "error")
    assert response is not None and response.status == status
    main = tour.page.locator("main")
    assert main.get_by_role("heading").first.is_visible()
    assert main.get_by_role("link").count() >= 1, "no way back from the error page"
    assert "Traceback" not in main.inner_text()
