"""signing keys: activation time (pre-publication) and emergency revocation; clients:
claims_in_id_token

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 23:50:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("activates_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(), nullable=True))
    # Existing keys signed from the moment they were made.
    op.execute("UPDATE signing_keys SET activates_at = created_at")
    with op.batch_alter_table("signing_keys") as batch:
        batch.alter_column("activates_at", existing_type=sa.DateTime(), nullable=False)
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("claims_in_id_token", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("claims_in_id_token")
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_column("revoked_at")
        batch.drop_column("activates_at")
