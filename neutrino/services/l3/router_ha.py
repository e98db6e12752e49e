"""Each project's HA network (l3-ha), as upstream shows it to an admin.

An admin's ``ha: true`` router gets its project an HA network, the link its routers'
VRRP instances would talk over: ``HA network project <project id>`` with one subnet,
``HA subnet project <project id>`` (``l3_ha_net_cidr``, no gateway, no DHCP), both
owned by no project (so only admins see them, and no project's quota pays for them),
on a segment of ``l3_ha_network_type`` (the tenant network type by default).

The project's HA routers share it.  It is made with the first of them (created HA or
updated to HA) and removed with the last (deleted or updated to non-HA), unless
something else was put on it.  Upstream keeps it as long as HA ports of L3 agents are on
it; Neutrino makes no HA ports (its routers are not VRRP pairs), so "the project has HA
routers" is the rule that gives a user the same network over the same lifetime.

Concurrency: ``router_ha_networks`` is keyed by project, so two transactions making a
project's HA network at once collide there and the loser is retried whole (and finds
the winner's).  Making and removing it both lock that row first (``FOR UPDATE``; SQLite
writers are serial anyway), so a router made while the last one goes either sees the
network gone and makes another, or keeps the old one alive.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.services.core import collection as c
from neutrino.services.l2 import ipam
from neutrino.services.l2.networks import NETWORK_OWNED_PORTS, Networks

#: upstream's names (neutron-lib's HA_NETWORK_NAME and its subnet's)
HA_NETWORK_NAME = "HA network project %s"
HA_SUBNET_NAME = "HA subnet project %s"
HA = t.router_ha_networks


class HaNetworks:
    def __init__(self, settings: Settings, networks: Networks) -> None:
        self.settings = settings
        self.networks = networks

    @staticmethod
    def network_of(conn: Connection, project_id: str, *, lock: bool = False) -> str | None:
        """The project's HA network; with ``lock``, its row stays ours to the commit."""
        query = sa.select(HA.c.network_id).where(HA.c.project_id == project_id)
        if lock and conn.dialect.name != "sqlite":
            query = query.with_for_update()
        return conn.scalar(query)

    def ensure(self, conn: Connection, project_id: str) -> str:
        """The project's HA network, made now if it has none."""
        existing = self.network_of(conn, project_id, lock=True)
        if existing is not None:
            return existing
        ntype = self.settings.l3_ha_network_type or self.settings.tenant_network_type
        # revision 2, as upstream's: made, then changed by its subnet
        row = c.standard_row("", {"name": HA_NETWORK_NAME % project_id}, revision=2)
        row.update({"admin_state_up": True, "status": "ACTIVE",
                    "mtu": self.networks.segments.max_mtu(ntype), "router_external": False,
                    "port_security_enabled": True, "availability_zone_hints": [],
                    "is_default": False})
        conn.execute(t.networks.insert().values(row))
        # right after the network (the key refers to it): a concurrent maker fails here,
        # before it allocates anything
        conn.execute(HA.insert().values(project_id=project_id, network_id=row["id"]))
        self.networks.segments.allocate(conn, row["id"], {"provider:network_type": ntype})
        self._make_subnet(conn, row["id"], project_id)
        return row["id"]

    def _make_subnet(self, conn: Connection, network_id: str, project_id: str) -> None:
        net = ipam.network(self.settings.l3_ha_net_cidr)
        sub = c.standard_row("", {"name": HA_SUBNET_NAME % project_id})
        sub.update({"network_id": network_id, "ip_version": net.version, "cidr": str(net),
                    "gateway_ip": None, "enable_dhcp": False, "ipv6_ra_mode": None,
                    "ipv6_address_mode": None, "service_types": []})
        conn.execute(t.subnets.insert().values(sub))
        pools = ipam.default_pools(net, None)
        if pools:
            conn.execute(t.allocation_pools.insert(), [
                {"subnet_id": sub["id"], "first_ip": str(p.start), "last_ip": str(p.end)}
                for p in pools])

    def release(self, conn: Connection, project_id: str, router_id: str) -> None:
        """``router_id`` is no longer one of the project's HA routers (deleted, or made
        non-HA): remove the HA network if no other HA router of the project remains."""
        network_id = self.network_of(conn, project_id, lock=True)
        if network_id is None:  # an admin deleted it already
            return
        other = conn.scalar(sa.select(t.routers.c.id).where(
            t.routers.c.project_id == project_id, t.routers.c.ha.is_(True),
            t.routers.c.id != router_id).limit(1))
        if other is not None:
            return
        # what an admin put on it keeps it, as upstream (its delete is refused, and ignored)
        if conn.scalar(sa.select(t.ports.c.id).where(
                t.ports.c.network_id == network_id,
                t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS)).limit(1)) is not None:
            return
        self.networks.delete(conn, Context.admin(), network_id)  # its row here cascades
