"""A person signs in to a relying party: sign-in page, consent, back to the client."""

from __future__ import annotations

import pytest

from tests.browser.flows import CodeRequest, exchange_code, sign_in, verify_id_token
from tests.browser.pages import Tour, has_visible_focus
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer
from tests.factories import PASSWORD


@pytest.mark.parametrize("live", [{}, {"https": True}], ids=["http", "https"], indirect=True)
def test_sign_in_consent_and_callback_to_the_relying_party(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    sub = live.make_user()
    client_id, secret = live.make_client((relying_party.redirect_uri,), name="Photo Album")
    request = CodeRequest(client_id, relying_party.redirect_uri)
    page = tour.page

    tour.goto(relying_party.start_url(request.url(live)), "relying-party")
    tour.click("#sign-in", "sign-in")
    assert page.get_by_role("heading", name="Sign in").is_visible()
    sign_in(tour)

    assert page.get_by_role("heading", name="Photo Album wants to use your account").is_visible()
    assert "alice@example.com" in page.inner_text("main")
    # (Every page checks the cookie flags; here the session cookie is known to exist.)
    cookie = next(c for c in page.context.cookies(live.url) if c["name"] == "authserver_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["secure"] is live.url.startswith("https://")
    tour.submit("Allow", "callback")

    assert page.get_by_role("heading", name="Signed in").is_visible()
    callback = relying_party.callbacks[-1]
    # RFC 6749 section 4.1.2 and RFC 9207: code, the client's state, and the issuer.
    assert callback["state"] == request.state
    assert callback["iss"] == live.url
    tokens = exchange_code(live, request, secret, callback["code"])
    claims = verify_id_token(live, tokens["id_token"], client_id, request.nonce)
    assert claims["sub"] == sub
    assert "pwd" in claims["amr"]

    # Consent is remembered and the session cookie (SameSite=Lax) rides the top-level
    # navigation from the other site: the second sign-in goes straight back.
    again = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(relying_party.start_url(again.url(live)), "relying-party-again")
    tour.click("#sign-in", "callback-again")
    assert page.get_by_role("heading", name="Signed in").is_visible()
    assert relying_party.callbacks[-1]["state"] == again.state
    assert len(relying_party.callbacks) == 2


def test_deny_returns_access_denied_to_the_relying_party(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    live.make_user()
    client_id, _ = live.make_client((relying_party.redirect_uri,))
    request = CodeRequest(client_id, relying_party.redirect_uri)

    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    tour.submit("Deny", "callback")

    assert tour.page.get_by_role("heading", name="Sign-in failed").is_visible()
    callback = relying_party.callbacks[-1]
    assert callback["error"] == "access_denied"
    assert callback["state"] == request.state
    assert "code" not in callback


def test_unknown_email_and_wrong_password_get_the_same_message(
    live: LiveServer, tour: Tour
) -> None:
    live.make_user()
    page = tour.page
    messages = []
    for email, password in (("alice@example.com", "wrong password"), ("bob@example.com", PASSWORD)):
        tour.goto("/login", "sign-in")
        sign_in(tour, email, password)
        alert = page.get_by_role("alert")
        messages.append(alert.inner_text())
        # The error is announced and tied to the fields it is about.
        assert page.get_by_label("Password", exact=True).get_attribute("aria-invalid") == "true"
    assert messages[0] == messages[1]
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_keyboard_only_sign_in_with_visible_focus(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    live.make_user()
    client_id, _ = live.make_client((relying_party.redirect_uri,))
    request = CodeRequest(client_id, relying_party.redirect_uri)
    page, keyboard = tour.page, tour.page.keyboard

    tour.goto(request.url(live), "sign-in")
    focused = tab_to(tour, "email")
    keyboard.type("alice@example.com")
    assert has_visible_focus(focused), focused
    focused = tab_to(tour, "password")
    keyboard.type(PASSWORD)
    assert has_visible_focus(focused), focused
    focused = tab_to(tour, "button", text="Sign in")
    assert has_visible_focus(focused), focused
    tour.press("Enter", "consent")

    assert page.get_by_role("button", name="Allow").is_visible()
    focused = tab_to(tour, "button", text="Allow")
    assert has_visible_focus(focused), focused
    tour.press("Enter", "callback")
    assert relying_party.callbacks[-1]["state"] == request.state
    assert "code" in relying_party.callbacks[-1]


def tab_to(tour: Tour, name: str, text: str = "", limit: int = 15) -> dict[str, str]:
    """Press Tab until the element named `name` (or a <button> with `text`) has focus.

    Every element focused on the way must show a visible focus indicator.
    """
    focused = tour.focused()
    for _ in range(limit):
        if focused and _matches(focused, name, text):
            return focused
        tour.page.keyboard.press("Tab")
        focused = tour.focused()
        assert has_visible_focus(focused), f"no visible focus on {focused}"
    raise AssertionError(f"Tab never reached {name} {text!r}; last focus: {focused}")


def _matches(focused: dict[str, str], name: str, text: str) -> bool:
    if text:
        return focused["tag"] == name and focused["text"] == text
    return focused["name"] == name


def test_hosted_pages_refuse_to_be_framed(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    """Clickjacking: X-Frame-Options DENY and frame-ancestors 'none' keep the page out."""
    tour.goto(relying_party.frame_url(live.url + "/login"), "framing-attempt")
    frames = [frame for frame in tour.page.frames if frame != tour.page.main_frame]
    assert len(frames) == 1
    assert 'name="password"' not in frames[0].content()


def test_prompt_login_asks_for_the_password_again(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    """OpenID Connect Core section 3.1.2.1: prompt=login re-authenticates a signed-in person."""
    live.make_user()
    client_id, _ = live.make_client((relying_party.redirect_uri,))
    tour.goto(CodeRequest(client_id, relying_party.redirect_uri).url(live), "sign-in")
    sign_in(tour)
    tour.submit("Allow", "callback")

    again = CodeRequest(client_id, relying_party.redirect_uri, extra={"prompt": "login"})
    tour.goto(again.url(live), "sign-in-again")
    assert tour.page.get_by_role("heading", name="Sign in").is_visible()
    sign_in(tour)
    assert relying_party.callbacks[-1]["state"] == again.state
    assert "code" in relying_party.callbacks[-1]
