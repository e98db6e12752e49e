"""port security split, upstream's default security-group rules, external-network RBAC

Revision ID: 0005
Revises: 0004

- ``ports.anti_spoofing_enabled`` and ``ports.security_groups_enabled``: each half of
  port security on its own (NULL follows ``port_security_enabled``);
- ``security_group_rules.protocol_number`` and ``normalized_cidr``: what a rule's
  protocol and remote prefix mean, however the client spelled them (``tcp`` or ``6``,
  ``10.1.2.3/8`` or ``10.0.0.0/8``), and an index over what makes a rule a duplicate;
- the four rules upstream puts in every default group, as templates an operator
  may change (``/v2.0/default-security-group-rules``);
- networks already external get the ``access_as_external`` policy to ``*`` that
  external networks now carry (visibility to other projects follows the policies).
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

INGRESS = "Legacy default SG rule for ingress traffic"
EGRESS = "Legacy default SG rule for egress traffic"
#: (direction, ethertype, remote_group_id, description, used in default, in non-default)
LEGACY_RULES = (
    ("ingress", "IPv4", "PARENT", INGRESS, True, False),
    ("ingress", "IPv6", "PARENT", INGRESS, True, False),
    ("egress", "IPv4", None, EGRESS, True, True),
    ("egress", "IPv6", None, EGRESS, True, True),
)


def upgrade() -> None:
    with op.batch_alter_table("ports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("anti_spoofing_enabled", sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column("security_groups_enabled", sa.Boolean(), nullable=True))

    # nothing wrote rules before this revision (0003 made the tables for it): no backfill
    with op.batch_alter_table("security_group_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("protocol_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("normalized_cidr", sa.String(length=64), nullable=True))
        batch_op.create_index("ix_security_group_rules_match", [
            "security_group_id", "protocol_number", "port_range_min", "port_range_max",
            "remote_group_id", "normalized_cidr"], unique=False)

    conn = op.get_bind()
    meta = sa.MetaData()
    templates = sa.Table("default_security_group_rules", meta, autoload_with=conn)
    if not conn.scalar(sa.select(sa.func.count()).select_from(templates)):
        conn.execute(templates.insert(), [
            {"id": str(uuid.uuid4()), "description": description, "direction": direction,
             "ethertype": ethertype, "protocol": None, "port_range_min": None,
             "port_range_max": None, "remote_ip_prefix": None, "remote_group_id": remote,
             "remote_address_group_id": None, "used_in_default_sg": default_sg,
             "used_in_non_default_sg": other_sg}
            for direction, ethertype, remote, description, default_sg, other_sg
            in LEGACY_RULES])

    networks = sa.Table("networks", meta, autoload_with=conn)
    rbacs = sa.Table("network_rbacs", meta, autoload_with=conn)
    have = sa.select(rbacs.c.object_id).where(rbacs.c.action == "access_as_external",
                                              rbacs.c.target_project == "*")
    external = conn.execute(sa.select(networks.c.id, networks.c.project_id).where(
        networks.c.router_external.is_(True), networks.c.id.notin_(have))).all()
    if external:
        conn.execute(rbacs.insert(), [
            {"id": str(uuid.uuid4()), "object_id": net_id, "project_id": project,
             "target_project": "*", "action": "access_as_external"}
            for net_id, project in external])
