"""Networks: ownership, sharing, segments and MTU."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.drivers.types.segments import SegmentAllocator
from neutrino.schema.resources import NETWORK
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Quotas
from neutrino.services.sharing import rbac

#: device owners whose ports the network itself owns (they never block a delete)
NETWORK_OWNED_PORTS = ("network:dhcp",)
PROVIDER_ATTRS = ("provider:network_type", "provider:physical_network",
                  "provider:segmentation_id")
#: the smallest MTU an IPv6 subnet can live with (RFC 8200)
IPV6_MIN_MTU = 1280
#: and an IPv4 one (RFC 791)
IPV4_MIN_MTU = 68


#: a network's subnets in the order they were made, as upstream lists them and tries
#: them for a port's address (``position`` counts per network: created_at has only
#: whole seconds)
SUBNET_ORDER = (t.subnets.c.position, t.subnets.c.id)
_SUBNET_IDS_OF = sa.select(t.subnets.c.network_id, t.subnets.c.id).where(
    c.in_ids(t.subnets.c.network_id)).order_by(*SUBNET_ORDER)


def mtu_conflict(network_id: str, minimum: int) -> errors.Conflict:
    return errors.Conflict(f"MTU of {network_id} is not valid, subnet requires a minimum of "
                           f"{minimum}", type="NetworkMTUSubnetConflict")


class Networks(c.Collection):
    resource = NETWORK
    table = t.networks

    def __init__(self, segments: SegmentAllocator, quotas: Quotas) -> None:
        super().__init__()
        self.segments = segments
        self.quotas = quotas

    def column_overrides(self) -> dict[str, sa.Column]:
        return {"router:external": t.networks.c.router_external}

    def filter_overrides(self) -> dict:
        def shared(values: list) -> ColumnElement[bool]:
            wanted = {NETWORK.by_name["shared"].convert_query(v) for v in values}
            is_shared = t.networks.c.id.in_(sa.select(t.network_rbacs.c.object_id).where(
                t.network_rbacs.c.action == policy.SHARED,
                t.network_rbacs.c.target_project == "*"))
            if wanted == {True}:
                return is_shared
            if wanted == {False}:
                return sa.not_(is_shared)
            return sa.true()

        def segment(column: sa.Column, attr: str):
            def clause(values: list) -> ColumnElement[bool]:
                converted = [NETWORK.by_name[attr].convert_query(v) for v in values]
                return t.networks.c.id.in_(
                    sa.select(t.segments.c.network_id).where(column.in_(converted)))
            return clause

        return {
            "shared": shared,
            "provider:network_type": segment(t.segments.c.network_type, "provider:network_type"),
            "provider:physical_network": segment(t.segments.c.physical_network,
                                                 "provider:physical_network"),
            "provider:segmentation_id": segment(t.segments.c.segmentation_id,
                                                "provider:segmentation_id"),
        }

    def scope(self, ctx: Context) -> ColumnElement[bool] | None:
        return policy.network_scope(ctx)

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row]) -> list[dict]:
        return self.render_fields(conn, ctx, rows, None)

    def render_fields(self, conn: Connection, ctx: Context, rows: Sequence[Row],
                      fields: c.Fields) -> list[dict]:
        ids = [r.id for r in rows]
        # read only the tables the shown attributes come from; segments only for admins
        want_subnets, want_shared, want_tags = (
            c.wants(fields, name) for name in ("subnets", "shared", "tags"))
        want_segments = ctx.is_admin and c.wants(fields, *PROVIDER_ATTRS)
        subnets: dict[str, list[str]] = {}
        shared: set[str] = set()
        segments = {}
        tags: dict[str, list[str]] = {}
        for part in c.chunks(ids):
            if want_subnets:
                for net_id, sub_id in conn.execute(_SUBNET_IDS_OF, {"ids": part}):
                    subnets.setdefault(net_id, []).append(sub_id)
            if want_shared:
                shared.update(conn.scalars(sa.select(t.network_rbacs.c.object_id).where(
                    t.network_rbacs.c.object_id.in_(part),
                    t.network_rbacs.c.action == policy.SHARED,
                    t.network_rbacs.c.target_project.in_(("*", ctx.project_id)))))
            if want_segments:
                segments.update(SegmentAllocator.load(conn, list(part)))
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
            if r.id in segments:
                item.update(segments[r.id].as_attrs())
            out.append(item)
        return out

    # -- writes -------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_network")
        owner = policy.owner_for_create(ctx, body, "create_network")
        # 1, not 0: upstream's network is changed once more (its segment) as it is made
        row = c.standard_row(owner, body, revision=1)
        network_type = body.get("provider:network_type") \
            or self.segments.settings.tenant_network_type
        max_mtu = self.segments.max_mtu(network_type)
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
        self.segments.allocate(conn, row["id"], body)
        if body.get("shared"):
            self._share(conn, row["id"], owner)
        if row["router_external"]:  # external to every project: an RBAC policy to "*"
            rbac.set_external(conn, row["id"], owner, True)
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"network": 1})
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

    @staticmethod
    def _share(conn: Connection, network_id: str, owner: str) -> None:
        conn.execute(t.network_rbacs.insert().values(
            id=c.new_id(), object_id=network_id, project_id=owner, target_project="*",
            action=policy.SHARED))

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_network")
        row = self.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_network")
        c.check_revision(row, if_match)
        for hook in self.before_update:
            hook(conn, ctx, row, body)
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
        if provider:
            seg = SegmentAllocator.load(conn, [ident]).get(ident)
            current = seg.as_attrs() if seg else {}
            differ = sorted(a for a in provider if body[a] != current.get(a))
            if differ:
                raise errors.InvalidInput(f"Plugin does not support updating the following "
                                          f"provider network attributes: {', '.join(differ)}.")
        if "mtu" in body:
            seg = SegmentAllocator.load(conn, [ident]).get(ident)
            max_mtu = self.segments.max_mtu(seg.network_type) if seg else None
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
            rbac.set_external(conn, ident, row.project_id, values["router_external"])
        sharing_changed = "shared" in body and self._set_shared(conn, row, body["shared"])
        if values or sharing_changed:
            c.bump(conn, t.networks, ident, values)

    def _set_shared(self, conn: Connection, row: Row, shared: bool) -> bool:
        """Share or unshare with every project; whether anything changed."""
        existing = conn.scalar(sa.select(t.network_rbacs.c.id).where(
            t.network_rbacs.c.object_id == row.id, t.network_rbacs.c.action == policy.SHARED,
            t.network_rbacs.c.target_project == "*"))
        if shared and existing is None:
            self._share(conn, row.id, row.project_id)
            return True
        if not shared and existing is not None:
            # projects with a policy of their own keep their access (RBAC)
            kept = sa.select(t.network_rbacs.c.target_project).where(
                t.network_rbacs.c.object_id == row.id, t.network_rbacs.c.action == policy.SHARED,
                t.network_rbacs.c.target_project != "*")
            others = conn.scalar(sa.select(t.ports.c.id).where(
                t.ports.c.network_id == row.id, t.ports.c.project_id != row.project_id,
                t.ports.c.project_id.notin_(kept),
                t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS)).limit(1))
            if others is not None:
                raise errors.Conflict(
                    f"Unable to reconfigure sharing settings for network {row.name or row.id}. "
                    f"Multiple projects are using it.", type="InvalidSharedSetting")
            conn.execute(t.network_rbacs.delete().where(t.network_rbacs.c.id == existing))
            return True
        return False

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_network")
        row = self.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_network")
        lock_rows(conn, t.networks, [ident])
        for hook in self.before_delete:
            hook(conn, ctx, row)
        in_use = conn.scalars(sa.select(t.ports.c.id).where(
            t.ports.c.network_id == ident,
            t.ports.c.device_owner.notin_(NETWORK_OWNED_PORTS))).all()
        if in_use:
            raise errors.InUse(
                f"Unable to complete operation on network {ident}. There are one or more ports "
                f"still in use on the network, id for these ports is: {', '.join(in_use)}.",
                type="NetworkInUse")
        conn.execute(t.ports.delete().where(t.ports.c.network_id == ident))
        subnet_ids = conn.scalars(sa.select(t.subnets.c.id).where(
            t.subnets.c.network_id == ident)).all()
        if subnet_ids:
            conn.execute(t.tags.delete().where(t.tags.c.resource_id.in_(subnet_ids)))
            conn.execute(t.subnets.delete().where(t.subnets.c.id.in_(subnet_ids)))
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(t.networks.delete().where(t.networks.c.id == ident))

    def usable_row(self, conn: Connection, ctx: Context, ident: str, action: str) -> Row:
        """A network the caller may attach things to (own, shared with it, or admin)."""
        row = self.get_row(conn, ctx, ident)
        if ctx.is_admin or row.project_id == ctx.project_id:
            return row
        shared = conn.scalar(sa.select(policy.usable_network_ids(ctx).where(
            t.network_rbacs.c.object_id == ident).exists()))
        if not shared:
            raise errors.PolicyNotAuthorized(action)
        return row
