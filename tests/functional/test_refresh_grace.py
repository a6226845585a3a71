"""The refresh-token grace period: a rotated token presented again within the client's
window gets new tokens in the same family; anything else is reuse and revokes the family
(RFC 9700 section 4.14.2). Off unless the client opts in.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from authserver.accounts.services import find_by_email
from authserver.audit.models import AuditEvent
from authserver.clients.cache import invalidate_client_cache
from authserver.clients.metadata import MAX_REFRESH_TOKEN_GRACE_PERIOD
from authserver.core.secrets import hash_secret
from authserver.extensions import db
from authserver.oauth.grants import refresh_token as refresh_grant
from authserver.oauth.models import Grant, RefreshToken
from tests.factories import make_client, make_user
from tests.oauth_helpers import basic, exchange, get_code, pkce_pair, sign_in

GRACE = 30
# SQL statements and commits of one ordinary refresh, measured on main before this feature.
REFRESH_STATEMENTS = 5


@pytest.fixture
def rp(app: Flask) -> tuple[Any, str]:
    """A relying party that opted into a 30 s grace period."""
    make_user()
    client, secret = make_client(refresh_token_grace_period_seconds=GRACE)
    assert secret is not None
    return client, secret


def first_tokens(browser: FlaskClient, rp: tuple[Any, str]) -> dict[str, Any]:
    sign_in(browser)
    verifier, challenge = pkce_pair()
    code, _ = get_code(browser, rp[0].client_id, challenge)
    response = exchange(browser, rp[0].client_id, rp[1], code, verifier)
    assert response.status_code == 200, response.text
    return response.get_json()


def refresh(browser: FlaskClient, rp: tuple[Any, str], token: str) -> Any:
    data = {"grant_type": "refresh_token", "refresh_token": token}
    return browser.post("/oauth2/token", data=data, headers=basic(rp[0].client_id, rp[1]))


def active(browser: FlaskClient, rp: tuple[Any, str], token: str) -> bool:
    response = browser.post(
        "/oauth2/introspect", data={"token": token}, headers=basic(rp[0].client_id, rp[1])
    )
    assert response.status_code == 200, response.text
    return bool(response.get_json()["active"])


def row_of(token: str) -> RefreshToken:
    db.session.expire_all()
    return db.session.scalars(
        select(RefreshToken).where(RefreshToken.token_hash == hash_secret(token))
    ).one()


def events(name: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event == name)))


def rotated_ago(token: str, seconds: float) -> None:
    """Move the token's rotation `seconds` into the past (as the clock would have)."""
    row = row_of(token)
    assert row.used_at is not None
    row.used_at = row.used_at - timedelta(seconds=seconds)
    db.session.commit()


def test_grace_is_off_by_default_and_reuse_revokes_the_family(client: FlaskClient, app) -> None:
    make_user()
    plain = make_client()
    assert plain[0].refresh_token_grace_period_seconds == 0
    first = first_tokens(client, (plain[0], plain[1]))
    second = refresh(client, plain, first["refresh_token"]).get_json()

    again = refresh(client, plain, first["refresh_token"])

    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert not active(client, plain, second["refresh_token"])
    assert len(events("refresh_token.reuse_detected")) == 1
    assert events("refresh_token.reuse_graced") == []


def test_the_just_rotated_token_presented_again_within_the_window_gets_new_tokens(
    client: FlaskClient, rp
) -> None:
    first = first_tokens(client, rp)
    tab_one = refresh(client, rp, first["refresh_token"]).get_json()

    tab_two = refresh(client, rp, first["refresh_token"])

    assert tab_two.status_code == 200, tab_two.text
    body = tab_two.get_json()
    assert body["refresh_token"] not in (first["refresh_token"], tab_one["refresh_token"])
    assert body["access_token"] != tab_one["access_token"] and "id_token" in body
    # Both successors live, in the same family, each a child of the graced token.
    for token in (tab_one, body):
        assert active(client, rp, token["access_token"])
        assert active(client, rp, token["refresh_token"])
    parent = row_of(first["refresh_token"])
    children = [row_of(t["refresh_token"]) for t in (tab_one, body)]
    assert {c.parent_id for c in children} == {parent.id}
    assert {c.grant_id for c in children} == {parent.grant_id}
    assert db.session.get(Grant, parent.grant_id).revoked_at is None
    graced = events("refresh_token.reuse_graced")
    assert len(graced) == 1 and graced[0].details == {"grant_id": parent.grant_id}
    assert graced[0].client_id == rp[0].client_id
    assert events("refresh_token.reuse_detected") == []
    # Each tab goes on rotating its own token.
    for token in (tab_one, body):
        assert refresh(client, rp, token["refresh_token"]).status_code == 200


def test_the_window_ends_exactly_grace_seconds_after_the_rotation(
    client: FlaskClient, rp, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = first_tokens(client, rp)
    refresh(client, rp, first["refresh_token"])
    rotated_at: datetime = row_of(first["refresh_token"]).used_at  # type: ignore[assignment]
    clock = {"now": rotated_at + timedelta(seconds=GRACE)}
    monkeypatch.setattr(refresh_grant, "precise_utcnow", lambda: clock["now"])

    last_moment = refresh(client, rp, first["refresh_token"])
    assert last_moment.status_code == 200, last_moment.text

    clock["now"] += timedelta(microseconds=1)
    too_late = refresh(client, rp, first["refresh_token"])
    assert too_late.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, last_moment.get_json()["refresh_token"])
    assert len(events("refresh_token.reuse_detected")) == 1


def test_a_reuse_after_the_window_revokes_the_family(client: FlaskClient, rp) -> None:
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()
    rotated_ago(first["refresh_token"], GRACE + 1)

    late = refresh(client, rp, first["refresh_token"])

    assert late.status_code == 400 and late.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, second["refresh_token"])
    assert not active(client, rp, second["access_token"])
    assert events("refresh_token.reuse_graced") == []


def test_a_token_rotated_more_than_once_ago_revokes_the_family(client: FlaskClient, rp) -> None:
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()
    third = refresh(client, rp, second["refresh_token"]).get_json()

    replayed = refresh(client, rp, first["refresh_token"])

    assert replayed.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, third["refresh_token"])
    assert len(events("refresh_token.reuse_detected")) == 1


def test_once_a_graced_sibling_is_rotated_the_parent_is_no_longer_graced(
    client: FlaskClient, rp
) -> None:
    first = first_tokens(client, rp)
    refresh(client, rp, first["refresh_token"])
    sibling = refresh(client, rp, first["refresh_token"]).get_json()
    refresh(client, rp, sibling["refresh_token"])

    replayed = refresh(client, rp, first["refresh_token"])

    assert replayed.get_json()["error"] == "invalid_grant"
    assert len(events("refresh_token.reuse_detected")) == 1


def test_grace_never_revives_a_revoked_family(client: FlaskClient, rp) -> None:
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()
    # The person's app is disconnected (RFC 7009): the whole family is revoked.
    revoked = client.post(
        "/oauth2/revoke",
        data={"token": second["refresh_token"]},
        headers=basic(rp[0].client_id, rp[1]),
    )
    assert revoked.status_code == 200

    within_window = refresh(client, rp, first["refresh_token"])

    assert within_window.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, second["refresh_token"])
    assert events("refresh_token.reuse_graced") == []
    grant = db.session.get(Grant, row_of(first["refresh_token"]).grant_id)
    assert grant is not None and grant.revoked_at is not None


def test_a_revoked_family_stays_revoked_after_a_reuse(client: FlaskClient, rp) -> None:
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()
    refresh(client, rp, second["refresh_token"])
    # Reuse of a token rotated twice ago revokes everything ...
    assert refresh(client, rp, first["refresh_token"]).get_json()["error"] == "invalid_grant"

    # ... and the token just rotated, still within its window, gets nothing back.
    assert refresh(client, rp, second["refresh_token"]).get_json()["error"] == "invalid_grant"
    assert events("refresh_token.reuse_graced") == []


def test_another_client_presenting_a_rotated_token_is_not_graced(
    client: FlaskClient, rp, app: Flask
) -> None:
    other = make_client(name="Other", refresh_token_grace_period_seconds=GRACE)
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()

    stolen = refresh(client, (other[0], other[1]), first["refresh_token"])

    assert stolen.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, second["refresh_token"])


def test_the_grace_period_is_read_from_the_client_at_the_time_of_reuse(
    client: FlaskClient, rp
) -> None:
    first = first_tokens(client, rp)
    second = refresh(client, rp, first["refresh_token"]).get_json()
    rp[0].refresh_token_grace_period_seconds = 0
    db.session.commit()
    invalidate_client_cache(rp[0].client_id)

    again = refresh(client, rp, first["refresh_token"])

    assert again.get_json()["error"] == "invalid_grant"
    assert not active(client, rp, second["refresh_token"])


def test_the_grace_period_is_capped(app: Flask) -> None:
    from authserver.clients.metadata import ClientError

    assert MAX_REFRESH_TOKEN_GRACE_PERIOD == 60
    for refused in (-1, MAX_REFRESH_TOKEN_GRACE_PERIOD + 1, True, "30"):
        with pytest.raises(ClientError, match="refresh_token_grace_period_seconds"):
            make_client(refresh_token_grace_period_seconds=refused)
    client, _ = make_client(refresh_token_grace_period_seconds=MAX_REFRESH_TOKEN_GRACE_PERIOD)
    assert client.refresh_token_grace_period_seconds == 60


def statements_of_a_refresh(app_factory: Any, grace: int, *, reuse: bool = False) -> list[str]:
    """The SQL statements (and commits) one ordinary refresh runs, for a client with `grace`;
    with `reuse`, those of presenting the token just rotated again."""
    app: Flask = app_factory(ratelimit_enabled=False)
    with app.app_context():
        if find_by_email("alice@example.com") is None:
            make_user()
        client, secret = make_client(refresh_token_grace_period_seconds=grace)
        rp = (SimpleNamespace(client_id=client.client_id), secret)
        browser = app.test_client()
        token = first_tokens(browser, rp)["refresh_token"]
        # Warm: the client snapshot and the signing keys are cached after one refresh.
        rotated = refresh(browser, rp, token).get_json()["refresh_token"]
        token = token if reuse else rotated
        db.session.remove()
    seen: list[str] = []
    with app.app_context():
        engine = db.engine

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()[:3]))

    def commit(_conn: Any) -> None:
        seen.append("COMMIT")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    try:
        response = refresh(browser, rp, token)
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)
    assert response.status_code == 200, response.text
    return seen


@pytest.mark.commits
def test_an_ordinary_refresh_runs_the_same_statements_with_or_without_grace(
    app_factory: Any,
) -> None:
    without = statements_of_a_refresh(app_factory, 0)
    with_grace = statements_of_a_refresh(app_factory, GRACE)

    assert with_grace == without
    # As before the grace period existed: read the token with its grant and person,
    # consume it, insert the audit event and the successor, commit.
    assert len(without) == REFRESH_STATEMENTS, without


@pytest.mark.commits
def test_what_a_graced_reuse_costs(app_factory: Any) -> None:
    """The grace rule's one SELECT instead of the consuming UPDATE, and one audit event
    more (batched into the same INSERT on PostgreSQL, a second INSERT on SQLite)."""
    graced = statements_of_a_refresh(app_factory, GRACE, reuse=True)

    audit = "INSERT INTO audit_events"
    batched = [s for i, s in enumerate(graced) if not (s == audit and graced[i - 1] == audit)]
    assert batched == [
        "SELECT refresh_tokens.id, refresh_tokens.token_hash,",
        "SELECT refresh_tokens.id FROM",
        audit,
        "INSERT INTO refresh_tokens",
        "COMMIT",
    ], graced
