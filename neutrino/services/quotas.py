"""Quotas: per-project limits over the defaults, and their enforcement.

Enforcement counts inside the creating transaction, after the new rows are
written, so a bulk request is all-or-nothing against the limit.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.schema.kinds import BadValue, Integer

#: the table that holds each quota'd resource
COUNTED: dict[str, sa.Table] = {"network": t.networks, "subnet": t.subnets, "port": t.ports}
LIMIT = Integer(-1, 2**31 - 1)


class Quotas:
    def __init__(self, defaults: dict[str, int]) -> None:
        self.defaults = {name: defaults.get(name, -1) for name in COUNTED}

    def limits(self, conn: Connection, project_id: str) -> dict[str, int]:
        out = dict(self.defaults)
        out.update({r: v for r, v in conn.execute(
            sa.select(t.quotas.c.resource, t.quotas.c.limit)
            .where(t.quotas.c.project_id == project_id)) if r in out})
        return out

    def usage(self, conn: Connection, project_id: str) -> dict[str, int]:
        return {name: conn.scalar(sa.select(sa.func.count()).select_from(table).where(
            table.c.project_id == project_id)) or 0 for name, table in COUNTED.items()}

    def check(self, conn: Connection, project_id: str, adding: dict[str, int]) -> None:
        """Refuse the transaction if it takes ``project_id`` over any limit."""
        over = []
        limits = None
        for name in adding:
            if limits is None:
                limits = self.limits(conn, project_id)
            limit = limits[name]
            if limit < 0:
                continue
            table = COUNTED[name]
            used = conn.scalar(sa.select(sa.func.count()).select_from(table).where(
                table.c.project_id == project_id)) or 0
            if used > limit:
                over.append(name)
        if over:
            raise errors.OverQuota(over)

    # -- the quotas API -----------------------------------------------------

    def list_projects(self, conn: Connection) -> list[dict]:
        projects = conn.scalars(sa.select(sa.distinct(t.quotas.c.project_id))
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
        self._check_reader(ctx, project_id)
        limits = self.limits(conn, project_id)
        used = self.usage(conn, project_id)
        return {name: {"limit": limits[name], "used": used[name], "reserved": 0}
                for name in limits}

    def update(self, conn: Connection, ctx: Context, project_id: str, body: dict) -> dict:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("update_quota")
        if not isinstance(body, dict) or not isinstance(body.get("quota"), dict):
            raise errors.BadRequest("Unable to find 'quota' in request body")
        changes = body["quota"]
        unknown = sorted(set(changes) - set(self.defaults))
        if unknown:
            raise errors.BadRequest(f"Unrecognized attribute(s) '{', '.join(unknown)}'")
        for name, raw in changes.items():
            try:
                value = LIMIT(raw)
            except BadValue as exc:
                raise errors.InvalidInput(f"{exc.message}.") from None
            conn.execute(t.quotas.delete().where(t.quotas.c.project_id == project_id,
                                                 t.quotas.c.resource == name))
            conn.execute(t.quotas.insert().values(project_id=project_id, resource=name,
                                                  limit=value))
        return self.limits(conn, project_id)

    def reset(self, conn: Connection, ctx: Context, project_id: str) -> None:
        if not ctx.is_admin:
            raise errors.PolicyNotAuthorized("delete_quota")
        conn.execute(t.quotas.delete().where(t.quotas.c.project_id == project_id))

    @staticmethod
    def _check_reader(ctx: Context, project_id: str) -> None:
        if not ctx.is_admin and ctx.project_id != project_id:
            raise errors.PolicyNotAuthorized("get_quota")
