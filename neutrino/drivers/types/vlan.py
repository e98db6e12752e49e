"""VLAN networks: an 802.1Q id of a physical network's range (``vlan_ranges``)."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.drivers.types import SegmentRequest, segments
from neutrino.drivers.types.segments import Segment

MAX_VLAN = 4094


class Vlan:
    network_type = "vlan"

    def __init__(self, settings: Settings) -> None:
        self.ranges = settings.vlan_ranges
        self.physical_mtu = settings.physical_mtu

    def validate(self, request: SegmentRequest) -> None:
        physnet, seg_id = request.physical_network, request.segmentation_id
        if physnet is None and seg_id is not None:
            raise errors.InvalidInput("segmentation_id requires physical_network for VLAN "
                                      "provider network.")
        if physnet is not None and physnet not in self.ranges:
            raise errors.InvalidInput(f"physical_network '{physnet}' unknown for VLAN "
                                      "provider network.")
        if seg_id is not None and not 1 <= seg_id <= MAX_VLAN:
            raise errors.InvalidInput(f"segmentation_id out of range (1 through {MAX_VLAN}).")

    def reserve(self, conn: Connection, network_id: str, request: SegmentRequest) -> Segment:
        physnet, seg_id = request.physical_network, request.segmentation_id
        if physnet is None:  # the first physical network with a range
            if not self.ranges:
                raise segments.no_network_available()
            physnet = next(iter(self.ranges))
        if seg_id is None:
            lo, hi = self.ranges[physnet]
            seg_id = segments.first_free(conn, self.network_type, physnet, lo, hi)
        elif segments.taken(conn, self.network_type, physnet, seg_id):
            raise errors.Conflict(f"Unable to create the network. The VLAN {seg_id} on "
                                  f"physical network {physnet} is in use.", type="VlanIdInUse")
        return segments.store(conn, network_id, Segment(self.network_type, physnet, seg_id))

    def release(self, conn: Connection, network_id: str, segment: Segment) -> None:
        segments.remove(conn, network_id)

    def max_mtu(self) -> int:
        return self.physical_mtu
