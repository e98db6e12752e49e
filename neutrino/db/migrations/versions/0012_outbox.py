"""the transactional outbox: change events written with their transaction

Revision ID: 0012
Revises: 0011

Until now a write's change events were made by the HTTP layer after the commit and
held in memory until they were published: a crash in between lost them, and the
changes a write made to other objects (a router interface's port, the ports a network
delete removed) had no event at all.  Each service now records the events of every
object it changes, as rows of ``outbox_events`` in the same transaction; a publisher
sends them after the commit and deletes them (docs/architecture.md, "Change events").
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("topic", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_events")),
    )

