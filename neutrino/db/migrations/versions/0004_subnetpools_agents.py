"""subnet pools and agents

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "agents",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("agent_type", sa.String(length=255), nullable=False),
        sa.Column("binary", sa.String(length=255), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("availability_zone", sa.String(length=255), nullable=True),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("started_at", sa.String(length=20), nullable=False),
        sa.Column("heartbeat_timestamp", sa.String(length=20), nullable=False),
        sa.Column("configurations", sa.JSON(), nullable=False),
        sa.Column("resources_synced", sa.Boolean(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_agents")),
        sa.UniqueConstraint("agent_type", "host", name="uq_agents_type_host"),
    )
    op.create_table(
        "subnetpools",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.Column("revision_number", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("default_prefixlen", sa.Integer(), nullable=False),
        sa.Column("min_prefixlen", sa.Integer(), nullable=False),
        sa.Column("max_prefixlen", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("default_quota", sa.Integer(), nullable=True),
        sa.Column("address_scope_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subnetpools")),
    )
    with op.batch_alter_table("subnetpools", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subnetpools_project_id"), ["project_id"], unique=False)

    op.create_table(
        "subnetpool_prefixes",
        sa.Column("subnetpool_id", sa.String(length=36), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnetpool_id"],
            ["subnetpools.id"],
            name=op.f("fk_subnetpool_prefixes_subnetpool_id_subnetpools"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnetpool_id", "cidr", name=op.f("pk_subnetpool_prefixes")),
    )
    op.create_table(
        "subnet_pool_allocations",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("subnetpool_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_subnet_pool_allocations_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subnetpool_id"],
            ["subnetpools.id"],
            name=op.f("fk_subnet_pool_allocations_subnetpool_id_subnetpools"),
        ),
        sa.PrimaryKeyConstraint("subnet_id", name=op.f("pk_subnet_pool_allocations")),
    )
    with op.batch_alter_table("subnet_pool_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subnet_pool_allocations_subnetpool_id"), ["subnetpool_id"], unique=False
        )
