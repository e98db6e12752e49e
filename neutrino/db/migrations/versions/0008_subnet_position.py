"""subnets.position: the order a network's subnets were made in

Revision ID: 0008
Revises: 0007

A port without fixed IPs takes its address from the first subnet of each IP version
that has one free, in the order the subnets were made (as upstream).  ``created_at``
has whole seconds only, so two subnets made in one second had no order; ``position``
counts 1, 2, ... per network.  Existing subnets are numbered by (created_at, id), the
order used until now.
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subnets", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("position", sa.Integer(), server_default="0", nullable=False))

    conn = op.get_bind()
    subnets = sa.Table("subnets", sa.MetaData(), autoload_with=conn)
    rows = conn.execute(sa.select(subnets.c.id, subnets.c.network_id).order_by(
        subnets.c.network_id, subnets.c.created_at, subnets.c.id)).all()
    counts: dict[str, int] = {}
    for subnet_id, network_id in rows:
        counts[network_id] = counts.get(network_id, 0) + 1
        conn.execute(subnets.update().where(subnets.c.id == subnet_id).values(
            position=counts[network_id]))
