"""Each project's default firewall group, made on its first FWaaS call (a list or a
create of groups, policies or rules), as upstream makes it: an ingress policy denying
everything and an egress policy allowing everything, each with one rule per IP version,
in a group named ``default`` without ports (so ``INACTIVE``)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.services.core import collection as c
from neutrino.services.firewall.rows import insert_policy, insert_rule

DEFAULT_NAME = "default"
_DEFAULT_OF = sa.select(t.default_firewall_groups.c.firewall_group_id).where(
    t.default_firewall_groups.c.project_id == sa.bindparam("project_id"))
#: (direction, action)
POLICIES = (("ingress", "deny"), ("egress", "allow"))
#: names only the default group's policies have (upstream reserves them)
DEFAULT_POLICY_NAMES = tuple(f"default {direction}" for direction, _ in POLICIES)


class DefaultGroups:
    """The ``ListPreparer`` of the three firewall listings, and the default group."""

    @staticmethod
    def _list_project(ctx: Context, q: c.ListQuery) -> str | None:
        """Whose default group a list ensures: the filtered project (admins) or the
        caller's own."""
        wanted = q.filters.get("project_id") or q.filters.get("tenant_id")
        project = wanted[0] if wanted else ctx.project_id
        if not project or (project != ctx.project_id and not ctx.is_admin):
            return None
        return project

    def list_needs(self, conn: Connection, ctx: Context, q: c.ListQuery) -> bool:
        project = self._list_project(ctx, q)
        return project is not None and self.default_of(conn, project) is None

    def prepare_list(self, conn: Connection, ctx: Context, q: c.ListQuery) -> None:
        project = self._list_project(ctx, q)
        if project is not None:
            self.ensure_default(conn, project)

    @staticmethod
    def default_of(conn: Connection, project_id: str) -> str | None:
        return conn.scalar(_DEFAULT_OF, {"project_id": project_id})

    @staticmethod
    def is_default(conn: Connection, group_id: str) -> bool:
        return conn.scalar(sa.select(t.default_firewall_groups.c.project_id).where(
            t.default_firewall_groups.c.firewall_group_id == group_id)) is not None

    def ensure_default(self, conn: Connection, project_id: str) -> str:
        """The project's default group, made now if it has none.  Two transactions
        making it at once collide on the project's row in ``default_firewall_groups``;
        the loser is retried and finds the winner's."""
        existing = self.default_of(conn, project_id)
        if existing is not None:
            return existing
        policies = {}
        for direction, action in POLICIES:
            rules = [insert_rule(conn, project_id, {
                "name": f"default {direction} ipv{version}",
                "description": f"default {direction} rule for IPv{version}",
                "protocol": None, "ip_version": version, "source_ip_address": None,
                "destination_ip_address": None, "source_port": None,
                "destination_port": None, "action": action, "enabled": True})
                for version in (4, 6)]
            policies[direction] = insert_policy(conn, project_id, {
                "name": f"default {direction}",
                "description": f"{direction.capitalize()} firewall policy",
                "firewall_rules": rules})
        row = c.standard_row(project_id, {"name": DEFAULT_NAME,
                                          "description": "Default firewall group"})
        conn.execute(t.firewall_groups.insert().values(
            **row, shared=False, admin_state_up=True, status="INACTIVE",
            ingress_firewall_policy_id=policies["ingress"],
            egress_firewall_policy_id=policies["egress"]))
        conn.execute(t.default_firewall_groups.insert().values(
            project_id=project_id, firewall_group_id=row["id"]))
        return row["id"]
