"""The kernel watchers: what changes on the host without any API event.

- taps: a hypervisor plugs an instance (its tap appears, goes, or changes master or
  state) -- seen at once from rtnetlink link events when they can be watched (a thread
  reading :class:`neutrino.linux.rtnl.LinkWatch`), and by listing the links (every
  ``POLL_INTERVAL`` without events, every ``TAP_POLL_WATCHED`` with them, a safety net);
  the networks of the local ports whose taps changed are marked dirty;
- DHCP servers that died (crashed, killed): their networks are marked dirty;
- the external bridge (``br-ex``) deleted or changed by hand: a link event on it, or its
  address or route found missing (checked every ``EXTERNAL_CHECK``), starts a full pass
  that repairs it.

Link events are looked at between passes (under the loop's pass lock), once the pass's
own changes are known, so the agent's own plugging never wakes another pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from neutrino import names
from neutrino.agent.dhcp.servers import Dhcp
from neutrino.agent.l2.bridges import L2
from neutrino.agent.l3.external import External
from neutrino.agent.model import Snapshot
from neutrino.linux import namespaces, rtnl
from neutrino.linux.devices import Link
from neutrino.linux.errors import LinuxError

log = logging.getLogger(__name__)

#: how often taps are looked for while link events cannot be watched; and how often
#: the DHCP servers and the external bridge are checked
POLL_INTERVAL = 0.5
#: with link events watched, taps are still listed this often (a safety net)
TAP_POLL_WATCHED = 10.0
#: the external bridge's address and route are checked this often (no event tells of
#: them; ~6 ms a check on a host of a hundred ports); the bridge itself at once, by events
EXTERNAL_CHECK = 2.0

TapState = tuple[str | None, bool]  # (master, up)


def tap_states(links: Mapping[str, Link]) -> dict[str, TapState]:
    return {name: (lk.master, lk.up) for name, lk in links.items()
            if (p := names.parse_link(name)) is not None and p.kind == names.Kind.TAP}


class KernelWatchers:
    def __init__(self, netns: str | None, l2: L2, dhcp: Dhcp, external: External,
                 snapshot: Callable[[], Snapshot], mark_dirty: Callable[[Iterable[str]], None],
                 resync: Callable[[], None], pass_lock: threading.Lock,
                 stop: threading.Event, poll_interval: float = POLL_INTERVAL,
                 name: str = "agent") -> None:
        self.netns = netns
        self.l2 = l2
        self.dhcp = dhcp
        self.external = external
        self._snapshot = snapshot
        self._mark_dirty = mark_dirty
        self._resync = resync
        self._pass_lock = pass_lock
        self._stop = stop
        self.poll_interval = poll_interval
        self._name = name
        #: tap -> (master, up) as the last pass left it
        self._taps: dict[str, TapState] = {}
        #: link index -> name in the agent's namespace, as last listed (for link events)
        self._link_names: dict[int, str] = {}
        self.watching = False
        self._thread: threading.Thread | None = None
        self._next_taps = 0.0
        self._next_external = 0.0

    def after_pass(self, links: Mapping[str, Link]) -> None:
        """What the pass left (L2's last look at the links): the baseline of changes."""
        self._taps = tap_states(links)
        self._link_names = {lk.index: name for name, lk in links.items()}

    # -- polled ----------------------------------------------------------------------------

    def tick(self) -> None:
        """Every ``poll_interval``: taps (rarely while link events are watched), DHCP
        servers, the external bridge."""
        now = time.monotonic()
        if not self.watching or now >= self._next_taps:
            self.poll_taps()
            self._next_taps = now + TAP_POLL_WATCHED
        self.check_daemons()
        if now >= self._next_external:
            self.check_external()
            self._next_external = now + EXTERNAL_CHECK

    def poll_taps(self) -> None:
        try:
            now = tap_states(self.l2.host().links)
        except Exception as exc:
            log.debug("cannot list links: %s", exc)
            return
        changed = {t for t in set(now) | set(self._taps) if now.get(t) != self._taps.get(t)}
        self._taps = now
        if not changed:
            return
        nets = {p.network_id for p in self._snapshot().ports.values()
                if p.local and names.tap(p.id) in changed}
        if nets:
            self._mark_dirty(nets)

    def check_daemons(self) -> None:
        """A DHCP server that died (crashed, killed) is started again by the next pass."""
        snap = self._snapshot()
        dead = [n.id for n in snap.networks.values() if n.dhcp
                and snap.dhcp_port(n.id) is not None
                and namespaces.namespace_exists(names.dhcp_namespace(n.id))
                and not self.dhcp.backend.daemon(n.id, names.dhcp_namespace(n.id)).alive()]
        if dead:
            log.warning("DHCP server gone for network(s) %s: starting it again", ", ".join(dead))
            self._mark_dirty(dead)

    def check_external(self) -> None:
        """``br-ex``, its address or its route gone or changed: a full pass repairs it
        (left to the backoff while repairing fails)."""
        if self.external.cfg is None or self.external.failing:
            return
        try:
            drifted = self.external.drifted()
        except Exception as exc:
            log.debug("cannot look at the external bridge: %s", exc)
            return
        if drifted:
            log.warning("the external bridge %s changed under us: repairing it",
                        self.external.cfg.bridge)
            self._resync()

    # -- link events -------------------------------------------------------------------------

    def start(self) -> None:
        try:
            watch = rtnl.LinkWatch(self.netns)  # opened now: no tap change is missed
        except (LinuxError, OSError) as exc:
            log.warning("cannot watch link events (%s): polling taps every %.1fs", exc,
                        self.poll_interval)
            return
        self.watching = True
        self._thread = threading.Thread(target=self._watch, args=(watch,),
                                        name=f"agent-links-{self._name}", daemon=True)
        self._thread.start()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout)  # its socket holds the namespace: closed by then

    def _watch(self, watch: rtnl.LinkWatch) -> None:
        """Wake a pass as soon as a local port's tap appears, goes or changes: a
        hypervisor plugs an instance without any API event."""
        try:
            while not self._stop.is_set():
                events, overrun = watch.read(0.5)
                if not events and not overrun:
                    continue
                with self._pass_lock:  # after the pass in progress, whose changes are known
                    more, lost = watch.read(0)
                self.on_links(events + more, overrun or lost)
        except Exception:  # the taps are polled as before
            log.exception("watching link events failed: polling taps every %.1fs",
                          self.poll_interval)
        finally:
            self.watching = False
            watch.close()

    def on_links(self, events: list[dict], overrun: bool) -> None:
        snap = self._snapshot()
        local = {names.tap(p.id): p.network_id for p in snap.ports.values() if p.local}
        if overrun:  # the kernel dropped some: look at every local network
            self._mark_dirty(set(local.values()))
            self.check_external()
            return
        last = {e.get("ifname"): e for e in events}  # each tap's latest state
        if self.external.cfg is not None and self.external.cfg.bridge in last:
            self.check_external()
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
            self._mark_dirty(dirty)
