"""Sharing as SQL: which networks and security groups are shared with a project, and the
rows that share them.

An RBAC row gives one project (or ``*``, every project) an access to one object:
``access_as_shared`` (a network or a group the project may see and use as if its own)
or ``access_as_external`` (a network external to the project: visible, a place for
router gateways and floating IPs).  The networks API's ``shared`` and
``router:external`` are rows to ``*`` too, written here; the RBAC policies API
(:mod:`neutrino.services.sharing.rbac`) writes the others.  Both tables read as one
collection through :data:`POLICIES`.
"""

from __future__ import annotations

from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.errors import PolicyNotAuthorized

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"
EVERYONE = "*"
NETWORK = "network"
SECURITY_GROUP = "security_group"
#: the sharing rows of each kind of object
TABLES = {NETWORK: t.network_rbacs, SECURITY_GROUP: t.securitygroup_rbacs}
#: the actions each object type knows, in upstream's order (for its message)
ACTIONS = {NETWORK: (SHARED, EXTERNAL), SECURITY_GROUP: (SHARED,)}
NET = t.network_rbacs
SG = t.securitygroup_rbacs


def _policies_of(kind: str) -> sa.Select:
    table = TABLES[kind]
    return sa.select(table.c.id, table.c.project_id, table.c.object_id,
                     table.c.target_project.label("target_tenant"), table.c.action,
                     sa.literal(kind, sa.String(32)).label("object_type"))


#: every policy, whatever it shares, as one table (a UNION ALL)
POLICIES = sa.union_all(_policies_of(NETWORK), _policies_of(SECURITY_GROUP)) \
    .subquery("rbac_policies")


# -- who sees and uses what --------------------------------------------------------------

def _networks_with(ctx: Context, *actions: str) -> sa.Select:
    return sa.select(NET.c.object_id).where(NET.c.action.in_(actions),
                                           NET.c.target_project.in_((ctx.project_id,
                                                                     EVERYONE)))


def usable_network_ids(ctx: Context) -> sa.Select:
    """Networks shared with a project: it may attach ports and subnets to them."""
    return _networks_with(ctx, SHARED)


def external_network_ids(ctx: Context) -> sa.Select:
    """Networks external to a project: it may see them and put gateways on them."""
    return _networks_with(ctx, EXTERNAL)


def visible_network_ids(ctx: Context) -> sa.Select:
    """Others' networks a project sees: shared with it or external to it."""
    return _networks_with(ctx, SHARED, EXTERNAL)


def shared_with_everyone(network_ids: ColumnElement) -> ColumnElement[bool]:
    """``network_ids`` (a column of network ids) names a network shared with every
    project (the networks and subnets ``shared`` attribute)."""
    return network_ids.in_(sa.select(NET.c.object_id).where(
        NET.c.action == SHARED, NET.c.target_project == EVERYONE))


def shared_network_ids_among(ctx: Context, ids: list[str]) -> sa.Select:
    """Of the networks ``ids``, those shared with the caller (``shared`` as it sees it)."""
    return sa.select(NET.c.object_id).where(
        NET.c.object_id.in_(ids), NET.c.action == SHARED,
        NET.c.target_project.in_((EVERYONE, ctx.project_id)))


def granted_to(network_id: str, project_id: str) -> sa.Select:
    """The policies sharing the network with ``project_id`` by name (not through ``*``)."""
    return sa.select(NET.c.id).where(NET.c.object_id == network_id, NET.c.action == SHARED,
                                     NET.c.target_project == project_id)


def shared_security_group_ids(project_id: str) -> sa.Select:
    """Groups shared with a project (to it or to ``*``): it may see and use them."""
    return sa.select(SG.c.object_id).where(SG.c.action == SHARED,
                                          SG.c.target_project.in_((project_id, EVERYONE)))


def check_usable_network(conn: Connection, ctx: Context, network: Row, action: str) -> None:
    """Refuse to attach things to a network that is not the caller's own nor shared with
    it (admins attach to any)."""
    if ctx.is_admin or network.project_id == ctx.project_id:
        return
    if not conn.scalar(sa.select(usable_network_ids(ctx).where(
            NET.c.object_id == network.id).exists())):
        raise PolicyNotAuthorized(action)


def check_target(ctx: Context, target: str, action: str) -> None:
    """Only admins share with every project (``*``)."""
    if target == EVERYONE and not ctx.is_admin:
        raise PolicyNotAuthorized(f"{action}:target_tenant")


# -- the rows ------------------------------------------------------------------------

def find(conn: Connection, kind: str, object_id: str, action: str, target: str,
         but: str | None = None) -> str | None:
    """The policy giving ``target`` this access (other than ``but``), if any."""
    table = TABLES[kind]
    stmt = sa.select(table.c.id).where(table.c.object_id == object_id,
                                       table.c.action == action,
                                       table.c.target_project == target)
    if but is not None:
        stmt = stmt.where(table.c.id != but)
    return conn.scalar(stmt)


def targets(conn: Connection, kind: str, object_id: str, action: str,
            but: str | None = None) -> set[str]:
    """The projects (and ``*``) with this access to the object (other than by ``but``)."""
    table = TABLES[kind]
    stmt = sa.select(table.c.target_project).where(table.c.object_id == object_id,
                                                   table.c.action == action)
    if but is not None:
        stmt = stmt.where(table.c.id != but)
    return set(conn.scalars(stmt))


def grant(conn: Connection, kind: str, object_id: str, owner: str, target: str,
          action: str) -> str:
    """A new policy; its id."""
    ident = str(uuid4())
    conn.execute(TABLES[kind].insert().values(id=ident, object_id=object_id, project_id=owner,
                                              target_project=target, action=action))
    return ident


def retarget(conn: Connection, kind: str, ident: str, target: str) -> None:
    table = TABLES[kind]
    conn.execute(table.update().where(table.c.id == ident).values(target_project=target))


def revoke(conn: Connection, kind: str, ident: str) -> None:
    table = TABLES[kind]
    conn.execute(table.delete().where(table.c.id == ident))


def share_network(conn: Connection, network_id: str, owner: str, shared: bool) -> bool:
    """``shared`` through the networks API: a policy to ``*``, or none; whether anything
    changed.  (Whether others still depend on the share is the caller's to check.)"""
    existing = find(conn, NETWORK, network_id, SHARED, EVERYONE)
    if shared and existing is None:
        grant(conn, NETWORK, network_id, owner, EVERYONE, SHARED)
        return True
    if not shared and existing is not None:
        revoke(conn, NETWORK, existing)
        return True
    return False


def set_external(conn: Connection, network_id: str, owner: str, external: bool) -> None:
    """``router:external`` through the networks API: a policy to ``*``, or none at all."""
    if not external:
        conn.execute(NET.delete().where(NET.c.object_id == network_id,
                                        NET.c.action == EXTERNAL))
        return
    if find(conn, NETWORK, network_id, EXTERNAL, EVERYONE) is None:
        grant(conn, NETWORK, network_id, owner, EVERYONE, EXTERNAL)
