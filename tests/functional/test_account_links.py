"""A new password ends what was set in motion before it, and an address counts only once proven.

A password change or reset voids every outstanding link that could move or take the
account (e-mail change links, reset links) and, while the address was unverified, the
invitations sent to it; a reset of a never-verified account also removes the two-step
factors a squatter may have enrolled; an invitation is accepted only by an account whose
address is verified (accounts.lifecycle.cancel_account_links, orgs accept_invitation).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from authserver.accounts import settings, totp
from authserver.accounts.email_change import request_email_change
from authserver.accounts.links import RESET_PASSWORD, VERIFY_EMAIL
from authserver.accounts.links import issue as _issue
from authserver.accounts.models import AccountToken, RecoveryCode, User
from authserver.accounts.password_reset import reset_password
from authserver.audit.models import AuditEvent
from authserver.extensions import db, utcnow
from authserver.orgs.invitations import accept_invitation, invite
from authserver.orgs.models import Invitation, Organization
from authserver.orgs.services import OrgError, create_organization
from tests.factories import PASSWORD, make_user
from tests.functional.test_email_verification import confirm, verify_path
from tests.functional.test_organizations import invitation_path
from tests.mail_helpers import Browser, SmtpServer, running_smtp
from tests.oauth_helpers import csrf_token, sign_in

NEW_PASSWORD = "a brand new passphrase"
SIGNUP_PASSWORD = "plum tree under the bridge"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def app(app_factory: Any, smtp: SmtpServer) -> Iterator[Flask]:
    app = app_factory(mail_url=smtp.url)
    app.test_client_class = Browser
    with app.app_context():
        yield app


def change_password(browser: FlaskClient) -> None:
    page = browser.get("/account")
    response = browser.post(
        "/account/password",
        data={
            "csrf_token": csrf_token(page.text),
            "current_password": PASSWORD,
            "new_password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        },
    )
    assert response.status_code == 302, response.text


def reset_through_a_link(user: User) -> None:
    token = _issue(user, RESET_PASSWORD, user.email)
    db.session.commit()
    assert reset_password(token, NEW_PASSWORD) is not None
    db.session.commit()  # the reset request's edge


def acme_invites(address: str) -> Organization:
    olivia = make_user("olivia@example.com", name="Olivia")
    acme = create_organization("Acme Corp", owner=olivia)
    invite(acme, address, "developer", invited_by=olivia)
    db.session.commit()  # the test is the edge: services do not commit
    return acme


def pending_invitations_to(address: str) -> int:
    return int(
        db.session.scalar(
            select(func.count(Invitation.id)).where(
                Invitation.email == address,
                Invitation.revoked_at.is_(None),
                Invitation.accepted_at.is_(None),
            )
        )
        or 0
    )


def unverified_with_two_step() -> User:
    """A squatter's account: someone else's address, never verified, with a factor enrolled."""
    user = make_user(email_verified=False)
    secret = totp.begin_enrolment(user)
    assert totp.verify_totp(user, pyotp.TOTP(secret).now())
    user.totp_enabled_at = utcnow()
    db.session.commit()
    totp.regenerate_recovery_codes(user)
    db.session.commit()
    db.session.refresh(user)
    assert totp.is_enabled(user)
    return user


# E-mail change links


@pytest.mark.parametrize("how", ["change", "reset"])
def test_a_new_password_voids_a_pending_email_change_link(
    app: Flask, smtp: SmtpServer, how: str
) -> None:
    user = make_user()
    request_email_change(user, "thief@example.com")  # from a borrowed session, say
    db.session.commit()  # the request's edge: the mail sender reads the outbox
    path = verify_path(smtp, "thief@example.com")
    if how == "change":
        browser = app.test_client()
        sign_in(browser)
        change_password(browser)
    else:
        reset_through_a_link(user)
    assert app.test_client().get(path).status_code == 404
    db.session.refresh(user)
    assert user.email == "alice@example.com"
    assert settings.pending_email(user) is None


def test_a_password_change_voids_outstanding_reset_links(app: Flask) -> None:
    user = make_user()
    token = _issue(user, RESET_PASSWORD, user.email)
    db.session.commit()
    browser = app.test_client()
    sign_in(browser)
    change_password(browser)
    assert reset_password(token, "yet another passphrase") is None


def test_a_verification_link_for_the_current_address_stays(app: Flask, smtp: SmtpServer) -> None:
    user = make_user(email_verified=False)
    token = _issue(user, VERIFY_EMAIL, user.email)
    db.session.commit()
    browser = app.test_client()
    sign_in(browser)
    change_password(browser)
    row = db.session.scalar(select(AccountToken).where(AccountToken.purpose == VERIFY_EMAIL))
    assert row is not None and row.used_at is None
    assert token


# Invitations


def test_an_invitation_needs_a_verified_address_to_be_accepted(
    app: Flask, smtp: SmtpServer
) -> None:
    """A leaked link plus a sign-up with the invited address joins nobody."""
    acme = acme_invites("dana@example.com")
    path = invitation_path(smtp, "dana@example.com")

    mallory = app.test_client()
    page = mallory.get("/signup")
    mallory.post(
        "/signup",
        data={
            "csrf_token": csrf_token(page.text),
            "email": "dana@example.com",
            "name": "Not Dana",
            "password": SIGNUP_PASSWORD,
            "confirm_password": SIGNUP_PASSWORD,
        },
    )
    sign_in(mallory, "dana@example.com", SIGNUP_PASSWORD)
    shown = mallory.get(path)
    assert shown.status_code == 403 and "Confirm your e-mail address first" in shown.text
    refused = mallory.post(path, data={"csrf_token": csrf_token(mallory.get("/account").text)})
    assert refused.status_code == 403
    squatter = db.session.scalar(select(User).where(User.email == "dana@example.com"))
    assert squatter is not None
    token = path.rsplit("/", 1)[1]
    with pytest.raises(OrgError):
        accept_invitation(token, squatter)
    assert not acme_members(acme)

    # Once the address is proven (the mailbox owner opens the link), the invitation works.
    assert confirm(app.test_client(), verify_path(smtp, "dana@example.com")).status_code == 200
    db.session.refresh(squatter)
    page = mallory.get(path)
    assert page.status_code == 200
    assert mallory.post(path, data={"csrf_token": csrf_token(page.text)}).status_code == 302
    assert acme_members(acme) == ["dana@example.com"]


def acme_members(acme: Organization) -> list[str]:
    from authserver.orgs.membership import members

    return [found.user.email for found in members(acme) if found.user.email != "olivia@example.com"]


@pytest.mark.parametrize("how", ["change", "reset"])
def test_a_new_password_revokes_invitations_to_a_never_verified_address(
    app: Flask, smtp: SmtpServer, how: str
) -> None:
    user = make_user(email_verified=False)
    acme_invites("alice@example.com")
    assert pending_invitations_to("alice@example.com") == 1
    if how == "change":
        browser = app.test_client()
        sign_in(browser)
        change_password(browser)
    else:
        reset_through_a_link(user)
    assert pending_invitations_to("alice@example.com") == 0


def test_a_password_change_keeps_invitations_to_a_verified_address(app: Flask) -> None:
    make_user()
    acme_invites("alice@example.com")
    browser = app.test_client()
    sign_in(browser)
    change_password(browser)
    assert pending_invitations_to("alice@example.com") == 1


# Factors of a never-verified account


def test_a_reset_removes_the_factors_a_squatter_enrolled(app: Flask) -> None:
    user = unverified_with_two_step()
    reset_through_a_link(user)

    db.session.expire_all()
    owner = db.session.get(User, user.id)
    assert owner is not None and owner.email_verified
    assert not totp.is_enabled(owner) and owner.totp_secret_encrypted is None
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 0
    event = db.session.scalar(select(AuditEvent).where(AuditEvent.event == "two_step.removed"))
    assert event is not None and event.subject == user.sub
    # The mailbox's owner signs in with the new password alone.
    browser = app.test_client()
    assert post_login_with(browser, NEW_PASSWORD).headers["Location"] == "/"


def test_a_reset_of_a_verified_account_keeps_its_factors(app: Flask) -> None:
    user = unverified_with_two_step()
    user.email_verified = True
    db.session.commit()
    reset_through_a_link(user)
    db.session.expire_all()
    owner = db.session.get(User, user.id)
    assert owner is not None and totp.is_enabled(owner)
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 10


def test_a_password_change_of_a_never_verified_account_keeps_its_factors(app: Flask) -> None:
    """Decided in settings.change_password: the signed-in person has just proven it."""
    user = unverified_with_two_step()
    settings.change_password(user, PASSWORD, NEW_PASSWORD, NEW_PASSWORD, keep_session_id="this")
    db.session.expire_all()
    owner = db.session.get(User, user.id)
    assert owner is not None and totp.is_enabled(owner)
    assert db.session.scalar(select(func.count(RecoveryCode.id))) == 10


def post_login_with(browser: FlaskClient, password: str) -> Any:
    page = browser.get("/login")
    return browser.post(
        "/login",
        data={
            "email": "alice@example.com",
            "password": password,
            "csrf_token": csrf_token(page.text),
        },
    )
