"""Who may see and change what.  The one place where ownership rules live.

Rules (as upstream's defaults):
- admins see and change everything, and may act on behalf of any project;
- a project sees its own objects, networks shared with it (RBAC
  ``access_as_shared`` to it or to ``*``) and external networks, the subnets
  of those networks, and the ports on networks it owns;
- objects a project cannot see do not exist for it (404, never 403);
- the ``reader`` role alone may read but not write.

Visibility is expressed as SQL conditions so that lists, shows and the
existence checks inside operations all apply the same rule in the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.errors import BadRequest, PolicyNotAuthorized

SHARED = "access_as_shared"
EXTERNAL = "access_as_external"


def _rbac_networks(ctx: Context, action: str) -> sa.Select:
    return sa.select(t.network_rbacs.c.object_id).where(
        t.network_rbacs.c.action == action,
        t.network_rbacs.c.target_project.in_((ctx.project_id, "*")),
    )


def _owned_networks(ctx: Context) -> sa.Select:
    return sa.select(t.networks.c.id).where(t.networks.c.project_id == ctx.project_id)


def usable_network_ids(ctx: Context) -> sa.Select:
    """Networks a project may attach ports and subnets to besides its own."""
    return _rbac_networks(ctx, SHARED)


def network_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.networks.c.project_id == ctx.project_id,
        t.networks.c.router_external.is_(True),
        t.networks.c.id.in_(_rbac_networks(ctx, SHARED)),
    )


def subnet_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.subnets.c.project_id == ctx.project_id,
        t.subnets.c.network_id.in_(_rbac_networks(ctx, SHARED)),
        t.subnets.c.network_id.in_(
            sa.select(t.networks.c.id).where(t.networks.c.router_external.is_(True))),
    )


def port_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.ports.c.project_id == ctx.project_id,
        t.ports.c.network_id.in_(_owned_networks(ctx)),
    )


def check_write(ctx: Context, action: str) -> None:
    """Refuse any change from a context that may only read."""
    if ctx.is_reader_only:
        raise PolicyNotAuthorized(action)


def owner_for_create(ctx: Context, body: dict, action: str) -> str:
    """The project a new object belongs to: the caller's, or (admins only) any named one."""
    project = body.pop("project_id", None)
    tenant = body.pop("tenant_id", None)
    if project is not None and tenant is not None and project != tenant:
        raise BadRequest("'project_id' and 'tenant_id' do not match")
    requested = project if project is not None else tenant
    if requested is None or requested == ctx.project_id:
        return ctx.project_id
    if not ctx.is_admin:
        # upstream refuses this as a bad request, before any policy check
        raise BadRequest("Specifying 'project_id' other than the authenticated project in "
                         "request is not allowed for the current user.")
    return requested


def check_owner(ctx: Context, owner: str, action: str) -> None:
    """Changes to an object are for its owner (or an admin)."""
    if not ctx.is_admin and owner != ctx.project_id:
        raise PolicyNotAuthorized(action)
