"""The segments table, as the type drivers share it.

A network has one segment: its type, physical network and segmentation id.  The
unique key on ``(network_type, physical_network, segmentation_id)`` is the
allocation: a segment stored is a segment taken, so a double allocation is
impossible and a lost race surfaces as an IntegrityError that
:meth:`neutrino.db.engine.Database.write` retries.  A segment without a physical
network or id stores ``''``/``0``, so the key holds on every backend.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.db import tables as t

#: how many of the lowest free segment ids a new network picks from at random
FREE_CHOICES = 64
S = t.segments


@dataclass(frozen=True, slots=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None

    def as_attrs(self) -> dict:
        return {"provider:network_type": self.network_type,
                "provider:physical_network": self.physical_network,
                "provider:segmentation_id": self.segmentation_id}


def load(conn: Connection, network_ids: Sequence[str]) -> dict[str, Segment]:
    """The segment of each of these networks (that has one)."""
    rows = conn.execute(sa.select(S).where(S.c.network_id.in_(list(network_ids))))
    return {r.network_id: Segment(r.network_type, r.physical_network or None,
                                  r.segmentation_id or None) for r in rows}


def store(conn: Connection, network_id: str, segment: Segment) -> Segment:
    conn.execute(S.insert().values(network_id=network_id, network_type=segment.network_type,
                                   physical_network=segment.physical_network or "",
                                   segmentation_id=segment.segmentation_id or 0))
    return segment


def remove(conn: Connection, network_id: str) -> None:
    conn.execute(S.delete().where(S.c.network_id == network_id))


def taken(conn: Connection, network_type: str, physical_network: str, seg_id: int) -> bool:
    return conn.scalar(sa.select(S.c.network_id).where(
        S.c.network_type == network_type, S.c.physical_network == physical_network,
        S.c.segmentation_id == seg_id)) is not None


def first_free(conn: Connection, network_type: str, physical_network: str, lo: int,
               hi: int) -> int:
    """A free id of ``lo..hi``: one of the lowest free ones, at random."""
    used = set(conn.scalars(sa.select(S.c.segmentation_id).where(
        S.c.network_type == network_type, S.c.physical_network == physical_network,
        S.c.segmentation_id.between(lo, hi))))
    # Concurrent creates all see the same lowest free id, and all but one would lose
    # on the unique key, again and again.  A random pick among the lowest free ones
    # lets them succeed side by side (a rare collision is retried).
    free = list(itertools.islice((c for c in range(lo, hi + 1) if c not in used),
                                 FREE_CHOICES))
    if free:
        return random.choice(free)
    raise no_network_available()


def no_network_available() -> errors.Conflict:
    return errors.Conflict("Unable to create the network. No tenant network is available "
                           "for allocation.", type="NoNetworkAvailable")
