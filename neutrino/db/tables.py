"""The relational schema.  Migrations in ``migrations/versions`` build exactly this.

Notes on choices:
- timestamps are stored as ISO-8601 text (``2026-01-01T00:00:00Z``), the form the
  API returns; it sorts correctly and costs nothing to render;
- ``segments.physical_network`` is ``''`` and ``segmentation_id`` is ``0`` where
  a network type has none, so the unique key really prevents two networks from
  sharing a segment on every backend (NULLs never collide in a unique key).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

ID = sa.String(36)


def _standard_columns() -> list[sa.Column]:
    return [
        sa.Column("id", ID, primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.String(20), nullable=False),
        sa.Column("revision_number", sa.BigInteger, nullable=False, server_default="0"),
    ]


networks = sa.Table(
    "networks", metadata,
    *_standard_columns(),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("mtu", sa.Integer, nullable=False),
    sa.Column("router_external", sa.Boolean, nullable=False),
    sa.Column("port_security_enabled", sa.Boolean, nullable=False),
    sa.Column("availability_zone_hints", sa.JSON, nullable=False),
    # the external network auto-allocated topologies would use (at most one)
    sa.Column("is_default", sa.Boolean, nullable=False, server_default=sa.false()),
)

segments = sa.Table(
    "segments", metadata,
    sa.Column("network_id", ID, sa.ForeignKey("networks.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("network_type", sa.String(32), nullable=False),
    sa.Column("physical_network", sa.String(64), nullable=False),
    sa.Column("segmentation_id", sa.Integer, nullable=False),
    sa.UniqueConstraint("network_type", "physical_network", "segmentation_id",
                        name="uq_segments_allocation"),
)

network_rbacs = sa.Table(
    "network_rbacs", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("object_id", ID, sa.ForeignKey("networks.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("target_project", sa.String(255), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.UniqueConstraint("object_id", "action", "target_project", name="uq_network_rbacs_target"),
)

subnets = sa.Table(
    "subnets", metadata,
    *_standard_columns(),
    sa.Column("network_id", ID, sa.ForeignKey("networks.id"), nullable=False, index=True),
    sa.Column("ip_version", sa.Integer, nullable=False),
    sa.Column("cidr", sa.String(64), nullable=False),
    sa.Column("gateway_ip", sa.String(64), nullable=True),
    sa.Column("enable_dhcp", sa.Boolean, nullable=False),
    sa.Column("ipv6_ra_mode", sa.String(16), nullable=True),
    sa.Column("ipv6_address_mode", sa.String(16), nullable=True),
    sa.Column("service_types", sa.JSON, nullable=False),
    # creation order among the network's subnets (1, 2, ...; migration 0008)
    sa.Column("position", sa.Integer, nullable=False, server_default="0"),
)

allocation_pools = sa.Table(
    "allocation_pools", metadata,
    sa.Column("subnet_id", ID, sa.ForeignKey("subnets.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("first_ip", sa.String(64), primary_key=True),
    sa.Column("last_ip", sa.String(64), nullable=False),
)

dns_nameservers = sa.Table(
    "dns_nameservers", metadata,
    sa.Column("subnet_id", ID, sa.ForeignKey("subnets.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("address", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)

host_routes = sa.Table(
    "host_routes", metadata,
    sa.Column("subnet_id", ID, sa.ForeignKey("subnets.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("destination", sa.String(64), primary_key=True),
    sa.Column("nexthop", sa.String(64), primary_key=True),
)

ports = sa.Table(
    "ports", metadata,
    *_standard_columns(),
    sa.Column("network_id", ID, sa.ForeignKey("networks.id"), nullable=False, index=True),
    sa.Column("mac_address", sa.String(32), nullable=False),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("device_id", sa.String(255), nullable=False, index=True),
    sa.Column("device_owner", sa.String(255), nullable=False),
    sa.Column("port_security_enabled", sa.Boolean, nullable=False),
    # each half of port security on its own (port-security-split); NULL follows
    # port_security_enabled
    sa.Column("anti_spoofing_enabled", sa.Boolean, nullable=True),
    sa.Column("security_groups_enabled", sa.Boolean, nullable=True),
    sa.Column("binding_host_id", sa.String(255), nullable=False),
    sa.Column("binding_vnic_type", sa.String(64), nullable=False),
    sa.Column("binding_profile", sa.JSON, nullable=False),
    sa.Column("binding_vif_type", sa.String(64), nullable=False),
    sa.Column("binding_vif_details", sa.JSON, nullable=False),
    sa.UniqueConstraint("network_id", "mac_address", name="uq_ports_network_mac"),
)

ip_allocations = sa.Table(
    "ip_allocations", metadata,
    # The primary key is what makes a double allocation impossible on every backend.
    sa.Column("subnet_id", ID, sa.ForeignKey("subnets.id"), primary_key=True),
    sa.Column("ip_address", sa.String(64), primary_key=True),
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("network_id", ID, nullable=False, index=True),
)

address_pairs = sa.Table(
    "address_pairs", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("ip_address", sa.String(64), primary_key=True),
    sa.Column("mac_address", sa.String(32), primary_key=True),
)

dhcp_options = sa.Table(
    "dhcp_options", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("opt_name", sa.String(64), primary_key=True),
    sa.Column("ip_version", sa.Integer, primary_key=True),
    sa.Column("opt_value", sa.String(255), nullable=False),
)

tags = sa.Table(
    "tags", metadata,
    sa.Column("resource_id", ID, primary_key=True),
    sa.Column("tag", sa.String(255), primary_key=True),
    sa.Index("ix_tags_tag", "tag"),
)

quotas = sa.Table(
    "quotas", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("limit", sa.Integer, nullable=False),
)

# one row per project that has made something under a quota: a create locks its
# project's row (SELECT ... FOR UPDATE) before counting, so two transactions of one
# project never both see the last free slot (services/core/quotas.py)
project_locks = sa.Table(
    "project_locks", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
)

# -- identity (the embedded Keystone v3 subset) --------------------------------

identity_domains = sa.Table(
    "identity_domains", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False),
)

identity_projects = sa.Table(
    "identity_projects", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", sa.String(64), sa.ForeignKey("identity_domains.id"),
              nullable=False),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.UniqueConstraint("domain_id", "name", name="uq_identity_projects_name"),
)

identity_users = sa.Table(
    "identity_users", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("domain_id", sa.String(64), sa.ForeignKey("identity_domains.id"),
              nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=True),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("default_project_id", sa.String(64), nullable=True),
    sa.Column("email", sa.String(255), nullable=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    # consecutive failed password authentications, and when the last one was
    # (Keystone's lockout: [security_compliance] lockout_failure_attempts)
    sa.Column("failed_auth_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("failed_auth_at", sa.String(32), nullable=True),
    sa.UniqueConstraint("domain_id", "name", name="uq_identity_users_name"),
)

identity_roles = sa.Table(
    "identity_roles", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
)

identity_assignments = sa.Table(
    "identity_assignments", metadata,
    # target_type: "project", "domain" or "system"; target_id "all" for system
    sa.Column("target_type", sa.String(16), primary_key=True),
    sa.Column("target_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("identity_users.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("role_id", sa.String(64), sa.ForeignKey("identity_roles.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Index("ix_identity_assignments_user", "user_id"),
)

identity_tokens = sa.Table(
    "identity_tokens", metadata,
    # only a hash of the token is kept: a copy of the database grants nothing
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(64), sa.ForeignKey("identity_users.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("project_id", sa.String(64), nullable=True),
    sa.Column("domain_id", sa.String(64), nullable=True),
    sa.Column("system", sa.Boolean, nullable=False),
    sa.Column("methods", sa.String(64), nullable=False),
    sa.Column("audit_id", sa.String(32), nullable=False),
    sa.Column("issued_at", sa.String(32), nullable=False),
    sa.Column("expires_at", sa.String(32), nullable=False, index=True),
    sa.Column("revoked", sa.Boolean, nullable=False),
)

identity_auth_failures = sa.Table(
    "identity_auth_failures", metadata,
    # failed password authentications per source address and per user name, in a
    # fixed window; the key is a SHA-256 of "address:..." or "user:...", so any name fits
    sa.Column("key_hash", sa.String(64), primary_key=True),
    sa.Column("window_start", sa.String(32), nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)

identity_state = sa.Table(
    "identity_state", metadata,
    # one row: bumped by every identity change that can alter what a token means, so a
    # process trusts its cached validations only while this is unchanged
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("revision", sa.BigInteger, nullable=False),
)

# -- routers and floating IPs ---------------------------------------------------

routers = sa.Table(
    "routers", metadata,
    *_standard_columns(),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    # the port on the external network; SNAT applies when enable_snat
    sa.Column("gw_port_id", ID, sa.ForeignKey("ports.id"), nullable=True),
    sa.Column("enable_snat", sa.Boolean, nullable=False),
    sa.Column("distributed", sa.Boolean, nullable=False),
    sa.Column("ha", sa.Boolean, nullable=False),
    sa.Column("availability_zone_hints", sa.JSON, nullable=False),
)

router_ports = sa.Table(
    "router_ports", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("router_id", ID, sa.ForeignKey("routers.id", ondelete="CASCADE"),
              nullable=False, index=True),
    # network:router_interface or network:router_gateway
    sa.Column("port_type", sa.String(64), nullable=False),
)

# each project's HA network (l3-ha), shared by its HA routers: one per project, and the
# primary key is what keeps two routers made at once from making two
router_ha_networks = sa.Table(
    "router_ha_networks", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("network_id", ID, sa.ForeignKey("networks.id", ondelete="CASCADE"),
              nullable=False, unique=True),
)

router_routes = sa.Table(
    "router_routes", metadata,
    sa.Column("router_id", ID, sa.ForeignKey("routers.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("destination", sa.String(64), primary_key=True),
    sa.Column("nexthop", sa.String(64), primary_key=True),
)

floatingips = sa.Table(
    "floatingips", metadata,
    *_standard_columns(),
    sa.Column("floating_network_id", ID, sa.ForeignKey("networks.id"), nullable=False,
              index=True),
    # the port on the external network that holds the address
    sa.Column("floating_port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    sa.Column("floating_ip_address", sa.String(64), nullable=False),
    sa.Column("fixed_port_id", ID, sa.ForeignKey("ports.id", ondelete="SET NULL"),
              nullable=True, index=True),
    sa.Column("fixed_ip_address", sa.String(64), nullable=True),
    sa.Column("router_id", ID, sa.ForeignKey("routers.id"), nullable=True, index=True),
    sa.Column("status", sa.String(16), nullable=False),
    # one floating IP per fixed IP (NULLs, i.e. unassociated, never collide)
    sa.UniqueConstraint("floating_network_id", "fixed_port_id", "fixed_ip_address",
                        name="uq_floatingips_fixed"),
)

# -- security groups -------------------------------------------------------------

security_groups = sa.Table(
    "security_groups", metadata,
    *_standard_columns(),
    sa.Column("stateful", sa.Boolean, nullable=False),
)

security_group_rules = sa.Table(
    "security_group_rules", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("project_id", sa.String(255), nullable=False, index=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("updated_at", sa.String(20), nullable=False),
    sa.Column("revision_number", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("security_group_id", ID, sa.ForeignKey("security_groups.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("ethertype", sa.String(8), nullable=False),
    # as the client spelled it, one spelling per form (a lower-case name or the number
    # as decimal text, as upstream shows it back); NULL = any
    sa.Column("protocol", sa.String(40), nullable=True),
    # what the rule means, whatever the spelling: duplicates, filters and the data plane
    # compare this (6 for "tcp" and "6"); NULL = any
    sa.Column("protocol_number", sa.Integer, nullable=True),
    sa.Column("port_range_min", sa.Integer, nullable=True),
    sa.Column("port_range_max", sa.Integer, nullable=True),
    sa.Column("remote_ip_prefix", sa.String(64), nullable=True),
    # the network of remote_ip_prefix (10.1.2.3/8 -> 10.0.0.0/8): what the rule means
    sa.Column("normalized_cidr", sa.String(64), nullable=True),
    # a rule names its remote group once; members are never expanded into rows
    sa.Column("remote_group_id", ID, sa.ForeignKey("security_groups.id", ondelete="CASCADE"),
              nullable=True, index=True),
    sa.Column("remote_address_group_id", ID, nullable=True),
    # the duplicate check's lookup: O(log n) however many rules a group has
    sa.Index("ix_security_group_rules_match", "security_group_id", "protocol_number",
             "port_range_min", "port_range_max", "remote_group_id", "normalized_cidr"),
)

port_security_groups = sa.Table(
    "port_security_groups", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("security_group_id", ID, sa.ForeignKey("security_groups.id"), primary_key=True,
              index=True),
)

default_security_groups = sa.Table(
    "default_security_groups", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("security_group_id", ID, sa.ForeignKey("security_groups.id", ondelete="CASCADE"),
              nullable=False, unique=True),
)

default_security_group_rules = sa.Table(
    "default_security_group_rules", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("direction", sa.String(16), nullable=False),
    sa.Column("ethertype", sa.String(8), nullable=False),
    sa.Column("protocol", sa.String(40), nullable=True),
    sa.Column("port_range_min", sa.Integer, nullable=True),
    sa.Column("port_range_max", sa.Integer, nullable=True),
    sa.Column("remote_ip_prefix", sa.String(64), nullable=True),
    # "PARENT" stands for the group the rule is copied into
    sa.Column("remote_group_id", sa.String(36), nullable=True),
    sa.Column("remote_address_group_id", ID, nullable=True),
    sa.Column("used_in_default_sg", sa.Boolean, nullable=False),
    sa.Column("used_in_non_default_sg", sa.Boolean, nullable=False),
)

securitygroup_rbacs = sa.Table(
    "securitygroup_rbacs", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("object_id", ID, sa.ForeignKey("security_groups.id", ondelete="CASCADE"),
              nullable=False, index=True),
    sa.Column("project_id", sa.String(255), nullable=False),
    sa.Column("target_project", sa.String(255), nullable=False, index=True),
    sa.Column("action", sa.String(32), nullable=False),
    sa.UniqueConstraint("object_id", "action", "target_project",
                        name="uq_securitygroup_rbacs_target"),
)

# -- subnet pools ------------------------------------------------------------------

subnetpools = sa.Table(
    "subnetpools", metadata,
    *_standard_columns(),
    sa.Column("ip_version", sa.Integer, nullable=False),
    sa.Column("default_prefixlen", sa.Integer, nullable=False),
    sa.Column("min_prefixlen", sa.Integer, nullable=False),
    sa.Column("max_prefixlen", sa.Integer, nullable=False),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("is_default", sa.Boolean, nullable=False),
    sa.Column("default_quota", sa.Integer, nullable=True),
    sa.Column("address_scope_id", ID, nullable=True),
)

subnetpool_prefixes = sa.Table(
    "subnetpool_prefixes", metadata,
    sa.Column("subnetpool_id", ID, sa.ForeignKey("subnetpools.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("cidr", sa.String(64), primary_key=True),
)

# which pool a subnet's range came from (NULL: given explicitly)
subnet_pool_allocations = sa.Table(
    "subnet_pool_allocations", metadata,
    sa.Column("subnet_id", ID, sa.ForeignKey("subnets.id", ondelete="CASCADE"),
              primary_key=True),
    sa.Column("subnetpool_id", ID, sa.ForeignKey("subnetpools.id"), nullable=False,
              index=True),
)

# -- agents ---------------------------------------------------------------------------

agents = sa.Table(
    "agents", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("agent_type", sa.String(255), nullable=False),
    sa.Column("binary", sa.String(255), nullable=False),
    sa.Column("topic", sa.String(255), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("availability_zone", sa.String(255), nullable=True),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", sa.String(20), nullable=False),
    sa.Column("started_at", sa.String(20), nullable=False),
    sa.Column("heartbeat_timestamp", sa.String(20), nullable=False),
    sa.Column("configurations", sa.JSON, nullable=False),
    sa.Column("resources_synced", sa.Boolean, nullable=True),
    sa.UniqueConstraint("agent_type", "host", name="uq_agents_type_host"),
)

# -- realisation: what the hosts report back (services/realisation) -------------------


def _realisations(name: str, target: str, key: str, state: sa.Column) -> sa.Table:
    """What each host's components realised of one kind of object, as last reported:
    one row per object, component and host, with the revision of the object the agent
    was given, its state and when it said so.  Siblings of one shape: ports (l2, dhcp),
    routers and floating IPs (l3); HA router states (``ha``: active/standby per agent),
    load-balancer members (health) and firewall groups come the same way.  Written in
    the report's transaction; statuses are derived from these rows."""
    return sa.Table(
        name, metadata,
        sa.Column(key, ID, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("component", sa.String(16), primary_key=True),
        sa.Column("host", sa.String(255), primary_key=True),
        sa.Column("revision", sa.BigInteger, nullable=False),
        state,
        sa.Column("updated_at", sa.String(20), nullable=False),
    )


port_realisations = _realisations("port_realisations", "ports", "port_id",
                                  sa.Column("up", sa.Boolean, nullable=False))
router_realisations = _realisations("router_realisations", "routers", "router_id",
                                    sa.Column("status", sa.String(16), nullable=False))
floatingip_realisations = _realisations("floatingip_realisations", "floatingips",
                                        "floatingip_id",
                                        sa.Column("status", sa.String(16), nullable=False))

# a port's status write bumps its revision_number (as upstream's does) but asks nothing
# new of the hosts: the revision that write made, and the revision the hosts had to
# realise then, so that a report of that revision still counts afterwards
port_status_writes = sa.Table(
    "port_status_writes", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("written_revision", sa.BigInteger, nullable=False),
    sa.Column("desired_revision", sa.BigInteger, nullable=False),
)

# one row: the generation of the desired state, bumped just before the commit of every
# transaction whose changes the bus publishes (so generations follow commit order); a
# snapshot carries the value read before the state, so it holds every change up to it
bus_generation = sa.Table(
    "bus_generation", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("generation", sa.BigInteger, nullable=False),
)

# the transactional outbox: the change events of each write, inserted in its transaction
# and deleted by the publisher once the bus took them (neutrino.rpc.publisher), so a
# crash between commit and publish loses none.  ``payload`` is the message's wire form
# (versioned, neutrino.bus.messages); kind and object_id say what it is about, for
# people reading the table.  ``id`` orders the rows (an INTEGER primary key on SQLite,
# the rowid, so that it counts by itself there too)
outbox_events = sa.Table(
    "outbox_events", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("topic", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("object_id", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("created_at", sa.String(32), nullable=False),
)

# -- FWaaS v2 (services/firewall) -----------------------------------------------------

firewall_rules = sa.Table(
    "firewall_rules", metadata,
    *_standard_columns(),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("protocol", sa.String(40), nullable=True),
    sa.Column("ip_version", sa.Integer, nullable=False),
    sa.Column("source_ip_address", sa.String(64), nullable=True),
    sa.Column("destination_ip_address", sa.String(64), nullable=True),
    sa.Column("source_port", sa.String(16), nullable=True),
    sa.Column("destination_port", sa.String(16), nullable=True),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False),
)

firewall_policies = sa.Table(
    "firewall_policies", metadata,
    *_standard_columns(),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("audited", sa.Boolean, nullable=False),
)

# a policy's rules in order; a rule may be in several policies (never twice in one), and
# is not deleted while any holds it (no cascade from the rule)
firewall_policy_rules = sa.Table(
    "firewall_policy_rules", metadata,
    sa.Column("firewall_policy_id", ID,
              sa.ForeignKey("firewall_policies.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("firewall_rule_id", ID, sa.ForeignKey("firewall_rules.id"), primary_key=True,
              index=True),
    sa.Column("position", sa.Integer, nullable=False),
)

firewall_groups = sa.Table(
    "firewall_groups", metadata,
    *_standard_columns(),
    sa.Column("shared", sa.Boolean, nullable=False),
    sa.Column("admin_state_up", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("ingress_firewall_policy_id", ID, sa.ForeignKey("firewall_policies.id"),
              nullable=True, index=True),
    sa.Column("egress_firewall_policy_id", ID, sa.ForeignKey("firewall_policies.id"),
              nullable=True, index=True),
)

# the primary key keeps a port in one group at most; a deleted port leaves its group
firewall_group_ports = sa.Table(
    "firewall_group_ports", metadata,
    sa.Column("port_id", ID, sa.ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("firewall_group_id", ID,
              sa.ForeignKey("firewall_groups.id", ondelete="CASCADE"), nullable=False,
              index=True),
)

default_firewall_groups = sa.Table(
    "default_firewall_groups", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    sa.Column("firewall_group_id", ID,
              sa.ForeignKey("firewall_groups.id", ondelete="CASCADE"), nullable=False,
              unique=True),
)

# -- load balancing (Octavia v2 API: services/loadbalancer) ---------------------------
#
# One table per kind of object.  The columns are what keys, constraints, scopes and the
# status tree need; the rest of an object's attributes (timeouts, headers, TLS refs,
# monitor settings, ...) is its ``attrs`` JSON, read and written whole with the row.


def _lb_object(name: str, *columns: sa.schema.SchemaItem) -> sa.Table:
    return sa.Table(
        name, metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("project_id", sa.String(255), nullable=False, index=True),
        sa.Column("name", sa.String(255), nullable=False, server_default=""),
        sa.Column("description", sa.String(255), nullable=False, server_default=""),
        sa.Column("admin_state_up", sa.Boolean, nullable=False),
        sa.Column("provisioning_status", sa.String(16), nullable=False),
        sa.Column("operating_status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.String(20), nullable=False),
        sa.Column("updated_at", sa.String(20), nullable=False),
        sa.Column("attrs", sa.JSON, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        *columns,
    )


def _lb_fk(name: str = "loadbalancer_id", target: str = "lb_loadbalancers") -> sa.Column:
    return sa.Column(name, ID, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"),
                     nullable=False, index=True)


lb_loadbalancers = _lb_object(
    "lb_loadbalancers",
    sa.Column("provider", sa.String(64), nullable=False),
    sa.Column("vip_address", sa.String(64), nullable=True),
    # the Neutron port holding the VIP (no foreign key: the noop network mode has none)
    sa.Column("vip_port_id", ID, nullable=True),
    sa.Column("vip_subnet_id", ID, nullable=True),
    sa.Column("vip_network_id", ID, nullable=True),
    sa.Column("flavor_id", ID, nullable=True),
    sa.Column("availability_zone", sa.String(255), nullable=True),
)

lb_listeners = _lb_object(
    "lb_listeners", _lb_fk(),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("protocol_port", sa.Integer, nullable=False),
    # tcp / udp / sctp: two listeners of one load balancer never share a port of one
    sa.Column("transport", sa.String(8), nullable=False),
    sa.Column("default_pool_id", ID, nullable=True),
    sa.UniqueConstraint("loadbalancer_id", "transport", "protocol_port",
                        name="uq_lb_listeners_port"),
)

lb_pools = _lb_object(
    "lb_pools", _lb_fk(),
    sa.Column("protocol", sa.String(32), nullable=False),
    sa.Column("lb_algorithm", sa.String(32), nullable=False),
)

lb_members = _lb_object(
    "lb_members", _lb_fk(), _lb_fk("pool_id", "lb_pools"),
    sa.Column("address", sa.String(64), nullable=False),
    sa.Column("protocol_port", sa.Integer, nullable=False),
    sa.Column("subnet_id", ID, nullable=True),
    sa.UniqueConstraint("pool_id", "address", "protocol_port", name="uq_lb_members_endpoint"),
)

lb_healthmonitors = _lb_object(
    "lb_healthmonitors", _lb_fk(),
    # one monitor per pool, kept by the database
    sa.Column("pool_id", ID, sa.ForeignKey("lb_pools.id", ondelete="CASCADE"),
              nullable=False, unique=True),
    sa.Column("type", sa.String(32), nullable=False),
)

lb_l7policies = _lb_object(
    "lb_l7policies", _lb_fk(), _lb_fk("listener_id", "lb_listeners"),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("redirect_pool_id", ID, nullable=True),
)

lb_l7rules = _lb_object(
    "lb_l7rules", _lb_fk(), _lb_fk("l7policy_id", "lb_l7policies"),
    sa.Column("type", sa.String(32), nullable=False),
)

# a project's limits (NULL: the configured default; -1: unlimited)
lb_quotas = sa.Table(
    "lb_quotas", metadata,
    sa.Column("project_id", sa.String(255), primary_key=True),
    *(sa.Column(kind, sa.Integer, nullable=True)
      for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
                   "l7rule")),
)

lb_flavor_profiles = sa.Table(
    "lb_flavor_profiles", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("provider_name", sa.String(64), nullable=False),
    sa.Column("flavor_data", sa.Text, nullable=False),
)

lb_flavors = sa.Table(
    "lb_flavors", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("flavor_profile_id", ID, sa.ForeignKey("lb_flavor_profiles.id"),
              nullable=False),
)

lb_az_profiles = sa.Table(
    "lb_az_profiles", metadata,
    sa.Column("id", ID, primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("provider_name", sa.String(64), nullable=False),
    sa.Column("availability_zone_data", sa.Text, nullable=False),
)

lb_availability_zones = sa.Table(
    "lb_availability_zones", metadata,
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("description", sa.String(255), nullable=False, server_default=""),
    sa.Column("enabled", sa.Boolean, nullable=False),
    sa.Column("availability_zone_profile_id", ID, sa.ForeignKey("lb_az_profiles.id"),
              nullable=False),
)
