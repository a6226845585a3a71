"""accounts.lifecycle.set_password: one way a password changes, with every consequence."""

from __future__ import annotations

import pytest
from flask import Flask
from sqlalchemy import select

from authserver.accounts.lifecycle import PASSWORD_EVENTS, set_password
from authserver.accounts.links import RESET_PASSWORD, issue, peek_token
from authserver.accounts.passwords import verify_password
from authserver.accounts.services import AccountError
from authserver.accounts.signals import signed_out_everywhere
from authserver.audit import Actor
from authserver.audit.models import AuditEvent
from authserver.extensions import db, utcnow
from authserver.mail.models import MailMessage
from authserver.oauth.models import Grant
from authserver.oauth.services import create_grant
from authserver.roles.ceiling import CLI
from tests.factories import make_client, make_user

NEW_PASSWORD = "another long passphrase"


@pytest.mark.parametrize(("reason", "actor"), [("changed", None), ("reset", None), ("admin", CLI)])
def test_every_way_sets_the_hash_ends_grants_voids_links_audits_and_tells_the_owner(
    app: Flask, reason: str, actor: Actor | None
) -> None:
    user = make_user(email_verified=True)
    rp, _ = make_client()
    grant = create_grant(
        client_id=rp.client_id, user_id=user.id, scope="openid", auth_time=utcnow(), amr=["pwd"]
    )
    link = issue(user, RESET_PASSWORD, user.email)
    db.session.commit()

    who = actor or Actor("user", user.sub)
    set_password(user, NEW_PASSWORD, reason=reason, actor=who)  # type: ignore[arg-type]
    db.session.commit()

    assert user.password_hash and verify_password(user.password_hash, NEW_PASSWORD)
    db.session.refresh(grant)
    assert grant.revoked_at is not None
    assert peek_token(link, RESET_PASSWORD) is None
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == PASSWORD_EVENTS[reason]))
    assert event is not None and (event.actor_type, event.actor) == (who.type, who.id)
    notices = db.session.scalars(
        select(MailMessage.recipient).where(MailMessage.template == "password_changed")
    ).all()
    assert notices == [user.email]


def test_a_password_against_the_policy_changes_nothing(app: Flask) -> None:
    user = make_user()
    before = user.password_hash
    with pytest.raises(AccountError):
        set_password(user, "short", reason="admin", actor=CLI)
    assert user.password_hash == before


def test_accounts_only_announces_the_end_and_oauth_revokes(app: Flask) -> None:
    """accounts cannot import oauth: the grants end through accounts.signals."""
    user = make_user()
    heard: list[object] = []

    def listener(sender: object, **_: object) -> None:
        heard.append(sender)

    with signed_out_everywhere.connected_to(listener):
        set_password(user, NEW_PASSWORD, reason="admin", actor=CLI)
    assert heard == [user]
    assert db.session.scalar(select(Grant.id).where(Grant.revoked_at.is_(None))) is None
