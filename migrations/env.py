"""Alembic environment: run revisions against the app's database (Flask-Migrate)."""

from __future__ import annotations

import logging
from logging.config import fileConfig
from typing import Any

from alembic import context
from flask import current_app
from sqlalchemy import MetaData, types
from sqlalchemy.engine import Engine

config = context.config

if config.config_file_name is not None:
    # Keep loggers configured by the app (and pytest's capture) working.
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def get_engine() -> Engine:
    """The engine Flask-SQLAlchemy built from AUTHSERVER_DATABASE_URL."""
    engine: Engine = current_app.extensions["migrate"].db.engine
    return engine


def get_metadata() -> MetaData:
    """Every model's tables, for autogenerate."""
    metadata: MetaData = current_app.extensions["migrate"].db.metadata
    return metadata


def render_item(type_: str, obj: Any, autogen_context: Any) -> str | bool:
    """Render our TypeDecorators as their plain column type.

    Revisions then import nothing from the application, so later model changes
    cannot break old revisions.
    """
    if type_ == "type" and isinstance(obj, types.TypeDecorator):
        impl = obj.impl if isinstance(obj.impl, types.TypeEngine) else obj.impl()
        return f"sa.{impl!r}"
    return False


def process_revision_directives(context_: Any, revision: Any, directives: list[Any]) -> None:
    """Write no empty revision when autogenerate finds no change."""
    cmd_opts = getattr(config, "cmd_opts", None)
    if getattr(cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def run_migrations_offline() -> None:
    """Emit SQL to stdout (`authserver db upgrade --sql`) instead of running it."""
    url = get_engine().url.render_as_string(hide_password=False)
    context.configure(
        url=url,
        target_metadata=get_metadata(),
        literal_binds=True,
        render_item=render_item,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the revisions on a live connection."""
    conf_args: dict[str, Any] = dict(current_app.extensions["migrate"].configure_args)
    conf_args.setdefault("process_revision_directives", process_revision_directives)
    conf_args.setdefault("render_item", render_item)
    conf_args.setdefault("compare_type", True)
    with get_engine().connect() as connection:
        context.configure(connection=connection, target_metadata=get_metadata(), **conf_args)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
