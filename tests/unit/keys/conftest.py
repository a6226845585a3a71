"""Key tests start and end with an empty signing_keys table (it is kept between other tests)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import delete

from authserver.extensions import db
from authserver.keys.models import SigningKey


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def clear_signing_keys(app: Flask) -> None:
    with app.app_context():
        db.session.rollback()
        db.session.execute(delete(SigningKey))
        db.session.commit()


@pytest.fixture
def fresh_keys(app_factory: Any) -> Iterator[None]:
    """No signing keys before the test, none left behind (tests change secrets and expiry)."""
    janitor = app_factory()
    clear_signing_keys(janitor)
    yield
    clear_signing_keys(janitor)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
