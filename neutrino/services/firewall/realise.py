"""How the firewall family calls its driver, and how the driver's reports come back.

A change that may alter what a group enforces (its ports, policies, admin state, a rule
or the rule order of a policy it uses) puts a group that has ports in ``PENDING_UPDATE``
(``PENDING_CREATE`` when new) inside the operation's transaction and calls the driver's
``*_precommit`` there; its ``*_postcommit`` runs once the transaction committed.  The
driver reports the outcome through :class:`GroupStatus`, in a transaction of its own,
which only moves a group out of a pending state (a report about a group whose ports
have gone since leaves it ``INACTIVE``).  A group without ports is ``INACTIVE``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino import errors
from neutrino.db import tables as t
from neutrino.db.engine import Database, after_commit
from neutrino.drivers.service.firewall import (
    FirewallDriver,
    FirewallGroup,
    FirewallGroupContext,
    FirewallRule,
    Status,
)
from neutrino.services.firewall.rows import MATCH, PENDING, group_ports, policy_rules

log = logging.getLogger(__name__)
FG = t.firewall_groups
INACTIVE = "INACTIVE"


def refuse_pending(row: Row) -> None:
    """A group waiting for the driver's report takes no other change meanwhile."""
    if row.status in PENDING:
        raise errors.Conflict(f"Operation cannot be performed since associated firewall "
                              f"group {row.id} is in {row.status}.",
                              type="FirewallGroupInPendingState")


class GroupStatus:
    """What the firewall driver reports about its groups (``FirewallStatus``)."""

    def __init__(self) -> None:
        self._db: Database | None = None

    def attach(self, db: Database) -> None:
        self._db = db

    def group(self, group_id: str, status: Status) -> None:
        if self._db is None:
            log.warning("firewall group %s: status %s reported with no database", group_id,
                        status)
            return

        def op(conn: Connection) -> None:
            has_ports = sa.exists().where(t.firewall_group_ports.c.firewall_group_id == FG.c.id)
            # the status is no standard attribute: it bumps no revision (as upstream)
            conn.execute(FG.update().where(FG.c.id == group_id, FG.c.status.in_(PENDING),
                                           has_ports).values(status=status))
        try:
            self._db.write(op)
        except Exception:  # a report lost is retried by the next change; never raise
            log.exception("firewall group %s: could not record status %s", group_id, status)


def _rules(conn: Connection, policy_id: str | None) -> tuple[FirewallRule, ...] | None:
    if policy_id is None:
        return None
    ids = policy_rules(conn, policy_id)
    rows = {r.id: r for r in conn.execute(sa.select(t.firewall_rules).where(
        t.firewall_rules.c.id.in_(ids)))} if ids else {}
    return tuple(FirewallRule(id=i, **{k: getattr(rows[i], k) for k in MATCH})
                 for i in ids)


def group_value(conn: Connection, row: Row) -> FirewallGroup:
    """A group as the driver sees it: its policies' rules in order and its ports."""
    return FirewallGroup(id=row.id, project_id=row.project_id,
                         admin_state_up=row.admin_state_up,
                         ingress=_rules(conn, row.ingress_firewall_policy_id),
                         egress=_rules(conn, row.egress_firewall_policy_id),
                         ports=tuple(group_ports(conn, row.id)))


class Realisation:
    def __init__(self, driver: FirewallDriver) -> None:
        self.driver = driver

    def _row(self, conn: Connection, group_id: str) -> Row:
        return conn.execute(sa.select(FG).where(FG.c.id == group_id)).one()

    def created(self, conn: Connection, group_id: str) -> None:
        row = self._settle(conn, group_id, "PENDING_CREATE")
        context = FirewallGroupContext(group_value(conn, row), None)
        self.driver.create_firewall_group_precommit(context)
        after_commit(conn, lambda: self._post(self.driver.create_firewall_group_postcommit,
                                              context))

    def updated(self, conn: Connection, group_id: str, original: FirewallGroup) -> None:
        row = self._settle(conn, group_id, "PENDING_UPDATE")
        context = FirewallGroupContext(group_value(conn, row), original)
        self.driver.update_firewall_group_precommit(context)
        after_commit(conn, lambda: self._post(self.driver.update_firewall_group_postcommit,
                                              context))

    def deleting(self, conn: Connection, row: Row) -> None:
        context = FirewallGroupContext(group_value(conn, row), None)
        self.driver.delete_firewall_group_precommit(context)
        after_commit(conn, lambda: self._post(self.driver.delete_firewall_group_postcommit,
                                              context))

    @staticmethod
    def _groups_using(conn: Connection, policy_ids: list[str]) -> list[Row]:
        return conn.execute(sa.select(FG).where(sa.or_(
            FG.c.ingress_firewall_policy_id.in_(policy_ids),
            FG.c.egress_firewall_policy_id.in_(policy_ids))).order_by(FG.c.id)).all()

    def refuse_pending(self, conn: Connection, policy_ids: Iterable[str]) -> None:
        """A policy (or a rule of one) whose groups wait for the driver does not change
        meanwhile (upstream: FirewallGroupInPendingState)."""
        ids = list(policy_ids)
        for row in self._groups_using(conn, ids) if ids else ():
            refuse_pending(row)

    def policies_changed(self, conn: Connection, policy_ids: Iterable[str]) -> None:
        """A rule or the rule order of these policies changed: every group using one
        is updated."""
        ids = list(policy_ids)
        if not ids:
            return
        for row in self._groups_using(conn, ids):
            self.updated(conn, row.id, group_value(conn, row))

    def _settle(self, conn: Connection, group_id: str, pending: str) -> Row:
        """INACTIVE without ports, else pending until the driver reports."""
        status = pending if group_ports(conn, group_id) else INACTIVE
        conn.execute(FG.update().where(FG.c.id == group_id).values(status=status))
        return self._row(conn, group_id)

    @staticmethod
    def _post(call: object, context: FirewallGroupContext) -> None:
        try:
            call(context)  # type: ignore[operator]
        except Exception:  # committed already: the change stays, as for mechanism drivers
            log.exception("firewall driver postcommit failed for group %s",
                          context.current.id)
