"""Floating IPs: an address of an external network, forwarded to a port's fixed IP.

The address is held by a port on the external network (device_owner
``network:floatingip``, owned by no project, as upstream).  Associating needs a
router that joins the port's subnet to that external network: the router whose
interface is the subnet's gateway, else the first one found.  ``status`` stays
``DOWN`` until a data plane realises the NAT (upstream without an L3 agent
reports ``DOWN`` too).  Every change of a floating IP records its event, naming the
router it goes through; a port delete that disassociates one records it too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.schema.resources import FLOATINGIP
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2.ports import Ports
from neutrino.services.l2.subnets import Subnets
from neutrino.services.l3.routers import ROUTER_GATEWAY, ROUTER_INTERFACE

QUOTA = Counter("floatingip", t.floatingips)
FLOATINGIP_OWNER = "network:floatingip"
#: ports that never get a floating IP (upstream's is_fip_serviced)
NOT_SERVICED = ("network:dhcp",)
DETAILS = ("name", "network_id", "mac_address", "admin_state_up", "status", "device_id",
           "device_owner")


def bad_floatingip(message: str) -> errors.BadRequest:
    """Upstream's ``Bad floatingip request: ...`` (type ``BadRequest``)."""
    return errors.BadRequest(f"Bad floatingip request: {message}.", type="BadRequest")


def _version(ip: str) -> int:
    return ipaddress.ip_address(ip).version


def may_choose_address(ctx: Context) -> bool:
    """A specific floating IP address is for admins and project managers (upstream)."""
    return ctx.is_admin or "manager" in ctx.roles


def not_found(ident: str) -> errors.NotFound:
    # upstream's words (no full stop)
    return errors.NotFound(f"Floating IP {ident} could not be found", type="FloatingIPNotFound")


def _touched(conn: Connection, ident: str) -> None:
    router_id = conn.scalar(sa.select(t.floatingips.c.router_id).where(
        t.floatingips.c.id == ident))
    events.floatingip(conn, ident, router_id)


class FloatingIps:
    actions = c.NO_ACTIONS

    def __init__(self, networks: c.Listing, subnets: Subnets, ports: Ports,
                 quotas: Quotas) -> None:
        #: the external networks floating IPs come from (read only)
        self.networks = networks
        self.subnets = subnets
        self.ports = ports
        self.quotas = quotas
        self.listing = c.Listing(FLOATINGIP, t.floatingips, scope=policy.owned(t.floatingips),
                                 render=self.render,
                                 columns={"port_id": t.floatingips.c.fixed_port_id},
                                 not_found=not_found, touched=_touched)

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags: dict[str, list[str]] = {}
        details: dict[str, dict] = {}
        for part in c.chunks(ids):
            tags.update(c.load_tags(conn, part))
        fixed = [r.fixed_port_id for r in rows if r.fixed_port_id]
        for part in c.chunks(fixed):
            for p in conn.execute(sa.select(t.ports.c.id, *(t.ports.c[k] for k in DETAILS))
                                  .where(t.ports.c.id.in_(part))):
                details[p.id] = {k: p._mapping[k] for k in DETAILS}
        out = []
        for r in rows:
            item = c.standard_attrs(r, tags.get(r.id, []))
            del item["name"]  # a floating IP has none
            item.update({
                "floating_ip_address": r.floating_ip_address,
                "floating_network_id": r.floating_network_id, "router_id": r.router_id,
                "port_id": r.fixed_port_id, "fixed_ip_address": r.fixed_ip_address,
                "status": r.status, "port_details": details.get(r.fixed_port_id),
            })
            out.append(item)
        return out

    # -- writes -------------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_floatingip")
        owner = policy.owner_for_create(ctx, body, "create_floatingip")
        if body.get("floating_ip_address") is not None \
                and not may_choose_address(ctx):
            raise errors.PolicyNotAuthorized("create_floatingip:floating_ip_address")
        network = self.networks.get_row(conn, ctx, body["floating_network_id"])
        if not network.router_external:
            raise bad_floatingip(f"Network {network.id} is not a valid external network")
        if not any(s.ip_version == 4 for s in self.subnets.infos(conn, network.id)):
            raise bad_floatingip(f"Network {network.id} does not contain any IPv4 subnet")
        wanted = {k: body[k] for k in ("subnet_id", "floating_ip_address")
                  if body.get(k) is not None}
        if "floating_ip_address" in wanted:
            wanted["ip_address"] = wanted.pop("floating_ip_address")
        row = c.standard_row(owner, body)
        port_id = self.ports.create_owned(
            conn, network_id=network.id, project_id="", device_owner=FLOATINGIP_OWNER,
            device_id=row["id"], fixed_ips=[wanted] if wanted else None, status="N/A")
        addresses = sorted(conn.scalars(sa.select(t.ip_allocations.c.ip_address).where(
            t.ip_allocations.c.port_id == port_id)), key=ipaddress.ip_address)
        v4 = [ip for ip in addresses if _version(ip) == 4]
        if not v4:
            raise errors.BadRequest(f"Unable to find any IP address on external network "
                                    f"{network.id}.", type="ExternalIpAddressExhausted")
        fixed_port, fixed_ip, router_id = self._association(
            conn, ctx, None, owner, network.id, v4[0], row["id"], body)
        row.update({
            "name": "", "floating_network_id": network.id, "floating_port_id": port_id,
            "floating_ip_address": v4[0], "fixed_port_id": fixed_port,
            "fixed_ip_address": fixed_ip, "router_id": router_id, "status": "DOWN",
        })
        conn.execute(t.floatingips.insert().values(row))
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"floatingip": 1})
        events.floatingip(conn, row["id"], router_id)
        return row["id"]

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_floatingip")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_floatingip")
        c.check_revision(row, if_match)
        lock_rows(conn, t.floatingips, [ident])
        fixed_port, fixed_ip, router_id = self._association(
            conn, ctx, row, row.project_id, row.floating_network_id, row.floating_ip_address,
            ident, body)
        values = {"fixed_port_id": fixed_port, "fixed_ip_address": fixed_ip,
                  "router_id": router_id}
        if "description" in body:
            values["description"] = body["description"]
        values = c.changed(row, values)
        if values:
            c.bump(conn, t.floatingips, ident, values)
            events.floatingip(conn, ident, router_id)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_floatingip")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_floatingip")
        self._remove(conn, ident, row.floating_port_id, row.router_id)

    def _remove(self, conn: Connection, ident: str, port_id: str,
                router_id: str | None) -> None:
        """The floating IP gone, and its address with it (its port, through the port
        service)."""
        events.floatingip(conn, ident, router_id)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(t.floatingips.delete().where(t.floatingips.c.id == ident))
        self.ports.remove(conn, port_id)

    # -- association ----------------------------------------------------------------

    def _association(self, conn: Connection, ctx: Context, current: Row | None,
                     project_id: str, network_id: str, floating_ip: str, fip_id: str,
                     body: dict) -> tuple[str | None, str | None, str | None]:
        """(port, fixed IP, router) the floating IP is to forward to, as ``body`` asks.

        No ``port_id`` in an update keeps the association; ``port_id: null`` ends it,
        and so does an update with no attributes at all (the original API's way to
        disassociate, which upstream keeps).
        """
        port_id = body.get("port_id")
        if body.get("fixed_ip_address") is not None and port_id is None:
            raise bad_floatingip("fixed_ip_address cannot be specified without a port_id")
        if port_id is None:
            if "port_id" not in body and current is not None and body:
                return current.fixed_port_id, current.fixed_ip_address, current.router_id
            return None, None, None
        port = self.ports.get_row(conn, ctx, port_id)
        if port.project_id != project_id and not ctx.is_admin:
            raise bad_floatingip(f"Cannot process floating IP association with Port {port_id}, "
                                 f"since that port is owned by a different project")
        if port.device_owner in NOT_SERVICED:
            raise bad_floatingip(f"Port {port_id} is unable to be assigned a floating IP")
        held = conn.execute(sa.select(t.ip_allocations.c.ip_address,
                                      t.ip_allocations.c.subnet_id)
                            .where(t.ip_allocations.c.port_id == port_id)).all()
        fixed_ip = body.get("fixed_ip_address")
        if fixed_ip is not None:
            if _version(fixed_ip) != 4:
                raise bad_floatingip(f"Cannot process floating IP association with "
                                     f"{fixed_ip}, since that is not an IPv4 address")
            subnets = [sid for ip, sid in held if ip == fixed_ip]
            if not subnets:
                raise bad_floatingip(f"Port {port_id} does not have fixed ip {fixed_ip}")
            subnet_id = subnets[0]
        else:
            v4 = [(ip, sid) for ip, sid in held if _version(ip) == 4]
            if not v4:
                raise bad_floatingip(f"Cannot add floating IP to port {port_id} that has no "
                                     f"fixed IPv4 addresses")
            if len(v4) > 1:
                raise bad_floatingip(f"Port {port_id} has multiple fixed IPv4 addresses.  Must "
                                     f"provide a specific IPv4 address when assigning a "
                                     f"floating IP")
            fixed_ip, subnet_id = v4[0]
        router_id = self._router_for(conn, port, subnet_id, network_id)
        taken = conn.scalar(sa.select(t.floatingips.c.id).where(
            t.floatingips.c.fixed_port_id == port_id,
            t.floatingips.c.floating_network_id == network_id,
            t.floatingips.c.fixed_ip_address == fixed_ip,
            t.floatingips.c.id != fip_id).limit(1))
        if taken is not None:
            raise errors.InUse(
                f"Cannot associate floating IP {floating_ip} ({fip_id}) with port {port_id} "
                f"using fixed IP {fixed_ip}, as that fixed IP already has a floating IP on "
                f"external network {network_id}.", type="FloatingIPPortAlreadyAssociated")
        return port_id, fixed_ip, router_id

    @staticmethod
    def _router_for(conn: Connection, port: Row, subnet_id: str, network_id: str) -> str:
        """A router with an interface on the subnet and its gateway on the external
        network: the one whose interface is the subnet's gateway, else the first."""
        gateway = t.ports.alias("gateway")
        interface = t.ports.alias("interface")
        found = conn.execute(
            sa.select(t.router_ports.c.router_id, t.ip_allocations.c.ip_address)
            .join(interface, interface.c.id == t.router_ports.c.port_id)
            .join(t.ip_allocations, t.ip_allocations.c.port_id == interface.c.id)
            .join(t.routers, t.routers.c.id == t.router_ports.c.router_id)
            .join(gateway, gateway.c.id == t.routers.c.gw_port_id)
            .where(t.router_ports.c.port_type == ROUTER_INTERFACE,
                   interface.c.network_id == port.network_id,
                   t.ip_allocations.c.subnet_id == subnet_id,
                   gateway.c.network_id == network_id,
                   gateway.c.device_owner == ROUTER_GATEWAY)
            .order_by(t.router_ports.c.router_id)).all()
        if not found:
            raise errors.NotFound(
                f"External network {network_id} is not reachable from subnet {subnet_id}.  "
                f"Therefore, cannot associate Port {port.id} with a Floating IP.",
                type="ExternalGatewayForFloatingIPNotFound")
        gateway_ip = conn.scalar(sa.select(t.subnets.c.gateway_ip).where(
            t.subnets.c.id == subnet_id))
        for router_id, ip in found:
            if ip == gateway_ip:
                return router_id
        return found[0][0]

    def drop_unassociated(self, conn: Connection, ctx: Context, network: Row) -> None:
        """Deleting an external network takes its unused floating IPs with it (as
        upstream); associated ones keep it in use."""
        for fip_id, port_id in conn.execute(sa.select(
                t.floatingips.c.id, t.floatingips.c.floating_port_id).where(
                t.floatingips.c.floating_network_id == network.id,
                t.floatingips.c.fixed_port_id.is_(None))).all():
            self._remove(conn, fip_id, port_id, None)


# -- guards the port service runs (listed in services/__init__.py) ---------------------

def guard_port_delete(conn: Connection, ctx: Context, port: Row) -> None:
    """A floating IP's own port goes with it; a deleted port's floating IPs are
    disassociated (unless they are another project's, for a non-admin)."""
    if conn.scalar(sa.select(t.floatingips.c.id).where(
            t.floatingips.c.floating_port_id == port.id)) is not None:
        raise errors.InUse(f"Port {port.id} cannot be deleted directly via the port API: "
                           f"has device owner {port.device_owner}.",
                           type="ServicePortInUse")
    owners = conn.scalars(sa.select(t.floatingips.c.project_id).where(
        t.floatingips.c.fixed_port_id == port.id)).all()
    if not owners:
        return
    if not ctx.is_admin and any(o != ctx.project_id for o in owners):
        raise errors.InUse(f"Unable to complete the operation on port {port.id} because "
                           f"the port still has an associated floating IP.",
                           type="FipAssociated")
    for fip_id in conn.scalars(sa.select(t.floatingips.c.id).where(
            t.floatingips.c.fixed_port_id == port.id)).all():
        c.bump(conn, t.floatingips, fip_id,
               {"fixed_port_id": None, "fixed_ip_address": None, "router_id": None})
        events.floatingip(conn, fip_id, None)


def guard_port_update(conn: Connection, ctx: Context, port: Row,
                      changes: dict) -> None:
    """The fixed IP a floating IP forwards to stays on the port."""
    if "fixed_ips" not in changes:
        return
    forwarded = conn.scalar(sa.select(t.floatingips.c.fixed_ip_address).where(
        t.floatingips.c.fixed_port_id == port.id,
        t.floatingips.c.fixed_ip_address.is_not(None)).limit(1))
    if forwarded is None:
        return
    if not any(f.get("ip_address") == forwarded for f in changes["fixed_ips"] or []):
        raise errors.BadRequest(f"Bad port request: Cannot update the fixed_ips of the "
                                f"port {port.id}, because its original fixed_ip has been "
                                f"associated to a floating ip.", type="BadRequest")
