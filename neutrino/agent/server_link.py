"""The agent's link to the server: calls over the bus (with the server-away backoff),
registration and heartbeats, and the report buffers.

What the reconcilers realised is buffered here (:class:`ServerLink` is their
:class:`~neutrino.agent.reconciler.Reports`) and flushed after each pass: a report is
sent once per change of (up, revision) for a port and component, or of status (and
revision) for a router or floating IP; one not delivered is kept and sent with the
next flush.  A full pass forgets what was sent (the server may have restarted: it is
told everything again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from neutrino.bus import Bus, BusError, BusUnavailable
from neutrino.bus import messages as m

log = logging.getLogger(__name__)

L2_AGENT = ("Linux bridge agent", "neutrino-linuxbridge-agent", "N/A")
DHCP_AGENT = ("DHCP agent", "neutrino-dhcp-agent", "dhcp_agent")
L3_AGENT = ("L3 agent", "neutrino-l3-agent", "l3_agent")
#: while the server is away registration is retried after 0.25, 0.5, 1 ... seconds, at
#: most this long
AWAY_BACKOFF = 15.0

AgentKind = tuple[str, str, str]  # (agent type, binary, topic)


class ServerLink:
    def __init__(self, bus: Bus, host: str, on_back: Callable[[], None]) -> None:
        self.bus = bus
        self.host = host
        #: called when the server answers again after being away (events may have been
        #: missed meanwhile: the agent resyncs)
        self.on_back = on_back
        self.connected = False
        #: the server has this host's agents as alive: it decides what the host serves (a
        #: network's DHCP) from that, so no pass runs before a heartbeat went through
        self.registered = False
        self.retry_at = 0.0
        self._away_tries = 0
        self._started: dict[str, bool] = {}
        #: (port id, component) -> (up, revision) last reported successfully
        self._reported: dict[tuple[str, str], tuple[bool, int]] = {}
        self._pending: list[dict] = []
        #: ("router"|"floatingip", id) -> (status, revision) last reported, and to report
        self._l3_reported: dict[tuple[str, str], tuple[str, int | None]] = {}
        self._l3_pending: dict[tuple[str, str], tuple[str, int | None]] = {}

    # -- calls ---------------------------------------------------------------------------

    def call(self, method: str, request: m.Message) -> m.Message:
        try:
            reply = self.bus.call(method, request)
        except BusUnavailable:
            if self.connected:
                log.warning("the server is away: keeping the data plane as it is")
            self.connected = False
            self.registered = False
            self._away_tries += 1
            self.retry_at = time.monotonic() + min(AWAY_BACKOFF,
                                                   0.125 * 2 ** min(self._away_tries, 8))
            raise
        self._away_tries = 0
        if not self.connected:
            self.connected = True
            self.on_back()
        return reply

    def reconnected(self) -> None:
        """The transport is back (AMQP): away longer than the down time, the server
        counts us dead, so register first."""
        self.registered = False
        self.retry_at = 0.0

    def due(self, now: float) -> bool:
        """Not registered, and the away backoff lets us try again."""
        return not self.registered and now >= self.retry_at

    def heartbeat(self, states: Iterable[tuple[AgentKind, Mapping[str, Any]]],
                  dhcp_served: Callable[[list[str]], None]) -> bool:
        """Report every agent's state (the first report of each says it started); the
        server answers which networks' DHCP this host serves."""
        try:
            for (agent_type, binary, topic), config in states:
                reply = self.call(m.REPORT_STATE, m.AgentState(
                    self.host, agent_type, binary, topic, dict(config),
                    start_flag=not self._started.get(agent_type, False)))
                self._started[agent_type] = True
                if isinstance(reply, m.AgentRegistered) and reply.dhcp_networks is not None:
                    dhcp_served(list(reply.dhcp_networks))
        except BusError as exc:
            log.debug("heartbeat not delivered: %s", exc)
            return False
        self.registered = True
        return True

    # -- reports (the reconcilers' Reports) ----------------------------------------------

    def port(self, port_id: str, component: str, up: bool, revision: int) -> None:
        if self._reported.get((port_id, component)) == (up, revision):
            return
        self._pending.append({"port_id": port_id, "component": component, "up": up,
                              "revision": revision})

    def l3(self, routers: Sequence[Mapping[str, Any]],
           floatingips: Sequence[Mapping[str, Any]]) -> None:
        for kind, items in (("router", routers), ("floatingip", floatingips)):
            for item in items:
                key = (kind, item[f"{kind}_id"])
                value = (item["status"], item.get("revision"))
                if self._l3_reported.get(key) != value:
                    self._l3_pending[key] = value

    def forget_reported(self) -> None:
        self._reported.clear()
        self._l3_reported.clear()

    def flush(self) -> None:
        self._flush_l3()
        if not self._pending:
            return
        reports, self._pending = self._pending, []
        try:
            self.call(m.REPORT_PORTS, m.PortReports(self.host, reports))
        except BusError as exc:
            log.debug("port reports not delivered: %s", exc)
            self._pending = reports + self._pending
            return
        for r in reports:
            self._reported[(r["port_id"], r["component"])] = (r["up"], r["revision"])

    def _flush_l3(self) -> None:
        if not self._l3_pending:
            return
        pending, self._l3_pending = self._l3_pending, {}

        def item(kind: str, ident: str, status: str, revision: int | None) -> dict:
            out: dict[str, Any] = {f"{kind}_id": ident, "status": status}
            if revision is not None:
                out["revision"] = revision
            return out

        try:
            self.call(m.REPORT_ROUTERS, m.RouterReports(
                self.host,
                [item(k, i, *v) for (k, i), v in pending.items() if k == "router"],
                [item(k, i, *v) for (k, i), v in pending.items() if k == "floatingip"]))
        except BusError as exc:
            log.debug("router reports not delivered: %s", exc)
            self._l3_pending = {**pending, **self._l3_pending}
            return
        self._l3_reported.update(pending)
