"""initial schema: networks, subnets, ports, IPAM, tags, quotas

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "networks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.Column("revision_number", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mtu", sa.Integer(), nullable=False),
        sa.Column("router_external", sa.Boolean(), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("availability_zone_hints", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_networks")),
    )
    with op.batch_alter_table("networks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_networks_project_id"), ["project_id"], unique=False)

    op.create_table(
        "quotas",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("limit", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "resource", name=op.f("pk_quotas")),
    )
    op.create_table(
        "tags",
        sa.Column("resource_id", sa.String(length=36), nullable=False),
        sa.Column("tag", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("resource_id", "tag", name=op.f("pk_tags")),
    )
    with op.batch_alter_table("tags", schema=None) as batch_op:
        batch_op.create_index("ix_tags_tag", ["tag"], unique=False)

    op.create_table(
        "network_rbacs",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("object_id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("target_project", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["object_id"],
            ["networks.id"],
            name=op.f("fk_network_rbacs_object_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_network_rbacs")),
        sa.UniqueConstraint(
            "object_id", "action", "target_project", name="uq_network_rbacs_target"
        ),
    )
    with op.batch_alter_table("network_rbacs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_network_rbacs_object_id"), ["object_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_network_rbacs_target_project"), ["target_project"], unique=False
        )

    op.create_table(
        "ports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.Column("revision_number", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("device_id", sa.String(length=255), nullable=False),
        sa.Column("device_owner", sa.String(length=255), nullable=False),
        sa.Column("port_security_enabled", sa.Boolean(), nullable=False),
        sa.Column("binding_host_id", sa.String(length=255), nullable=False),
        sa.Column("binding_vnic_type", sa.String(length=64), nullable=False),
        sa.Column("binding_profile", sa.JSON(), nullable=False),
        sa.Column("binding_vif_type", sa.String(length=64), nullable=False),
        sa.Column("binding_vif_details", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_ports_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ports")),
        sa.UniqueConstraint("network_id", "mac_address", name="uq_ports_network_mac"),
    )
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ports_device_id"), ["device_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ports_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_ports_project_id"), ["project_id"], unique=False)

    op.create_table(
        "segments",
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("network_type", sa.String(length=32), nullable=False),
        sa.Column("physical_network", sa.String(length=64), nullable=False),
        sa.Column("segmentation_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"],
            ["networks.id"],
            name=op.f("fk_segments_network_id_networks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("network_id", name=op.f("pk_segments")),
        sa.UniqueConstraint(
            "network_type", "physical_network", "segmentation_id", name="uq_segments_allocation"
        ),
    )
    op.create_table(
        "subnets",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("description", sa.String(length=255), server_default="", nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.Column("revision_number", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("cidr", sa.String(length=64), nullable=False),
        sa.Column("gateway_ip", sa.String(length=64), nullable=True),
        sa.Column("enable_dhcp", sa.Boolean(), nullable=False),
        sa.Column("ipv6_ra_mode", sa.String(length=16), nullable=True),
        sa.Column("ipv6_address_mode", sa.String(length=16), nullable=True),
        sa.Column("service_types", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["network_id"], ["networks.id"], name=op.f("fk_subnets_network_id_networks")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subnets")),
    )
    with op.batch_alter_table("subnets", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subnets_network_id"), ["network_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_subnets_project_id"), ["project_id"], unique=False)

    op.create_table(
        "address_pairs",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("mac_address", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["ports.id"],
            name=op.f("fk_address_pairs_port_id_ports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "port_id", "ip_address", "mac_address", name=op.f("pk_address_pairs")
        ),
    )
    op.create_table(
        "allocation_pools",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("first_ip", sa.String(length=64), nullable=False),
        sa.Column("last_ip", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_allocation_pools_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "first_ip", name=op.f("pk_allocation_pools")),
    )
    op.create_table(
        "dhcp_options",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("opt_name", sa.String(length=64), nullable=False),
        sa.Column("ip_version", sa.Integer(), nullable=False),
        sa.Column("opt_value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["ports.id"],
            name=op.f("fk_dhcp_options_port_id_ports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("port_id", "opt_name", "ip_version", name=op.f("pk_dhcp_options")),
    )
    op.create_table(
        "dns_nameservers",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_dns_nameservers_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "address", name=op.f("pk_dns_nameservers")),
    )
    op.create_table(
        "host_routes",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("destination", sa.String(length=64), nullable=False),
        sa.Column("nexthop", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["subnet_id"],
            ["subnets.id"],
            name=op.f("fk_host_routes_subnet_id_subnets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subnet_id", "destination", "nexthop", name=op.f("pk_host_routes")),
    )
    op.create_table(
        "ip_allocations",
        sa.Column("subnet_id", sa.String(length=36), nullable=False),
        sa.Column("ip_address", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("network_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["ports.id"],
            name=op.f("fk_ip_allocations_port_id_ports"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subnet_id"], ["subnets.id"], name=op.f("fk_ip_allocations_subnet_id_subnets")
        ),
        sa.PrimaryKeyConstraint("subnet_id", "ip_address", name=op.f("pk_ip_allocations")),
    )
    with op.batch_alter_table("ip_allocations", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_ip_allocations_network_id"), ["network_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_ip_allocations_port_id"), ["port_id"], unique=False)
