"""The host agent: its reconcilers, wired to the server link, the kernel watchers and
the loop.

- :mod:`neutrino.agent.loop`: dirty keys, passes, the timetable;
- :mod:`neutrino.agent.server_link`: calls, registration, heartbeats, reports;
- :mod:`neutrino.agent.watchers`: taps, DHCP servers and ``br-ex`` changing without
  an API event;
- the reconcilers (:class:`neutrino.agent.reconciler.Reconciler`), each declaring what
  it comes after: L3 and DHCP make their ports' taps, the firewall decides for every
  tap, the external bridge is there, then L2 plugs the taps that have a decision.

Change events from the server only mark keys dirty here.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from neutrino.agent.dhcp.dnsmasq import Dnsmasq
from neutrino.agent.dhcp.servers import Dhcp, DhcpBackend
from neutrino.agent.firewall.filters import Firewall
from neutrino.agent.l2.bridges import L2, L2Config
from neutrino.agent.l3.external import External, ExternalConfig
from neutrino.agent.l3.routers import L3, L3Config
from neutrino.agent.loop import RESYNC_INTERVAL, Loop, PassStats
from neutrino.agent.reconciler import Backoff, Pass
from neutrino.agent.server_link import DHCP_AGENT, L2_AGENT, L3_AGENT, AgentKind, ServerLink
from neutrino.agent.watchers import POLL_INTERVAL, KernelWatchers
from neutrino.bus import Bus
from neutrino.bus import messages as m
from neutrino.bus.core import CHANGES
from neutrino.config import Settings
from neutrino.linux import vlans

log = logging.getLogger(__name__)


class Agent:
    def __init__(self, bus: Bus, settings: Settings, *, dhcp_backend: DhcpBackend | None = None,
                 poll_interval: float = POLL_INTERVAL,
                 resync_interval: float = RESYNC_INTERVAL,
                 external: ExternalConfig | None = None) -> None:
        self.bus = bus
        self.settings = settings
        self.host = settings.agent_host or socket.gethostname()
        self.netns = settings.agent_netns or None
        self.state_dir = Path(settings.agent_state_dir or "/run/neutrino")
        # VLAN segments are veth pairs with tc-BPF programs: the host can make them when
        # it can load a program (no 802.1Q needed); otherwise VLAN ports fail to bind
        self.vlan_supported = vlans.vlan_supported()
        if not self.vlan_supported:
            log.warning("VLAN networks cannot be wired on this host: %s",
                        vlans.vlan_unsupported_reason())
        self.l2 = L2(L2Config(self.netns, settings.vxlan_local_ip or None,
                              tuple(settings.vxlan_remotes),
                              dict(settings.physical_interface_mappings),
                              bridge_mappings=dict(settings.bridge_mappings)))
        self.l3 = L3(L3Config(self.netns, self.state_dir / "l3", sandboxed=self.netns is not None))
        backend = dhcp_backend or Dnsmasq(self.state_dir,
                                          lease_duration=settings.dhcp_lease_duration,
                                          domain=settings.dns_domain,
                                          omit_dns_when_none=settings.dhcp_omit_dns_when_none)
        self.dhcp = Dhcp(backend, self.netns, self._request_port)
        self.firewall = Firewall(self.netns)
        self.external = External(external)
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        self._stop = threading.Event()
        self.link = ServerLink(bus, self.host, on_back=self.resync)
        self.loop = Loop(self.host, self.link,
                         [self.l2, self.l3, self.dhcp, self.firewall, self.external],
                         after_pass=self._after_pass)
        self.watchers = KernelWatchers(self.netns, self.l2, self.dhcp, self.external,
                                       lambda: self.loop.snapshot, self.mark_dirty,
                                       self.resync, self.loop.pass_lock, self._stop,
                                       poll_interval, name=self.host)
        self._thread: threading.Thread | None = None
        self._unsubscribe = bus.subscribe(CHANGES, self._on_change)
        # a transport that can lose its connection (AMQP) says when it is back: events
        # may have been missed meanwhile, so the next pass is a full one
        on_reconnect = getattr(bus, "on_reconnect", None)
        if on_reconnect is not None:
            on_reconnect(self._on_reconnect)

    # -- what the loop knows -------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return self.loop.synced

    @property
    def passes(self) -> int:
        return self.loop.passes

    @property
    def last_pass(self) -> PassStats | None:
        return self.loop.last_pass

    @property
    def applied_generation(self) -> int:
        return self.loop.applied_generation

    @property
    def backoff(self) -> Backoff:
        return self.loop.backoff

    @property
    def wired(self) -> set[str]:
        return self.l2.wired

    @property
    def idle(self) -> bool:
        """No pass running and none due (what tests and benchmarks wait for)."""
        return self.loop.idle

    # -- events: only mark dirty -------------------------------------------------------

    def _on_change(self, msg: m.Message) -> None:
        if not isinstance(msg, m.Changed):
            return
        snap = self.loop.snapshot
        keys = self.l3.keys_for_change(msg, snap)  # routers: "router:<id>"
        if msg.kind == "security_group":
            # a group or rule: every network with ports here is refiltered
            keys |= {n.id for n in snap.networks.values() if n.l2}
        if msg.network_id:
            keys.add(msg.network_id)
        if keys:
            self.mark_dirty(keys)

    def mark_dirty(self, network_ids: Iterable[str]) -> None:
        self.loop.mark_dirty(network_ids)

    def resync(self) -> None:
        """Mark every key dirty: the next pass is a full one (with the sweep)."""
        self.loop.resync()

    def _on_reconnect(self) -> None:
        self.link.reconnected()
        self.resync()

    # -- the server ------------------------------------------------------------------------

    def _states(self) -> list[tuple[AgentKind, dict[str, Any]]]:
        snap = self.loop.snapshot
        generation = self.loop.applied_generation
        dhcp_nets = [n for n in snap.networks.values() if n.dhcp]
        routers = [r for r in snap.routers.values() if r.admin_state_up]
        return [
            (L2_AGENT, {"interface_mappings": dict(self.settings.physical_interface_mappings),
                        "bridge_mappings": dict(self.settings.bridge_mappings),
                        "tunnel_types": ["vxlan"],
                        "tunneling_ip": self.settings.vxlan_local_ip or None,
                        "l2_population": False, "devices": len(self.l2.wired),
                        "network_types": ["flat", "vxlan"]
                        + (["vlan"] if self.vlan_supported else []),
                        "realised_generation": generation}),
            (DHCP_AGENT, {"dhcp_driver": self.dhcp.backend.name, "networks": len(dhcp_nets),
                          "subnets": sum(len(n.subnets) for n in dhcp_nets),
                          "ports": sum(len(snap.ports_on(n.id)) for n in dhcp_nets),
                          "dhcp_lease_duration": self.settings.dhcp_lease_duration,
                          "notifies_port_ready": True,
                          "realised_generation": generation}),
            (L3_AGENT, {"agent_mode": "legacy", "interface_driver": "linuxbridge",
                        "external_network_bridge": "", "handle_internal_only_routers": True,
                        "routers": len(routers),
                        "ex_gw_ports": sum(1 for r in routers if r.gateway is not None),
                        "interfaces": sum(len(r.interfaces) for r in routers),
                        "floating_ips": sum(len(r.floatingips) for r in routers),
                        "realised_generation": generation}),
        ]

    def heartbeat(self) -> bool:
        return self.link.heartbeat(self._states(), self._dhcp_served)

    def _dhcp_served(self, network_ids: Iterable[str]) -> None:
        """The server says which networks' DHCP this host serves now: one that became or
        stopped being ours without a change mark (a DHCP agent enabled, counted alive or
        dead again: no write on the network) is marked dirty, so none waits for its next
        event or the periodic resync."""
        if not self.loop.synced:
            return  # the first pass is a full one anyway
        served = set(network_ids)
        known = {n.id for n in self.loop.snapshot.networks.values() if n.dhcp}
        if served != known:
            log.info("DHCP of network(s) %s changed hands: reconciling them",
                     ", ".join(sorted(served ^ known)))
            self.mark_dirty(served ^ known)

    def _request_port(self, network_id: str, release: bool) -> None:
        self.link.call(m.DHCP_PORT, m.DhcpPortRequest(self.host, network_id, release))
        self.mark_dirty([network_id])  # the port comes with the next snapshot

    # -- passes ------------------------------------------------------------------------------

    def run_once(self) -> bool:
        """One reconcile pass over the dirty keys; False if there was nothing to do or
        the server could not be reached."""
        return self.loop.run_once()

    def _after_pass(self, p: Pass) -> None:
        l2 = p.outcomes.get("l2")
        if l2 is not None:
            self.watchers.after_pass(l2.facts["links"])

    def poll_taps(self) -> None:
        if self.loop.synced:
            self.watchers.poll_taps()

    def check_daemons(self) -> None:
        if self.loop.synced:
            self.watchers.check_daemons()

    # -- running ---------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until :meth:`stop`: heartbeats, the watchers' polls, backoff retries,
        passes."""
        self.loop.run(self._stop, heartbeat=self.heartbeat,
                      report_interval=self.settings.agent_report_interval,
                      polls=[(self.poll_interval, self.watchers.tick)],
                      resync_interval=self.resync_interval)

    def start(self) -> threading.Thread:
        self.watchers.start()
        self._thread = threading.Thread(target=self.run, name=f"agent-{self.host}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; the data plane stays exactly as it is."""
        self._stop.set()
        self.loop.wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.watchers.join(timeout)
        self._unsubscribe()
