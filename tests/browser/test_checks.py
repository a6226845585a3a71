"""The page checks themselves catch what they are for (so a green run means something)."""

from __future__ import annotations

import pytest

from tests.browser.pages import Tour, check_forms, check_headers
from tests.browser.relying_party import RelyingParty


def test_checks_fail_on_a_careless_page(tour: Tour, relying_party: RelyingParty) -> None:
    response = tour.page.goto(relying_party.url + "/careless")
    assert response is not None
    with pytest.raises(AssertionError, match="X-Content-Type-Options"):
        check_headers(response)
    with pytest.raises(AssertionError, match="CSRF"):
        check_forms(tour.page)
    with pytest.raises(AssertionError, match="label"):
        tour.run_axe("careless", force=True)
    with pytest.raises(AssertionError, match="without a check"):
        tour.assert_all_checked()
    tour.check("careless")  # the relying party's page: screenshot only
    tour.assert_all_checked()
