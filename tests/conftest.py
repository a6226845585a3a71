"""Shared fixtures: a real database per test session, a fresh app per test.

The schema comes from the Alembic migrations, so every run also proves they
upgrade an empty database. `AUTHSERVER_TEST_DATABASE_URL` points the suite at
a PostgreSQL server: a database with a unique name is created for the run and
dropped afterwards. Without it the suite runs on SQLite.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from authserver import create_app

# Tables kept between tests: signing keys are slow to generate and roles are seeded
# by the migrations.
KEPT_TABLES = {"alembic_version", "signing_keys", "roles"}
TEST_SECRET = "test-secret-" + "x" * 40


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a second")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without AUTHSERVER_TEST_DATABASE_URL this is the SQLite run: PostgreSQL-only tests
    belong to the PostgreSQL run and are deselected, not skipped. With it, they run, and
    fail when the server is unreachable."""
    if os.environ.get("AUTHSERVER_TEST_DATABASE_URL"):
        return
    kept = [item for item in items if item.get_closest_marker("postgres") is None]
    deselected = [item for item in items if item.get_closest_marker("postgres") is not None]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = kept


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    base = os.environ.get("AUTHSERVER_TEST_DATABASE_URL")
    if not base:
        path = tmp_path_factory.mktemp("db") / "authserver.db"
        yield f"sqlite:///{path}"
        return
    url = make_url(base)
    name = f"authserver_test_{secrets.token_hex(6)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def instance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("instance")


def app_overrides(database_url: str, instance_dir: Path, **extra: Any) -> dict[str, Any]:
    """The settings every test app starts from."""
    overrides: dict[str, Any] = {
        "env": "testing",
        "database_url": database_url,
        "secret_key": TEST_SECRET,
        "instance_path": str(instance_dir),
        # Cheap argon2id in tests; the production cost is exercised in tests/unit/accounts.
        "argon2_memory_cost": 1024,
        "argon2_time_cost": 1,
    }
    overrides.update(extra)
    return overrides


@pytest.fixture(scope="session")
def _schema(database_url: str, instance_dir: Path) -> None:
    from flask_migrate import upgrade

    app = create_app(app_overrides(database_url, instance_dir))
    with app.app_context():
        upgrade()
        from authserver.extensions import db

        db.engine.dispose()


@pytest.fixture
def app_factory(
    request: pytest.FixtureRequest, database_url: str, instance_dir: Path, _schema: None
) -> Iterator[Any]:
    """Make apps with extra settings; every table is emptied after the test."""
    from authserver.mail import stop_sender

    made: list[Flask] = []

    def make(**extra: Any) -> Flask:
        app = create_app(app_overrides(database_url, instance_dir, **extra))
        app.before_request(_forget_request_globals)
        made.append(app)
        # The app's mail sender thread stops first thing at teardown: before the fixtures
        # set up ahead of this app (an SMTP server, say) and before its engine is disposed.
        request.node.addfinalizer(functools.partial(stop_sender, app))
        return app

    yield make
    for app in made[:1]:
        _empty_tables(app)
    for app in made:
        with app.app_context():
            from authserver.extensions import db

            db.session.remove()
            db.engine.dispose()


@pytest.fixture
def app(app_factory: Any) -> Iterator[Flask]:
    app = app_factory()
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _forget_request_globals() -> None:
    """Tests hold one app context open, so `g` outlives a request; a server's does not.

    Flask-WTF caches the CSRF token on `g`: without this, a second test client would
    be handed the first one's token.
    """
    from flask import g

    g.pop("csrf_token", None)


def _empty_tables(app: Flask) -> None:
    from authserver.extensions import db

    with app.app_context():
        db.session.rollback()
        with db.engine.begin() as conn:
            for table in reversed(db.metadata.sorted_tables):
                if table.name not in KEPT_TABLES:
                    conn.execute(table.delete())
            conn.execute(text("DELETE FROM roles WHERE builtin = :no"), {"no": False})
