"""The host agent's loop: register, heartbeat, resync, reconcile, report.

Everything goes through one pass (:meth:`Agent.run_once`): the dirty keys (network
ids, and ``router:<id>``) are read from the server as a snapshot, every reconciler diffs
and applies them, and what was realised is reported.  Events only mark keys dirty; a full
resync (start, reconnect, periodic) marks everything dirty, and a full pass also
sweeps objects recognisably ours that nothing wants any more.

Until the first snapshot arrives nothing in the kernel is touched.  When the
server is away the data plane stays as it is, and the next successful call
brings a full resync (events may have been missed).
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neutrino import names
from neutrino.agent import model
from neutrino.agent.dhcp.dnsmasq import Dnsmasq
from neutrino.agent.dhcp.servers import Dhcp, DhcpBackend
from neutrino.agent.firewall.filters import Firewall
from neutrino.agent.l2.bridges import L2, L2Config
from neutrino.agent.l3.routers import L3, L3Config, router_key, split_keys
from neutrino.agent.reconciler import Backoff
from neutrino.bus import Bus, BusError, BusUnavailable
from neutrino.bus import messages as m
from neutrino.bus.core import CHANGES
from neutrino.config import Settings
from neutrino.linux import namespaces, rtnl, vlans
from neutrino.linux.errors import LinuxError

log = logging.getLogger(__name__)

L2_AGENT = ("Linux bridge agent", "neutrino-linuxbridge-agent", "N/A")
DHCP_AGENT = ("DHCP agent", "neutrino-dhcp-agent", "dhcp_agent")
L3_AGENT = ("L3 agent", "neutrino-l3-agent", "l3_agent")
#: how often taps are looked for (an instance's tap appears without any API event) while
#: link events cannot be watched; and how often the DHCP servers are checked
POLL_INTERVAL = 0.5
#: with link events watched, taps are still listed this often (a safety net)
TAP_POLL_WATCHED = 10.0
#: a full resync this often repairs any drift the events did not tell us about
RESYNC_INTERVAL = 300.0
#: while the server is away registration is retried after 0.25, 0.5, 1 ... seconds, at
#: most this long
AWAY_BACKOFF = 15.0


@dataclass(frozen=True)
class PassStats:
    """What one pass did (for logs and bench/instances_bench.py): a full pass over an
    unchanged host plans no step at all."""

    full: bool
    seconds: float
    #: reconciler ("l3", "dhcp", "l2", "firewall") -> steps it planned
    planned: Mapping[str, int]

    @property
    def steps(self) -> int:
        return sum(self.planned.values())


class Agent:
    def __init__(self, bus: Bus, settings: Settings, *, dhcp_backend: DhcpBackend | None = None,
                 poll_interval: float = POLL_INTERVAL,
                 resync_interval: float = RESYNC_INTERVAL) -> None:
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
        self.poll_interval = poll_interval
        self.resync_interval = resync_interval
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._dirty: set[str] = set()
        self._full = True
        self._snapshot = model.Snapshot()
        self._connected = False
        self._started = {L2_AGENT[0]: False, DHCP_AGENT[0]: False, L3_AGENT[0]: False}
        #: ("router"|"floatingip", id) -> status last reported, and those to report
        self._l3_reported: dict[tuple[str, str], str] = {}
        self._l3_pending: dict[tuple[str, str], str] = {}
        #: (port id, component) -> (up, revision) last reported successfully
        self._reported: dict[tuple[str, str], tuple[bool, int]] = {}
        self._pending: list[dict] = []
        self._taps: dict[str, tuple[str | None, bool]] = {}
        #: link index -> name in the agent's namespace, as last listed (for link events)
        self._link_names: dict[int, str] = {}
        #: held for a whole pass: link events are looked at between passes, once the
        #: pass's own changes are known
        self._pass_lock = threading.Lock()
        self._watching = False
        self._watcher: threading.Thread | None = None
        self.backoff = Backoff()
        self.synced = False
        self.applied_generation = 0
        self.wired: set[str] = set()
        self.passes = 0
        self.last_pass: PassStats | None = None
        self._thread: threading.Thread | None = None
        self._away_tries = 0
        self._retry_at = 0.0
        #: the server has this host's agents as alive: it decides what the host serves (a
        #: network's DHCP) from that, so no pass runs before a heartbeat went through
        self._registered = False
        self._unsubscribe = bus.subscribe(CHANGES, self._on_change)
        # a transport that can lose its connection (AMQP) says when it is back: events
        # may have been missed meanwhile, so the next pass is a full one
        on_reconnect = getattr(bus, "on_reconnect", None)
        if on_reconnect is not None:
            on_reconnect(self._on_reconnect)

    # -- events: only mark dirty -------------------------------------------------------

    def _on_change(self, msg: m.Message) -> None:
        if not isinstance(msg, m.Changed):
            return
        keys = self.l3.keys_for_change(msg, self._snapshot)  # routers: "router:<id>"
        if msg.kind == "security_group":
            # a group or rule: every network with ports here is refiltered
            keys |= {n.id for n in self._snapshot.networks.values() if n.l2}
        if msg.network_id:
            keys.add(msg.network_id)
        if keys:
            self.mark_dirty(keys)

    def mark_dirty(self, network_ids: Iterable[str]) -> None:
        with self._lock:
            self._dirty.update(network_ids)
        self._wake.set()

    def resync(self) -> None:
        """Mark every key dirty: the next pass is a full one (with the sweep)."""
        with self._lock:
            self._full = True
        self._wake.set()

    @property
    def idle(self) -> bool:
        """No pass running and none due (what tests and benchmarks wait for)."""
        with self._lock:
            due = self._full or bool(self._dirty)
        return not due and not self._pass_lock.locked()

    def _on_reconnect(self) -> None:
        # away longer than the down time, the server counts us dead: register first
        self._registered = False
        self._retry_at = 0.0
        self.resync()

    # -- the bus -------------------------------------------------------------------------

    def _call(self, method: str, request: m.Message) -> m.Message:
        try:
            reply = self.bus.call(method, request)
        except BusUnavailable:
            if self._connected:
                log.warning("the server is away: keeping the data plane as it is")
            self._connected = False
            self._registered = False
            self._away_tries += 1
            self._retry_at = time.monotonic() + min(AWAY_BACKOFF,
                                                    0.125 * 2 ** min(self._away_tries, 8))
            raise
        self._away_tries = 0
        if not self._connected:
            self._connected = True
            self.resync()  # events may have been missed meanwhile
        return reply

    def heartbeat(self) -> bool:
        dhcp_nets = [n for n in self._snapshot.networks.values() if n.dhcp]
        routers = [r for r in self._snapshot.routers.values() if r.admin_state_up]
        states = [
            (L2_AGENT, {"interface_mappings": dict(self.settings.physical_interface_mappings),
                        "bridge_mappings": dict(self.settings.bridge_mappings),
                        "tunnel_types": ["vxlan"],
                        "tunneling_ip": self.settings.vxlan_local_ip or None,
                        "l2_population": False, "devices": len(self.wired),
                        "network_types": ["flat", "vxlan"]
                        + (["vlan"] if self.vlan_supported else []),
                        "realised_generation": self.applied_generation}),
            (DHCP_AGENT, {"dhcp_driver": self.dhcp.backend.name, "networks": len(dhcp_nets),
                          "subnets": sum(len(n.subnets) for n in dhcp_nets),
                          "ports": sum(len(self._snapshot.ports_on(n.id)) for n in dhcp_nets),
                          "dhcp_lease_duration": self.settings.dhcp_lease_duration,
                          "notifies_port_ready": True,
                          "realised_generation": self.applied_generation}),
            (L3_AGENT, {"agent_mode": "legacy", "interface_driver": "linuxbridge",
                        "external_network_bridge": "", "handle_internal_only_routers": True,
                        "routers": len(routers),
                        "ex_gw_ports": sum(1 for r in routers if r.gateway is not None),
                        "interfaces": sum(len(r.interfaces) for r in routers),
                        "floating_ips": sum(len(r.floatingips) for r in routers),
                        "realised_generation": self.applied_generation}),
        ]
        try:
            for (agent_type, binary, topic), config in states:
                reply = self._call(m.REPORT_STATE, m.AgentState(
                    self.host, agent_type, binary, topic, config,
                    start_flag=not self._started[agent_type]))
                self._started[agent_type] = True
                if isinstance(reply, m.AgentRegistered) and reply.dhcp_networks is not None:
                    self._dhcp_served(reply.dhcp_networks)
        except BusError as exc:
            log.debug("heartbeat not delivered: %s", exc)
            return False
        self._registered = True
        return True

    def _dhcp_served(self, network_ids: Iterable[str]) -> None:
        """The server says which networks' DHCP this host serves now: one that became or
        stopped being ours without a change mark (a DHCP agent enabled, counted alive or
        dead again: no write on the network) is marked dirty, so none waits for its next
        event or the periodic resync."""
        if not self.synced:
            return  # the first pass is a full one anyway
        served = set(network_ids)
        known = {n.id for n in self._snapshot.networks.values() if n.dhcp}
        if served != known:
            log.info("DHCP of network(s) %s changed hands: reconciling them",
                     ", ".join(sorted(served ^ known)))
            self.mark_dirty(served ^ known)

    def _request_port(self, network_id: str, release: bool) -> None:
        self._call(m.DHCP_PORT, m.DhcpPortRequest(self.host, network_id, release))
        self.mark_dirty([network_id])  # the port comes with the next snapshot

    # -- one pass --------------------------------------------------------------------------

    def _take_dirty(self) -> tuple[bool, set[str]]:
        with self._lock:
            full, keys = self._full, self._dirty
            self._full, self._dirty = False, set()
        return full, keys

    def _give_back(self, full: bool, keys: set[str]) -> None:
        with self._lock:
            self._full = self._full or full
            self._dirty |= keys

    def run_once(self) -> bool:
        """One reconcile pass over the dirty keys; False if there was nothing to do or
        the server could not be reached."""
        with self._pass_lock:
            return self._pass()

    def _pass(self) -> bool:
        full, keys = self._take_dirty()
        if not full and not keys:
            return False
        started = time.perf_counter()
        nets, routers = split_keys(keys)
        try:
            state = self._call(m.SYNC, m.SyncRequest(self.host, None if full else nets,
                                                     None if full else routers))
        except BusError as exc:
            self._give_back(full, keys)
            log.debug("no snapshot: %s", exc)
            return False
        assert isinstance(state, m.HostState)
        scope = None if full else sorted(set(nets) | {n["id"] for n in state.networks})
        before = self._snapshot
        self._snapshot = before.merged(model.snapshot(state), scope, None if full else routers)
        if full:
            self._reported.clear()  # the server may have restarted: tell it everything
            self._l3_reported.clear()
        planned: dict[str, int] = {}
        failed = self._reconcile(scope, None if full else routers, planned)
        if not full:
            # router ports that came or went: their networks' bridges plug or drop the taps
            # L3 just made or removed, in the next pass
            touched = self.l3.networks_touched(before, self._snapshot, routers) - set(scope or ())
            if touched:
                self.mark_dirty(touched)
        done = keys if not full else [*self._snapshot.networks,
                                      *map(router_key, self._snapshot.routers)]
        self.backoff.succeeded(k for k in done if k not in failed)
        for key in failed:
            self.backoff.failed(key)
        if not failed:
            self.applied_generation = max(self.applied_generation, state.generation)
        self.synced = True
        self._flush_reports()
        self.last_pass = PassStats(full, time.perf_counter() - started, planned)
        self.passes += 1  # last: a watcher of ``passes`` finds ``last_pass`` set
        return True

    def _reconcile(self, scope: list[str] | None, router_scope: list[str] | None = None,
                   planned: dict[str, int] | None = None) -> set[str]:
        """L3 and DHCP first (they make the routers' and DHCP ports' taps), then the
        firewall, then L2 (which plugs every tap); returns the keys that failed (network
        ids, and ``router:<id>``).  ``planned`` gets the number of steps each reconciler
        planned."""
        snap = self._snapshot
        failed: set[str] = set()
        planned = {} if planned is None else planned
        l3_want = self.l3.desired(snap)
        l3_keys = self.l3.all_keys(l3_want) if scope is None else set(router_scope or ())
        l3_plan = self.l3.diff(l3_want, self.l3.observe(l3_keys), l3_keys)
        planned["l3"] = len(l3_plan)
        l3_failed = self.l3.apply(l3_plan)
        failed |= {router_key(k) for k in l3_failed}
        self._report_l3(*self.l3.reports(snap, l3_keys, l3_want, l3_failed))
        if scope is not None and not scope:
            return failed  # routers only (a floating IP, a route): no bridge or DHCP to look at
        dhcp_want = self.dhcp.desired(snap)
        release = {n for n in snap.networks if n not in dhcp_want
                   and snap.dhcp_port(n) is not None}
        keys = None if scope is None else set(scope) | release
        if self.netns is not None:
            # a sandboxed agent shares the namespace list with others (two "hosts" on one
            # machine): its own are those it keeps files for, in full and partial passes
            own = set(self.dhcp.backend.networks()) | set(dhcp_want) | release
            keys = own if keys is None else keys & own
        seen, taps = self.dhcp.observe(keys, dhcp_want)
        dhcp_plan = self.dhcp.diff(dhcp_want, seen, keys, taps=taps, release=release)
        planned["dhcp"] = len(dhcp_plan)
        failed |= set(self.dhcp.apply(dhcp_plan))
        # security groups before the bridges: a tap is plugged once its port is filtered
        # (what the forward chain does not know it lets through), and a port is ACTIVE
        # only once it is filtered
        fw_want = self.firewall.desired(snap)
        fw_plan = self.firewall.diff(fw_want, self.firewall.observe())
        planned["firewall"] = len(fw_plan)
        fw_ok = not self.firewall.apply(fw_plan)
        if fw_ok:
            self.firewall.remember(fw_want)
        else:
            # retried with backoff through the networks of the ports it filters
            failed |= {p.network_id for p in snap.ports.values() if p.local}
        # the bridges last: an instance's tap that appeared meanwhile is plugged now
        l2_want = self.l2.desired(snap)
        l2_keys = None if scope is None else self.l2.keys_of(scope, snap)
        host = self.l2.observe()
        l2_plan = self.l2.diff(l2_want, host, l2_keys)
        planned["l2"] = len(l2_plan)
        l2_failed = self.l2.apply(l2_plan)
        by_bridge = {self.l2.bridge_of(n): n.id for n in snap.networks.values()}
        failed |= {by_bridge.get(k, k) for k in l2_failed}
        after = self.l2.observe() if l2_plan else host
        self._taps = _tap_states(after)
        self._link_names = {lk.index: name for name, lk in after.links.items()}
        wired: set[str] = set()
        late: set[str] = set()
        for bridge, spec in l2_want.items():
            if l2_keys is not None and bridge not in l2_keys:
                wired |= {p for p in spec.taps if p in self.wired}
                continue
            ok = bridge not in l2_failed and fw_ok
            for pid, up in self.l2.wired(spec, after).items():
                self._report(pid, "l2", ok and up)
                if ok and up:
                    wired.add(pid)
                elif ok and spec.taps[pid] in after.links:
                    late.add(spec.network_id)  # the tap appeared during this pass
        self.wired = wired
        if late:
            self.mark_dirty(late)  # plug it in the next pass (the tap poll saw it already)
        for net_id, spec in dhcp_want.items():
            if (scope is None or net_id in scope) and net_id not in failed \
                    and spec.port is not None:
                for pid in spec.served:
                    self._report(pid, "dhcp", True)
        return failed

    def _report(self, port_id: str, component: str, up: bool) -> None:
        port = self._snapshot.ports.get(port_id)
        revision = port.revision_number if port else 0
        if self._reported.get((port_id, component)) == (up, revision):
            return
        self._pending.append({"port_id": port_id, "component": component, "up": up,
                              "revision": revision})

    def _report_l3(self, routers: list[dict], floatingips: list[dict]) -> None:
        for kind, items in (("router", routers), ("floatingip", floatingips)):
            for item in items:
                key = (kind, item[f"{kind}_id"])
                if self._l3_reported.get(key) != item["status"]:
                    self._l3_pending[key] = item["status"]

    def _flush_l3_reports(self) -> None:
        if not self._l3_pending:
            return
        pending, self._l3_pending = self._l3_pending, {}
        try:
            self._call(m.REPORT_ROUTERS, m.RouterReports(
                self.host,
                [{"router_id": i, "status": s} for (k, i), s in pending.items() if k == "router"],
                [{"floatingip_id": i, "status": s} for (k, i), s in pending.items()
                 if k == "floatingip"]))
        except BusError as exc:
            log.debug("router reports not delivered: %s", exc)
            self._l3_pending = {**pending, **self._l3_pending}
            return
        self._l3_reported.update(pending)

    def _flush_reports(self) -> None:
        self._flush_l3_reports()
        if not self._pending:
            return
        reports, self._pending = self._pending, []
        try:
            self._call(m.REPORT_PORTS, m.PortReports(self.host, reports))
        except BusError as exc:
            log.debug("port reports not delivered: %s", exc)
            self._pending = reports + self._pending
            return
        for r in reports:
            self._reported[(r["port_id"], r["component"])] = (r["up"], r["revision"])

    # -- taps appear and vanish without an API event -----------------------------------

    def poll_taps(self) -> None:
        if not self.synced:
            return
        try:
            now = _tap_states(self.l2.observe())
        except Exception as exc:
            log.debug("cannot list links: %s", exc)
            return
        changed = {t for t in set(now) | set(self._taps) if now.get(t) != self._taps.get(t)}
        self._taps = now
        if not changed:
            return
        nets = {p.network_id for p in self._snapshot.ports.values()
                if p.local and names.tap(p.id) in changed}
        if nets:
            self.mark_dirty(nets)

    def _watch_links(self, watch: rtnl.LinkWatch) -> None:
        """Wake a pass as soon as a local port's tap appears, goes or changes: a
        hypervisor plugs an instance without any API event."""
        try:
            while not self._stop.is_set():
                events, overrun = watch.read(0.5)
                if not events and not overrun:
                    continue
                with self._pass_lock:  # after the pass in progress, whose changes are known
                    more, lost = watch.read(0)
                self._on_links(events + more, overrun or lost)
        except Exception:  # the taps are polled as before
            log.exception("watching link events failed: polling taps every %.1fs",
                          self.poll_interval)
        finally:
            self._watching = False
            watch.close()

    def _on_links(self, events: list[dict], overrun: bool) -> None:
        local = {names.tap(p.id): p.network_id for p in self._snapshot.ports.values()
                 if p.local}
        if overrun:  # the kernel dropped some: look at every local network
            self.mark_dirty(set(local.values()))
            return
        last = {e.get("ifname"): e for e in events}  # each tap's latest state
        dirty = set()
        for tap, event in last.items():
            if tap not in local:
                continue
            master = event.get("master")
            state = None if event["event"] == "del" else (
                self._link_names.get(master, f"#{master}") if master else None,
                bool(event["flags"] & 1))  # IFF_UP
            if state != self._taps.get(tap):  # not what the last pass left
                dirty.add(local[tap])
        if dirty:
            self.mark_dirty(dirty)

    def check_daemons(self) -> None:
        """A DHCP server that died (crashed, killed) is started again by the next pass."""
        if not self.synced:
            return
        dead = [n.id for n in self._snapshot.networks.values() if n.dhcp
                and self._snapshot.dhcp_port(n.id) is not None
                and namespaces.namespace_exists(names.dhcp_namespace(n.id))
                and not self.dhcp.backend.daemon(n.id, names.dhcp_namespace(n.id)).alive()]
        if dead:
            log.warning("DHCP server gone for network(s) %s: starting it again", ", ".join(dead))
            self.mark_dirty(dead)

    # -- running ---------------------------------------------------------------------------

    def run(self) -> None:
        """Loop until :meth:`stop`: heartbeats, tap polling, backoff retries, passes."""
        interval = max(0.1, self.settings.agent_report_interval)
        next_beat = next_poll = next_taps = 0.0
        next_full = time.monotonic() + self.resync_interval
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_beat or (not self._registered and now >= self._retry_at):
                self.heartbeat()  # while unregistered: with backoff until it goes through
                next_beat = now + interval
            if now >= next_poll:
                if not self._watching or now >= next_taps:
                    self.poll_taps()
                    next_taps = now + TAP_POLL_WATCHED
                self.check_daemons()
                next_poll = now + self.poll_interval
            if now >= next_full:
                self.resync()
                next_full = now + self.resync_interval
            due = self.backoff.due(now)
            if due:
                for key in due:
                    self.backoff.not_before.pop(key, None)
                self.mark_dirty(due)
            try:
                if self._registered:
                    self.run_once()
            except Exception:  # a bug in one pass must not end the agent
                log.exception("reconcile pass failed; a full resync follows")
                self.resync()
                self._stop.wait(1.0)
            self._flush_reports()
            waits = [next_beat, next_poll, next_full, self.backoff.next_due() or next_full]
            timeout = max(0.0, min(waits) - time.monotonic())
            self._wake.wait(timeout)
            self._wake.clear()

    def start(self) -> threading.Thread:
        try:
            watch = rtnl.LinkWatch(self.netns)  # opened now: no tap change is missed
        except (LinuxError, OSError) as exc:
            log.warning("cannot watch link events (%s): polling taps every %.1fs", exc,
                        self.poll_interval)
        else:
            self._watching = True
            self._watcher = threading.Thread(target=self._watch_links, args=(watch,),
                                             name=f"agent-links-{self.host}", daemon=True)
            self._watcher.start()
        self._thread = threading.Thread(target=self.run, name=f"agent-{self.host}", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the loop; the data plane stays exactly as it is."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._watcher is not None:
            self._watcher.join(timeout)  # its socket holds the namespace: closed by then
        self._unsubscribe()


def _tap_states(seen: object) -> dict[str, tuple[str | None, bool]]:
    links = getattr(seen, "links", {})
    return {name: (lk.master, lk.up) for name, lk in links.items()
            if (p := names.parse_link(name)) is not None and p.kind == names.Kind.TAP}
