"""Firewall groups: an ingress and an egress policy on a set of ports (router interfaces
and instance ports; a port is in one group at most), realised by the firewall driver."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.schema.resources import FIREWALL_GROUP
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.firewall.defaults import DEFAULT_NAME, DefaultGroups
from neutrino.services.firewall.policies import FirewallPolicies
from neutrino.services.firewall.realise import (
    INACTIVE,
    Realisation,
    group_value,
    refuse_pending,
)
from neutrino.services.firewall.rows import group_ports
from neutrino.services.firewall.rules import shared_or_own
from neutrino.services.l2.device_owners import ROUTER_HA_INTERFACE

FG = t.firewall_groups
GP = t.firewall_group_ports
QUOTA = Counter("firewall_group", FG)
#: the ports a group may hold: router interfaces (L3) and instances' ports (L2)
ROUTER_INTERFACES = ("network:router_interface", "network:router_interface_distributed",
                     ROUTER_HA_INTERFACE)
INSTANCE_PREFIX = "compute:"
POLICY_KEYS = ("ingress_firewall_policy_id", "egress_firewall_policy_id")
_PORTS_OF = sa.select(GP.c.firewall_group_id, GP.c.port_id).where(
    c.in_ids(GP.c.firewall_group_id)).order_by(GP.c.port_id)


def group_not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"Firewall group {ident} could not be found.",
                           type="FirewallGroupNotFound")


def _holding(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    """Groups holding any of these ports."""
    return FG.c.id.in_(sa.select(GP.c.firewall_group_id).where(GP.c.port_id.in_(values)))


def _status(ctx: Context, values: list[str]) -> ColumnElement[bool]:
    """The status as shown: a group without ports is INACTIVE whatever is stored (a port
    its router or network removed left it without a report)."""
    has_ports = FG.c.id.in_(sa.select(GP.c.firewall_group_id))
    wanted = set(values)
    clauses = [sa.and_(has_ports, FG.c.status.in_(sorted(wanted - {INACTIVE})))]
    if INACTIVE in wanted:
        clauses.append(sa.or_(sa.not_(has_ports), FG.c.status == INACTIVE))
    return sa.or_(*clauses)


def _refuse_default_name(name: str | None) -> None:
    if name == DEFAULT_NAME:
        raise errors.Conflict("Operation cannot be performed since 'default' is a reserved "
                              "name for Firewall Group.", type="FirewallDefaultParameterExists")


class FirewallGroups:
    table = FG
    actions = c.NO_ACTIONS

    def __init__(self, policies: FirewallPolicies, quotas: Quotas, defaults: DefaultGroups,
                 realisation: Realisation) -> None:
        self.policies = policies
        self.quotas = quotas
        self.defaults = defaults
        self.realisation = realisation
        self.listing = c.Listing(FIREWALL_GROUP, FG, scope=shared_or_own(FG),
                                 render=self.render, not_found=group_not_found,
                                 filters={"ports": _holding, "status": _status},
                                 prepare=defaults)

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        ids = [r.id for r in rows]
        tags = c.load_tags(conn, ids) if c.wants(fields, "tags") else {}
        ports: dict[str, list[str]] = {}
        for part in c.chunks(ids):  # the status needs them too
            for group_id, port_id in conn.execute(_PORTS_OF, {"ids": part}):
                ports.setdefault(group_id, []).append(port_id)
        out = []
        for r in rows:
            m = r._mapping
            item = c.standard_attrs(r, tags.get(r.id, []))
            item.update({k: m[k] for k in POLICY_KEYS})
            # a group whose last port was deleted has nothing to enforce
            item.update({"admin_state_up": m["admin_state_up"], "shared": m["shared"],
                         "ports": ports.get(r.id, []),
                         "status": m["status"] if ports.get(r.id) else INACTIVE})
            out.append(item)
        return out

    # -- checks -----------------------------------------------------------------

    def _check_ports(self, conn: Connection, ctx: Context, owner: str, ident: str | None,
                     port_ids: Sequence[str]) -> None:
        if not port_ids:
            return
        ports = t.ports
        rows = {r.id: r for r in conn.execute(sa.select(
            ports.c.id, ports.c.project_id, ports.c.device_owner).where(
            ports.c.id.in_(list(port_ids))))}
        for port_id in port_ids:
            row = rows.get(port_id)
            if row is None or not (ctx.is_admin or row.project_id == ctx.project_id):
                raise errors.NotFound(f"Port {port_id} could not be found.",
                                      type="PortNotFound")
            if row.project_id != owner:
                raise errors.Conflict(f"Operation cannot be performed as port {port_id} is in "
                                      f"an invalid project {row.project_id}.",
                                      type="FirewallGroupPortInvalidProject")
            if row.device_owner not in ROUTER_INTERFACES \
                    and not row.device_owner.startswith(INSTANCE_PREFIX):
                raise errors.Conflict(f"Port {port_id} of firewall group is invalid.",
                                      type="FirewallGroupPortInvalid")
        lock_rows(conn, ports, sorted(port_ids))  # no other group takes them meanwhile
        taken = sorted(conn.scalars(sa.select(GP.c.port_id).where(
            GP.c.port_id.in_(list(port_ids)), GP.c.firewall_group_id != (ident or ""))))
        if taken:
            raise errors.Conflict(f"Port(s) {taken} provided already associated with other "
                                  f"firewall group(s).", type="FirewallGroupPortInUse")

    def port_leaving(self, conn: Connection, ctx: Context, port: Row) -> None:
        """A guard of the port family's deletes: a deleted port leaves its group, which
        is an update of that group (the driver stops filtering on it)."""
        group_id = conn.scalar(sa.select(GP.c.firewall_group_id).where(
            GP.c.port_id == port.id))
        if group_id is None:
            return
        lock_rows(conn, FG, [group_id])
        original = group_value(conn, conn.execute(sa.select(FG).where(
            FG.c.id == group_id)).one())
        conn.execute(GP.delete().where(GP.c.port_id == port.id))
        self.realisation.updated(conn, group_id, original)

    # -- writes -----------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_firewall_group")
        owner = policy.owner_for_create(ctx, body, "create_firewall_group")
        _refuse_default_name(body.get("name"))
        self.defaults.ensure_default(conn, owner)
        self.policies.usable_rows(conn, ctx, owner, [body[k] for k in POLICY_KEYS])
        self._check_ports(conn, ctx, owner, None, body["ports"])
        row = c.standard_row(owner, body)
        conn.execute(FG.insert().values(
            **row, shared=body["shared"], admin_state_up=body["admin_state_up"],
            status=INACTIVE, **{k: body[k] for k in POLICY_KEYS}))
        if body["ports"]:
            conn.execute(GP.insert(), [{"port_id": p, "firewall_group_id": row["id"]}
                                       for p in body["ports"]])
        if body.get("tags"):
            c.set_tags(conn, row["id"], body["tags"])
        self.quotas.check(conn, owner, {"firewall_group": 1})
        self.realisation.created(conn, row["id"])
        return row["id"]

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_firewall_group")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "update_firewall_group")
        lock_rows(conn, FG, [ident])
        row = self.listing.get_row(conn, ctx, ident)  # as it is now we hold its lock
        c.check_revision(row, if_match)
        refuse_pending(row)
        _refuse_default_name(body.get("name"))
        if self.defaults.is_default(conn, ident):
            # the project changes its default group's ports only; an admin its name too
            fixed = ("name",) if ctx.is_admin else ("name", "description", "admin_state_up",
                                                    *POLICY_KEYS)
            if any(k in body for k in fixed):
                raise errors.Conflict(f"Operation cannot be performed on default object "
                                      f"'{ident}' of type Firewall Group.",
                                      type="FirewallDefaultObjectUpdateRestricted")
        original = group_value(conn, row)
        values = c.changed(row, {k: body[k] for k in ("name", "description", "shared",
                                                      "admin_state_up", *POLICY_KEYS)
                                 if k in body})
        self.policies.usable_rows(conn, ctx, row.project_id,
                                  [values.get(k) for k in POLICY_KEYS])
        ports_changed = "ports" in body and sorted(body["ports"]) != list(original.ports)
        if ports_changed:
            self._check_ports(conn, ctx, row.project_id, ident, body["ports"])
            conn.execute(GP.delete().where(GP.c.firewall_group_id == ident))
            if body["ports"]:
                conn.execute(GP.insert(), [{"port_id": p, "firewall_group_id": ident}
                                           for p in body["ports"]])
        if values or ports_changed:
            c.bump(conn, FG, ident, values)
        if ports_changed or set(values) & {"admin_state_up", *POLICY_KEYS}:
            self.realisation.updated(conn, ident, original)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_firewall_group")
        row = self.listing.get_row(conn, ctx, ident)
        policy.check_owner(ctx, row.project_id, "delete_firewall_group")
        lock_rows(conn, FG, [ident])
        row = self.listing.get_row(conn, ctx, ident)
        if group_ports(conn, ident):
            # upstream: the ports leave first (an update to no ports), then it goes
            raise errors.InUse(f"Firewall group {ident} is still active.",
                               type="FirewallGroupInUse")
        default = self.defaults.is_default(conn, ident)
        if default and not ctx.is_admin:
            raise errors.InUse("Deleting default firewall group not allowed.",
                               type="FirewallGroupCannotRemoveDefault")
        self.realisation.deleting(conn, row)
        conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
        conn.execute(FG.delete().where(FG.c.id == ident))
        if default:  # its policies go with it (an admin's clean-up), as upstream
            for policy_id in dict.fromkeys(row._mapping[k] for k in POLICY_KEYS):
                if policy_id is not None and not self.policies.in_use(conn, policy_id):
                    self.policies.remove_unused(conn, policy_id)
