"""Who may see and change what.  The one place where ownership rules live.

Rules (as upstream's defaults):
- admins see and change everything, and may act on behalf of any project;
- a project sees its own objects, networks shared with it (RBAC
  ``access_as_shared`` to it or to ``*``) and networks external to it (RBAC
  ``access_as_external``), the subnets of those networks, and the ports on
  networks it owns;
- security groups likewise: its own and those shared with it (RBAC), which its
  ports may use; the rules of a group are its owner's to see and change;
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


def external_network_ids(ctx: Context) -> sa.Select:
    """Networks external to a project: it may see them and put gateways on them."""
    return _rbac_networks(ctx, EXTERNAL)


def _visible_networks(ctx: Context) -> sa.Select:
    """Others' networks a project sees: shared with it or external to it."""
    return sa.select(t.network_rbacs.c.object_id).where(
        t.network_rbacs.c.action.in_((SHARED, EXTERNAL)),
        t.network_rbacs.c.target_project.in_((ctx.project_id, "*")),
    )


def network_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.networks.c.project_id == ctx.project_id,
        t.networks.c.id.in_(_visible_networks(ctx)),
    )


def subnet_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.subnets.c.project_id == ctx.project_id,
        t.subnets.c.network_id.in_(_visible_networks(ctx)),
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


def router_scope(ctx: Context) -> ColumnElement[bool] | None:
    """Routers are their project's alone (upstream has no router sharing)."""
    return None if ctx.is_admin else t.routers.c.project_id == ctx.project_id


def floatingip_scope(ctx: Context) -> ColumnElement[bool] | None:
    return None if ctx.is_admin else t.floatingips.c.project_id == ctx.project_id


def may_choose_floating_ip(ctx: Context) -> bool:
    """A specific floating IP address is for admins and project managers (upstream)."""
    return ctx.is_admin or "manager" in ctx.roles


# -- security groups and RBAC policies -------------------------------------------------

def shared_security_group_ids(project_id: str) -> sa.Select:
    """Groups shared with a project (RBAC to it or to ``*``): it may see and use them."""
    return sa.select(t.securitygroup_rbacs.c.object_id).where(
        t.securitygroup_rbacs.c.action == SHARED,
        t.securitygroup_rbacs.c.target_project.in_((project_id, "*")),
    )


def security_group_scope(ctx: Context) -> ColumnElement[bool] | None:
    if ctx.is_admin:
        return None
    return sa.or_(
        t.security_groups.c.project_id == ctx.project_id,
        t.security_groups.c.id.in_(shared_security_group_ids(ctx.project_id)),
    )


def usable_security_group(project_id: str) -> ColumnElement[bool]:
    """Groups a port of ``project_id`` may be in: its own and those shared with it."""
    return sa.or_(
        t.security_groups.c.project_id == project_id,
        t.security_groups.c.id.in_(shared_security_group_ids(project_id)),
    )


def security_group_rule_scope(ctx: Context) -> ColumnElement[bool] | None:
    """A rule is seen by its own project and by its group's owner (upstream's policy)."""
    if ctx.is_admin:
        return None
    return sa.or_(
        t.security_group_rules.c.project_id == ctx.project_id,
        t.security_group_rules.c.security_group_id.in_(
            sa.select(t.security_groups.c.id).where(
                t.security_groups.c.project_id == ctx.project_id)),
    )


def rbac_policy_scope(ctx: Context, owner: sa.ColumnElement) -> ColumnElement[bool] | None:
    """A policy is its creator's alone to see (the target project does not see it)."""
    return None if ctx.is_admin else owner == ctx.project_id


def check_rbac_target(ctx: Context, target: str, action: str) -> None:
    """Only admins share with every project (``*``)."""
    if target == "*" and not ctx.is_admin:
        raise PolicyNotAuthorized(f"{action}:target_tenant")
