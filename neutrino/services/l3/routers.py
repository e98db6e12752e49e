"""Routers: a gateway to an external network, interfaces on subnets, extra routes.

What is stored here is intent: forwarding, SNAT and the floating IP NAT are the
l3 agent's to realise (``distributed`` is stored for it; ``ha`` routers share their
project's HA network, :mod:`neutrino.services.l3.router_ha`).  A router's ports are
ordinary ports listed in ``router_ports``: interfaces (``network:router_interface``,
owned by the router's project) and the gateway (``network:router_gateway``, owned by
no project, as upstream).  The port, subnet and network services call this service's
guards (subscribed in :mod:`neutrino.services`) so that nothing changes under a
router through their APIs.  A router's ports are made and removed through the port
service (which records their events).  Every change of a router schedules it (its new
ports are bound to the host realising it) and records its event.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.policy import sharing
from neutrino.schema.kinds import BadValue, Uuid
from neutrino.schema.resources import ROUTER
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2 import ipam
from neutrino.services.l2.ports import Ports
from neutrino.services.l2.subnets import Subnets
from neutrino.services.l3.router_ha import HaNetworks

QUOTA = Counter("router", t.routers)
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
_UUID = Uuid()


def bad_router(message: str) -> errors.BadRequest:
    """Upstream's ``Bad router request: ...`` (type ``BadRequest``)."""
    return errors.BadRequest(f"Bad router request: {message}.", type="BadRequest")


def subnet_in_use(subnet_id: str) -> errors.InUse:
    return errors.InUse(f"Unable to complete operation on subnet {subnet_id}: One or more "
                        f"ports have an IP allocation from this subnet.", type="SubnetInUse")


def service_port_in_use(port_id: str, device_owner: str) -> errors.InUse:
    return errors.InUse(f"Port {port_id} cannot be deleted directly via the port API: has "
                        f"device owner {device_owner}.", type="ServicePortInUse")


def gateway_in_use(router_id: str, network_id: str) -> errors.InUse:
    return errors.InUse(f"Gateway cannot be updated for router {router_id}, since a gateway "
                        f"to external network {network_id} is required by one or more "
                        f"floating IPs.", type="RouterExternalGatewayInUseByFloatingIp")


@dataclass(frozen=True, slots=True)
class Address:
    """One address of a port, with what the router rules need of its subnet."""

    port_id: str
    network_id: str
    subnet_id: str
    ip_address: str
    cidr: str
    port_type: str = ""

    @property
    def version(self) -> int:
        return ipaddress.ip_address(self.ip_address).version


def _addresses(conn: Connection, *where: ColumnElement[bool]) -> list[Address]:
    """Addresses of router ports (or of any port, joined outside ``router_ports``)."""
    rows = conn.execute(
        sa.select(t.ip_allocations.c.port_id, t.ports.c.network_id,
                  t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address,
                  t.subnets.c.cidr, t.router_ports.c.port_type)
        .join(t.ports, t.ports.c.id == t.ip_allocations.c.port_id)
        .join(t.subnets, t.subnets.c.id == t.ip_allocations.c.subnet_id)
        .outerjoin(t.router_ports, t.router_ports.c.port_id == t.ip_allocations.c.port_id)
        .where(*where)
        .order_by(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id)).all()
    return [Address(r.port_id, r.network_id, r.subnet_id, r.ip_address, r.cidr,
                    r.port_type or "") for r in rows]


def _check_routes(routes: list[dict], cidrs: Sequence[str], router_ips: set[str]) -> None:
    """Every nexthop must be on a subnet of the router, and not the router itself."""
    networks = [ipaddress.ip_network(cidr) for cidr in cidrs]
    for route in routes:
        hop = ipaddress.ip_address(route["nexthop"])
        reason = None
        if not any(hop in net for net in networks):
            reason = "the nexthop is not connected with router"
        elif str(hop) in router_ips:
            reason = "the nexthop is used by router"
        if reason:
            # routes in upstream's spelling (a Python list of dicts)
            shown = [{"destination": r["destination"], "nexthop": r["nexthop"]} for r in routes]
            raise errors.BadRequest(f"Invalid format for routes: {shown}, {reason}",
                                    type="InvalidRoutes")


def load_routes(conn: Connection, router_ids: Sequence[str]) -> dict[str, list[dict]]:
    """The extra routes of each of ``router_ids`` (by destination, then next hop)."""
    routes: dict[str, list[dict]] = {}
    for part in c.chunks(router_ids):
        for rid, dest, hop in conn.execute(
                sa.select(t.router_routes.c.router_id, t.router_routes.c.destination,
                          t.router_routes.c.nexthop)
                .where(t.router_routes.c.router_id.in_(part))
                .order_by(t.router_routes.c.destination, t.router_routes.c.nexthop)):
            routes.setdefault(rid, []).append({"destination": dest, "nexthop": hop})
    return routes


def not_found(ident: str) -> errors.NotFound:
    # upstream's words (no full stop)
    return errors.NotFound(f"Router {ident} could not be found", type="RouterNotFound")


class Scheduler(Protocol):
    """Which host realises a router (the realisation family's L3 side)."""

    def schedule(self, conn: Connection, router_id: str) -> str | None:
        """The router's host, its unbound ports bound there; None: no host yet."""
        ...

    def router_hosts(self, conn: Connection,
                     router_ids: Iterable[str] | None = None) -> dict[str, str | None]:
        """Router -> the host realising it, binding nothing."""
        ...


class Routers:
    def __init__(self, networks: c.Listing, subnets: Subnets, ports: Ports,
                 quotas: Quotas, ha: HaNetworks, scheduler: Scheduler,
                 max_routes: int = 30) -> None:
        #: extra routes one router may hold (the ``max_routes`` setting)
        self.max_routes = max_routes
        #: the networks gateways go on (read only)
        self.networks = networks
        self.subnets = subnets
        self.ports = ports
        self.quotas = quotas
        self.ha = ha
        self.scheduler = scheduler
        # routers are their project's alone (upstream has no router sharing)
        self.listing = c.Listing(ROUTER, t.routers, scope=policy.owned(t.routers),
                                 render=self.render, not_found=not_found,
                                 touched=self._changed)
        self.actions: dict[str, c.Action] = {
            "add_router_interface": self.add_interface,
            "remove_router_interface": self.remove_interface,
            "add_extraroutes": self.add_extraroutes,
            "remove_extraroutes": self.remove_extraroutes}

    # -- reads ---------------------------------------------------------------

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags: dict[str, list[str]] = {}
        routes = load_routes(conn, ids)
        gateways: dict[str, dict] = {}
        gw_ports = [r.gw_port_id for r in rows if r.gw_port_id]
        for part in c.chunks(ids):
            tags.update(c.load_tags(conn, part))
        for part in c.chunks(gw_ports):
            for pid, net in conn.execute(sa.select(t.ports.c.id, t.ports.c.network_id)
                                         .where(t.ports.c.id.in_(part))):
                gateways[pid] = {"network_id": net, "external_fixed_ips": []}
            for pid, sid, ip in conn.execute(
                    sa.select(t.ip_allocations.c.port_id, t.ip_allocations.c.subnet_id,
                              t.ip_allocations.c.ip_address)
                    .where(t.ip_allocations.c.port_id.in_(part))):
                gateways[pid]["external_fixed_ips"].append({"subnet_id": sid, "ip_address": ip})
        out = []
        for r in rows:
            item = c.standard_attrs(r, tags.get(r.id, []))
            gateway = None
            if r.gw_port_id in gateways:
                info = gateways[r.gw_port_id]
                gateway = {"network_id": info["network_id"],
                           "external_fixed_ips": sorted(
                               info["external_fixed_ips"],
                               key=lambda f: (ipaddress.ip_address(f["ip_address"]).version,
                                              f["subnet_id"])),
                           "enable_snat": r.enable_snat}
            item.update({
                "admin_state_up": r.admin_state_up, "status": r.status,
                "external_gateway_info": gateway, "routes": routes.get(r.id, []),
                "distributed": r.distributed, "ha": r.ha,
                "availability_zone_hints": r.availability_zone_hints,
                "availability_zones": [],
            })
            out.append(item)
        return out

    # -- create, update, delete ------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_router")
        owner = policy.owner_for_create(ctx, body, "create_router")
        gateway = body.get("external_gateway_info")
        if gateway:
            _check_gateway_policy(ctx, gateway, "create_router")
        row = c.standard_row(owner, body, revision=1)
        row.update({
            "admin_state_up": body.get("admin_state_up", True), "status": "ACTIVE",
            "gw_port_id": None, "enable_snat": True,
            "distributed": bool(body.get("distributed")), "ha": bool(body.get("ha")),
            "availability_zone_hints": body.get("availability_zone_hints", []),
        })
        conn.execute(t.routers.insert().values(row))
        if row["ha"]:
            self.ha.ensure(conn, owner)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        if gateway:
            self._set_gateway(conn, ctx, self.listing.get_row(conn, Context.admin(), row["id"]),
                              gateway)
            c.bump(conn, t.routers, row["id"])  # upstream's router is at 2 with a gateway
        self.quotas.check(conn, owner, {"router": 1})
        self._changed(conn, row["id"])
        return row["id"]

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_router")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_router")
        c.check_revision(row, if_match)
        lock_rows(conn, t.routers, [ident])
        values = {k: body[k] for k in ("name", "description", "admin_state_up") if k in body}
        up_after = body.get("admin_state_up", row.admin_state_up)
        # a null distributed or ha means "leave as it is" (upstream)
        if body.get("distributed") is not None and body["distributed"] != row.distributed:
            if row.admin_state_up or up_after:
                raise bad_router("Cannot change the 'distributed' attribute of active routers. "
                                 "Please set router admin_state_up to False prior to upgrade")
            values["distributed"] = body["distributed"]
        if body.get("ha") is not None and body["ha"] != row.ha:
            if up_after:
                raise bad_router("Cannot change HA attribute of active routers. Please set "
                                 "router admin_state_up to False prior to upgrade")
            values["ha"] = body["ha"]
        changed = False
        if "external_gateway_info" in body:
            gateway = body["external_gateway_info"]
            _check_gateway_policy(ctx, gateway or {}, "update_router")
            before = self.render(conn, ctx, [row])[0]["external_gateway_info"]
            self._set_gateway(conn, ctx, row, gateway)
            fresh = self.listing.get_row(conn, ctx, ident)
            changed = self.render(conn, ctx, [fresh])[0]["external_gateway_info"] != before
        if "routes" in body:
            changed = self._set_routes(conn, ident, body["routes"] or []) or changed
        values = c.changed(row, values)
        if values or changed:
            c.bump(conn, t.routers, ident, values)
        if values.get("ha") is True:
            self.ha.ensure(conn, row.project_id)
        elif values.get("ha") is False:  # after the row says so: it counts HA routers
            self.ha.release(conn, row.project_id, ident)
        if values or changed:
            self._changed(conn, ident)

    def _changed(self, conn: Connection, ident: str) -> None:
        """The router changed: scheduled (its new ports bound where it is realised,
        recorded by the port service), and its event, naming that host."""
        events.router(conn, ident, self.scheduler.schedule(conn, ident))

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_router")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_router")
        lock_rows(conn, t.routers, [ident])
        attached = conn.scalars(sa.select(t.router_ports.c.port_id).where(
            t.router_ports.c.router_id == ident,
            t.router_ports.c.port_type == ROUTER_INTERFACE)
            .order_by(t.router_ports.c.port_id)).all()
        if attached:
            raise errors.InUse(f"Router {ident} has ports still attached: "
                               f"{', '.join(attached)}", type="RouterInUse")
        # the host that realised it, while its ports say so
        events.router(conn, ident, self.scheduler.router_hosts(conn, [ident]).get(ident))
        if row.gw_port_id:
            self._check_no_floating_ips(conn, row)
            conn.execute(t.routers.update().where(t.routers.c.id == ident)
                         .values(gw_port_id=None))
        for port_id in conn.scalars(sa.select(t.router_ports.c.port_id).where(
                t.router_ports.c.router_id == ident).order_by(t.router_ports.c.port_id)).all():
            self.ports.remove(conn, port_id)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(t.routers.delete().where(t.routers.c.id == ident))
        if row.ha:
            self.ha.release(conn, row.project_id, ident)

    # -- the gateway ------------------------------------------------------------

    def _gateway_port(self, conn: Connection, router: Row) -> Row | None:
        if not router.gw_port_id:
            return None
        return conn.execute(c.by_id(t.ports), {"ident": router.gw_port_id}).first()

    def _check_no_floating_ips(self, conn: Connection, router: Row) -> None:
        """The gateway stays while floating IPs are reached through it."""
        if conn.scalar(sa.select(t.floatingips.c.id).where(
                t.floatingips.c.router_id == router.id).limit(1)) is not None:
            gw = self._gateway_port(conn, router)
            raise gateway_in_use(router.id, gw.network_id if gw else "")

    def _set_gateway(self, conn: Connection, ctx: Context, router: Row,
                     info: dict | None) -> None:
        """Point the router at an external network (or at none), as upstream's
        ``_update_router_gw_info``: same network and new addresses -> the gateway port
        is renumbered; another network -> a new gateway port."""
        current = self._gateway_port(conn, router)
        network_id = info["network_id"] if info else None
        ext_ips = (info or {}).get("external_fixed_ips", [])
        gateway_cidrs: list[str] = []
        if network_id:
            network = self.networks.get_row(conn, ctx, network_id)
            if not network.router_external:
                raise bad_router(f"Network {network_id} is not an external network")
            subnets = self.subnets.infos(conn, network_id)
            gateway_ips = {s.gateway_ip for s in subnets if s.gateway_ip}
            for ext in ext_ips:
                if ext.get("ip_address") in gateway_ips:
                    raise bad_router(f"External IP {ext['ip_address']} is the same as the "
                                     f"gateway IP")
            gateway_cidrs = [s.cidr for s in subnets]
        self._check_routes_with_gateway(conn, router, gateway_cidrs)
        values: dict[str, Any] = {"enable_snat": (info or {}).get("enable_snat", True)}
        if current is not None and current.network_id == network_id:
            if _external_ips_change(conn, current.id, ext_ips):
                self.ports.update(conn, Context.admin(), current.id, {"fixed_ips": ext_ips},
                                  None)
        else:
            if current is not None:
                self._check_no_floating_ips(conn, router)
                conn.execute(t.routers.update().where(t.routers.c.id == router.id)
                             .values(gw_port_id=None))
                self.ports.remove(conn, current.id)
            if network_id:
                infos = self.subnets.infos(conn, network_id)
                self._check_subnets_free(conn, router.id, [(s.id, s.cidr) for s in infos])
                port_id = self.ports.create_owned(
                    conn, network_id=network_id, project_id="", device_owner=ROUTER_GATEWAY,
                    device_id=router.id, fixed_ips=ext_ips or None)
                conn.execute(t.router_ports.insert().values(
                    port_id=port_id, router_id=router.id, port_type=ROUTER_GATEWAY))
                values["gw_port_id"] = port_id
        conn.execute(t.routers.update().where(t.routers.c.id == router.id).values(values))

    def _check_routes_with_gateway(self, conn: Connection, router: Row,
                                   gateway_cidrs: list[str]) -> None:
        """The routes must stay reachable through the interfaces and the new gateway."""
        routes = self._routes(conn, router.id)
        if not routes:
            return
        interfaces = [a for a in _addresses(conn, t.router_ports.c.router_id == router.id)
                      if a.port_type != ROUTER_GATEWAY]
        _check_routes(routes, [a.cidr for a in interfaces] + gateway_cidrs,
                      {a.ip_address for a in interfaces})

    def _check_subnets_free(self, conn: Connection, router_id: str,
                            new: list[tuple[str, str]]) -> None:
        """One port per subnet on a router, and no two of its subnets overlap."""
        new_ids = {sid for sid, _ in new}
        mine: dict[str, str] = {}
        for a in _addresses(conn, t.router_ports.c.router_id == router_id):
            if a.subnet_id in new_ids:
                raise bad_router(f"Router already has a port on subnet {a.subnet_id}")
            if a.port_type == ROUTER_GATEWAY:  # all of the external network's subnets
                mine.update((sid, cidr) for sid, cidr in conn.execute(
                    sa.select(t.subnets.c.id, t.subnets.c.cidr).where(
                        t.subnets.c.network_id == a.network_id)))
            else:
                mine[a.subnet_id] = a.cidr
        for sid, cidr in sorted(mine.items()):
            for new_id, new_cidr in new:
                if ipam.overlaps(cidr, new_cidr):
                    raise bad_router(f"Cidr {new_cidr} of subnet {new_id} overlaps with cidr "
                                     f"{cidr} of subnet {sid}")

    # -- extra routes -------------------------------------------------------------

    @staticmethod
    def _routes(conn: Connection, router_id: str) -> list[dict]:
        return [{"destination": d, "nexthop": h} for d, h in conn.execute(
            sa.select(t.router_routes.c.destination, t.router_routes.c.nexthop)
            .where(t.router_routes.c.router_id == router_id)
            .order_by(t.router_routes.c.destination, t.router_routes.c.nexthop))]

    def _set_routes(self, conn: Connection, router_id: str, routes: list[dict]) -> bool:
        """Replace the router's extra routes; whether anything changed."""
        if len(routes) > self.max_routes:
            raise errors.BadRequest(f"Unable to complete operation for {router_id}. The number "
                                    f"of routes exceeds the maximum {self.max_routes}.",
                                    type="RoutesExhausted")
        addresses = _addresses(conn, t.router_ports.c.router_id == router_id)
        _check_routes(routes, [a.cidr for a in addresses], {a.ip_address for a in addresses})
        current = {(r["destination"], r["nexthop"]) for r in self._routes(conn, router_id)}
        wanted = {(r["destination"], r["nexthop"]) for r in routes}
        if current == wanted:
            return False
        for dest, hop in current - wanted:
            conn.execute(t.router_routes.delete().where(
                t.router_routes.c.router_id == router_id,
                t.router_routes.c.destination == dest, t.router_routes.c.nexthop == hop))
        added = [{"router_id": router_id, "destination": d, "nexthop": h}
                 for d, h in sorted(wanted - current)]
        if added:
            conn.execute(t.router_routes.insert(), added)
        return True

    def add_extraroutes(self, conn: Connection, ctx: Context, ident: str, body: Any) -> dict:
        return self._edit_routes(conn, ctx, ident, body, "add_extraroutes")

    def remove_extraroutes(self, conn: Connection, ctx: Context, ident: str,
                           body: Any) -> dict:
        return self._edit_routes(conn, ctx, ident, body, "remove_extraroutes")

    def _edit_routes(self, conn: Connection, ctx: Context, ident: str, body: Any,
                     action: str) -> dict:
        """extraroute-atomic: add or remove some routes, keeping the others."""
        policy.check_write(ctx, action)
        router = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, router.project_id, action)
        items, _ = ROUTER.unwrap(body, allow_bulk=False)
        if "routes" not in items[0]:
            raise errors.BadRequest("Failed to parse request. Required attribute 'routes' "
                                    "not specified")
        given = ROUTER.by_name["routes"].convert(items[0]["routes"]) or []
        lock_rows(conn, t.routers, [ident])
        current = self._routes(conn, ident)
        if action == "add_extraroutes":
            routes = current + [r for r in given if r not in current]
        else:
            routes = [r for r in current if r not in given]
        if self._set_routes(conn, ident, routes):
            c.bump(conn, t.routers, ident)
            self._changed(conn, ident)
        return {"router": self.listing.get(conn, ctx, ident)}

    # -- interfaces ---------------------------------------------------------------

    def add_interface(self, conn: Connection, ctx: Context, ident: str, body: Any) -> dict:
        policy.check_write(ctx, "add_router_interface")
        router = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, router.project_id, "add_router_interface")
        port_id, subnet_id = _interface_info(body, removal=False)
        lock_rows(conn, t.routers, [ident])
        if port_id is not None:
            port, subnet_ids = self._add_by_port(conn, ctx, router, port_id)
        else:
            assert subnet_id is not None
            port, subnet_ids = self._add_by_subnet(conn, ctx, router, subnet_id)
        c.bump(conn, t.routers, ident)
        self._changed(conn, ident)
        return _interface_reply(router.id, port, subnet_ids[-1], subnet_ids)

    def _add_by_subnet(self, conn: Connection, ctx: Context, router: Row,
                       subnet_id: str) -> tuple[Row, list[str]]:
        subnet = self.subnets.get_row(conn, ctx, subnet_id)
        if not subnet.gateway_ip:
            raise bad_router("Subnet for router interface must have a gateway IP")
        if not ctx.is_admin and subnet.project_id != ctx.project_id:
            # a network shared with this project by name may be attached; one shared with
            # everybody may not (upstream: LP-1757482, LP-1975603)
            granted = conn.scalar(sharing.granted_to(subnet.network_id,
                                                    ctx.project_id).limit(1))
            if granted is None:
                raise bad_router(f"Cannot add interface to router because subnet {subnet_id} "
                                 f"is not owned by project making the request")
        _check_ra_mode(subnet)
        self._check_subnets_free(conn, router.id, [(subnet.id, subnet.cidr)])
        wanted = {"subnet_id": subnet.id, "ip_address": subnet.gateway_ip}
        if subnet.ip_version == 6:
            # one IPv6 interface per network: a further IPv6 subnet is another prefix on it
            for a in _addresses(conn, t.router_ports.c.router_id == router.id,
                                t.router_ports.c.port_type == ROUTER_INTERFACE,
                                t.ports.c.network_id == subnet.network_id):
                if a.version == 6:
                    fixed = [{"subnet_id": x.subnet_id, "ip_address": x.ip_address}
                             for x in _addresses(conn, t.ip_allocations.c.port_id == a.port_id)]
                    self.ports.update(conn, Context.admin(), a.port_id,
                                      {"fixed_ips": [*fixed, wanted]}, None)
                    return self._port(conn, a.port_id), [subnet.id]
        port_id = self.ports.create_owned(
            conn, network_id=subnet.network_id, project_id=router.project_id,
            device_owner=ROUTER_INTERFACE, device_id=router.id, fixed_ips=[wanted])
        conn.execute(t.router_ports.insert().values(
            port_id=port_id, router_id=router.id, port_type=ROUTER_INTERFACE))
        return self._port(conn, port_id), [subnet.id]

    def _add_by_port(self, conn: Connection, ctx: Context, router: Row,
                     port_id: str) -> tuple[Row, list[str]]:
        port = self.ports.get_row(conn, ctx, port_id)
        if port.device_id:
            raise errors.InUse(f"Unable to complete operation on port {port.id} for network "
                               f"{port.network_id}. Port already has an attached device "
                               f"{port.device_id}.", type="PortInUse")
        mine = _addresses(conn, t.ip_allocations.c.port_id == port.id)
        if not mine:
            raise bad_router("Router port must have at least one fixed IP")
        subnets = {a.subnet_id: self.subnets.get_row(conn, Context.admin(), a.subnet_id)
                   for a in mine}
        for subnet in subnets.values():
            _check_ra_mode(subnet)
        if any(a.version == 6 for a in mine):
            for other in _addresses(conn, t.router_ports.c.router_id == router.id,
                                    t.ports.c.network_id == port.network_id):
                if other.version == 6:
                    raise bad_router(
                        f"Router already contains IPv6 port {other.port_id} belonging to "
                        f"network id {other.network_id}. Only one IPv6 port from the same "
                        f"network subnet can be connected to a router")
        self._check_subnets_free(conn, router.id, [(s.id, s.cidr) for s in subnets.values()])
        if sum(1 for s in subnets.values() if s.ip_version == 4) > 1:
            raise bad_router("Cannot have multiple IPv4 subnets on router port")
        if not ctx.is_admin:
            self._check_in_pools(conn, ctx, port.id, mine, subnets)
        self.ports.update(conn, Context.admin(), port.id,
                          {"device_id": router.id, "device_owner": ROUTER_INTERFACE}, None)
        conn.execute(t.router_ports.insert().values(
            port_id=port.id, router_id=router.id, port_type=ROUTER_INTERFACE))
        return self._port(conn, port.id), list(dict.fromkeys(a.subnet_id for a in mine))

    def _check_in_pools(self, conn: Connection, ctx: Context, port_id: str,
                        addresses: list[Address], subnets: dict[str, Row]) -> None:
        """A project may not make a router of another project's subnet's reserved
        addresses (say its gateway) through a port of its own (upstream's rule)."""
        pools = {info.id: info.pools for a in addresses
                 for info in self.subnets.infos(conn, a.network_id)}
        for a in addresses:
            inside = ipam.in_pools(a.ip_address, pools.get(a.subnet_id, ()))
            if not inside and subnets[a.subnet_id].project_id != ctx.project_id:
                raise bad_router(f"Cannot add interface to router because specified port "
                                 f"{port_id} has an IP address out of the allocation pool of "
                                 f"subnet {a.subnet_id}, which is not owned by the project "
                                 f"making the request")

    def remove_interface(self, conn: Connection, ctx: Context, ident: str,
                         body: Any) -> dict:
        policy.check_write(ctx, "remove_router_interface")
        router = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, router.project_id, "remove_router_interface")
        port_id, subnet_id = _interface_info(body, removal=True)
        lock_rows(conn, t.routers, [ident])
        if port_id is not None:
            port, subnet_ids = self._remove_by_port(conn, router, port_id, subnet_id)
        else:
            assert subnet_id is not None
            port, subnet_ids = self._remove_by_subnet(conn, ctx, router, subnet_id)
        c.bump(conn, t.routers, ident)
        self._changed(conn, ident)
        return _interface_reply(router.id, port, subnet_ids[0], subnet_ids)

    def _remove_by_port(self, conn: Connection, router: Row, port_id: str,
                        subnet_id: str | None) -> tuple[Row, list[str]]:
        attached = conn.scalar(sa.select(t.router_ports.c.port_id).where(
            t.router_ports.c.router_id == router.id, t.router_ports.c.port_id == port_id,
            t.router_ports.c.port_type == ROUTER_INTERFACE))
        if attached is None:
            raise errors.NotFound(f"Router {router.id} does not have an interface with id "
                                  f"{port_id}", type="RouterInterfaceNotFound")
        mine = _addresses(conn, t.ip_allocations.c.port_id == port_id)
        subnet_ids = list(dict.fromkeys(a.subnet_id for a in mine))
        if subnet_id is not None and subnet_id not in subnet_ids:
            raise errors.BadRequest(f"Subnet on port {port_id} does not match the requested "
                                    f"subnet {subnet_id}.", type="SubnetMismatchForPort")
        for a in mine:
            self._check_interface_unused(conn, router.id, a.subnet_id, a.cidr)
        port = self._port(conn, port_id)
        self.ports.remove(conn, port_id)
        return port, subnet_ids

    def _remove_by_subnet(self, conn: Connection, ctx: Context, router: Row,
                          subnet_id: str) -> tuple[Row, list[str]]:
        subnet = self.subnets.get_row(conn, ctx, subnet_id)
        addresses = _addresses(conn, t.router_ports.c.router_id == router.id,
                               t.router_ports.c.port_type == ROUTER_INTERFACE,
                               t.ports.c.network_id == subnet.network_id)
        if addresses:
            self._check_interface_unused(conn, router.id, subnet.id, subnet.cidr)
        for port_id in dict.fromkeys(a.port_id for a in addresses):
            mine = [a for a in addresses if a.port_id == port_id]
            if not any(a.subnet_id == subnet_id for a in mine):
                continue
            port = self._port(conn, port_id)
            if len({a.subnet_id for a in mine}) > 1:  # one prefix of several: just that one
                keep = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address}
                        for a in mine if a.subnet_id != subnet_id]
                self.ports.update(conn, Context.admin(), port_id, {"fixed_ips": keep}, None)
            else:
                self.ports.remove(conn, port_id)
            return port, [subnet_id]
        raise errors.NotFound(f"Router {router.id} has no interface on subnet {subnet_id}",
                              type="RouterInterfaceNotFoundForSubnet")

    def _check_interface_unused(self, conn: Connection, router_id: str, subnet_id: str,
                                cidr: str) -> None:
        """Nothing the router does may need the interface: floating IPs of ports on the
        subnet, or routes through it."""
        net = ipaddress.ip_network(cidr)
        on_subnet = sa.select(t.ip_allocations.c.port_id).where(
            t.ip_allocations.c.subnet_id == subnet_id)
        for fixed_ip in conn.scalars(sa.select(t.floatingips.c.fixed_ip_address).where(
                t.floatingips.c.router_id == router_id,
                t.floatingips.c.fixed_port_id.in_(on_subnet))):
            if fixed_ip and ipaddress.ip_address(fixed_ip) in net:
                raise errors.InUse(f"Router interface for subnet {subnet_id} on router "
                                   f"{router_id} cannot be deleted, as it is required by one "
                                   f"or more floating IPs.",
                                   type="RouterInterfaceInUseByFloatingIP")
        for route in self._routes(conn, router_id):
            if ipaddress.ip_address(route["nexthop"]) in net:
                raise errors.InUse(f"Router interface for subnet {subnet_id} on router "
                                   f"{router_id} cannot be deleted, as it is required by one "
                                   f"or more routes.", type="RouterInterfaceInUseByRoute")

    @staticmethod
    def _port(conn: Connection, port_id: str) -> Row:
        row = conn.execute(c.by_id(t.ports), {"ident": port_id}).first()
        assert row is not None
        return row


# -- guards the port, subnet and network services run (listed in services/__init__.py) --

def guard_port_delete(conn: Connection, ctx: Context, port: Row) -> None:
    """A router's ports go with remove_router_interface or the gateway, not the port
    API (409 ``ServicePortInUse``, as upstream)."""
    if conn.scalar(sa.select(t.router_ports.c.router_id).where(
            t.router_ports.c.port_id == port.id)) is not None:
        raise service_port_in_use(port.id, port.device_owner)


def guard_port_update(conn: Connection, ctx: Context, port: Row,
                      changes: dict) -> None:
    """An interface's IPv4 address is the subnet's gateway: it cannot be changed
    through the port (l3-port-ip-change-not-allowed)."""
    if "fixed_ips" not in changes:
        return
    port_type = conn.scalar(sa.select(t.router_ports.c.port_type).where(
        t.router_ports.c.port_id == port.id))
    if port_type != ROUTER_INTERFACE:
        return
    current = {a.ip_address: a.subnet_id
               for a in _addresses(conn, t.ip_allocations.c.port_id == port.id)
               if a.version == 4}
    kept: set[str] = set()
    for fixed in changes["fixed_ips"] or []:
        ip = fixed.get("ip_address")
        if ip is not None:
            if ipaddress.ip_address(ip).version != 4:
                continue
            if ip not in current:
                raise _ip_change_refused(port.id)
            kept.add(ip)
        elif fixed.get("subnet_id") is not None:
            held = [a for a, s in current.items() if s == fixed["subnet_id"]]
            version = conn.scalar(sa.select(t.subnets.c.ip_version).where(
                t.subnets.c.id == fixed["subnet_id"]))
            if version == 4 and not held:
                raise _ip_change_refused(port.id)
            kept.update(held[:1])
    if set(current) - kept:
        raise _ip_change_refused(port.id)


def guard_subnet_delete(conn: Connection, ctx: Context, subnet: Row) -> None:
    """A subnet a router is attached to stays (even one with SLAAC addresses)."""
    if conn.scalar(sa.select(t.ip_allocations.c.port_id)
                   .join(t.router_ports,
                         t.router_ports.c.port_id == t.ip_allocations.c.port_id)
                   .where(t.ip_allocations.c.subnet_id == subnet.id,
                          t.router_ports.c.port_type == ROUTER_INTERFACE)
                   .limit(1)) is not None:
        raise subnet_in_use(subnet.id)


def guard_network_update(conn: Connection, ctx: Context, network: Row,
                         changes: dict) -> None:
    """A network routers use as their gateway stays external."""
    if changes.get("router:external") is not False or not network.router_external:
        return
    if conn.scalar(sa.select(t.ports.c.id).where(
            t.ports.c.network_id == network.id,
            t.ports.c.device_owner == ROUTER_GATEWAY).limit(1)) is not None:
        raise errors.InUse(f"External network {network.id} cannot be updated to be made "
                           f"non-external, since it has existing gateway ports.",
                           type="ExternalNetworkInUse")


def _ip_change_refused(port_id: str) -> errors.BadRequest:
    return errors.BadRequest(f"IP updates for port {port_id} are not allowed",
                             type="IPAddressChangeNotAllowed")


def _check_gateway_policy(ctx: Context, info: dict, action: str) -> None:
    """Choosing SNAT or the gateway's addresses is for admins (upstream's policy)."""
    if ctx.is_admin:
        return
    for key in ("enable_snat", "external_fixed_ips"):
        if key in info:
            raise errors.PolicyNotAuthorized(f"{action}:external_gateway_info:{key}")


def _check_ra_mode(subnet: Row) -> None:
    if subnet.ip_version == 6 and subnet.ipv6_ra_mode is None \
            and subnet.ipv6_address_mode is not None:
        raise bad_router(f"IPv6 subnet {subnet.id} configured to receive RAs from an external "
                         f"router cannot be added to Neutron Router")


def _external_ips_change(conn: Connection, port_id: str, wanted: list[dict]) -> bool:
    """Whether ``external_fixed_ips`` asks for other addresses than the gateway has
    (nothing asked is no change), as upstream decides it."""
    if not wanted:
        return False
    held = conn.execute(sa.select(t.ip_allocations.c.subnet_id, t.ip_allocations.c.ip_address)
                        .where(t.ip_allocations.c.port_id == port_id)).all()
    if {f["subnet_id"] for f in wanted if f.get("subnet_id")} != {s for s, _ in held}:
        return True
    return {f["ip_address"] for f in wanted if f.get("ip_address")} != {ip for _, ip in held}


def _interface_info(body: Any, *, removal: bool) -> tuple[str | None, str | None]:
    """The port_id or subnet_id of an add/remove_router_interface body (a bare object)."""
    if not isinstance(body, dict) or not ("port_id" in body or "subnet_id" in body):
        raise bad_router("Either subnet_id or port_id must be specified")
    found: dict[str, str | None] = {"port_id": None, "subnet_id": None}
    for key in found:
        if key in body:
            try:  # convert(), not the call: null too is "not a valid UUID" (upstream)
                found[key] = _UUID.convert(body[key])
            except BadValue as exc:
                raise bad_router(exc.message) from None
    if not removal and found["port_id"] and found["subnet_id"]:
        raise bad_router("Cannot specify both subnet-id and port-id")
    return found["port_id"], found["subnet_id"]


def _interface_reply(router_id: str, port: Row, subnet_id: str,
                     subnet_ids: list[str]) -> dict:
    return {"id": router_id, "tenant_id": port.project_id, "project_id": port.project_id,
            "port_id": port.id, "network_id": port.network_id, "subnet_id": subnet_id,
            "subnet_ids": subnet_ids}
