"""Sign-out: our own link, and OpenID Connect RP-Initiated Logout 1.0 from a relying party."""

from __future__ import annotations

from urllib.parse import urlencode

from tests.browser.flows import CodeRequest, exchange_code, sign_in, verify_id_token
from tests.browser.pages import Tour
from tests.browser.relying_party import RelyingParty
from tests.browser.servers import LiveServer


def signed_in_with_tokens(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> tuple[str, dict[str, str]]:
    """Register a client with a post-logout URI, sign in to it; (client_id, tokens)."""
    live.make_user()
    client_id, secret = live.make_client(
        (relying_party.redirect_uri,),
        name="Photo Album",
        post_logout_redirect_uris=[relying_party.post_logout_redirect_uri],
    )
    request = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    tour.submit("Allow", "callback")
    return client_id, exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])


def still_signed_in(
    live: LiveServer, tour: Tour, relying_party: RelyingParty, client_id: str
) -> bool:
    """prompt=none answers without a page: a code when signed in, login_required when not."""
    probe = CodeRequest(client_id, relying_party.redirect_uri, extra={"prompt": "none"})
    tour.goto(probe.url(live), "prompt-none")
    callback = relying_party.callbacks[-1]
    assert callback["state"] == probe.state
    if "code" in callback:
        return True
    assert callback["error"] == "login_required", callback
    return False


def test_logout_with_id_token_hint_returns_to_the_relying_party(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    client_id, tokens = signed_in_with_tokens(live, tour, relying_party)
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": relying_party.post_logout_redirect_uri,
            "state": "bye-123",
        }
    )
    tour.goto(f"/logout?{query}", "back-at-relying-party")

    assert tour.page.get_by_role("heading", name="Signed out").is_visible()
    assert relying_party.logouts == [{"state": "bye-123"}]
    assert not still_signed_in(live, tour, relying_party, client_id)


def test_logout_that_cannot_be_verified_asks_first(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    client_id, _ = signed_in_with_tokens(live, tour, relying_party)
    page = tour.page

    # Not registered for this client: an error page, and nobody is sent anywhere.
    elsewhere = urlencode(
        {"client_id": client_id, "post_logout_redirect_uri": "https://evil.example/bye"}
    )
    response = tour.goto(f"/logout?{elsewhere}", "unregistered-uri")
    assert response is not None and response.status == 400
    assert "not registered" in page.inner_text("main")
    assert still_signed_in(live, tour, relying_party, client_id)

    # Without an id_token_hint the person confirms, then goes back with the state.
    query = urlencode(
        {
            "client_id": client_id,
            "post_logout_redirect_uri": relying_party.post_logout_redirect_uri,
            "state": "s-42",
        }
    )
    tour.goto(f"/logout?{query}", "confirm")
    assert page.get_by_role("heading", name="Sign out of authserver?").is_visible()
    tour.submit("Sign out", "back-at-relying-party")
    assert relying_party.logouts == [{"state": "s-42"}]
    assert not still_signed_in(live, tour, relying_party, client_id)


def test_sign_out_link_in_the_header(live: LiveServer, tour: Tour) -> None:
    live.make_user()
    page = tour.page
    tour.goto("/account", "sign-in")
    sign_in(tour)
    tour.click(page.get_by_role("link", name="Sign out"), "confirm")
    tour.submit("Sign out", "signed-out")
    assert page.get_by_role("heading", name="You are signed out").is_visible()
    tour.goto("/account", "account-asks-to-sign-in")
    assert page.get_by_role("heading", name="Sign in").is_visible()


def test_front_channel_logout_loads_the_relying_partys_logout_page_then_returns(
    live: LiveServer, tour: Tour, relying_party: RelyingParty
) -> None:
    """OpenID Connect Front-Channel Logout 1.0 section 4, in a real browser."""
    live.make_user()
    client_id, secret = live.make_client(
        (relying_party.redirect_uri,),
        name="Photo Album",
        post_logout_redirect_uris=[relying_party.post_logout_redirect_uri],
        frontchannel_logout_uri=relying_party.frontchannel_logout_uri,
        frontchannel_logout_session_required=True,
    )
    request = CodeRequest(client_id, relying_party.redirect_uri)
    tour.goto(request.url(live), "sign-in")
    sign_in(tour)
    tour.submit("Allow", "callback")
    tokens = exchange_code(live, request, secret, relying_party.callbacks[-1]["code"])
    claims = verify_id_token(live, tokens["id_token"], client_id, request.nonce)
    query = urlencode(
        {
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": relying_party.post_logout_redirect_uri,
            "state": "bye-456",
        }
    )

    # The sign-out page frames the relying party's logout URI, then moves on by itself.
    response = tour.page.goto(f"{live.url}/logout?{query}")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert f"frame-src {relying_party.frontchannel_logout_uri}" in csp
    tour.page.wait_for_url(relying_party.post_logout_redirect_uri + "?*")
    tour.check("back-at-relying-party")

    assert relying_party.frontchannel_logouts == [{"iss": live.url, "sid": claims["sid"]}]
    assert relying_party.logouts == [{"state": "bye-456"}]
    assert not still_signed_in(live, tour, relying_party, client_id)
