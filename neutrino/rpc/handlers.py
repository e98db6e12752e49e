"""The server's side of the bus: agents' calls answered from the services.  (The change
events the services record, theirs included, are published by
:mod:`neutrino.rpc.publisher`.)

Kept small on purpose: each handler is one transaction over a service method, and
keeps nothing of its own between calls (what hosts report is in the database), so any
server or worker can answer any call.  Each is idempotent: AMQP may deliver a call
twice (the server that took it died before answering, or two servers are told the
same during an upgrade), and the second delivery changes nothing the first did not.
"""

from __future__ import annotations

import logging

from sqlalchemy.engine import Connection

from neutrino.bus import messages as m
from neutrino.bus.core import Bus
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

    def _report_state(self, msg: m.Message) -> m.Message:
        assert isinstance(msg, m.AgentState)

        def op(conn: Connection) -> tuple[str, list[str] | None]:
            ident, revived = self.services.agents.report_state(conn, msg)
            if revived and msg.agent_type == L2_AGENT:
                # ports that failed to bind for want of this agent bind now
                self.services.ports.rebind_host(conn, msg.host)
            if revived and msg.agent_type == L3_AGENT:
                # routers no host took yet are this agent's now: their ports bind here
                self.services.hosts.l3.schedule_host(conn, msg.host)
            # read after the heartbeat was written: this agent counts as alive in it
            served = (self.services.hosts.dhcp_networks(conn, msg.host)
                      if msg.agent_type == DHCP_AGENT else None)
            return ident, served

        ident, served = self.db.write(op)
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
        # through the port service, which records the events of what it changes (and
        # none when nothing did: an event would only come back here)
        port, _ = self.db.write(
            lambda conn: hosts.dhcp_port(conn, msg.host, msg.network_id, msg.release))
        return m.DhcpPort(port)
