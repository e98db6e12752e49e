"""Type drivers: which segment a network gets (ML2's TypeDriver seam).

One driver per network type, each in its own module (:mod:`.flat`, :mod:`.vlan`,
:mod:`.vxlan`, :mod:`.geneve`), registered by that name in :mod:`.manager`, which loads
those ``type_drivers`` names and asks them.  A driver

- validates a provider request from its values alone (``validate``),
- reserves the requested segment, or allocates a free one where the request leaves
  it open (``reserve``), and releases it (``release``) — inside the network's
  transaction, through :mod:`.segments` (the unique key there is the allocation);
- says the largest MTU its networks can have (``max_mtu``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.engine import Connection

from neutrino.drivers.types.segments import Segment


@dataclass(frozen=True, slots=True)
class SegmentRequest:
    """What a network asks for (``provider:*``); None is "any" (a tenant network asks
    for nothing but its type)."""

    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


class TypeDriver(Protocol):
    #: the ``provider:network_type`` it serves (its name in ``type_drivers``)
    network_type: str

    def validate(self, request: SegmentRequest) -> None:
        """Refuse (``errors.InvalidInput``) a request this type cannot serve, from its
        values alone: no database."""
        ...

    def reserve(self, conn: Connection, network_id: str, request: SegmentRequest) -> Segment:
        """Take the segment of a new network inside its transaction: the one asked for
        if free (else a 409 in upstream's words), a free one where the request leaves the
        physical network or the id open."""
        ...

    def release(self, conn: Connection, network_id: str, segment: Segment) -> None:
        """Give the network's segment back (its network is being deleted)."""
        ...

    def max_mtu(self) -> int:
        """The largest MTU of this type's networks: the fabric's less what it adds."""
        ...
