"""seed builtin roles

The three roles every installation starts with. Kept apart from the schema
revision so that one stays exactly what autogenerate writes.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 07:00:00

"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BUILTIN_ROLES = [
    ("admin", "Full access to every administrative function.", ["*"]),
    ("developer", "Registers and manages clients.", ["clients:read", "clients:write"]),
    ("viewer", "Read-only access.", ["read"]),
]

# A snapshot of the table as this revision knows it; never import the models here.
roles = sa.table(
    "roles",
    sa.column("name", sa.String),
    sa.column("description", sa.String),
    sa.column("permissions", sa.JSON),
    sa.column("builtin", sa.Boolean),
    sa.column("created_at", sa.DateTime),
)


def upgrade() -> None:
    # Timestamps are stored as naive UTC (see authserver.extensions.UTCDateTime).
    now = datetime.now(UTC).replace(microsecond=0, tzinfo=None)
    op.bulk_insert(
        roles,
        [
            {
                "name": name,
                "description": description,
                "permissions": permissions,
                "builtin": True,
                "created_at": now,
            }
            for name, description, permissions in BUILTIN_ROLES
        ],
    )


def downgrade() -> None:
    op.execute(roles.delete().where(roles.c.name.in_([name for name, _, _ in BUILTIN_ROLES])))
