"""Sharing: RBAC policies on networks and security groups (``/v2.0/rbac-policies``).

A policy gives one project (or ``*``, every project: admins only) an access
to an object:

- ``network`` + ``access_as_shared``: the network is visible and usable (ports,
  subnets) as if the project's own; ``shared`` on the network reflects a policy
  to ``*`` (or to the caller);
- ``network`` + ``access_as_external``: the network is external to the project
  (visible, a place for router gateways and floating IPs).  The first such
  policy makes the network ``router:external``, removing the last one makes it
  internal again, and ``router:external: true`` through the networks API is a
  policy to ``*`` (as upstream);
- ``security_group`` + ``access_as_shared``: the group is visible to the project
  and its ports may use it (its rules stay the owner's).

Only an object's owner (or an admin) shares it; a share others depend on (their
ports on the network, their ports in the group, their routers on the external
network) cannot be taken back: 409 ``RbacPolicyInUse``.

The two tables (``network_rbacs``, ``securitygroup_rbacs``) are listed as one
collection through a ``UNION ALL``; their SQL is :mod:`neutrino.policy.sharing`'s, and
a policy's object is changed through its own service.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_rows
from neutrino.policy import sharing
from neutrino.policy.sharing import EXTERNAL, NETWORK, POLICIES, SECURITY_GROUP, SHARED
from neutrino.schema.resources import RBAC_POLICY
from neutrino.services.core import collection as c
from neutrino.services.core.quotas import Counter, Quotas
from neutrino.services.l2.networks import Networks
from neutrino.services.security.security_groups import SecurityGroups

QUOTA = Counter("rbac_policy", POLICIES)
#: the rows each kind of policy is on
OBJECTS = {NETWORK: t.networks, SECURITY_GROUP: t.security_groups}


def in_use(object_id: str, details: str) -> errors.Conflict:
    return errors.Conflict(f"RBAC policy on object {object_id} cannot be removed because "
                           f"other objects depend on it.\nDetails: {details}",
                           type="RbacPolicyInUse")


def not_found(ident: str) -> errors.NotFound:
    return errors.NotFound(f"RBAC policy of type unknown with ID {ident} not found",
                           type="RbacPolicyNotFound")


def render(conn: Connection, ctx: Context, rows: Sequence[Row],
           fields: c.Fields = None) -> list[dict]:
    return [{"id": r.id, "project_id": r.project_id, "tenant_id": r.project_id,
             "object_type": r.object_type, "object_id": r.object_id, "action": r.action,
             "target_tenant": r.target_tenant} for r in rows]


class RbacPolicies:
    actions = c.NO_ACTIONS

    def __init__(self, networks: Networks, groups: SecurityGroups, quotas: Quotas) -> None:
        self.networks = networks
        self.groups = groups
        self.quotas = quotas
        # a policy is its creator's alone to see (the target project does not see it)
        self.listing = c.Listing(RBAC_POLICY, POLICIES, scope=policy.owned(POLICIES),
                                 render=render, not_found=not_found)

    # -- the shared object -----------------------------------------------------

    def _object(self, conn: Connection, ctx: Context, kind: str, ident: str) -> Row:
        """The object a policy is on: visible to the caller (else 404) and its own (else,
        as upstream, 400: only admins share what they do not own)."""
        service = self.networks if kind == NETWORK else self.groups
        row = service.listing.get_row(conn, ctx, ident)
        if not ctx.is_admin and row.project_id != ctx.project_id:
            what = "networks" if kind == NETWORK else "objects"
            raise errors.InvalidInput(f"Only admins can manipulate policies on {what} they "
                                      f"do not own")
        lock_rows(conn, OBJECTS[kind], [ident])
        return row

    def _object_changed(self, conn: Connection, kind: str, object_id: str,
                        router_external: bool | None = None) -> None:
        """A policy on the object came, changed or went: the object's service records it."""
        if kind == NETWORK:
            self.networks.rbac_changed(conn, object_id, router_external)
        else:
            self.groups.changed(conn, object_id)

    # -- writes ---------------------------------------------------------------

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        policy.check_write(ctx, "create_rbac_policy")
        owner = policy.owner_for_create(ctx, body, "create_rbac_policy")
        kind, action, target = body["object_type"], body["action"], body["target_tenant"]
        if action not in sharing.ACTIONS[kind]:
            raise errors.BadRequest(f"Invalid action '{action}' for object type '{kind}'. "
                                    f"Valid actions: {sharing.ACTIONS[kind]}",
                                    type="InvalidActionForType")
        sharing.check_target(ctx, target, "create_rbac_policy")
        obj = self._object(conn, ctx, kind, body["object_id"])
        if sharing.find(conn, kind, obj.id, action, target):
            raise errors.Conflict("An RBAC policy already exists with those values.",
                                  type="DuplicateRbacPolicy")
        ident = sharing.grant(conn, kind, obj.id, owner, target, action)
        # the first external policy makes the network external
        external = True if kind == NETWORK and action == EXTERNAL \
            and not obj.router_external else None
        self._object_changed(conn, kind, obj.id, external)
        self.quotas.check(conn, owner, {"rbac_policy": 1})
        return ident

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        policy.check_write(ctx, "update_rbac_policy")
        row = self.listing.get_row(conn, ctx, ident)
        if "target_tenant" not in body or body["target_tenant"] == row.target_tenant:
            return
        target = body["target_tenant"]
        sharing.check_target(ctx, target, "update_rbac_policy")
        self._object(conn, ctx, row.object_type, row.object_id)
        if sharing.find(conn, row.object_type, row.object_id, row.action, target):
            raise errors.Conflict("An RBAC policy already exists with those values.",
                                  type="DuplicateRbacPolicy")
        self._check_release(conn, row, replacement=target)
        sharing.retarget(conn, row.object_type, ident, target)
        self._object_changed(conn, row.object_type, row.object_id)

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        policy.check_write(ctx, "delete_rbac_policy")
        row = self.listing.get_row(conn, ctx, ident)
        lock_rows(conn, OBJECTS[row.object_type], [row.object_id])
        self._check_release(conn, row, replacement=None)
        sharing.revoke(conn, row.object_type, ident)
        # the last external policy gone: the network is internal again
        internal = row.object_type == NETWORK and row.action == EXTERNAL \
            and not sharing.targets(conn, NETWORK, row.object_id, EXTERNAL, ident)
        self._object_changed(conn, row.object_type, row.object_id,
                             False if internal else None)

    # -- who depends on a policy ------------------------------------------------

    def _check_release(self, conn: Connection, row: Row, replacement: str | None) -> None:
        """Refuse to take access away from a project that uses it.

        ``replacement`` is the new target of an updated policy (its project keeps
        the access).
        """
        if replacement == "*":
            return  # everyone keeps the access
        kind, object_id, target = row.object_type, row.object_id, row.target_tenant
        if kind == NETWORK and row.action == EXTERNAL and target == "*" \
                and conn.scalar(sa.select(t.networks.c.is_default).where(
                    t.networks.c.id == object_id)):
            raise errors.Conflict(
                f"RBAC policy on object {object_id} cannot be removed because other objects "
                f"depend on it: it is the default external network.", type="RbacPolicyInUse")
        owner = conn.scalar(sa.select(OBJECTS[kind].c.project_id).where(
            OBJECTS[kind].c.id == object_id))
        if target == owner:
            return
        others = sharing.targets(conn, kind, object_id, row.action, row.id)
        if target != "*" and "*" in others:
            return  # a policy to everyone still covers the project
        keep = {owner, *others} - {"*"}
        if replacement is not None:
            keep.add(replacement)
        if kind == SECURITY_GROUP:
            users = self._group_users(conn, object_id)
            lost = {target} & users if target != "*" else users - keep
            if lost:
                raise in_use(object_id, f"project_id={sorted(lost)[0]}")
        elif row.action == SHARED:
            users = self._network_users(conn, object_id)
            if (target in users) if target != "*" else (users - keep - {""}):
                raise in_use(object_id, f"Unable to reconfigure sharing settings for network "
                                        f"{object_id}. Multiple projects are using it.")
        else:
            routers = self._gateway_projects(conn, object_id)
            if (target in routers) if target != "*" else (routers - (keep - {owner})):
                raise in_use(object_id, "There are routers attached to this network that "
                                        "depend on this policy for access.")

    @staticmethod
    def _group_users(conn: Connection, group_id: str) -> set[str]:
        """Projects with ports in the group."""
        psg = t.port_security_groups
        return set(conn.scalars(sa.select(t.ports.c.project_id).distinct().join(
            psg, psg.c.port_id == t.ports.c.id).where(psg.c.security_group_id == group_id)))

    @staticmethod
    def _network_users(conn: Connection, network_id: str) -> set[str]:
        """Projects with ports on the network."""
        return set(conn.scalars(sa.select(t.ports.c.project_id).distinct().where(
            t.ports.c.network_id == network_id)))

    @staticmethod
    def _gateway_projects(conn: Connection, network_id: str) -> set[str]:
        """Projects whose routers have their gateway on the network."""
        return set(conn.scalars(sa.select(t.routers.c.project_id).distinct().join(
            t.ports, t.ports.c.id == t.routers.c.gw_port_id).where(
            t.ports.c.network_id == network_id)))
