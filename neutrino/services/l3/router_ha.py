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
from neutrino.services.l2.device_owners import NETWORK_OWNED_PORTS
from neutrino.services.l2.networks import Networks
from neutrino.services.l2.subnets import Subnets

#: upstream's names (neutron-lib's HA_NETWORK_NAME and its subnet's)
HA_NETWORK_NAME = "HA network project %s"
HA_SUBNET_NAME = "HA subnet project %s"
HA = t.router_ha_networks


class HaNetworks:
    """Made and removed through the network and subnet services."""

    def __init__(self, settings: Settings, networks: Networks, subnets: Subnets) -> None:
        self.settings = settings
        self.networks = networks
        self.subnets = subnets

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
        network_id = self.networks.create_owned(
            conn, project_id="", name=HA_NETWORK_NAME % project_id, network_type=ntype)
        # a concurrent maker fails here (the key is the project) and is retried whole
        conn.execute(HA.insert().values(project_id=project_id, network_id=network_id))
        # revision 2, as upstream's: made, then changed by its subnet
        self.subnets.create_owned(conn, network_id=network_id, project_id="",
                                  name=HA_SUBNET_NAME % project_id,
                                  cidr=self.settings.l3_ha_net_cidr)
        return network_id

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
