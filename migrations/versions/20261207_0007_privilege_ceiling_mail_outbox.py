"""privilege ceiling, mail outbox, per-client token not-before, address-keyed lockout

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:51:43.560732

"""

import sqlalchemy as sa
from alembic import op

# Snapshots of the tables as this revision knows them; never import the models here.
clients = sa.table("clients", sa.column("id", sa.Integer), sa.column("scope", sa.Text))
roles = sa.table("roles", sa.column("id", sa.Integer), sa.column("name", sa.String))
client_roles = sa.table(
    "client_roles", sa.column("client_id", sa.Integer), sa.column("role_id", sa.Integer)
)
ADMIN_SCOPE = "admin"
ADMIN_ROLE = "admin"

# revision identifiers, used by Alembic.
revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("message", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_mail_outbox_created_at"), ["created_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_mail_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_mail_outbox_status"), ["status"], unique=False)

    op.create_table(
        "client_roles",
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["clients.id"],
            name=op.f("fk_client_roles_client_id_clients"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["role_id"],
            ["roles.id"],
            name=op.f("fk_client_roles_role_id_roles"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("client_id", "role_id", name=op.f("pk_client_roles")),
    )
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_key", sa.String(length=64), nullable=True))
        batch_op.alter_column("user_id", existing_type=sa.INTEGER(), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_auth_failures_account_key"), ["account_key"], unique=False
        )

    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_resource_server", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("tokens_not_before", sa.DateTime(), nullable=True))

    _keep_admin_clients_admin()


def _keep_admin_clients_admin() -> None:
    """Clients registered with the `admin` scope acted as full admins; they keep that power
    as the built-in admin role, which now decides what their tokens may do (review them)."""
    connection = op.get_bind()
    admin_id = connection.scalar(sa.select(roles.c.id).where(roles.c.name == ADMIN_ROLE))
    if admin_id is None:
        return
    rows = connection.execute(sa.select(clients.c.id, clients.c.scope)).all()
    holders = [row.id for row in rows if ADMIN_SCOPE in (row.scope or "").split()]
    if holders:
        op.bulk_insert(client_roles, [{"client_id": cid, "role_id": admin_id} for cid in holders])


def downgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("tokens_not_before")
        batch_op.drop_column("is_resource_server")

    op.execute(sa.delete(sa.table("auth_failures")).where(sa.column("user_id").is_(None)))
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_failures_account_key"))
        batch_op.alter_column("user_id", existing_type=sa.INTEGER(), nullable=False)
        batch_op.drop_column("account_key")

    op.drop_table("client_roles")
    with op.batch_alter_table("mail_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_mail_outbox_status"))
        batch_op.drop_index(batch_op.f("ix_mail_outbox_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_mail_outbox_created_at"))

    op.drop_table("mail_outbox")
