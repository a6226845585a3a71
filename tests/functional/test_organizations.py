"""Organizations: server admins create them, organization admins manage members and e-mailed
invitations without being server admins, and only the invited person can accept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from werkzeug.test import TestResponse

from authserver.extensions import db
from authserver.orgs.invitations import invite
from authserver.orgs.membership import add_member, membership
from authserver.orgs.models import Invitation, Membership, Organization
from authserver.orgs.services import OrgError, create_organization
from tests.browser.mailbox import link_in, text_part
from tests.factories import make_user
from tests.mail_helpers import Browser, SmtpServer, running_smtp
from tests.oauth_helpers import csrf_token, sign_in


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


def signed_in(app: Flask, email: str) -> Browser:
    browser = app.test_client()
    sign_in(browser, email)
    assert isinstance(browser, Browser)
    return browser


def post_form(browser: Browser, page_path: str, action: str, **data: str) -> TestResponse:
    """Submit a form of `page_path` as a person would: with the page's CSRF token."""
    page = browser.get(page_path)
    assert page.status_code == 200, page.text
    return browser.post(action, data={"csrf_token": csrf_token(page.text), **data})


def session_csrf(browser: Browser) -> str:
    """A valid CSRF token of this browser's session, from a page that has a form."""
    return csrf_token(browser.get("/account").text)


def invitation_path(smtp: SmtpServer, email: str) -> str:
    smtp.mailbox.wait_for(email)
    link = link_in(smtp.mailbox.sent_to(email)[-1], "/orgs/invitations/")
    return "/orgs/invitations/" + link.split("/orgs/invitations/", 1)[1]


@pytest.fixture
def acme(app: Flask) -> Organization:
    """Acme, whose admin is Olivia (no server role at all)."""
    olivia = make_user("olivia@example.com")
    organization = create_organization("Acme Corp", owner=olivia)
    db.session.commit()  # the test is the edge: services do not commit
    return organization


# Invitations end to end


def test_an_org_admin_invites_by_mail_and_the_invited_person_joins(
    app: Flask, smtp: SmtpServer, acme: Organization
) -> None:
    olivia = signed_in(app, "olivia@example.com")
    response = post_form(
        olivia,
        "/orgs/acme-corp",
        "/orgs/acme-corp/invitations",
        email="Dana@Example.com",
        role="developer",
    )
    assert response.status_code == 302, response.text
    assert "dana@example.com" in olivia.get("/orgs/acme-corp").text

    message = smtp.mailbox.wait_for("dana@example.com")
    assert "Acme Corp" in message["Subject"]
    assert "developer" in text_part(message)
    path = invitation_path(smtp, "dana@example.com")
    token = path.rsplit("/", 1)[1]
    stored = db.session.scalar(select(Invitation))
    assert stored is not None
    assert stored.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in stored.token_hash

    dana_user = make_user("dana@example.com")
    dana = app.test_client()
    assert dana.get(path).status_code == 302  # sign-in first
    sign_in(dana, "dana@example.com")
    page = dana.get(path)
    assert page.status_code == 200 and "Join Acme Corp" in page.text
    assert membership(acme, dana_user) is None  # GET shows, only POST joins
    accepted = dana.post(path, data={"csrf_token": csrf_token(page.text)})
    assert accepted.status_code == 302
    found = membership(acme, dana_user)
    assert found is not None and found.role.name == "developer"
    assert "Acme Corp" in dana.get("/orgs/").text
    # The link works once.
    assert dana.get(path).status_code == 404


def test_someone_else_cannot_accept_an_invitation(
    app: Flask, smtp: SmtpServer, acme: Organization
) -> None:
    invite(acme, "dana@example.com", "viewer")
    db.session.commit()
    path = invitation_path(smtp, "dana@example.com")
    mallory_user = make_user("mallory@example.com")
    mallory = signed_in(app, "mallory@example.com")
    page = mallory.get(path)
    assert page.status_code == 403
    assert "another e-mail address" in page.text
    response = mallory.post(path, data={"csrf_token": session_csrf(mallory)})
    assert response.status_code == 403
    assert membership(acme, mallory_user) is None
    assert db.session.scalar(select(Invitation)).accepted_at is None  # type: ignore[union-attr]


def test_a_revoked_invitation_no_longer_works(
    app: Flask, smtp: SmtpServer, acme: Organization
) -> None:
    invitation = invite(acme, "dana@example.com", "viewer")
    db.session.commit()
    path = invitation_path(smtp, "dana@example.com")
    olivia = signed_in(app, "olivia@example.com")
    response = post_form(
        olivia, "/orgs/acme-corp", f"/orgs/acme-corp/invitations/{invitation.id}/revoke"
    )
    assert response.status_code == 302
    make_user("dana@example.com")
    dana = signed_in(app, "dana@example.com")
    assert dana.get(path).status_code == 404


def test_inviting_again_replaces_the_earlier_link(
    app: Flask, smtp: SmtpServer, acme: Organization
) -> None:
    invite(acme, "dana@example.com", "viewer")
    db.session.commit()
    first = invitation_path(smtp, "dana@example.com")
    smtp.mailbox.clear()
    invite(acme, "dana@example.com", "developer")
    db.session.commit()
    second = invitation_path(smtp, "dana@example.com")
    make_user("dana@example.com")
    dana = signed_in(app, "dana@example.com")
    assert dana.get(first).status_code == 404
    assert dana.get(second).status_code == 200


# Managing members


def test_an_org_admin_manages_members_without_being_a_server_admin(
    app: Flask, acme: Organization
) -> None:
    bob = make_user("bob@example.com")
    add_member(acme, bob, "viewer")
    db.session.commit()
    found = membership(acme, bob)
    assert found is not None
    olivia = signed_in(app, "olivia@example.com")
    assert olivia.get("/orgs/new").status_code == 403  # not a server admin

    page = olivia.get("/orgs/acme-corp")
    assert page.status_code == 200 and "bob@example.com" in page.text
    changed = post_form(
        olivia, "/orgs/acme-corp", f"/orgs/acme-corp/members/{found.id}/role", role="developer"
    )
    assert changed.status_code == 302
    db.session.expire_all()
    assert membership(acme, bob).role.name == "developer"  # type: ignore[union-attr]

    removed = post_form(olivia, "/orgs/acme-corp", f"/orgs/acme-corp/members/{found.id}/remove")
    assert removed.status_code == 302
    assert membership(acme, bob) is None


def test_the_last_org_admin_cannot_be_removed_or_demoted(app: Flask, acme: Organization) -> None:
    olivia_user = db.session.scalar(select(Membership)).user  # type: ignore[union-attr]
    found = membership(acme, olivia_user)
    assert found is not None
    olivia = signed_in(app, "olivia@example.com")
    response = post_form(olivia, "/orgs/acme-corp", f"/orgs/acme-corp/members/{found.id}/remove")
    assert response.status_code == 302
    assert "last admin" in olivia.get("/orgs/acme-corp").text
    post_form(olivia, "/orgs/acme-corp", f"/orgs/acme-corp/members/{found.id}/role", role="viewer")
    db.session.expire_all()
    assert membership(acme, olivia_user).role.name == "admin"  # type: ignore[union-attr]


def test_a_plain_member_gets_403_and_a_stranger_404(app: Flask, acme: Organization) -> None:
    add_member(acme, make_user("bob@example.com"), "developer")
    db.session.commit()
    make_user("eve@example.com")
    bob = signed_in(app, "bob@example.com")
    assert bob.get("/orgs/acme-corp").status_code == 403
    invited = bob.post(
        "/orgs/acme-corp/invitations",
        data={"csrf_token": session_csrf(bob), "email": "x@example.com", "role": "admin"},
    )
    assert invited.status_code == 403
    assert db.session.scalar(select(Invitation)) is None
    eve = signed_in(app, "eve@example.com")
    assert eve.get("/orgs/acme-corp").status_code == 404


def test_an_org_admin_cannot_manage_another_organization(app: Flask, acme: Organization) -> None:
    create_organization("Globex")
    db.session.commit()
    olivia = signed_in(app, "olivia@example.com")
    assert olivia.get("/orgs/globex").status_code == 404


def test_signed_out_visitors_are_sent_to_sign_in(app: Flask, acme: Organization) -> None:
    response = app.test_client().get("/orgs/acme-corp")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


# Server admins


def test_a_server_admin_creates_an_organization_and_manages_any(app: Flask) -> None:
    make_user("root@example.com", roles=["admin"])
    root = signed_in(app, "root@example.com")
    response = post_form(root, "/orgs/new", "/orgs/new", name="Acme Corp", slug="")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/orgs/acme-corp")
    again = post_form(root, "/orgs/new", "/orgs/new", name="Acme Corp", slug="")
    assert again.headers["Location"].endswith("/orgs/acme-corp-2")
    taken = post_form(root, "/orgs/new", "/orgs/new", name="Other", slug="acme-corp")
    assert taken.status_code == 422 and "taken" in taken.text
    assert root.get("/orgs/acme-corp").status_code == 200


def test_a_person_with_orgs_write_is_a_server_admin_for_organizations(app: Flask) -> None:
    from authserver.roles.services import create_role

    create_role("org-manager", permissions=["orgs:write"])
    db.session.commit()
    make_user("carol@example.com", roles=["org-manager"])
    create_organization("Globex")
    db.session.commit()
    carol = signed_in(app, "carol@example.com")
    assert carol.get("/orgs/new").status_code == 200
    assert carol.get("/orgs/globex").status_code == 200


def test_reserved_and_invalid_identifiers_are_refused(app: Flask) -> None:
    for slug in ("new", "invitations", "Bad Slug", "-x"):
        with pytest.raises(OrgError):
            create_organization("Something", slug=slug)
    assert create_organization("New").slug == "new-2"
