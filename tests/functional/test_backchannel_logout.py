"""OpenID Connect Back-Channel Logout 1.0: logout tokens reach each relying party.

A real HTTP server on loopback plays the relying party's `backchannel_logout_uri` and
records what is POSTed to it; every logout token is verified with joserfc against the
JWKS the server publishes, as a relying party would (section 2.6). The sender runs as it
does in production: a thread of the serving app, or `authserver logout deliver`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws, jwt
from joserfc.jwk import KeySet
from sqlalchemy import select, update
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from authserver.accounts import settings
from authserver.accounts.lifecycle import set_password
from authserver.accounts.models import User
from authserver.admin.services import users as admin_users
from authserver.extensions import db, precise_utcnow
from authserver.oidc.backchannel import MAX_ATTEMPTS, deliver_due, retry_delay
from authserver.oidc.models import BackchannelLogout
from authserver.roles.ceiling import SYSTEM
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD, make_client, make_user
from tests.oauth_helpers import basic, csrf_token, exchange, get_code, pkce_pair, sign_in

pytestmark = pytest.mark.commits

EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass
class RelyingParty:
    """A loopback HTTP server recording the logout tokens POSTed to it."""

    url: str
    delay: float = 0.0
    status: int = 200
    tokens: list[str] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        if self.delay:
            time.sleep(self.delay)
        if request.method == "POST":
            self.content_types.append(request.mimetype)
            self.tokens.append(request.form.get("logout_token", ""))
            self.arrived.set()
        return Response("", status=self.status)(environ, start_response)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.tokens) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(self.tokens) >= count, f"{len(self.tokens)} logout tokens arrived"
        return self.tokens


def serve(rp_factory: Any) -> Iterator[RelyingParty]:
    server: BaseWSGIServer = make_server("127.0.0.1", 0, lambda e, s: rp(e, s), threaded=True)
    rp = rp_factory(f"http://127.0.0.1:{server.server_port}/backchannel-logout")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rp
    finally:
        server.shutdown()
        thread.join(5)


@pytest.fixture
def rp() -> Iterator[RelyingParty]:
    yield from serve(RelyingParty)


@pytest.fixture
def slow_rp() -> Iterator[RelyingParty]:
    yield from serve(lambda url: RelyingParty(url, delay=3.0))


def signed_in_with(
    browser: FlaskClient, client_id: str, secret: str | None, *, signing_in: bool = True
) -> dict[str, Any]:
    """Sign in, go through the code flow as the client; the id_token's claims."""
    if signing_in:
        sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, client_id, challenge)
    response = exchange(browser, client_id, secret, code, verifier)
    assert response.status_code == 200, response.text
    id_token = response.get_json()["id_token"]
    claims = jwt.decode(id_token, jwks(browser), algorithms=["RS256", "ES256"]).claims
    return {"id_token": id_token, **claims}


def jwks(browser: FlaskClient) -> KeySet:
    return KeySet.import_key_set(browser.get("/.well-known/jwks.json").get_json())


def logout_rows() -> list[BackchannelLogout]:
    db.session.expire_all()
    return list(db.session.scalars(select(BackchannelLogout).order_by(BackchannelLogout.id)))


def settled_rows(timeout: float = 10.0) -> list[BackchannelLogout]:
    """The outbox once no row is held by a sender (a POST may arrive before its row is marked)."""
    deadline = time.monotonic() + timeout
    rows = logout_rows()
    while any(row.locked_until is not None for row in rows) and time.monotonic() < deadline:
        time.sleep(0.05)
        rows = logout_rows()
    return rows


def test_signing_out_posts_a_verifiable_logout_token_to_the_relying_party(
    app: Flask, client: FlaskClient, rp: RelyingParty
) -> None:
    make_user()
    rp_client, secret = make_client(backchannel_logout_uri=rp.url)
    other, other_secret = make_client(name="No back-channel")
    id_token = signed_in_with(client, rp_client.client_id, secret)
    assert isinstance(id_token["sid"], str) and len(id_token["sid"]) >= 16
    # The same session signs into a client without a back-channel URI: nothing is owed it.
    same_session = signed_in_with(client, other.client_id, other_secret, signing_in=False)
    assert same_session["sid"] == id_token["sid"]

    response = client.get("/logout", query_string={"id_token_hint": id_token["id_token"]})

    assert response.status_code == 302
    (token,) = rp.wait()
    assert rp.content_types == ["application/x-www-form-urlencoded"]
    header = jws.extract_compact(token.encode()).protected
    assert header["typ"] == "logout+jwt"
    assert header["alg"] == "RS256"
    assert header["kid"] in {key.kid for key in jwks(client).keys}
    claims = jwt.decode(token, jwks(client), algorithms=["RS256"]).claims
    issuer = app.config["AUTHSERVER"].issuer
    assert claims["iss"] == issuer
    assert claims["aud"] == rp_client.client_id
    assert claims["sub"] == id_token["sub"]
    assert claims["sid"] == id_token["sid"]
    assert claims["events"] == {EVENT: {}}
    assert "nonce" not in claims
    assert 0 < claims["exp"] - claims["iat"] <= 120
    assert abs(claims["iat"] - time.time()) < 30
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 16
    (row,) = settled_rows()
    assert row.status == "sent" and row.client_id == rp_client.client_id


def test_an_es256_client_gets_an_es256_logout_token(client: FlaskClient, rp: RelyingParty) -> None:
    make_user()
    rp_client, secret = make_client(
        backchannel_logout_uri=rp.url, id_token_signed_response_alg="ES256"
    )
    id_token = signed_in_with(client, rp_client.client_id, secret)

    client.get("/logout", query_string={"id_token_hint": id_token["id_token"]})

    (token,) = rp.wait()
    assert jws.extract_compact(token.encode()).protected["alg"] == "ES256"
    claims = jwt.decode(token, jwks(client), algorithms=["ES256"]).claims
    assert claims["sid"] == id_token["sid"]


def test_a_slow_relying_party_neither_delays_the_sign_out_nor_the_others(
    app_factory: Any, rp: RelyingParty, slow_rp: RelyingParty
) -> None:
    app = app_factory(backchannel_logout_timeout=2)
    browser = app.test_client()
    with app.app_context():
        make_user()
        slow, slow_secret = make_client(name="Slow", backchannel_logout_uri=slow_rp.url)
        fast, fast_secret = make_client(name="Fast", backchannel_logout_uri=rp.url)
        signed_in_with(browser, slow.client_id, slow_secret)
        id_token = signed_in_with(browser, fast.client_id, fast_secret, signing_in=False)

        started = time.monotonic()
        response = browser.get("/logout", query_string={"id_token_hint": id_token["id_token"]})
        took = time.monotonic() - started

        assert response.status_code == 302
        assert took < 1.0, f"the sign-out took {took:.2f} s"
        # The slow one is queued first and answers after its 2 s timeout; the fast one has
        # its token while the slow one is still waited for.
        rp.wait(timeout=8)
        (slow_row,) = [row for row in logout_rows() if row.client_id == slow.client_id]
        assert slow_row.reason is None and slow_row.locked_until is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            rows = {row.client_id: row for row in logout_rows()}
            if rows[slow.client_id].reason and rows[fast.client_id].status == "sent":
                break
            time.sleep(0.05)
        late = rows[slow.client_id]
        assert late.status == "pending" and late.attempts == 1
        assert "did not answer in time" in (late.reason or "")
        assert late.next_attempt_at > late.created_at
        assert rows[fast.client_id].status == "sent"


def test_a_dead_relying_party_is_retried_with_backoff_then_given_up(
    app_factory: Any, rp: RelyingParty
) -> None:
    app = app_factory(backchannel_logout_sender="external", backchannel_logout_timeout=1)
    browser = app.test_client()
    with app.app_context():
        make_user()
        dead_port = _free_port()
        rp_client, secret = make_client(
            backchannel_logout_uri=f"http://127.0.0.1:{dead_port}/logout"
        )
        id_token = signed_in_with(browser, rp_client.client_id, secret)
        browser.get("/logout", query_string={"id_token_hint": id_token["id_token"]})

        for attempt in range(1, MAX_ATTEMPTS + 1):
            done = deliver_due()
            (row,) = logout_rows()
            assert row.attempts == attempt
            assert "ConnectionRefusedError" in (row.reason or "")
            if attempt == MAX_ATTEMPTS:
                assert done.failed == 1 and row.status == "failed"
                break
            assert done.retrying == 1 and row.status == "pending"
            # Exponential backoff: 10 s, 20 s, 40 s ... capped at 10 minutes.
            wait = (row.next_attempt_at - precise_utcnow()).total_seconds()
            assert abs(wait - retry_delay(attempt).total_seconds()) < 5
            assert deliver_due().retrying == 0  # not due again before its time
            db.session.execute(update(BackchannelLogout).values(next_attempt_at=precise_utcnow()))
            db.session.commit()
        assert deliver_due().failed == 0  # given up on: never tried again
        assert rp.tokens == []


def test_pending_logout_tokens_survive_a_restart(app_factory: Any, rp: RelyingParty) -> None:
    first = app_factory(backchannel_logout_sender="external")
    browser = first.test_client()
    with first.app_context():
        make_user()
        rp_client, secret = make_client(backchannel_logout_uri=rp.url)
        id_token = signed_in_with(browser, rp_client.client_id, secret)
        browser.get("/logout", query_string={"id_token_hint": id_token["id_token"]})
        (row,) = logout_rows()
        assert row.status == "pending"
        db.session.remove()  # the process ends; nothing was sent
        db.engine.dispose()
    assert rp.tokens == []

    second = app_factory(backchannel_logout_sender="external")
    result = second.test_cli_runner().invoke(args=["logout", "deliver"])

    assert result.exit_code == 0, result.output
    assert "sent: 1" in result.output
    (token,) = rp.wait()
    with second.app_context():
        claims = jwt.decode(token, jwks(second.test_client()), algorithms=["RS256"]).claims
    assert claims["sid"] == id_token["sid"] and claims["sub"] == id_token["sub"]


def test_only_the_clients_of_the_ended_session_are_told(app_factory: Any, rp: RelyingParty) -> None:
    app = app_factory(backchannel_logout_sender="external")
    with app.app_context():
        make_user()
        rp_client, secret = make_client(backchannel_logout_uri=rp.url)
        laptop, phone = app.test_client(), app.test_client()
        on_laptop = signed_in_with(laptop, rp_client.client_id, secret)
        sign_in(phone)  # signed in, but the client never got a token in this session

        phone.get("/logout")  # our own Sign out link: confirm page, then POST
        assert logout_rows() == []

        laptop.get("/logout", query_string={"id_token_hint": on_laptop["id_token"]})
        (row,) = logout_rows()
        assert row.sid == on_laptop["sid"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# Every way a session ends owes the relying parties their logout token: each path below
# ends sessions through sessions.services.revoke_sessions, which announces them.


def _password_reset(user: User, _keep: LoginSession) -> None:
    set_password(user, "a brand new passphrase 42", reason="reset", actor=SYSTEM)


def _password_changed_elsewhere(user: User, keep: LoginSession) -> None:
    set_password(
        user, "a brand new passphrase 42", reason="changed", actor=SYSTEM, keep_session_id=keep.id
    )


def _one_session_from_the_account_page(user: User, _keep: LoginSession) -> None:
    for login_session in settings.live_sessions(user):
        settings.revoke_session(login_session)


def _other_sessions_from_the_account_page(user: User, keep: LoginSession) -> None:
    settings.revoke_other_sessions(user, keep_session_id=keep.id)


def _admin_signs_the_person_out(user: User, _keep: LoginSession) -> None:
    admin_users.sign_out_everywhere(user, actor=SYSTEM)


def _admin_disables_the_person(user: User, _keep: LoginSession) -> None:
    admin_users.set_user_active(user, False, actor=SYSTEM)


@pytest.mark.parametrize(
    ("end", "keeps_one"),
    [
        (_password_reset, False),
        (_password_changed_elsewhere, True),
        (_one_session_from_the_account_page, False),
        (_other_sessions_from_the_account_page, True),
        (_admin_signs_the_person_out, False),
        (_admin_disables_the_person, False),
    ],
)
def test_every_way_a_session_ends_queues_its_logout_tokens(
    app_factory: Any, end: Any, keeps_one: bool
) -> None:
    app = app_factory(backchannel_logout_sender="external")
    with app.app_context():
        user = make_user()
        rp_client, secret = make_client(backchannel_logout_uri="https://rp.example.com/bcl")
        laptop, phone = app.test_client(), app.test_client()
        on_laptop = signed_in_with(laptop, rp_client.client_id, secret)
        on_phone = signed_in_with(phone, rp_client.client_id, secret)
        sessions = list(db.session.scalars(select(LoginSession).order_by(LoginSession.created_at)))
        kept = sessions[-1]  # the phone's

        end(user, kept)
        db.session.commit()

        expected = {on_laptop["sid"]} if keeps_one else {on_laptop["sid"], on_phone["sid"]}
        rows = logout_rows()
        assert {row.sid for row in rows} == expected
        assert {row.sub for row in rows} == {on_laptop["sub"]}
        assert {row.client_id for row in rows} == {rp_client.client_id}
        assert all(row.status == "pending" for row in rows)


def test_the_admin_api_sign_out_queues_logout_tokens(app_factory: Any) -> None:
    app = app_factory(backchannel_logout_sender="external")
    with app.app_context():
        make_user()
        rp_client, secret = make_client(backchannel_logout_uri="https://rp.example.com/bcl")
        browser = app.test_client()
        id_token = signed_in_with(browser, rp_client.client_id, secret)
        service, service_secret = make_client(
            name="Provisioner",
            redirect_uris=[],
            grant_types=["client_credentials"],
            scope="admin",
            roles=["admin"],
        )
        assert service_secret is not None
        token = browser.post(
            "/oauth2/token",
            data={"grant_type": "client_credentials", "scope": "admin"},
            headers=basic(service.client_id, service_secret),
        ).get_json()["access_token"]

        response = browser.post(
            f"/admin/api/v1/users/{id_token['sub']}/sign-out",
            headers={"Authorization": f"Bearer {token}"},
        )

        assert response.status_code == 204, response.text
        (row,) = logout_rows()
        assert row.sid == id_token["sid"] and row.client_id == rp_client.client_id


def test_a_new_sign_in_ends_the_browsers_previous_session_and_tells_its_clients(
    app_factory: Any,
) -> None:
    app = app_factory(backchannel_logout_sender="external")
    with app.app_context():
        make_user()
        rp_client, secret = make_client(backchannel_logout_uri="https://rp.example.com/bcl")
        browser = app.test_client()
        before = signed_in_with(browser, rp_client.client_id, secret)

        page = browser.get("/login?reauth=1")  # signs in again, as prompt=login does
        browser.post(
            "/login?reauth=1",
            data={
                "email": "alice@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_token(page.text),
            },
        )
        after = signed_in_with(browser, rp_client.client_id, secret, signing_in=False)

        assert after["sid"] != before["sid"]
        (row,) = logout_rows()
        assert row.sid == before["sid"]
