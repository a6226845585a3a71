"""In a real browser: `response_mode=form_post` posts the response to the relying party, and
`prompt=select_account` offers a choice of account (OpenID Connect Core section 3.1.2.1)."""

from __future__ import annotations

from tests.browser.flows import CodeRequest, exchange_code, sign_in, verify_id_token
from tests.browser.pages import Tour
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer


def test_form_post_delivers_code_state_and_iss_by_a_browser_post(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    sub = live.make_user()
    client_id, secret = live.make_client((relying_party.redirect_uri,), name="Photo Album")
    request = CodeRequest(
        client_id, relying_party.redirect_uri, extra={"response_mode": "form_post"}
    )
    page = tour.page

    tour.goto(relying_party.start_url(request.url(live)), "relying-party")
    tour.click("#sign-in", "sign-in")
    sign_in(tour)
    # The form page posts itself at once: the browser lands on the relying party.
    with page.expect_navigation(url=relying_party.redirect_uri):
        page.get_by_role("button", name="Allow", exact=True).click()
    tour.check("callback")

    assert page.get_by_role("heading", name="Signed in").is_visible()
    posted = relying_party.posted_callbacks[-1]
    assert set(posted) == {"code", "state", "iss"}
    assert posted["state"] == request.state and posted["iss"] == live.url
    tokens = exchange_code(live, request, secret, posted["code"])
    assert verify_id_token(live, tokens["id_token"], client_id, request.nonce)["sub"] == sub


def test_form_post_delivers_errors_by_a_browser_post(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    """The person denies: access_denied is posted, with state and iss.

    (The page's button for browsers without JavaScript: tests/functional/test_form_post.py.)
    """
    live.make_user()
    client_id, _ = live.make_client((relying_party.redirect_uri,))
    request = CodeRequest(
        client_id, relying_party.redirect_uri, extra={"response_mode": "form_post"}
    )
    page = tour.page

    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    with page.expect_navigation(url=relying_party.redirect_uri):
        page.get_by_role("button", name="Deny", exact=True).click()
    tour.check("callback")

    assert page.get_by_role("heading", name="Sign-in failed").is_visible()
    posted = relying_party.posted_callbacks[-1]
    assert posted["error"] == "access_denied" and "code" not in posted
    assert posted["state"] == request.state and posted["iss"] == live.url


def test_select_account_continue_as_the_signed_in_person(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    sub = live.make_user(name="Alice Liddell")
    client_id, secret = live.make_client((relying_party.redirect_uri,), skip_consent=True)
    page = tour.page
    tour.goto("/login", "sign-in")
    sign_in(tour)

    request = CodeRequest(client_id, relying_party.redirect_uri, extra={"prompt": "select_account"})
    tour.goto(request.url(live), "choose-account")
    assert page.get_by_role("heading", name="Choose an account").is_visible()
    tour.submit("Continue as Alice Liddell", "callback")

    callback = relying_party.callbacks[-1]
    assert callback["state"] == request.state
    tokens = exchange_code(live, request, secret, callback["code"])
    assert verify_id_token(live, tokens["id_token"], client_id, request.nonce)["sub"] == sub


def test_select_account_use_another_account(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    live.make_user(name="Alice Liddell")
    bob = live.make_user("bob@example.com", name="Bob")
    client_id, secret = live.make_client((relying_party.redirect_uri,), skip_consent=True)
    page = tour.page
    tour.goto("/login", "sign-in")
    sign_in(tour)

    request = CodeRequest(client_id, relying_party.redirect_uri, extra={"prompt": "select_account"})
    tour.goto(request.url(live), "choose-account")
    tour.submit("Use another account", "sign-in-again")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    assert page.get_by_label("E-mail").input_value() == ""
    sign_in(tour, "bob@example.com")

    callback = relying_party.callbacks[-1]
    assert callback["state"] == request.state
    tokens = exchange_code(live, request, secret, callback["code"])
    assert verify_id_token(live, tokens["id_token"], client_id, request.nonce)["sub"] == bob
    # The new sign-in replaced this browser's session.
    tour.goto("/", "home")
    assert "bob@example.com" in page.inner_text("main")
