"""logout: the clients of each sign-in session, the back-channel logout outbox, and the
back- and front-channel logout client metadata (OpenID Connect Back-Channel and
Front-Channel Logout 1.0)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 23:31:04.585208

"""

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backchannel_logouts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("sub", sa.String(length=255), nullable=False),
        sa.Column("sid", sa.String(length=64), nullable=True),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_backchannel_logouts_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_backchannel_logouts")),
    )
    with op.batch_alter_table("backchannel_logouts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_backchannel_logouts_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_backchannel_logouts_created_at"), ["created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_backchannel_logouts_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_backchannel_logouts_status"), ["status"], unique=False)

    op.create_table(
        "session_clients",
        sa.Column("session_id", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.client_id"],
            name=op.f("fk_session_clients_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["login_sessions.id"],
            name=op.f("fk_session_clients_session_id_login_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "client_id", name=op.f("pk_session_clients")),
    )
    with op.batch_alter_table("session_clients", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_session_clients_client_id"), ["client_id"], unique=False
        )

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backchannel_logout_uri", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "backchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )
        batch_op.add_column(sa.Column("frontchannel_logout_uri", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "frontchannel_logout_session_required",
                sa.Boolean(),
                nullable=False,
                server_default=sa.false(),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("frontchannel_logout_session_required")
        batch_op.drop_column("frontchannel_logout_uri")
        batch_op.drop_column("backchannel_logout_session_required")
        batch_op.drop_column("backchannel_logout_uri")

    with op.batch_alter_table("session_clients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_session_clients_client_id"))

    op.drop_table("session_clients")
    with op.batch_alter_table("backchannel_logouts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_backchannel_logouts_status"))
        batch_op.drop_index(batch_op.f("ix_backchannel_logouts_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_backchannel_logouts_created_at"))
        batch_op.drop_index(batch_op.f("ix_backchannel_logouts_client_id"))

    op.drop_table("backchannel_logouts")
