"""Subnets: address ranges of a network, their pools, gateway, DNS and routes.

Every change of a subnet records its event and its network's (a new revision of the
network: its ``subnets`` changed); the addresses ports hold on it are the port
service's, which records the ports' events.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.policy import sharing
from neutrino.schema.resources import SUBNET
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2 import ipam
from neutrino.services.l2.device_owners import NETWORK_OWNED_PORTS
from neutrino.services.l2.subnetpools import Allocation, SubnetPools, bad_subnet_request, pools_of

QUOTA = Counter("subnet", t.subnets)
#: the smallest MTU an IPv6 subnet can live with (RFC 8200)
IPV6_MIN_MTU = 1280
#: and an IPv4 one (RFC 791)
IPV4_MIN_MTU = 68
#: a network's subnets in the order they were made, as upstream lists them and tries
#: them for a port's address (``position`` counts per network: created_at has only
#: whole seconds)
SUBNET_ORDER = (t.subnets.c.position, t.subnets.c.id)


def mtu_conflict(network_id: str, minimum: int) -> errors.Conflict:
    return errors.Conflict(f"MTU of {network_id} is not valid, subnet requires a minimum of "
                           f"{minimum}", type="NetworkMTUSubnetConflict")


@dataclass(frozen=True, slots=True)
class SubnetInfo:
    """What port allocation needs to know of a subnet."""

    id: str
    network_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    ipv6_ra_mode: str | None
    ipv6_address_mode: str | None
    pools: tuple[ipam.Pool, ...]

    @property
    def auto_address(self) -> bool:
        return ipam.auto_address(self.ip_version, self.ipv6_ra_mode, self.ipv6_address_mode)


# built once: every port create reads its network's subnets (see collection.in_ids)
_SUBNETS_OF = sa.select(t.subnets).where(t.subnets.c.network_id == sa.bindparam("network_id")
                                         ).order_by(*SUBNET_ORDER)
_POOLS_OF = sa.select(t.allocation_pools.c.subnet_id, t.allocation_pools.c.first_ip,
                      t.allocation_pools.c.last_ip).where(c.in_ids(t.allocation_pools.c.subnet_id))
_DNS_OF = sa.select(t.dns_nameservers.c.subnet_id, t.dns_nameservers.c.address).where(
    c.in_ids(t.dns_nameservers.c.subnet_id)).order_by(t.dns_nameservers.c.position)
_ROUTES_OF = sa.select(t.host_routes.c.subnet_id, t.host_routes.c.destination,
                       t.host_routes.c.nexthop).where(c.in_ids(t.host_routes.c.subnet_id))
_LAST_POSITION = sa.select(sa.func.max(t.subnets.c.position)).where(
    t.subnets.c.network_id == sa.bindparam("network_id"))


def subnet_infos(conn: Connection, network_id: str) -> list[SubnetInfo]:
    """The network's subnets in creation order (the order a port tries them in), with
    their pools."""
    rows = conn.execute(_SUBNETS_OF, {"network_id": network_id}).all()
    pools: dict[str, list[ipam.Pool]] = {}
    if rows:
        for sid, first, last in conn.execute(_POOLS_OF, {"ids": [r.id for r in rows]}):
            pools.setdefault(sid, []).append(
                ipam.Pool(ipaddress.ip_address(first), ipaddress.ip_address(last)))
    return [SubnetInfo(r.id, r.network_id, r.ip_version, r.cidr, r.gateway_ip,
                       r.ipv6_ra_mode, r.ipv6_address_mode,
                       tuple(sorted(pools.get(r.id, []), key=lambda p: p.start)))
            for r in rows]


def scope(ctx: Context) -> ColumnElement[bool] | None:
    """Subnets are seen with their network: the project's own and those on networks
    shared with it or external to it."""
    if ctx.is_admin:
        return None
    return sa.or_(t.subnets.c.project_id == ctx.project_id,
                  t.subnets.c.network_id.in_(sharing.visible_network_ids(ctx)))


def _filter_subnetpool(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    wanted = [SUBNET.by_name["subnetpool_id"].convert_query(v) for v in values]
    alloc = t.subnet_pool_allocations
    return t.subnets.c.id.in_(sa.select(alloc.c.subnet_id).where(
        alloc.c.subnetpool_id.in_(wanted)))


def _filter_shared(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    # a subnet is shared when its network is shared with every project
    wanted = {SUBNET.by_name["shared"].convert_query(v) for v in values}
    on_shared = sharing.shared_with_everyone(t.subnets.c.network_id)
    if wanted == {True}:
        return on_shared
    return sa.not_(on_shared) if wanted == {False} else sa.true()


def _filter_external(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    wanted = {SUBNET.by_name["router:external"].convert_query(v) for v in values}
    ext = t.subnets.c.network_id.in_(
        sa.select(t.networks.c.id).where(t.networks.c.router_external.is_(True)))
    return ext if wanted == {True} else sa.not_(ext) if wanted == {False} else sa.true()


def render(conn: Connection, ctx: Context, rows: Sequence[Row],
           fields: c.Fields = None) -> list[dict]:
    ids = [r.id for r in rows]
    # read only the tables the shown attributes come from
    want_pools, want_dns, want_routes, want_tags, want_pool_id, want_external = (
        c.wants(fields, name) for name in ("allocation_pools", "dns_nameservers",
                                           "host_routes", "tags", "subnetpool_id",
                                           "router:external"))
    pools: dict[str, list[dict]] = {}
    dns: dict[str, list[str]] = {}
    routes: dict[str, list[dict]] = {}
    tags: dict[str, list[str]] = {}
    external: set[str] = set()
    for part in c.chunks(ids):
        if want_pools:
            for sid, first, last in conn.execute(_POOLS_OF, {"ids": part}):
                pools.setdefault(sid, []).append({"start": first, "end": last})
        if want_dns:
            for sid, address in conn.execute(_DNS_OF, {"ids": part}):
                dns.setdefault(sid, []).append(address)
        if want_routes:
            for sid, dest, hop in conn.execute(_ROUTES_OF, {"ids": part}):
                routes.setdefault(sid, []).append({"destination": dest, "nexthop": hop})
        if want_tags:
            tags.update(c.load_tags(conn, part))
    pools_by_subnet = pools_of(conn, ids) if want_pool_id else {}
    if want_external:
        net_ids = list({r.network_id for r in rows})
        for part in c.chunks(net_ids):
            external.update(conn.scalars(sa.select(t.networks.c.id).where(
                t.networks.c.id.in_(part), t.networks.c.router_external.is_(True))))
    out = []
    for r in rows:
        item = c.standard_attrs(r, tags.get(r.id, []) if want_tags else None)
        item.update({
            "network_id": r.network_id, "ip_version": r.ip_version, "cidr": r.cidr,
            "gateway_ip": r.gateway_ip, "enable_dhcp": r.enable_dhcp,
            "ipv6_ra_mode": r.ipv6_ra_mode, "ipv6_address_mode": r.ipv6_address_mode,
        })
        if want_pools:
            item["allocation_pools"] = _sorted_pools(pools.get(r.id, []))
        if want_dns:
            item["dns_nameservers"] = dns.get(r.id, [])
        if want_routes:
            item["host_routes"] = routes.get(r.id, [])
        if want_pool_id:
            item["subnetpool_id"] = pools_by_subnet.get(r.id)
        item["service_types"] = r.service_types
        if want_external:
            item["router:external"] = r.network_id in external
        out.append(item)
    return out


def _touched(conn: Connection, ident: str) -> None:
    network_id = conn.scalar(sa.select(t.subnets.c.network_id).where(t.subnets.c.id == ident))
    if network_id is not None:
        events.subnet(conn, ident, network_id)


def listing() -> c.Listing:
    """How subnets are read (the ports read them before the subnet service exists: it
    holds them)."""
    # sorting by the pool a subnet came from (as upstream allows): it is stored beside
    # the subnet, so the sort key is a subquery per row (filters use their own clause)
    alloc = t.subnet_pool_allocations
    pool = sa.select(alloc.c.subnetpool_id).where(
        alloc.c.subnet_id == t.subnets.c.id).scalar_subquery()
    return c.Listing(SUBNET, t.subnets, scope=scope, render=render, touched=_touched,
                     columns={"subnetpool_id": pool},
                     filters={"subnetpool_id": _filter_subnetpool,
                              "router:external": _filter_external, "shared": _filter_shared})


class PortAddresses(Protocol):
    """What a subnet change asks of the ports (the port service owns their addresses)."""

    def add_auto_addresses(self, conn: Connection, subnet: SubnetInfo) -> None:
        """A new SLAAC subnet: an address on it for every port of its network."""
        ...

    def release_subnet(self, conn: Connection, subnet_id: str) -> None:
        """A subnet going away: the addresses ports still hold on it go too."""
        ...


class Subnets:
    actions = c.NO_ACTIONS

    def __init__(self, settings: Settings, listing: c.Listing, networks: c.Listing,
                 ports: PortAddresses, quotas: Quotas, pools: SubnetPools,
                 guards: c.Guards = c.NO_GUARDS) -> None:
        self.settings = settings
        self.listing = listing
        self.networks = networks
        self.ports = ports
        self.quotas = quotas
        self.pools = pools
        self.guards = guards

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        return render(conn, ctx, rows, fields)

    def get_row(self, conn: Connection, ctx: Context, ident: str) -> Row:
        return self.listing.get_row(conn, ctx, ident)

    # -- what ports need ----------------------------------------------------

    def infos(self, conn: Connection, network_id: str) -> list[SubnetInfo]:
        return subnet_infos(conn, network_id)

    # -- writes -------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_subnet")
        network = self.networks.get_row(conn, ctx, body["network_id"])
        if not ctx.is_admin and network.project_id != ctx.project_id:
            raise errors.PolicyNotAuthorized("create_subnet")
        owner = policy.owner_for_create(ctx, body, "create_subnet")
        lock_rows(conn, t.networks, [network.id])
        version = body["ip_version"]
        if "cidr" in body and ipam.network(body["cidr"]).version != version:
            raise errors.InvalidInput(f"cidr '{body['cidr']}' does not match the ip_version "
                                      f"'{version}'.")
        allocation = self._from_pool(conn, ctx, body, owner)
        net = ipam.network(allocation.cidr if allocation is not None else body["cidr"])
        enable_dhcp = body.get("enable_dhcp", True)
        if version == 6 and net.network_address == ipaddress.IPv6Address("::"):
            raise errors.InvalidInput("IPv6 subnet '::' is not supported.")
        if enable_dhcp:
            _check_dhcp_cidr(net)
        ra_mode, addr_mode = body.get("ipv6_ra_mode"), body.get("ipv6_address_mode")
        self._check_ipv6_modes(version, ra_mode, addr_mode, net, enable_dhcp)
        minimum = IPV6_MIN_MTU if version == 6 else IPV4_MIN_MTU
        if network.mtu < minimum:
            raise mtu_conflict(network.id, minimum)
        for other in conn.scalars(sa.select(t.subnets.c.cidr).where(
                t.subnets.c.network_id == network.id)):
            if ipam.overlaps(other, str(net)):
                raise errors.InvalidInput(
                    f"Requested subnet with cidr: {net} for network: {network.id} overlaps "
                    f"with another subnet.")
        self.pools.check_affinity(conn, network.id, version,
                                  allocation.pool_id if allocation is not None else None)
        if "gateway_ip" in body:
            gateway = ipaddress.ip_address(body["gateway_ip"]) \
                if body["gateway_ip"] is not None else None
            if gateway is not None:  # before the pools are computed around it
                ipam.check_version(net, str(gateway), "gateway_ip")
        else:
            gateway = ipam.default_gateway(net)
        if "allocation_pools" in body and body["allocation_pools"] is not None:
            pools = ipam.validate_pools(net, body["allocation_pools"])
        else:
            pools = ipam.default_pools(net, gateway)
        ipam.check_gateway(net, gateway, pools)
        self._check_lists(body, net, None)
        _check_service_types(body.get("service_types", []))
        row = c.standard_row(owner, body)
        row.update({
            "network_id": network.id, "ip_version": version, "cidr": str(net),
            "gateway_ip": str(gateway) if gateway is not None else None,
            "enable_dhcp": enable_dhcp, "ipv6_ra_mode": ra_mode, "ipv6_address_mode": addr_mode,
            "service_types": body.get("service_types", []),
            # after the network's other subnets; the network lock above keeps two
            # creates from drawing the same number
            "position": (conn.scalar(_LAST_POSITION, {"network_id": network.id}) or 0) + 1,
        })
        conn.execute(t.subnets.insert().values(row))
        if allocation is not None:
            self.pools.record(conn, row["id"], allocation)
        self._write_pools(conn, row["id"], pools)
        self._write_dns(conn, row["id"], body.get("dns_nameservers", []))
        self._write_routes(conn, row["id"], body.get("host_routes", []))
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        if ipam.auto_address(version, ra_mode, addr_mode):
            self.ports.add_auto_addresses(conn, SubnetInfo(
                row["id"], network.id, version, str(net), row["gateway_ip"], ra_mode,
                addr_mode, tuple(pools)))
        self.quotas.check(conn, owner, {"subnet": 1})
        self._changed(conn, row["id"], network.id)
        return row["id"]

    def create_owned(self, conn: Connection, *, network_id: str, project_id: str, name: str,
                     cidr: str) -> str:
        """A subnet a service makes for itself (a project's HA network's): the whole
        range as its pool, no gateway, no DHCP; no policy and no quota apply."""
        net = ipam.network(cidr)
        row = c.standard_row(project_id, {"name": name})
        row.update({"network_id": network_id, "ip_version": net.version, "cidr": str(net),
                    "gateway_ip": None, "enable_dhcp": False, "ipv6_ra_mode": None,
                    "ipv6_address_mode": None, "service_types": [],
                    "position": (conn.scalar(_LAST_POSITION,
                                             {"network_id": network_id}) or 0) + 1})
        conn.execute(t.subnets.insert().values(row))
        self._write_pools(conn, row["id"], ipam.default_pools(net, None))
        self._changed(conn, row["id"], network_id)
        return row["id"]

    def _from_pool(self, conn: Connection, ctx: Context, body: dict,
                   owner: str) -> Allocation | None:
        """The range a subnet gets from the pool it names; None when it names none."""
        if "cidr" in body and "prefixlen" in body:
            raise bad_subnet_request("cidr and prefixlen must not be supplied together.")
        pool = self.pools.pool_for(conn, ctx, body)
        if pool is None:
            if "cidr" not in body:
                raise bad_subnet_request("a subnetpool must be specified in the absence of a "
                                         "cidr.")
            return None
        if "cidr" not in body and body.get("allocation_pools") is not None:
            raise bad_subnet_request("allocation_pools allowed only for specific subnet "
                                     "requests.")
        return self.pools.allocate(conn, pool, body, owner)

    @staticmethod
    def _check_ipv6_modes(version: int, ra_mode: str | None, addr_mode: str | None,
                          net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                          enable_dhcp: bool) -> None:
        if version == 4:
            for name, mode in (("ipv6_ra_mode", ra_mode), ("ipv6_address_mode", addr_mode)):
                if mode is not None:
                    raise errors.InvalidInput(f"{name} is not valid when ip_version is 4.")
            return
        if (ra_mode or addr_mode) and not enable_dhcp:
            raise errors.InvalidInput("ipv6_ra_mode or ipv6_address_mode cannot be set when "
                                      "enable_dhcp is set to False.")
        if ra_mode and addr_mode and ra_mode != addr_mode:
            raise errors.InvalidInput(
                f"ipv6_ra_mode set to '{ra_mode}' with ipv6_address_mode set to '{addr_mode}' "
                f"is not valid. If both attributes are set, they must be the same value.")
        if ipam.auto_address(version, ra_mode, addr_mode) and net.prefixlen != 64:
            raise errors.InvalidInput(f"Invalid CIDR {net} for IPv6 address mode. OpenStack "
                                      f"uses the EUI-64 address format, which requires the "
                                      f"prefix to be /64.")

    def _check_lists(self, body: dict, net: ipaddress.IPv4Network | ipaddress.IPv6Network,
                     subnet_id: str | None) -> None:
        what = subnet_id or "new subnet"
        servers = body.get("dns_nameservers") or []
        if len(servers) > self.settings.max_dns_nameservers:
            raise errors.BadRequest(
                f"Unable to complete operation for {what}. The number of DNS nameservers "
                f"exceeds the limit {self.settings.max_dns_nameservers}.",
                type="DNSNameServersExhausted")
        for server in servers:
            ipam.check_version(net, server, "dns_nameserver")
        routes = body.get("host_routes") or []
        if len(routes) > self.settings.max_subnet_host_routes:
            raise errors.BadRequest(
                f"Unable to complete operation for {what}. The number of host routes "
                f"exceeds the limit {self.settings.max_subnet_host_routes}.",
                type="HostRoutesExhausted")
        for route in routes:
            ipam.check_version(net, route["destination"], "destination")
            ipam.check_version(net, route["nexthop"], "nexthop")

    @staticmethod
    def _write_pools(conn: Connection, sid: str, pools: Sequence[ipam.Pool]) -> None:
        conn.execute(t.allocation_pools.delete().where(t.allocation_pools.c.subnet_id == sid))
        if pools:
            conn.execute(t.allocation_pools.insert(), [
                {"subnet_id": sid, "first_ip": str(p.start), "last_ip": str(p.end)}
                for p in pools])

    @staticmethod
    def _write_dns(conn: Connection, sid: str, servers: list[str]) -> None:
        conn.execute(t.dns_nameservers.delete().where(t.dns_nameservers.c.subnet_id == sid))
        if servers:
            conn.execute(t.dns_nameservers.insert(), [
                {"subnet_id": sid, "address": a, "position": i} for i, a in enumerate(servers)])

    @staticmethod
    def _write_routes(conn: Connection, sid: str, routes: list[dict]) -> None:
        conn.execute(t.host_routes.delete().where(t.host_routes.c.subnet_id == sid))
        if routes:
            conn.execute(t.host_routes.insert(), [
                {"subnet_id": sid, "destination": r["destination"], "nexthop": r["nexthop"]}
                for r in routes])

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_subnet")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_subnet")
        c.check_revision(row, if_match)
        net = ipam.network(row.cidr)
        if body.get("enable_dhcp") and not row.enable_dhcp:
            _check_dhcp_cidr(net)
        if body.get("enable_dhcp") is False and (row.ipv6_ra_mode or row.ipv6_address_mode):
            raise errors.InvalidInput("Cannot disable enable_dhcp with ipv6 attributes set.")
        values = {k: body[k] for k in ("name", "description", "enable_dhcp", "service_types")
                  if k in body}
        if "service_types" in body:
            _check_service_types(body["service_types"])
        gateway_text = body.get("gateway_ip", row.gateway_ip)
        if "gateway_ip" in body and gateway_text is not None:
            ipam.check_version(net, gateway_text, "gateway_ip")
        gateway = ipaddress.ip_address(gateway_text) if gateway_text is not None else None
        current_pools = [p for info in self.infos(conn, row.network_id) if info.id == ident
                         for p in info.pools]
        if "allocation_pools" in body:
            pools = ipam.validate_pools(net, body["allocation_pools"] or []) \
                if body["allocation_pools"] is not None else ipam.default_pools(net, gateway)
        else:
            pools = current_pools
        if "gateway_ip" in body or "allocation_pools" in body:
            ipam.check_gateway(net, gateway, pools)
        if "gateway_ip" in body:
            values["gateway_ip"] = gateway_text
            if gateway_text != row.gateway_ip and row.gateway_ip is not None:
                _check_gateway_not_routed(conn, ident, row.gateway_ip)
            if gateway_text is not None and gateway_text != row.gateway_ip:
                holder = conn.scalar(sa.select(t.ip_allocations.c.port_id).where(
                    t.ip_allocations.c.subnet_id == ident,
                    t.ip_allocations.c.ip_address == gateway_text))
                if holder is not None:
                    raise errors.Conflict(
                        f"Gateway ip {gateway_text} conflicts with an address allocated to "
                        f"port {holder}.", type="GatewayIpInUse")
        self._check_lists(body, net, ident)
        # only a real change is a new revision
        changed = bool(c.changed(row, values))
        if "allocation_pools" in body and list(pools) != current_pools:
            self._write_pools(conn, ident, pools)
            changed = True
        current = render(conn, ctx, [row], frozenset(("dns_nameservers", "host_routes")))[0]
        if "dns_nameservers" in body \
                and (body["dns_nameservers"] or []) != current["dns_nameservers"]:
            self._write_dns(conn, ident, body["dns_nameservers"] or [])
            changed = True
        if "host_routes" in body and _route_set(body["host_routes"]) \
                != _route_set(current["host_routes"]):
            self._write_routes(conn, ident, body["host_routes"] or [])
            changed = True
        if changed:
            c.bump(conn, t.subnets, ident, values)
            events.subnet(conn, ident, row.network_id)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_subnet")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_subnet")
        lock_rows(conn, t.networks, [row.network_id])
        self.guards.delete(conn, ctx, row)
        auto = ipam.auto_address(row.ip_version, row.ipv6_ra_mode, row.ipv6_address_mode)
        if not auto:
            users = conn.scalars(
                sa.select(t.ip_allocations.c.port_id).join(
                    t.ports, t.ports.c.id == t.ip_allocations.c.port_id)
                .where(t.ip_allocations.c.subnet_id == ident,
                       t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS))).all()
            if users:
                raise errors.InUse(
                    f"Unable to complete operation on subnet {ident}: One or more ports have "
                    f"an IP allocation from this subnet.", type="SubnetInUse")
        self.remove(conn, row)
        self.networks.touch(conn, row.network_id)  # a new revision, and its event

    def _changed(self, conn: Connection, ident: str, network_id: str) -> None:
        """A subnet came: a new revision of its network, and both events."""
        events.subnet(conn, ident, network_id)
        self.networks.touch(conn, network_id)

    def remove(self, conn: Connection, row: Row) -> None:
        """The subnet gone, with what ports still hold on it (the only way a subnet row
        goes: its network's delete removes its subnets through here too)."""
        events.subnet(conn, row.id, row.network_id)  # its network's: the caller's
        self.ports.release_subnet(conn, row.id)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == row.id))
        conn.execute(t.subnets.delete().where(t.subnets.c.id == row.id))


def _sorted_pools(pools: list[dict]) -> list[dict]:
    return sorted(pools, key=lambda p: ipaddress.ip_address(p["start"]))


def _route_set(routes: list[dict] | None) -> set[tuple[str, str]]:
    return {(r["destination"], r["nexthop"]) for r in routes or []}


#: what a subnet service type must start with: a device owner prefix
SERVICE_TYPE_PREFIXES = ("network:", "neutron:", "compute:")


def _check_service_types(service_types: list[str]) -> None:
    for service_type in service_types:
        if not service_type.startswith(SERVICE_TYPE_PREFIXES):
            raise errors.BadRequest(f"Subnet service type {service_type} does not correspond "
                                    f"to a valid device owner.", type="InvalidSubnetServiceType")


def _check_gateway_not_routed(conn: Connection, subnet_id: str, gateway: str) -> None:
    """A router interface holding the current gateway address pins it (upstream's
    GatewayIpInUse): moving or clearing the gateway would strand the router."""
    holder = conn.scalar(sa.select(t.ip_allocations.c.port_id).join(
        t.ports, t.ports.c.id == t.ip_allocations.c.port_id).where(
        t.ip_allocations.c.subnet_id == subnet_id,
        t.ip_allocations.c.ip_address == gateway,
        sa.or_(t.ports.c.device_owner.startswith("network:router_interface"),
               t.ports.c.device_owner == "network:ha_router_replicated_interface")))
    if holder is not None:
        raise errors.Conflict(f"Current gateway ip {gateway} already in use by port "
                              f"{holder}. Unable to update.", type="GatewayIpInUse")


def _check_dhcp_cidr(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> None:
    """Ranges a DHCP server cannot serve (upstream's rules)."""
    if net.prefixlen > (30 if net.version == 4 else 126):
        raise errors.InvalidInput("Subnet has a prefix length that is incompatible with DHCP "
                                  "service enabled.")
    if net.is_multicast:
        raise errors.InvalidInput("Multicast IP subnet is not supported if enable_dhcp is "
                                  "True.")
    if net.is_loopback:
        raise errors.InvalidInput("Loopback IP subnet is not supported if enable_dhcp is "
                                  "True.")
    if net.version == 4 and int(net.network_address) == 0:
        raise errors.InvalidInput("First IP '0.0.0.0' of network is not supported if "
                                  "enable_dhcp is True.")
