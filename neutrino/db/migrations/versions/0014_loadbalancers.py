"""load balancing: the Octavia v2 API's objects, quotas, flavors and zones

Revision ID: 0014
Revises: 0011 (lead: relink at merge)

One table per kind of object (load balancers, listeners, pools, members, health
monitors, L7 policies and rules), each with the columns keys and statuses need and the
other attributes as JSON; the children go with their load balancer (ON DELETE CASCADE).
Listeners are unique per load balancer, transport and port; members per pool, address
and port; a pool has at most one health monitor.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

ID = sa.String(length=36)


def _fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"],
                                   name=op.f(f"fk_{table}_{column}_{target}"),
                                   ondelete="CASCADE")


def _object(name: str, *extra: sa.schema.SchemaItem, index: tuple[str, ...] = ()) -> None:
    op.create_table(
        name,
        sa.Column("id", ID, nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("description", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("admin_state_up", sa.Boolean(), nullable=False),
        sa.Column("provisioning_status", sa.String(length=16), nullable=False),
        sa.Column("operating_status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.String(length=20), nullable=False),
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.Column("attrs", sa.JSON(), nullable=False),
        sa.Column("tags", sa.JSON(), nullable=False),
        *extra,
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    for column in ("project_id", *index):
        op.create_index(op.f(f"ix_{name}_{column}"), name, [column])


def upgrade() -> None:
    _object("lb_loadbalancers",
            sa.Column("provider", sa.String(length=64), nullable=False),
            sa.Column("vip_address", sa.String(length=64), nullable=True),
            sa.Column("vip_port_id", ID, nullable=True),
            sa.Column("vip_subnet_id", ID, nullable=True),
            sa.Column("vip_network_id", ID, nullable=True),
            sa.Column("flavor_id", ID, nullable=True),
            sa.Column("availability_zone", sa.String(length=255), nullable=True))
    _object("lb_listeners",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("protocol", sa.String(length=32), nullable=False),
            sa.Column("protocol_port", sa.Integer(), nullable=False),
            sa.Column("transport", sa.String(length=8), nullable=False),
            sa.Column("default_pool_id", ID, nullable=True),
            _fk("lb_listeners", "loadbalancer_id", "lb_loadbalancers"),
            sa.UniqueConstraint("loadbalancer_id", "transport", "protocol_port",
                                name="uq_lb_listeners_port"),
            index=("loadbalancer_id",))
    _object("lb_pools",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("protocol", sa.String(length=32), nullable=False),
            sa.Column("lb_algorithm", sa.String(length=32), nullable=False),
            _fk("lb_pools", "loadbalancer_id", "lb_loadbalancers"),
            index=("loadbalancer_id",))
    _object("lb_members",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("pool_id", ID, nullable=False),
            sa.Column("address", sa.String(length=64), nullable=False),
            sa.Column("protocol_port", sa.Integer(), nullable=False),
            sa.Column("subnet_id", ID, nullable=True),
            _fk("lb_members", "loadbalancer_id", "lb_loadbalancers"),
            _fk("lb_members", "pool_id", "lb_pools"),
            sa.UniqueConstraint("pool_id", "address", "protocol_port",
                                name="uq_lb_members_endpoint"),
            index=("loadbalancer_id", "pool_id"))
    _object("lb_healthmonitors",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("pool_id", ID, nullable=False),
            sa.Column("type", sa.String(length=32), nullable=False),
            _fk("lb_healthmonitors", "loadbalancer_id", "lb_loadbalancers"),
            _fk("lb_healthmonitors", "pool_id", "lb_pools"),
            sa.UniqueConstraint("pool_id", name=op.f("uq_lb_healthmonitors_pool_id")),
            index=("loadbalancer_id",))
    _object("lb_l7policies",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("listener_id", ID, nullable=False),
            sa.Column("action", sa.String(length=32), nullable=False),
            sa.Column("position", sa.Integer(), nullable=False),
            sa.Column("redirect_pool_id", ID, nullable=True),
            _fk("lb_l7policies", "loadbalancer_id", "lb_loadbalancers"),
            _fk("lb_l7policies", "listener_id", "lb_listeners"),
            index=("loadbalancer_id", "listener_id"))
    _object("lb_l7rules",
            sa.Column("loadbalancer_id", ID, nullable=False),
            sa.Column("l7policy_id", ID, nullable=False),
            sa.Column("type", sa.String(length=32), nullable=False),
            _fk("lb_l7rules", "loadbalancer_id", "lb_loadbalancers"),
            _fk("lb_l7rules", "l7policy_id", "lb_l7policies"),
            index=("loadbalancer_id", "l7policy_id"))
    op.create_table(
        "lb_quotas",
        sa.Column("project_id", sa.String(length=255), nullable=False),
        *(sa.Column(kind, sa.Integer(), nullable=True)
          for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor",
                       "l7policy", "l7rule")),
        sa.PrimaryKeyConstraint("project_id", name=op.f("pk_lb_quotas")),
    )
    op.create_table(
        "lb_flavor_profiles",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("provider_name", sa.String(length=64), nullable=False),
        sa.Column("flavor_data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_flavor_profiles")),
    )
    op.create_table(
        "lb_flavors",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("flavor_profile_id", ID, nullable=False),
        sa.ForeignKeyConstraint(["flavor_profile_id"], ["lb_flavor_profiles.id"],
                                name=op.f("fk_lb_flavors_flavor_profile_id_lb_flavor_profiles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_flavors")),
        sa.UniqueConstraint("name", name=op.f("uq_lb_flavors_name")),
    )
    op.create_table(
        "lb_az_profiles",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("provider_name", sa.String(length=64), nullable=False),
        sa.Column("availability_zone_data", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lb_az_profiles")),
    )
    op.create_table(
        "lb_availability_zones",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("description", sa.String(length=255), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("availability_zone_profile_id", ID, nullable=False),
        sa.ForeignKeyConstraint(
            ["availability_zone_profile_id"], ["lb_az_profiles.id"],
            name=op.f("fk_lb_availability_zones_availability_zone_profile_id_lb_az_profiles")),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_lb_availability_zones")),
    )


def downgrade() -> None:
    for name in ("lb_availability_zones", "lb_az_profiles", "lb_flavors",
                 "lb_flavor_profiles", "lb_quotas", "lb_l7rules", "lb_l7policies",
                 "lb_healthmonitors", "lb_members", "lb_pools", "lb_listeners",
                 "lb_loadbalancers"):
        op.drop_table(name)
