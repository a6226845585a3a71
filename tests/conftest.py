"""Shared fixtures: a real database per test session, a fresh app per test.

The schema comes from the Alembic migrations, so every run also proves they
upgrade an empty database. `AUTHSERVER_TEST_DATABASE_URL` points the suite at
a PostgreSQL server: a database with a unique name is created for the run and
dropped afterwards. Without it the suite runs on SQLite.

Each test runs inside one database transaction that is rolled back at its end: the
apps' sessions join it (`join_transaction_mode="create_savepoint"`), so the code's own
commits only release savepoints. A test whose writes another connection must read (a
live server or mail sender thread, a second process, `db.engine` used directly) is
marked `commits`: its apps commit for real and every table is emptied after it.
Browser, live-server and PostgreSQL-only tests, and tests using a fixture in
COMMITTING_FIXTURES, are marked so automatically.
"""

from __future__ import annotations

import functools
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, settings
from jinja2.bccache import Bucket, BytecodeCache
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from werkzeug.routing import Rule

from authserver import create_app

# Hypothesis's timing checks measure the machine, not the server: on a shared two-core CI
# runner a draw can stall for seconds while browsers run beside it. What the properties
# promise is checked by their assertions; their speed is not a promise of ours.
settings.register_profile("authserver", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("authserver")

# Tables kept between tests: signing keys are slow to generate and roles are seeded
# by the migrations.
KEPT_TABLES = {"alembic_version", "signing_keys", "roles", "cache_epochs"}
TEST_SECRET = "test-secret-" + "x" * 40
# Fixtures whose users read the database from another connection or thread: an SMTP
# server fed by the mail sender, a live server, keys written by the key ring's own session.
COMMITTING_FIXTURES = {"smtp", "live", "smtp_server", "mailbox", "fresh_keys"}
# Markers of tests that always commit for real (other threads, processes or databases).
COMMITTING_MARKERS = ("live", "postgres")


def pytest_configure(config: pytest.Config) -> None:
    _build_urls_lazily()
    config.addinivalue_line("markers", "slow: takes more than a second")
    config.addinivalue_line(
        "markers",
        "commits: the test's apps commit for real (another connection reads what they "
        "wrote); every table is emptied after it instead of a rollback",
    )


def _build_urls_lazily() -> None:
    """Compile a URL rule's builder when a test first builds that URL, not in create_app.

    Werkzeug compiles two builders (Python code, through `ast` and `compile`) for every
    rule as it is added: most of create_app's time, repeated for the app every test
    makes, though a test builds a handful of URLs. The builder compiled is the same.
    """
    compile_builder = Rule._compile_builder

    def lazily(rule: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        compiled: Callable[..., tuple[str, str]] | None = None

        def build(self: Rule, **values: Any) -> tuple[str, str]:
            nonlocal compiled
            if compiled is None:
                compiled = compile_builder(self, append_unknown)
            return compiled(self, **values)

        return build

    Rule._compile_builder = lazily  # type: ignore[method-assign]


def commits_for_real(item: pytest.Item) -> bool:
    """Whether the test must commit for real instead of running in a rolled-back transaction."""
    if item.get_closest_marker("commits") is not None:
        return True
    if any(item.get_closest_marker(name) is not None for name in COMMITTING_MARKERS):
        return True
    if "tests/browser/" in item.nodeid or item.nodeid.startswith("browser/"):
        return True
    return bool(COMMITTING_FIXTURES & set(getattr(item, "fixturenames", ())))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without AUTHSERVER_TEST_DATABASE_URL this is the SQLite run: PostgreSQL-only tests
    belong to the PostgreSQL run and are deselected, not skipped. With it, they run, and
    fail when the server is unreachable."""
    for item in items:
        if commits_for_real(item) and item.get_closest_marker("commits") is None:
            item.add_marker(pytest.mark.commits)
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
    """Migrate the empty database and make the signing keys every later app reads.

    Made here, once, so that no test's first request writes keys from the key ring's own
    connection while the test's transaction holds SQLite's write lock.
    """
    from flask_migrate import upgrade

    from authserver.keys import current_keyring

    app = create_app(app_overrides(database_url, instance_dir))
    with app.app_context():
        upgrade()
        current_keyring().ensure_keys()
        from authserver.extensions import db

        db.engine.dispose()


@pytest.fixture
def app_factory(
    request: pytest.FixtureRequest, database_url: str, instance_dir: Path, _schema: None
) -> Iterator[Any]:
    """Make apps with extra settings.

    Their sessions share one transaction, rolled back after the test; a test marked
    `commits` commits for real and every table is emptied after it instead.
    """
    from authserver.extensions import db
    from authserver.mail import stop_sender
    from authserver.oidc.backchannel import stop_sender as stop_logout_sender

    made: list[Flask] = []
    rolled_back = request.node.get_closest_marker("commits") is None
    outer: list[OuterTransaction] = []

    def make(**extra: Any) -> Flask:
        app = create_app(app_overrides(database_url, instance_dir, **extra))
        app.before_request(_forget_request_globals)
        app.jinja_env.bytecode_cache = COMPILED_TEMPLATES
        made.append(app)
        with app.app_context():
            _tune_sqlite(db.engine)
            if rolled_back and not outer:
                outer.append(OuterTransaction(db.engine))
        # The app's mail sender thread stops first thing at teardown: before the fixtures
        # set up ahead of this app (an SMTP server, say) and before its engine is disposed.
        request.node.addfinalizer(functools.partial(stop_sender, app))
        request.node.addfinalizer(functools.partial(stop_logout_sender, app))
        return app

    yield make
    for app in made:
        with app.app_context():
            db.session.remove()
    if outer:
        outer[0].roll_back()
    else:
        for app in made[:1]:
            _empty_tables(app)
    for app in made:
        with app.app_context():
            db.engine.dispose()


@pytest.fixture
def app(app_factory: Any) -> Iterator[Flask]:
    app = app_factory()
    with app.app_context():
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class CompiledTemplates(BytecodeCache):
    """Templates compiled once per worker, not once per app (each test makes its own).

    Jinja keys a template's bytecode by its name and a checksum of its source, so an
    edited template is compiled again.
    """

    def __init__(self) -> None:
        self.compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        code = self.compiled.get(bucket.key)
        if code is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: Bucket) -> None:
        self.compiled[bucket.key] = bucket.bytecode_to_string()


COMPILED_TEMPLATES = CompiledTemplates()


class OuterTransaction:
    """One connection and transaction that every app session of a test joins.

    The sessions begin a SAVEPOINT on it, so the code's commit releases one and its
    rollback returns to one; `roll_back` undoes everything the test wrote. On SQLite the
    driver's own transaction handling is switched off for this connection (SQLAlchemy's
    documented recipe), so that BEGIN and SAVEPOINT reach the database as sent.
    """

    def __init__(self, engine: Engine) -> None:
        from authserver.extensions import db

        self.connection: Connection = engine.connect()
        self.sqlite = engine.dialect.name == "sqlite"
        if self.sqlite:
            self.connection.connection.driver_connection.isolation_level = None  # type: ignore[union-attr]
        self.transaction = self.connection.begin()
        if self.sqlite:
            self.connection.exec_driver_sql("BEGIN")
        self.factory = db.session.session_factory
        self.saved = dict(self.factory.kw)
        self.factory.configure(bind=self.connection, join_transaction_mode="create_savepoint")

    def roll_back(self) -> None:
        self.factory.kw.clear()
        self.factory.kw.update(self.saved)
        self.transaction.rollback()
        if self.sqlite:
            self.connection.connection.driver_connection.isolation_level = ""  # type: ignore[union-attr]
        self.connection.close()


def _tune_sqlite(engine: Engine) -> None:
    """Test databases need no durability: no fsync on commit or checkpoint."""
    if engine.dialect.name == "sqlite" and not event.contains(engine, "connect", _no_sync):
        event.listen(engine, "connect", _no_sync)


def _no_sync(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=OFF")
    cursor.close()


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
        # A test that cleared the keys (fresh_keys) leaves none: make them again here, so the
        # next rolled-back test does not have its key ring write them on its own connection
        # while the test's transaction holds SQLite's write lock.
        from authserver.keys import current_keyring

        db.session.remove()
        current_keyring().ensure_keys()
