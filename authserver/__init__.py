"""authserver: an OAuth 2.0 and OpenID Connect authorization server."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import Config

ROOT = Path(__file__).resolve().parent.parent


def create_app(overrides: dict[str, Any] | None = None, *, migrations: bool = True) -> Flask:
    """Build the application: read the config, bind extensions, register blueprints.

    A serving worker (wsgi.py) passes `migrations=False`: Flask-Migrate loads Alembic,
    11 MB per worker that only the `authserver db` commands use.
    """
    config = Config.from_env(overrides=overrides)
    app = Flask(
        __name__,
        instance_path=config.instance_path,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    app.config.update(_flask_settings(config))
    if config.proxy_fix:
        n = config.proxy_fix
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    _init_extensions(app, config, migrations=migrations)
    _register_blueprints(app)
    return app


def _flask_settings(config: Config) -> dict[str, Any]:
    """Flask's own settings, derived from ours."""
    return {
        "AUTHSERVER": config,
        "TESTING": config.env == "testing",
        "SECRET_KEY": config.secret_key,
        "SECRET_KEY_FALLBACKS": list(config.secret_key_fallbacks),
        "SQLALCHEMY_DATABASE_URI": config.database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(config.database_url),
        "SESSION_COOKIE_NAME": "authserver_flow",
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": config.secure_cookies,
        "PREFERRED_URL_SCHEME": "https" if config.secure_cookies else "http",
        # Request limits (Werkzeug 3.1); parameter counts and lengths: security/limits.py.
        "MAX_CONTENT_LENGTH": 64 * 1024,
        "MAX_FORM_MEMORY_SIZE": 64 * 1024,
        "MAX_FORM_PARTS": 200,
        "WTF_CSRF_TIME_LIMIT": None,
        "WTF_CSRF_SSL_STRICT": False,
    }


def _init_extensions(app: Flask, config: Config, *, migrations: bool) -> None:
    """Bind the database, the unit of work and each package's hooks, bottom layer first."""
    from . import audit, keys, mail, oauth, oidc, roles, security, sessions
    from .clients.origins import is_registered_origin
    from .core import epoch, hotpath, pool, uow
    from .extensions import csrf, db

    # Outside ProxyFix (create_app): what it serves depends on no client address or scheme.
    hotpath.init_app(app)
    db.init_app(app)
    uow.init_app(app)
    epoch.init_app(app)
    with app.app_context():
        if config.database_url.startswith("sqlite"):
            event.listen(db.engine, "connect", _sqlite_pragmas)
        else:
            pool.ping_idle_connections(db.engine)
    if migrations:
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(ROOT / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    security.init_app(app, is_registered_origin=is_registered_origin)
    audit.init_app(app)
    roles.init_app(app)
    mail.init_app(app)
    sessions.init_app(app)
    keys.init_app(app)
    oauth.init_app(app)
    oidc.init_app(app)


def _register_blueprints(app: Flask) -> None:
    """The pages, the console, the admin API and the CLI; then check every endpoint is
    classified (core/capabilities.py) and every command runs in one unit of work."""
    from . import branding, health, security
    from .accounts import settings_views, two_step_views
    from .accounts import views as account_views
    from .admin import api as admin_api
    from .admin import views as admin_views
    from .cli import register_commands
    from .clients import registration_views
    from .core import uow
    from .oauth import device_views
    from .oidc import logout
    from .orgs import views as org_views

    for blueprint in (
        account_views.bp,
        settings_views.bp,
        two_step_views.bp,
        device_views.bp,
        registration_views.bp,
        logout.bp,
        branding.bp,
        org_views.bp,
        admin_api.bp,
        admin_api.docs_bp,
        admin_views.bp,
        health.bp,
    ):
        app.register_blueprint(blueprint)
    register_commands(app)
    security.check_app(app)
    uow.wrap_commands(app.cli)


def _engine_options(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    # Liveness: core/pool.py pings a connection only after it sat idle.
    return {"pool_size": 10, "max_overflow": 10, "pool_recycle": 1800}


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """SQLite: enforce foreign keys and let several workers read while one writes."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()
