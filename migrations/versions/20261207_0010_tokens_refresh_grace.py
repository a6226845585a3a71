"""refresh-token grace period: a per-client window, and each refresh token's parent

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 23:30:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column(
                "refresh_token_grace_period_seconds",
                sa.Integer(),
                nullable=False,
                server_default="0",
            )
        )
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("refresh_tokens") as batch:
        batch.drop_column("parent_id")
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("refresh_token_grace_period_seconds")
