"""The Alembic revisions build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import make_url

from authserver import create_app
from authserver.roles.permissions import BUILTIN_PERMISSIONS
from tests.conftest import app_overrides

POSTGRES_URL = os.environ.get("AUTHSERVER_TEST_DATABASE_URL", "")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no tables at all, dropped after the test."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    if not POSTGRES_URL:
        pytest.skip("AUTHSERVER_TEST_DATABASE_URL is not set")
    url = make_url(POSTGRES_URL)
    name = f"authserver_migrations_{secrets.token_hex(6)}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def empty_app(empty_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    # Every model module, so the metadata compared below is complete.
    import authserver.accounts.models
    import authserver.audit.models
    import authserver.clients.models
    import authserver.keys.models
    import authserver.mail.models
    import authserver.oauth.models
    import authserver.orgs.models
    import authserver.sessions.models  # noqa: F401

    app = create_app(app_overrides(empty_database_url, tmp_path))
    with app.app_context():
        yield app
        from authserver.extensions import db

        db.session.remove()
        db.engine.dispose()


def _schema_differences() -> list[object]:
    from authserver.extensions import db

    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, db.metadata))


def _table_names() -> set[str]:
    from authserver.extensions import db

    return set(inspect(db.engine).get_table_names())


def test_upgrade_of_an_empty_database_matches_the_models(empty_app: Flask) -> None:
    upgrade()

    assert _schema_differences() == []


def test_upgrade_seeds_the_builtin_roles(empty_app: Flask) -> None:
    from authserver.accounts.models import Role
    from authserver.extensions import db

    upgrade()

    roles = {role.name: role for role in db.session.scalars(select(Role))}
    assert set(roles) == {"admin", "developer", "viewer"}
    assert all(role.builtin for role in roles.values())
    assert roles["admin"].permissions == BUILTIN_PERMISSIONS["admin"]
    assert roles["developer"].permissions == BUILTIN_PERMISSIONS["developer"]
    assert roles["viewer"].permissions == BUILTIN_PERMISSIONS["viewer"]


def test_downgrade_to_base_removes_every_table_and_upgrades_again(empty_app: Flask) -> None:
    from authserver.extensions import db

    upgrade()
    downgrade(revision="base")

    assert _table_names() <= {"alembic_version"}

    upgrade()
    assert set(db.metadata.tables) <= _table_names()
    assert _schema_differences() == []
