"""Change events, written with the transaction that caused them (a transactional outbox).

Every service records, inside its operation's transaction, the event of each object it
changes, whichever service asked for the change: a router interface's port, the ports
and subnets a network delete removes, the groups whose members a port update changes,
the floating IPs a port delete disassociates.  Nothing above the services makes events.

- :func:`record` gathers the transaction's events (each distinct event once);
- just before the commit they are inserted into ``outbox_events`` in one statement,
  then the generation is bumped (the last statement, see :func:`generation`);
- after the commit the publishers of this database in this process are woken
  (:func:`when_recorded`; :mod:`neutrino.rpc.publisher` sends the rows and deletes
  them), and a periodic sweep by any server finds what a crash left behind.

A rolled-back transaction (or an attempt :meth:`~neutrino.db.engine.Database.write`
retries) writes no event.  An event is a key, never state: an agent marks the network
or router it names dirty and reads the state when it reconciles, so an event delivered
twice, late or out of order does no harm (the publisher gives at-least-once delivery).
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from neutrino.bus.core import CHANGES
from neutrino.bus.messages import Changed
from neutrino.db import tables as t
from neutrino.db.engine import after_commit, before_commit

#: the kinds of object an event names (what the agents tell apart)
NETWORK, SUBNET, PORT = "network", "subnet", "port"
ROUTER, FLOATINGIP, SECURITY_GROUP = "router", "floatingip", "security_group"

_OUTBOX = "outbox"
_GENERATION_KEY = "bus_generation"
_INSERT = t.outbox_events.insert()
_GENERATION = sa.select(t.bus_generation.c.generation).where(t.bus_generation.c.id == 1)


class _Batch:
    """One transaction's events, inserted just before it commits."""

    __slots__ = ("changes",)

    def __init__(self) -> None:
        self.changes: dict[Changed, None] = {}  # an ordered set

    def __call__(self, conn: Connection) -> None:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        conn.execute(_INSERT, [{"topic": CHANGES, "kind": ch.kind, "object_id": ch.id,
                                "payload": ch.to_wire(), "created_at": stamp}
                               for ch in self.changes])


def record(conn: Connection, *changes: Changed) -> None:
    """Record change events in the write transaction ``conn`` is in: they are written
    with it, and published once it committed."""
    if not changes:
        return
    batch = before_commit(conn, _OUTBOX, _Batch())
    if not batch.changes:  # the transaction's first event
        before_commit(conn, _GENERATION_KEY, _bump_generation)  # after the rows
        after_commit(conn, functools.partial(_recorded, conn.engine))
    for change in changes:
        batch.changes[change] = None


# -- one helper per kind, so each event has one shape -----------------------------------

def network(conn: Connection, network_id: str) -> None:
    record(conn, Changed(NETWORK, network_id, network_id))


def subnet(conn: Connection, subnet_id: str, network_id: str) -> None:
    record(conn, Changed(SUBNET, subnet_id, network_id))


def port(conn: Connection, port_id: str, network_id: str, host: str = "") -> None:
    """A port changed; ``host``: the host it is bound to (its old one too, when it
    moves)."""
    record(conn, Changed(PORT, port_id, network_id, host or ""))


def router(conn: Connection, router_id: str, host: str | None) -> None:
    """A router changed; ``host``: the one realising it (None: none yet)."""
    record(conn, Changed(ROUTER, router_id, None, host or "", router_id=router_id))


def floatingip(conn: Connection, floatingip_id: str, router_id: str | None) -> None:
    """A floating IP changed; ``router_id``: the router it goes through now (None: not
    associated; its old router's host finds it in its own state)."""
    record(conn, Changed(FLOATINGIP, floatingip_id, None, "", router_id=router_id))


def security_groups(conn: Connection, group_ids: Iterable[str]) -> None:
    """Groups changed: their rules, or their members (ports and their addresses)."""
    record(conn, *(Changed(SECURITY_GROUP, g) for g in sorted(set(group_ids))))


# -- generations ------------------------------------------------------------------------

def generation(conn: Connection) -> int:
    """The generation of the desired state as committed now: bumped by every
    transaction that records events, as its last statement (so the row's lock is held
    only for the commit, and generations follow commit order across all servers).  A
    snapshot read after it holds every change up to it."""
    return int(conn.scalar(_GENERATION) or 0)


def _bump_generation(conn: Connection) -> None:
    g = t.bus_generation
    done = conn.execute(g.update().where(g.c.id == 1).values(generation=g.c.generation + 1))
    if done.rowcount == 0:  # the row migration 0011 made is gone: on from the clock
        conn.execute(g.insert().values(id=1, generation=int(time.time() * 1000)))


# -- waking the publishers --------------------------------------------------------------

_LISTENERS: weakref.WeakKeyDictionary[Engine, list[Callable[[], None]]] = \
    weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def when_recorded(engine: Engine, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` after each commit on ``engine`` that recorded events (on the
    writer's thread: it must be quick, e.g. set an event); returns the unsubscribe."""
    with _LOCK:
        _LISTENERS.setdefault(engine, []).append(callback)

    def unsubscribe() -> None:
        with _LOCK:
            callbacks = _LISTENERS.get(engine, [])
            if callback in callbacks:
                callbacks.remove(callback)
    return unsubscribe


def _recorded(engine: Engine) -> None:
    with _LOCK:
        callbacks = tuple(_LISTENERS.get(engine, ()))
    for callback in callbacks:
        callback()
