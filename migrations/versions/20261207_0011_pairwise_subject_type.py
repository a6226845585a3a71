"""pairwise subjects: clients.subject_type and clients.sector_identifier_uri

OpenID Connect Core section 8 and Registration 1.0 sections 2 and 5. Existing clients
keep public subjects.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 23:40:00

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.add_column(
            sa.Column("subject_type", sa.String(length=16), nullable=False, server_default="public")
        )
        batch.add_column(sa.Column("sector_identifier_uri", sa.String(length=2000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("clients") as batch:
        batch.drop_column("sector_identifier_uri")
        batch.drop_column("subject_type")
