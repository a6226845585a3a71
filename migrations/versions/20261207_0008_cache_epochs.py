"""cache epochs: the revocation counter behind per-process revocation caches

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 19:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    epochs = op.create_table(
        "cache_epochs",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_cache_epochs")),
    )
    op.bulk_insert(epochs, [{"name": "revocation", "value": 0}])


def downgrade() -> None:
    op.drop_table("cache_epochs")
