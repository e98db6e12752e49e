"""The reconcile loop: dirty keys, passes, and the agent's timetable.

Everything goes through one pass (:meth:`Loop.run_once`): the dirty keys (network
ids, and ``router:<id>``) are read from the server as a snapshot, every reconciler
runs in its declared order (:func:`neutrino.agent.reconciler.ordered`) over them, and
what was realised is reported.  Events only mark keys dirty; a full resync (start,
reconnect, periodic) marks everything dirty, and a full pass also sweeps objects
recognisably ours that nothing wants any more.

Until the first snapshot arrives nothing in the kernel is touched.  When the server is
away the data plane stays as it is, and the next successful call brings a full resync
(events may have been missed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from neutrino.agent import model
from neutrino.agent.l3.routers import router_key, split_keys
from neutrino.agent.reconciler import Backoff, Pass, Reconciler, ordered, run_pass
from neutrino.agent.server_link import ServerLink
from neutrino.bus import BusError
from neutrino.bus import messages as m

log = logging.getLogger(__name__)

#: a full resync this often repairs any drift the events did not tell us about
RESYNC_INTERVAL = 300.0


@dataclass(frozen=True)
class PassStats:
    """What one pass did (for logs and bench/instances_bench.py): a full pass over an
    unchanged host plans no step at all."""

    full: bool
    seconds: float
    #: reconciler name -> steps it planned
    planned: Mapping[str, int]

    @property
    def steps(self) -> int:
        return sum(self.planned.values())


class Loop:
    def __init__(self, host: str, link: ServerLink, reconcilers: Iterable[Reconciler],
                 *, after_pass: Callable[[Pass], None] | None = None) -> None:
        self.host = host
        self.link = link
        self.reconcilers: Sequence[Reconciler] = ordered(reconcilers)
        self._after_pass = after_pass
        self._lock = threading.Lock()
        self.wake = threading.Event()
        #: held for a whole pass (the watchers look at link events between passes)
        self.pass_lock = threading.Lock()
        self._dirty: set[str] = set()
        self._full = True
        self.snapshot = model.Snapshot()
        self.backoff = Backoff()
        self.synced = False
        self.applied_generation = 0
        self.passes = 0
        self.last_pass: PassStats | None = None

    # -- dirty keys ------------------------------------------------------------------------

    def mark_dirty(self, keys: Iterable[str]) -> None:
        with self._lock:
            self._dirty.update(keys)
        self.wake.set()

    def resync(self) -> None:
        """Mark every key dirty: the next pass is a full one (with the sweep)."""
        with self._lock:
            self._full = True
        self.wake.set()

    @property
    def idle(self) -> bool:
        """No pass running and none due (what tests and benchmarks wait for)."""
        with self._lock:
            due = self._full or bool(self._dirty)
        return not due and not self.pass_lock.locked()

    def _take_dirty(self) -> tuple[bool, set[str]]:
        with self._lock:
            full, keys = self._full, self._dirty
            self._full, self._dirty = False, set()
        return full, keys

    def _give_back(self, full: bool, keys: set[str]) -> None:
        with self._lock:
            self._full = self._full or full
            self._dirty |= keys

    # -- one pass ----------------------------------------------------------------------------

    def run_once(self) -> bool:
        """One reconcile pass over the dirty keys; False if there was nothing to do or
        the server could not be reached."""
        with self.pass_lock:
            return self._pass()

    def _pass(self) -> bool:
        full, keys = self._take_dirty()
        if not full and not keys:
            return False
        started = time.perf_counter()
        nets, routers = split_keys(keys)
        try:
            state = self.link.call(m.SYNC, m.SyncRequest(self.host, None if full else nets,
                                                         None if full else routers))
        except BusError as exc:
            self._give_back(full, keys)
            log.debug("no snapshot: %s", exc)
            return False
        assert isinstance(state, m.HostState)
        scope = None if full else sorted(set(nets) | {n["id"] for n in state.networks})
        before = self.snapshot
        self.snapshot = before.merged(model.snapshot(state), scope, None if full else routers)
        if full:
            self.link.forget_reported()  # the server may have restarted: tell it everything
        p = run_pass(self.reconcilers, Pass(self.snapshot, before, scope,
                                            None if full else routers), self.link)
        failed = set().union(*(o.failed for o in p.outcomes.values()))
        again = set().union(*(o.again for o in p.outcomes.values()))
        if self._after_pass is not None:
            self._after_pass(p)
        if again:
            self.mark_dirty(again)  # e.g. a tap that appeared during this pass
        done = keys if not full else [*self.snapshot.networks,
                                      *map(router_key, self.snapshot.routers)]
        self.backoff.succeeded(k for k in done if k not in failed)
        for key in failed:
            self.backoff.failed(key)
        if not failed:
            self.applied_generation = max(self.applied_generation, state.generation)
        self.synced = True
        self.link.flush()
        self.last_pass = PassStats(full, time.perf_counter() - started,
                                   {name: o.planned for name, o in p.outcomes.items()})
        self.passes += 1  # last: a watcher of ``passes`` finds ``last_pass`` set
        return True

    # -- the timetable ---------------------------------------------------------------------

    def run(self, stop: threading.Event, *, heartbeat: Callable[[], bool],
            report_interval: float, polls: Sequence[tuple[float, Callable[[], None]]],
            resync_interval: float = RESYNC_INTERVAL) -> None:
        """Until ``stop``: heartbeats (with backoff while unregistered), the watchers'
        polls (each ``(interval, callable)``, once synced), the periodic resync, backoff
        retries, passes."""
        interval = max(0.1, report_interval)
        next_beat = 0.0
        next_poll = [0.0] * len(polls)
        next_full = time.monotonic() + resync_interval
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_beat or self.link.due(now):
                heartbeat()  # while unregistered: with backoff until it goes through
                next_beat = now + interval
            for i, (every, poll) in enumerate(polls):
                if now >= next_poll[i]:
                    if self.synced:
                        poll()
                    next_poll[i] = now + every
            if now >= next_full:
                self.resync()
                next_full = now + resync_interval
            due = self.backoff.due(now)
            if due:
                for key in due:
                    self.backoff.not_before.pop(key, None)
                self.mark_dirty(due)
            try:
                if self.link.registered:
                    self.run_once()
            except Exception:  # a bug in one pass must not end the agent
                log.exception("reconcile pass failed; a full resync follows")
                self.resync()
                stop.wait(1.0)
            self.link.flush()
            waits = [next_beat, *next_poll, next_full, self.backoff.next_due() or next_full]
            timeout = max(0.0, min(waits) - time.monotonic())
            self.wake.wait(timeout)
            self.wake.clear()
