"""The server's side of the bus: agents' calls answered from the services, and the
change events of committed transactions published to them.

Kept small on purpose: each handler is one transaction over a service method, and
keeps nothing of its own between calls (what hosts report is in the database), so any
server or worker can answer any call.  Each is idempotent: AMQP may deliver a call
twice (the server that took it died before answering, or two servers are told the
same during an upgrade), and the second delivery changes nothing the first did not.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.engine import Connection

from neutrino.bus import messages as m
from neutrino.bus.core import CHANGES, Bus
from neutrino.db.engine import Database
from neutrino.services import Services
from neutrino.services.realisation.agents import DHCP_AGENT, L2_AGENT
from neutrino.services.realisation.l3hosts import L3_AGENT

log = logging.getLogger(__name__)


class AgentServer:
    def __init__(self, bus: Bus, services: Services, db: Database) -> None:
        self.bus = bus
        self.services = services
        self.db = db
        bus.serve(m.REPORT_STATE, self._report_state)
        bus.serve(m.SYNC, self._sync)
        bus.serve(m.REPORT_PORTS, self._report_ports)
        bus.serve(m.REPORT_ROUTERS, self._report_routers)
        bus.serve(m.DHCP_PORT, self._dhcp_port)
        services.listeners.append(self.publish)

    def publish(self, changes: Iterable[m.Changed | None]) -> None:
        for change in changes:
            if change is not None:
                self.bus.publish(CHANGES, change)

    def _report_state(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.AgentState)

        def op(conn: Connection) -> tuple[str, list[m.Changed | None], list[str] | None]:
            ident, revived = self.services.agents.report_state(conn, msg)
            rebound: list[str] = []
            if revived and msg.agent_type == L2_AGENT:
                # ports that failed to bind for want of this agent bind now
                rebound = self.services.ports.rebind_host(conn, msg.host)
            changes = [self.services.hosts.change(conn, "ports", p) for p in rebound]
            if revived and msg.agent_type == L3_AGENT:
                # routers no host took yet are this agent's now: their ports bind here
                changes += [self.services.hosts.change(conn, "routers", r)
                            for r in self.services.hosts.l3.schedule_host(conn, msg.host)]
            # read after the heartbeat was written: this agent counts as alive in it
            served = (self.services.hosts.dhcp_networks(conn, msg.host)
                      if msg.agent_type == DHCP_AGENT else None)
            return ident, changes, served

        ident, changes, served = self.db.write(op)
        self.publish(changes)
        return m.AgentRegistered(ident, self.services.settings.agent_down_time, served)

    def _sync(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.SyncRequest)
        return self.db.run_read(lambda conn: self.services.hosts.host_state(
            conn, msg.host, msg.network_ids, msg.router_ids))

    def _report_ports(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.PortReports)
        changed = self.db.write(
            lambda conn: self.services.hosts.report_ports(conn, msg.host, msg.reports))
        if changed:
            log.info("ports now %s", ", ".join(changed))
        return m.Ack()

    def _report_routers(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.RouterReports)
        changed = self.db.write(lambda conn: self.services.hosts.l3.report(
            conn, msg.host, msg.routers, msg.floatingips))
        if changed:
            log.info("routers/floating IPs now realised or not: %s", ", ".join(changed))
        return m.Ack()

    def _dhcp_port(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.DhcpPortRequest)
        hosts = self.services.hosts

        def op(conn: Connection) -> tuple[dict | None, list[m.Changed | None]]:
            before = hosts.dhcp_port_id(conn, msg.host, msg.network_id)
            gone = hosts.change(conn, "ports", before) if before else None
            port, changed = hosts.dhcp_port(conn, msg.host, msg.network_id, msg.release)
            if not changed:
                return port, []  # nothing new: no event (it would only come back here)
            return port, [hosts.change(conn, "ports", port["id"]) if port else gone]

        port, changes = self.db.write(op)
        self.publish(changes)
        return m.DhcpPort(port)
