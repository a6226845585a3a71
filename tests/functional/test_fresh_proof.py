"""Changing how an account is reached or signed in to needs a fresh proof (accounts/proof.py).

Every page that changes the e-mail address, the password or the second factor is listed
here, and a new one fails `test_every_account_change_is_classified` until it is: those
that take a proof refuse without the current password (or, with two-step verification
on, a code), count wrong passwords in the account lockout, are refused while it holds,
and are rate limited per IP; enrolment pages ask for a sign-in within ten minutes, which
goes through /login and its limits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from authserver.accounts import settings, totp
from authserver.accounts.models import AuthFailure, User
from authserver.core.capabilities import PAGE_ENDPOINTS
from authserver.extensions import db, utcnow
from authserver.sessions.models import LoginSession
from tests.factories import PASSWORD
from tests.functional.test_lockout import age_failures
from tests.functional.test_two_step import Browser, enrol, next_code, post_login, sign_out
from tests.oauth_helpers import csrf_token

NEW_PASSWORD = "a brand new passphrase"
WRONG = "not my password at all"

# Pages that take a fresh proof in the request.
PROOF = {"account.change_email", "account.change_password", "two_step.disable"}
# Pages that enrol or manage a factor behind a recent sign-in (two_step_views.recent_sign_in).
RECENT_SIGN_IN = {"two_step.start", "two_step.confirm", "two_step.cancel", "two_step.regenerate"}
# Pages that change nothing about how the account is reached or signed in to.
OTHER = {
    "account.change_name",
    "account.sign_out_session",
    "account.sign_out_other_sessions",
    "account.revoke_app",
    "two_step.challenge",  # the second step of a sign-in, not a change
}


@dataclass
class Change:
    """One page that takes a proof: where it is, its proof field, and how to see it worked."""

    path: str
    page: str
    proof_field: str
    changed: Callable[[User], bool]
    fields: dict[str, str] = field(default_factory=dict)


CHANGES = {
    "email": Change(
        "/account/email",
        "/account",
        "email_password",
        lambda user: settings.pending_email(user) == "alice.new@example.com",
        {"email": "alice.new@example.com"},
    ),
    "password": Change(
        "/account/password",
        "/account",
        "current_password",
        lambda user: user.password_changed_at is not None,
        {"new_password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    ),
    "two-step": Change(
        "/account/two-step/disable",
        "/account/two-step",
        "credential",
        lambda user: not totp.is_enabled(user),
    ),
}


@pytest.fixture(params=sorted(CHANGES))
def change(request: pytest.FixtureRequest) -> Change:
    return CHANGES[request.param]


def make_app(app_factory: Any, **settings: Any) -> Flask:
    app: Flask = app_factory(**{"ratelimit_pages": "1000/minute", **settings})
    app.test_client_class = Browser
    return app


def enrolled(app: Flask) -> tuple[FlaskClient, User, str, list[str]]:
    """Alice, signed in, with two-step verification on (so every change applies to her)."""
    browser = app.test_client()
    user, secret, codes = enrol(browser)
    return browser, user, secret, codes


def attempt(browser: FlaskClient, change: Change, proof: str) -> Any:
    page = browser.get(change.page)
    assert page.status_code == 200, page.status_code
    data = {"csrf_token": csrf_token(page.text), change.proof_field: proof, **change.fields}
    return browser.post(change.path, data=data)


def has_changed(user_id: int, change: Change) -> bool:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    assert user is not None
    return change.changed(user)


def test_every_account_change_is_classified(app: Flask) -> None:
    posted = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set())
        and rule.endpoint.split(".")[0] in {"account", "two_step"}
    }
    assert posted == PROOF | RECENT_SIGN_IN | OTHER, "classify the new page in this module"
    assert {CHANGES[name].path for name in CHANGES} == {
        str(next(app.url_map.iter_rules(endpoint))) for endpoint in PROOF
    }
    assert PROOF <= PAGE_ENDPOINTS, "pages that check a password are rate limited per IP"


@pytest.mark.parametrize("proof", ["", WRONG, "123 456", "aaaa-bbbb-cc", "x" * 2000])
def test_without_a_fresh_proof_nothing_changes(
    app_factory: Any, change: Change, proof: str
) -> None:
    app = make_app(app_factory)
    with app.app_context():
        browser, user, _, _ = enrolled(app)
        response = attempt(browser, change, proof)
        if len(proof) > 1024:  # longer than any password: a malformed form (400) or an error
            assert response.status_code in (400, 422)
        else:
            assert response.status_code == 422
            assert f'id="{change.proof_field}-error"' in response.text
        assert not has_changed(user.id, change)


@pytest.mark.parametrize("method", ["password", "totp", "recovery"])
def test_the_password_or_a_code_from_the_app_proves_it(
    app_factory: Any, change: Change, method: str
) -> None:
    app = make_app(app_factory)
    with app.app_context():
        browser, user, secret, codes = enrolled(app)
        proof = {"password": PASSWORD, "totp": "", "recovery": codes[0]}[method]
        if method == "totp":
            proof = next_code(user.id, secret)
        response = attempt(browser, change, proof)
        assert response.status_code == 302, response.text
        assert has_changed(user.id, change)


def test_a_wrong_password_counts_in_the_sign_in_lockout(app_factory: Any, change: Change) -> None:
    app = make_app(app_factory, lockout_threshold=3)
    with app.app_context():
        browser, user, _, _ = enrolled(app)
        for _ in range(3):
            assert attempt(browser, change, WRONG).status_code == 422
        failures = db.session.scalar(
            select(func.count(AuthFailure.id)).where(
                AuthFailure.factor == "password",
            )
        )
        assert failures == 3
        # Locked: the right password is refused here without being checked ...
        refused = attempt(browser, change, PASSWORD)
        assert refused.status_code == 422 and "Try again later" in refused.text
        assert not has_changed(user.id, change)
        # ... and at /login, where the same count applies.
        sign_out(browser)
        assert post_login(browser).status_code == 200


def test_the_lockout_delay_applies_before_anything_is_checked(
    app_factory: Any, change: Change
) -> None:
    app = make_app(app_factory)
    with app.app_context():
        browser, user, _, _ = enrolled(app)
        for _ in range(3):  # FREE_FAILURES: the next attempt must wait a second
            attempt(browser, change, WRONG)
        early = attempt(browser, change, PASSWORD)
        assert early.status_code == 422 and "Wait a few seconds" in early.text
        assert not has_changed(user.id, change)
        age_failures(2)
        assert attempt(browser, change, PASSWORD).status_code == 302
        assert has_changed(user.id, change)


def test_the_pages_are_rate_limited_per_ip(app_factory: Any, change: Change) -> None:
    app = make_app(app_factory, ratelimit_pages="4/minute", lockout_threshold=1000)
    with app.app_context():
        browser, user, _, _ = enrolled(app)
        statuses = [attempt(browser, change, WRONG).status_code for _ in range(5)]
        assert statuses == [422, 422, 422, 422, 429]  # each page counts on its own
        assert attempt(browser, change, PASSWORD).status_code == 429
        assert not has_changed(user.id, change)


@pytest.mark.parametrize(
    "path",
    [
        "/account/two-step/start",
        "/account/two-step/confirm",
        "/account/two-step/cancel",
        "/account/two-step/recovery-codes",
    ],
)
def test_enrolment_pages_need_a_sign_in_within_ten_minutes(app_factory: Any, path: str) -> None:
    app = make_app(app_factory)
    with app.app_context():
        browser, user, secret, _ = enrolled(app)
        token = csrf_token(browser.get("/account/two-step").text)
        db.session.execute(update(LoginSession).values(auth_time=utcnow() - timedelta(minutes=11)))
        db.session.commit()
        response = browser.post(
            path, data={"csrf_token": token, "code": next_code(user.id, secret)}
        )
        assert response.status_code == 302
        assert "reauth=1" in response.headers["Location"]
