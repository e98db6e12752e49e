"""Quotas: per-project limits over the defaults, and their enforcement.

Enforcement counts inside the creating transaction, after the new rows are
written, so a bulk request is all-or-nothing against the limit.  Before it counts,
a create locks its project's row in ``project_locks``: at READ COMMITTED a count
does not see another transaction's uncommitted insert, so without the lock two
creates racing for the last free slot would both pass (they did, on PostgreSQL and
MariaDB).  With it, one project's checks run one after another and each counts
every row the one before it committed; a quota update takes the same lock.

Each family declares what it counts (a :class:`Counter` beside its service); the
counters are listed where the services are composed, so a new family brings its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.db.engine import lock_key
from neutrino.schema.kinds import BadValue, Integer


@dataclass(frozen=True)
class Counter:
    """A resource with a quota: its name in the quotas API and the rows (with a
    ``project_id``) that count against it."""

    resource: str
    table: sa.FromClause


LIMIT = Integer(-1, 2**31 - 1)
#: built once: checked on every create
_LIMITS_OF = sa.select(t.quotas.c.resource, t.quotas.c.limit).where(
    t.quotas.c.project_id == sa.bindparam("project_id"))


class Quotas:
    def __init__(self, defaults: dict[str, int], counters: Iterable[Counter]) -> None:
        #: resource -> what counts against it, in the order the quotas API lists them
        self.counted = {c.resource: c.table for c in counters}
        # a resource without a configured default is unlimited, as upstream
        self.defaults = {name: defaults.get(name, -1) for name in self.counted}

    @property
    def resources(self) -> tuple[str, ...]:
        return tuple(self.counted)

    def limits(self, conn: Connection, project_id: str) -> dict[str, int]:
        out = dict(self.defaults)
        out.update({r: v for r, v in conn.execute(_LIMITS_OF, {"project_id": project_id})
                    if r in out})
        return out

    def usage(self, conn: Connection, project_id: str) -> dict[str, int]:
        return {name: conn.scalar(sa.select(sa.func.count()).select_from(table).where(
            table.c.project_id == project_id)) or 0 for name, table in self.counted.items()}

    def check(self, conn: Connection, project_id: str, adding: dict[str, int]) -> None:
        """Refuse the transaction if it takes ``project_id`` over any limit."""
        # even when unlimited: a quota update counting the usage waits for this create
        lock_key(conn, t.project_locks, project_id)
        over = []
        limits = self.limits(conn, project_id)  # read under the lock: the current ones
        for name in adding:
            limit = limits[name]
            if limit < 0:
                continue
            table = self.counted[name]
            used = conn.scalar(sa.select(sa.func.count()).select_from(table).where(
                table.c.project_id == project_id)) or 0
            if used > limit:
                over.append(name)
        if over:
            raise errors.OverQuota(over)

    # -- the quotas API -----------------------------------------------------

    def list_projects(self, conn: Connection) -> list[dict]:
        projects = conn.scalars(sa.select(t.quotas.c.project_id).distinct()
                                .order_by(t.quotas.c.project_id)).all()
        out = []
        for project in projects:
            item = self.limits(conn, project)
            item.update(project_id=project, tenant_id=project)
            out.append(item)
        return out

    def show(self, conn: Connection, ctx: Context, project_id: str) -> dict[str, int]:
        self._check_reader(ctx, project_id)
        return self.limits(conn, project_id)

    def details(self, conn: Connection, ctx: Context, project_id: str) -> dict[str, dict]:
        if not ctx.is_admin and ctx.project_id != project_id:
            raise errors.Forbidden("User does not have admin privileges: Only admin is "
                                   "authorized to access quotas for another project.",
                                   type="AdminRequired")
        limits = self.limits(conn, project_id)
        used = self.usage(conn, project_id)
        return {name: {"limit": limits[name], "used": used[name], "reserved": 0}
                for name in limits}

    def update(self, conn: Connection, ctx: Context, project_id: str, body: dict) -> dict:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("update_quota")
        if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
            raise errors.BadRequest("Unable to find 'quota' in request body")
        changes = dict(body["quota"])
        # ``force`` skips the usage check; ``check_limit`` is the (now default) opposite
        force = changes.pop("force", None) is True
        changes.pop("check_limit", None)
        unknown = sorted(set(changes) - set(self.defaults))
        if unknown:
            raise errors.BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        limits: dict[str, int] = {}
        for name, raw in changes.items():
            if raw is None:  # a conversion failure upstream (and int(None) below would raise)
                raise errors.InvalidInput("'None' is not an integer.")
            try:
                limits[name] = LIMIT(raw)
            except BadValue as exc:
                if exc.converting:
                    raise errors.InvalidInput(f"{exc.message}.") from None
                reason = f"'{raw}' is too small - must be at least '-1'" \
                    if int(raw) < -1 else exc.message
                raise errors.BadRequest(f"Invalid input for {name}. Reason: {reason}.") from None
        lock_key(conn, t.project_locks, project_id)  # no create of the project meanwhile
        used = self.usage(conn, project_id) if not force else {}
        for name, limit in limits.items():
            if limit >= 0 and used.get(name, 0) > limit:
                raise errors.BadRequest(f"Quota limit {limit} for {name} must be greater than "
                                        f"or equal to already used {used[name]}")
        for name, limit in limits.items():
            conn.execute(t.quotas.delete().where(t.quotas.c.project_id == project_id,
                                                 t.quotas.c.resource == name))
            conn.execute(t.quotas.insert().values(project_id=project_id, resource=name,
                                                  limit=limit))
        return self.limits(conn, project_id)

    def reset(self, conn: Connection, ctx: Context, project_id: str) -> None:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("delete_quota")
        gone = conn.execute(t.quotas.delete().where(t.quotas.c.project_id == project_id))
        if not gone.rowcount:
            raise errors.NotFound(f"Quota for project {project_id} could not be found.",
                                  type="TenantQuotaNotFound")

    def default(self, ctx: Context, project_id: str) -> dict[str, int]:
        self._check_reader(ctx, project_id)
        return dict(self.defaults)

    @staticmethod
    def _check_reader(ctx: Context, project_id: str) -> None:
        if not ctx.is_admin and ctx.project_id != project_id:
            raise errors.PolicyNotAuthorized("get_quota")
