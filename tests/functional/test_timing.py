"""Response times do not tell which addresses have accounts (OWASP Authentication Cheat
Sheet, "Authentication and error messages"): forgot-password, sign-up and a sign-in with
a wrong password take as long for an address with an account as for one without.

A statistical test, not a stopwatch: for each form, SAMPLES pairs of requests, one about
an existing and one about an unknown address, back to back in random order (so load from
other tests falls on both alike), each a fresh address so no resend guard or lockout
delay applies,
with a real SMTP server configured (a server that sent mail inside the request would pay
for SMTP on one side only). Between requests the outbox is left to drain, so the sender
thread's delivery of one request's mail is not timed as part of the next. The median of
the paired differences must be within max(MIN_GAP, RELATIVE_GAP of the smaller median);
the accuracy of the best single-threshold classifier is reported alongside. On the code
before the outbox, forgot-password differed by the SMTP conversation (+36 ms) and
sign-in by a commit (+3.5 ms), and both failed.
"""

from __future__ import annotations

import gc
import random
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask

from authserver.extensions import db
from tests.factories import make_user
from tests.mail_helpers import SmtpServer, delivered, running_smtp
from tests.oauth_helpers import csrf_token

SAMPLES = 120
MIN_GAP = 0.002  # seconds
RELATIVE_GAP = 0.20
# Sign-up for a new address stores the account and its link: two rows more in the same
# commit (two round trips on PostgreSQL, a few more pages on SQLite), about 1 to 1.5 ms
# here. test_equal_work.py checks that nothing else differs, commit by commit.
SIGNUP_MIN_GAP = 0.004
SIGNUP_RELATIVE_GAP = 0.30
NEW_PASSWORD = "plum tree under the bridge"

pytestmark = pytest.mark.slow


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with running_smtp() as server:
        yield server


@pytest.fixture
def app(app_factory: Any, smtp: SmtpServer) -> Flask:
    """The server under test. No app context is held: each request gets its own, and its
    own database session, as in a server (a shared session would keep every account
    loaded and time the test's bookkeeping instead of the server's work)."""
    # Rate limits off: hundreds of posts from one address are the point here.
    app: Flask = app_factory(mail_url=smtp.url, ratelimit_enabled=False)
    with app.app_context():
        for i in range(SAMPLES):
            make_user(f"member-{i}@example.com", name=f"Member {i}")
        db.session.remove()
    return app


def best_threshold_accuracy(a: list[float], b: list[float]) -> float:
    """How often the best single cut-off between the two samples tells which one a time is from."""
    labelled = sorted([(t, 0) for t in a] + [(t, 1) for t in b])
    total, below_a, below_b, best = len(labelled), 0, 0, 0.5
    for _, label in labelled:
        below_a += label == 0
        below_b += label == 1
        # "below the cut is a" or "below the cut is b", whichever is right more often
        right = below_a + (len(b) - below_b)
        best = max(best, right / total, (total - right) / total)
    return best


def timed_posts(
    app: Flask, path: str, fields: Callable[[str], dict[str, str]], form: str
) -> tuple[list[float], list[float]]:
    """Seconds per POST for existing and unknown addresses, measured in pairs.

    Each pair (member-i, an unknown address) runs back to back in random order, so a
    burst of load from other tests falls on both members of a pair alike.
    """
    browser = app.test_client()
    token = csrf_token(browser.get(path).text)
    shuffle = random.Random(f"{form}-order").shuffle
    times: dict[str, list[float]] = {"existing": [], "unknown": []}
    for i in range(SAMPLES):
        pair = [("existing", f"member-{i}@example.com"), ("unknown", f"{form}-nobody-{i}@x.test")]
        shuffle(pair)
        for kind, address in pair:
            data = {"csrf_token": token, **fields(address)}
            gc.disable()  # collections run between requests, not inside one side's timings
            try:
                started = time.perf_counter()
                response = browser.post(path, data=data)
                elapsed = time.perf_counter() - started
            finally:
                gc.enable()
            assert response.status_code == 200, (path, kind, response.status_code)
            times[kind].append(elapsed)
            with app.app_context():
                delivered()  # the sender thread's SMTP work stays out of the next measurement
    return times["existing"], times["unknown"]


def assert_indistinguishable(
    existing: list[float],
    unknown: list[float],
    min_gap: float = MIN_GAP,
    relative_gap: float = RELATIVE_GAP,
) -> None:
    """The median of the paired differences is within the tolerance of the medians."""
    median_e, median_u = statistics.median(existing), statistics.median(unknown)
    gap = statistics.median(e - u for e, u in zip(existing, unknown, strict=True))
    allowed = max(min_gap, relative_gap * min(median_e, median_u))
    accuracy = best_threshold_accuracy(existing, unknown)
    summary = (
        f"median existing {median_e * 1000:.2f} ms, unknown {median_u * 1000:.2f} ms, "
        f"paired difference {gap * 1000:+.2f} ms (allowed {allowed * 1000:.2f} ms); "
        f"best threshold accuracy {accuracy:.2f}"
    )
    print(summary)
    assert abs(gap) <= allowed, summary


def test_forgot_password_takes_as_long_for_existing_and_unknown_addresses(app: Flask) -> None:
    existing, unknown = timed_posts(
        app, "/password/forgot", lambda address: {"email": address}, "forgot"
    )
    assert_indistinguishable(existing, unknown)


def test_signup_takes_as_long_for_existing_and_unknown_addresses(app: Flask) -> None:
    def fields(address: str) -> dict[str, str]:
        return {
            "email": address,
            "name": "Timing Test",
            "password": NEW_PASSWORD,
            "confirm_password": NEW_PASSWORD,
        }

    existing, unknown = timed_posts(app, "/signup", fields, "signup")
    assert_indistinguishable(existing, unknown, SIGNUP_MIN_GAP, SIGNUP_RELATIVE_GAP)


def test_a_wrong_password_takes_as_long_for_existing_and_unknown_addresses(app: Flask) -> None:
    existing, unknown = timed_posts(
        app, "/login", lambda address: {"email": address, "password": "wrong password"}, "login"
    )
    assert_indistinguishable(existing, unknown)
