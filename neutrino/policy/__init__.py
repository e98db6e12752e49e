"""Who may see and change what: the rules every family shares.

Rules (as upstream's defaults):
- admins see and change everything, and may act on behalf of any project;
- a project sees its own objects and what is shared with it (``policy/sharing.py``:
  RBAC ``access_as_shared`` to it or to ``*``, networks external to it);
- objects a project cannot see do not exist for it (404, never 403);
- the ``reader`` role alone may read but not write.

Visibility is expressed as SQL conditions so that lists, shows and the existence
checks inside operations all apply the same rule in the database.  Each family
declares its own condition (its *scope*: ``scope(ctx)``, None for "everything") next
to its service, built from these helpers and the sharing ones; a new family adds its
scope there, not here.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from neutrino.context import Context
from neutrino.errors import BadRequest, PolicyNotAuthorized

#: the rows a caller may see, as a condition (None: all of them)
Scope = Callable[[Context], ColumnElement[bool] | None]


def owned(table: sa.FromClause) -> Scope:
    """The scope of a resource that is its project's alone (routers, floating IPs,
    RBAC policies: upstream shares none of them)."""
    def scope(ctx: Context) -> ColumnElement[bool] | None:
        return None if ctx.is_admin else table.c.project_id == ctx.project_id
    return scope


def admins_only(ctx: Context) -> ColumnElement[bool] | None:
    """The scope of what exists for admins alone (agents): to anyone else a list is
    empty and an id a 404."""
    return None if ctx.is_admin else sa.false()


def everyone(ctx: Context) -> ColumnElement[bool] | None:
    """The scope of what every project may read (the default security group rules)."""
    return None


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
