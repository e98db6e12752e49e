"""The external network ``neutrino up`` makes on first start (devstack's convention).

``public``: flat, on the physical network ``public``, external (``router:external``),
with the subnet 172.24.4.0/24 (gateway 172.24.4.1, no DHCP).  Routers take their
gateways on it and floating IPs come from it.  The host's agent realises it as the host
bridge ``br-ex`` (``bridge_mappings``), which holds the gateway address so that the
host's shell reaches every floating IP; nothing is forwarded beyond the host unless
``public_uplink_masquerade`` asks for it.

It is made only when the database has no external network at all, so an operator who
made their own, or removed this one and made another, is never second-guessed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.schema.resources import NETWORK, SUBNET
from neutrino.services.l2.networks import Networks
from neutrino.services.l2.subnets import SUBNET_ORDER, Subnets

#: the embedded identity's bootstrap project (the public network is the admin's)
_ADMIN_PROJECT = ("admin", "default")


def _admin_project(conn: Connection) -> str:
    found = conn.scalar(sa.select(t.identity_projects.c.id).where(
        t.identity_projects.c.name == _ADMIN_PROJECT[0],
        t.identity_projects.c.domain_id == _ADMIN_PROJECT[1]))
    return found or "admin"


class L2(Protocol):
    """What this needs of the composed services (neutrino.services.Services)."""

    networks: Networks
    subnets: Subnets


@dataclass(frozen=True)
class PublicNetwork:
    id: str
    made: bool  # now, by this call
    physical_network: str | None  # of a flat network, else None
    cidr: str | None  # its first IPv4 subnet
    gateway_ip: str | None


def _describe(conn: Connection, network_id: str, made: bool) -> PublicNetwork:
    seg = conn.execute(sa.select(t.segments).where(
        t.segments.c.network_id == network_id)).first()
    physnet = seg.physical_network if seg is not None and seg.network_type == "flat" else None
    sub = conn.execute(sa.select(t.subnets.c.cidr, t.subnets.c.gateway_ip).where(
        t.subnets.c.network_id == network_id, t.subnets.c.ip_version == 4)
        .order_by(*SUBNET_ORDER)).first()
    return PublicNetwork(network_id, made, physnet, sub.cidr if sub else None,
                         sub.gateway_ip if sub else None)


def ensure_public_network(db: Database, services: L2,
                          settings: Settings) -> PublicNetwork | None:
    """The external network named ``public_network_name``, made now if the database
    has no external network; None when others exist and none has that name."""
    cidr = ipaddress.ip_network(settings.public_subnet_cidr)

    def op(conn: Connection) -> PublicNetwork | None:
        external = conn.execute(sa.select(t.networks.c.id, t.networks.c.name).where(
            t.networks.c.router_external).order_by(t.networks.c.created_at)).all()
        if external:
            named = [r.id for r in external if r.name == settings.public_network_name]
            return _describe(conn, named[0], False) if named else None
        ctx = Context.admin(_admin_project(conn))
        net = services.networks.create(conn, ctx, NETWORK.validate_create({
            "name": settings.public_network_name, "router:external": True,
            "provider:network_type": "flat",
            "provider:physical_network": settings.public_physical_network,
            "description": "external network made by `neutrino up` (floating IPs, router "
                           "gateways)"}, is_admin=True))
        services.subnets.create(conn, ctx, SUBNET.validate_create({
            "network_id": net, "name": f"{settings.public_network_name}-subnet",
            "ip_version": cidr.version, "cidr": str(cidr),
            "gateway_ip": settings.public_gateway_ip, "enable_dhcp": False}, is_admin=True))
        return _describe(conn, net, True)

    return db.write(op)
