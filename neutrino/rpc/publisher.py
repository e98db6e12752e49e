"""The outbox's publisher: it sends the change events the services recorded
(:mod:`neutrino.services.core.events`) once their transactions committed, and deletes
them when the bus has them.

- It is woken after every commit in this process that recorded events (and lingers a
  few milliseconds, so that one pass takes what several commits wrote), and sweeps at
  start and every ``interval`` seconds for rows left behind: by a server that crashed
  between a commit and its publish, by another process whose publisher has not got to
  them yet.  Every server's publisher takes any row.
- Each pass is one transaction: the oldest rows (in id order, ``batch`` at most) are
  claimed with ``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL and MariaDB (two
  publishers take different rows, and neither waits for the other), in a plain write
  transaction on SQLite (writers are serial there); published; deleted; committed.
- A transport that can say when the broker has what was published (AMQP's ``flush``:
  the broker confirmed it) is waited for before the delete, so a row goes only once
  the broker took its event.  While the transport is disconnected nothing is claimed.
- Delivery is at least once: a crash after the publish and before the commit of the
  delete publishes those rows again (so may two publishers, should one's commit be
  lost).  Events are keys that agents mark dirty, so a duplicate costs a reconcile.

``NEUTRINO_FAULT_OUTBOX`` injects the one fault tests cannot produce at will, a crash in
the window between commit and publish: ``hold`` publishes nothing (the rows stay, as
if the process died right after its commits), ``stall-after-claim`` claims the rows and
then waits, holding them, until the process is killed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.bus.core import Bus
from neutrino.bus.messages import MessageError, from_wire
from neutrino.db import tables as t
from neutrino.db.engine import Database
from neutrino.services.core import events

log = logging.getLogger(__name__)

#: seconds between sweeps for rows no wake-up announced (another process's, a crash's)
SWEEP_INTERVAL = 2.0
#: rows per transaction
BATCH = 500
#: seconds a wake-up waits for more commits to join its pass: one transaction then
#: sends several writes' events (the writers' database lock is taken once for them)
LINGER = 0.02
#: seconds to wait for the broker to confirm a batch
FLUSH_TIMEOUT = 10.0
#: longest pause after failures (the database or the broker away)
MAX_BACKOFF = 30.0
FAULT_ENV = "NEUTRINO_FAULT_OUTBOX"
THREAD_NAME = "outbox-publisher"

OUTBOX = t.outbox_events
_DELETE = OUTBOX.delete().where(OUTBOX.c.id.in_(sa.bindparam("ids", expanding=True)))


class NotConfirmed(Exception):
    """The broker did not confirm the batch in time: it stays in the outbox."""


class Publisher:
    def __init__(self, bus: Bus, db: Database, *, interval: float = SWEEP_INTERVAL,
                 batch: int = BATCH) -> None:
        self.bus = bus
        self.db = db
        self.interval = interval
        self.batch = batch
        claim = sa.select(OUTBOX.c.id, OUTBOX.c.topic, OUTBOX.c.payload) \
            .order_by(OUTBOX.c.id).limit(batch)
        # SQLite has no row locks: its writers are serial, which is the claim
        self._claim = claim if db.is_sqlite else claim.with_for_update(skip_locked=True)
        self._fault = os.environ.get(FAULT_ENV, "")
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: Callable[[], None] | None = None
        #: events sent so far by this publisher (diagnostics and tests)
        self.published = 0

    # -- running -------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._unsubscribe = events.when_recorded(self.db.engine, self.wake)
        self._wake.set()  # the sweep at start: what a previous run left
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Something was recorded and committed: publish it (called on the writer's
        thread, so it only sets a flag)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop after one last pass (what was committed until now goes out)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _run(self) -> None:
        failures = 0
        while True:
            pause = self.interval if not failures else min(MAX_BACKOFF, 0.5 * 2 ** failures)
            if self._wake.wait(pause) and not self._stopping.is_set():
                self._stopping.wait(LINGER)
            self._wake.clear()
            try:
                self.drain()
                failures = 0
            except Exception as exc:  # the rows stay: the next pass tries again
                failures += 1
                log.warning("outbox: events not published yet (%s: %s); retrying",
                            type(exc).__name__, exc)
            if self._stopping.is_set():
                return

    # -- publishing ----------------------------------------------------------------------

    def drain(self) -> int:
        """Publish what is in the outbox now, a batch per transaction; how many."""
        total = 0
        while True:
            done = self.publish_pending()
            total += done
            if done < self.batch or self._stopping.is_set():
                return total

    def publish_pending(self) -> int:
        """One pass: claim the oldest rows, publish them, delete them; how many."""
        if self._fault == "hold" or not getattr(self.bus, "connected", True):
            return 0
        return self.db.write(self._publish_batch)

    def _publish_batch(self, conn: Connection) -> int:
        rows = conn.execute(self._claim).all()
        if not rows:
            return 0
        if self._fault == "stall-after-claim":
            log.warning("outbox: %s=stall-after-claim: holding %d rows unpublished",
                        FAULT_ENV, len(rows))
            self._stopping.wait()
            raise NotConfirmed("stalled by the injected fault")
        for row in rows:
            try:
                message = from_wire(row.payload)
            except MessageError as exc:  # a server too far ahead wrote it: no agent reads it
                log.error("outbox: dropping event %d this server cannot read: %s", row.id, exc)
                continue
            self.bus.publish(row.topic, message)
        flush = getattr(self.bus, "flush", None)
        if flush is not None and not flush(FLUSH_TIMEOUT):
            raise NotConfirmed(f"the broker did not confirm {len(rows)} events in "
                               f"{FLUSH_TIMEOUT:g}s")
        conn.execute(_DELETE, {"ids": [r.id for r in rows]})
        self.published += len(rows)
        return len(rows)
