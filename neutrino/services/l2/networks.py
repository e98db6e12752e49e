"""Networks: ownership, sharing, segments and MTU.

A network's segment comes from the type drivers, and every change of a network goes
through the mechanism drivers and records the network's event.  Deleting a network
removes what it owns through the services of those rows (its DHCP ports through the
port service, its subnets through the subnet service), which record theirs.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.drivers.mechanism import NetworkContext
from neutrino.drivers.mechanism.manager import Change, MechanismDrivers
from neutrino.drivers.types import segments
from neutrino.drivers.types.manager import TypeDrivers
from neutrino.policy import sharing
from neutrino.schema.resources import NETWORK
from neutrino.services.core import collection as c
from neutrino.services.core import events
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2.device_owners import NETWORK_OWNED_PORTS
from neutrino.services.l2.ports import Ports, network_context
from neutrino.services.l2.subnets import (
    IPV4_MIN_MTU,
    IPV6_MIN_MTU,
    SUBNET_ORDER,
    Subnets,
    mtu_conflict,
)

QUOTA = Counter("network", t.networks)
PROVIDER_ATTRS = ("provider:network_type", "provider:physical_network",
                  "provider:segmentation_id")
ADMIN = Context.admin()

_SUBNET_IDS_OF = sa.select(t.subnets.c.network_id, t.subnets.c.id).where(
    c.in_ids(t.subnets.c.network_id)).order_by(*SUBNET_ORDER)


def scope(ctx: Context) -> ColumnElement[bool] | None:
    """A project sees its own networks and those shared with it or external to it."""
    if ctx.is_admin:
        return None
    return sa.or_(t.networks.c.project_id == ctx.project_id,
                  t.networks.c.id.in_(sharing.visible_network_ids(ctx)))


def _filter_shared(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    wanted = {NETWORK.by_name["shared"].convert_query(v) for v in values}
    is_shared = sharing.shared_with_everyone(t.networks.c.id)
    if wanted == {True}:
        return is_shared
    if wanted == {False}:
        return sa.not_(is_shared)
    return sa.true()


def _filter_segment(column: sa.Column, attr: str) -> c.FilterFn:
    def clause(ctx: Context, values: list[str]) -> ColumnElement[bool]:
        converted = [NETWORK.by_name[attr].convert_query(v) for v in values]
        return t.networks.c.id.in_(
            sa.select(t.segments.c.network_id).where(column.in_(converted)))
    return clause


def render(conn: Connection, ctx: Context, rows: Sequence[Row],
           fields: c.Fields = None) -> list[dict]:
    ids = [r.id for r in rows]
    # read only the tables the shown attributes come from; segments only for admins
    want_subnets, want_shared, want_tags = (
        c.wants(fields, name) for name in ("subnets", "shared", "tags"))
    want_segments = ctx.is_admin and c.wants(fields, *PROVIDER_ATTRS)
    subnets: dict[str, list[str]] = {}
    shared: set[str] = set()
    segs: dict[str, segments.Segment] = {}
    tags: dict[str, list[str]] = {}
    for part in c.chunks(ids):
        if want_subnets:
            for net_id, sub_id in conn.execute(_SUBNET_IDS_OF, {"ids": part}):
                subnets.setdefault(net_id, []).append(sub_id)
        if want_shared:
            shared.update(conn.scalars(sharing.shared_network_ids_among(ctx, list(part))))
        if want_segments:
            segs.update(segments.load(conn, part))
        if want_tags:
            tags.update(c.load_tags(conn, part))
    out = []
    for r in rows:
        item = c.standard_attrs(r, tags.get(r.id, []) if want_tags else None)
        item.update({"admin_state_up": r.admin_state_up, "status": r.status, "mtu": r.mtu})
        if want_shared:
            item["shared"] = r.id in shared
        if want_subnets:
            item["subnets"] = subnets.get(r.id, [])
        item.update({
            "router:external": r.router_external,
            "port_security_enabled": r.port_security_enabled,
            "availability_zone_hints": r.availability_zone_hints,
            "availability_zones": [], "ipv4_address_scope": None,
            "ipv6_address_scope": None, "is_default": r.is_default,
        })
        if r.id in segs:
            item.update(segs[r.id].as_attrs())
        out.append(item)
    return out


def listing() -> c.Listing:
    """How networks are read (subnets and ports read them before the network service
    exists: it holds them)."""
    return c.Listing(
        NETWORK, t.networks, scope=scope, render=render, touched=events.network,
        columns={"router:external": t.networks.c.router_external},
        filters={
            "shared": _filter_shared,
            "provider:network_type": _filter_segment(t.segments.c.network_type,
                                                     "provider:network_type"),
            "provider:physical_network": _filter_segment(t.segments.c.physical_network,
                                                         "provider:physical_network"),
            "provider:segmentation_id": _filter_segment(t.segments.c.segmentation_id,
                                                        "provider:segmentation_id"),
        })


class Networks:
    actions = c.NO_ACTIONS

    def __init__(self, listing: c.Listing, subnets: Subnets, ports: Ports,
                 types: TypeDrivers, mechanism: MechanismDrivers, quotas: Quotas,
                 guards: c.Guards = c.NO_GUARDS) -> None:
        self.listing = listing
        self.subnets = subnets
        self.ports = ports
        self.types = types
        self.mechanism = mechanism
        self.quotas = quotas
        self.guards = guards

    def _changed(self, conn: Connection, change: Change, ident: str,
                 original: NetworkContext | None = None) -> None:
        """Tell the mechanism drivers (``original``: the network before this update)."""
        if self.mechanism.follow_changes:
            self.mechanism.changed(conn, change,
                                   network_context(conn, self.listing, ident, original))

    # -- writes -------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_network")
        owner = policy.owner_for_create(ctx, body, "create_network")
        # 1, not 0: upstream's network is changed once more (its segment) as it is made
        row = c.standard_row(owner, body, revision=1)
        network_type = body.get("provider:network_type") or self.types.tenant_network_type
        max_mtu = self.types.max_mtu(network_type)
        mtu = body.get("mtu") or max_mtu  # 0: the largest, as upstream
        if mtu > max_mtu:
            raise errors.InvalidInput(f"Requested MTU is too big, maximum is {max_mtu}.")
        row.update({
            "admin_state_up": body.get("admin_state_up", True), "status": "ACTIVE",
            "mtu": mtu, "router_external": body.get("router:external", False),
            "port_security_enabled": body.get("port_security_enabled", True),
            "availability_zone_hints": body.get("availability_zone_hints", []),
            "is_default": body.get("is_default", False),
        })
        if row["is_default"] and row["router_external"]:
            self._check_one_default(conn, row["id"])
        conn.execute(t.networks.insert().values(row))
        # after the network row: the segment refers to it
        self.types.allocate(conn, row["id"], body)
        if body.get("shared"):
            sharing.share_network(conn, row["id"], owner, True)
        if row["router_external"]:  # external to every project: an RBAC policy to "*"
            sharing.set_external(conn, row["id"], owner, True)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"network": 1})
        self._changed(conn, "create_network", row["id"])
        events.network(conn, row["id"])
        return row["id"]

    def create_owned(self, conn: Connection, *, project_id: str, name: str,
                     network_type: str) -> str:
        """A network a service makes for itself (a project's HA network): of the largest
        MTU of its type, past policy and quotas (upstream's is owned by no project)."""
        row = c.standard_row(project_id, {"name": name}, revision=1)
        row.update({"admin_state_up": True, "status": "ACTIVE",
                    "mtu": self.types.max_mtu(network_type), "router_external": False,
                    "port_security_enabled": True, "availability_zone_hints": [],
                    "is_default": False})
        conn.execute(t.networks.insert().values(row))
        self.types.allocate(conn, row["id"], {"provider:network_type": network_type})
        self._changed(conn, "create_network", row["id"])
        events.network(conn, row["id"])
        return row["id"]

    @staticmethod
    def _check_one_default(conn: Connection, ident: str) -> None:
        other = conn.scalar(sa.select(t.networks.c.id).where(
            t.networks.c.is_default.is_(True), t.networks.c.router_external.is_(True),
            t.networks.c.id != ident).limit(1))
        if other is not None:
            raise errors.Conflict(f"Unable to set network {ident} as the default external "
                                  f"network: {other} is already the default.",
                                  type="DefaultExternalNetworkExists")

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_network")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_network")
        c.check_revision(row, if_match)
        self.guards.update(conn, ctx, row, body)
        original = network_context(conn, self.listing, ident) \
            if self.mechanism.follow_changes else None
        values = {}
        for attr, column in (("name", "name"), ("description", "description"),
                             ("admin_state_up", "admin_state_up"),
                             ("router:external", "router_external"),
                             ("port_security_enabled", "port_security_enabled"),
                             ("is_default", "is_default")):
            if attr in body:
                values[column] = body[attr]
        if values.get("is_default", row.is_default) \
                and values.get("router_external", row.router_external):
            self._check_one_default(conn, ident)
        provider = [a for a in PROVIDER_ATTRS if a in body]
        seg = self.types.load(conn, [ident]).get(ident) if provider or "mtu" in body else None
        if provider:
            current = seg.as_attrs() if seg else {}
            differ = sorted(a for a in provider if body[a] != current.get(a))
            if differ:
                raise errors.InvalidInput(f"Plugin does not support updating the following "
                                          f"provider network attributes: {', '.join(differ)}.")
        if "mtu" in body:
            max_mtu = self.types.max_mtu(seg.network_type) if seg else None
            if max_mtu is not None and body["mtu"] > max_mtu:
                raise errors.InvalidInput(f"Requested MTU is too big, maximum is {max_mtu}.")
            mtu = body["mtu"] or (max_mtu if max_mtu is not None else row.mtu)
            for version, minimum in ((4, IPV4_MIN_MTU), (6, IPV6_MIN_MTU)):
                if mtu < minimum and conn.scalar(sa.select(t.subnets.c.id).where(
                        t.subnets.c.network_id == ident,
                        t.subnets.c.ip_version == version).limit(1)):
                    raise mtu_conflict(ident, minimum)
            values["mtu"] = mtu
        values = c.changed(row, values)
        if "router_external" in values:
            sharing.set_external(conn, ident, row.project_id, values["router_external"])
        sharing_changed = "shared" in body and self._set_shared(conn, row, body["shared"])
        if values or sharing_changed:
            c.bump(conn, t.networks, ident, values)
            events.network(conn, ident)
        self._changed(conn, "update_network", ident, original)

    @staticmethod
    def _set_shared(conn: Connection, row: Row, shared: bool) -> bool:
        """Share or unshare with every project; whether anything changed."""
        if not shared and sharing.find(conn, sharing.NETWORK, row.id, sharing.SHARED,
                                       sharing.EVERYONE) is not None:
            # projects with a policy of their own keep their access (RBAC)
            kept = sharing.targets(conn, sharing.NETWORK, row.id, sharing.SHARED) \
                - {sharing.EVERYONE}
            others = conn.scalar(sa.select(t.ports.c.id).where(
                t.ports.c.network_id == row.id, t.ports.c.project_id != row.project_id,
                t.ports.c.project_id.notin_(sorted(kept)),
                t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS)).limit(1))
            if others is not None:
                raise errors.Conflict(
                    f"Unable to reconfigure sharing settings for network {row.name or row.id}. "
                    f"Multiple projects are using it.", type="InvalidSharedSetting")
        return sharing.share_network(conn, row.id, row.project_id, shared)

    def rbac_changed(self, conn: Connection, ident: str,
                     router_external: bool | None = None) -> None:
        """An RBAC policy on the network came, changed or went: a new revision, and
        ``router:external`` follows its external policies (``router_external``: what it
        now is, None: unchanged)."""
        original = network_context(conn, self.listing, ident) \
            if self.mechanism.follow_changes else None
        values = {} if router_external is None else {"router_external": router_external}
        c.bump(conn, t.networks, ident, values)
        self._changed(conn, "update_network", ident, original)
        events.network(conn, ident)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_network")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_network")
        lock_rows(conn, t.networks, [ident])
        self.guards.delete(conn, ctx, row)
        in_use = conn.scalars(sa.select(t.ports.c.id).where(
            t.ports.c.network_id == ident,
            t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS))).all()
        if in_use:
            raise errors.InUse(
                f"Unable to complete operation on network {ident}. There are one or more ports "
                f"still in use on the network, id for these ports is: {', '.join(in_use)}.",
                type="NetworkInUse")
        context = network_context(conn, self.listing, ident) \
            if self.mechanism.follow_changes else None
        # what the network owns, through the services of those rows
        for port_id in conn.scalars(sa.select(t.ports.c.id).where(
                t.ports.c.network_id == ident).order_by(t.ports.c.id)).all():
            self.ports.remove(conn, port_id)
        for subnet in conn.execute(sa.select(t.subnets).where(
                t.subnets.c.network_id == ident).order_by(*SUBNET_ORDER)).all():
            self.subnets.remove(conn, subnet)
        if context is not None:  # before the row goes, as ML2 calls it
            self.mechanism.changed(conn, "delete_network", context)
        self.types.release(conn, ident)
        events.network(conn, ident)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(t.networks.delete().where(t.networks.c.id == ident))
