"""How providers' reports move the statuses on: each report is one transaction.

An object reported ``ACTIVE`` (or ``ERROR``) takes that provisioning status; one
reported ``DELETED`` goes (a load balancer with its VIP port and every child).  Once
nothing in a load balancer is pending any more, the load balancer itself is ``ACTIVE``
again.  ``sweep`` completes, at start, what a process that died between a commit and
its provider's report left pending: the API-only provider's work needs nothing but
this transaction, so redoing it is exactly what it would have done.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.db import tables as t
from neutrino.db.engine import Database, lock_rows
from neutrino.drivers.service.loadbalancer import Kind, Operating, Provisioning
from neutrino.drivers.service.loadbalancer_noop import ApiOnly
from neutrino.services.loadbalancer import store
from neutrino.services.loadbalancer.service import LoadBalancers

log = logging.getLogger(__name__)
#: what the provider's view of these needs no data plane for: on while enabled
ENABLED_IS_ONLINE = ("healthmonitor", "l7policy", "l7rule")
CHILDREN = ("listener", "pool", "member", "healthmonitor", "l7policy", "l7rule")


class StatusStore:
    """The :class:`StatusReporter` every provider reports to."""

    def __init__(self, db: Database, service: LoadBalancers) -> None:
        self.db = db
        self.service = service

    def start(self) -> None:
        """Make the providers (each reports here) and finish what was left pending."""
        self.service.providers = {name: ApiOnly(name, self)
                                  for name in self.service.settings.lb_providers}
        swept = self.db.write(self.sweep)
        if swept:
            log.info("completed %d load-balancer objects left pending", swept)

    # -- StatusReporter ------------------------------------------------------------

    def provisioning(self, kind: Kind, ident: str, status: Provisioning) -> None:
        self.db.write(lambda conn: self.apply(conn, kind, ident, status))

    def operating(self, kind: Kind, ident: str, status: Operating) -> None:
        self.db.write(lambda conn: store.set_status(conn, kind, [ident],
                                                    operating_status=status))

    def vip(self, loadbalancer_id: str, address: str, port_id: str) -> None:
        tbl = t.lb_loadbalancers
        self.db.write(lambda conn: conn.execute(tbl.update().where(
            tbl.c.id == loadbalancer_id).values(vip_address=address, vip_port_id=port_id)))

    # -- in a transaction ------------------------------------------------------------

    def apply(self, conn: Connection, kind: str, ident: str, status: str) -> None:
        row = store.find(conn, kind, ident)
        if row is None:
            return  # already gone (a report delivered twice)
        lb_id = row.id if kind == "loadbalancer" else row.loadbalancer_id
        lock_rows(conn, t.lb_loadbalancers, [lb_id])
        if status == "DELETED":
            if kind == "loadbalancer":
                self.service.remove_vip_port(conn, row)
                conn.execute(t.lb_loadbalancers.delete().where(t.lb_loadbalancers.c.id == lb_id))
                return
            self._remove(conn, kind, row)
        elif kind in ENABLED_IS_ONLINE and status == "ACTIVE":
            store.set_status(conn, kind, [ident], provisioning_status=status,
                             operating_status="ONLINE" if row.admin_state_up else "OFFLINE")
        else:
            store.set_status(conn, kind, [ident], provisioning_status=status)
        self._settle(conn, lb_id, status if kind == "loadbalancer" else "ACTIVE")

    def _remove(self, conn: Connection, kind: str, row: sa.Row) -> None:
        if kind == "pool":  # nothing refers to a pool that is gone
            conn.execute(t.lb_listeners.update().where(
                t.lb_listeners.c.default_pool_id == row.id).values(default_pool_id=None))
            conn.execute(t.lb_l7policies.update().where(
                t.lb_l7policies.c.redirect_pool_id == row.id).values(redirect_pool_id=None))
        if kind == "listener":
            conn.execute(t.lb_l7policies.delete().where(
                t.lb_l7policies.c.listener_id == row.id))
        table = store.TABLES[kind]
        conn.execute(table.delete().where(table.c.id == row.id))
        if kind == "l7policy":
            self.service._order(conn, row.listener_id, None, None)

    def _settle(self, conn: Connection, lb_id: str, status: str) -> None:
        """The load balancer is done once none of its objects is pending (and it is not
        itself on its way out)."""
        lb = store.find(conn, "loadbalancer", lb_id)
        if lb is None or lb.provisioning_status == "PENDING_DELETE":
            return
        for kind in CHILDREN:
            table = store.TABLES[kind]
            if conn.execute(sa.select(table.c.id).where(
                    table.c.loadbalancer_id == lb_id,
                    table.c.provisioning_status.like("PENDING%")).limit(1)).first():
                return
        store.set_status(conn, "loadbalancer", [lb_id], provisioning_status=status)

    def sweep(self, conn: Connection) -> int:
        done = 0
        for kind in ("l7rule", "l7policy", "healthmonitor", "member", "pool", "listener",
                     "loadbalancer"):
            table = store.TABLES[kind]
            for row in conn.execute(sa.select(table.c.id, table.c.provisioning_status).where(
                    table.c.provisioning_status.like("PENDING%"))).all():
                gone = row.provisioning_status == "PENDING_DELETE"
                self.apply(conn, kind, row.id, "DELETED" if gone else "ACTIVE")
                done += 1
        return done
