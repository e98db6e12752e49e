"""What the overlay types share: a network is a 24-bit id of ``vni_range``, carried in
UDP between the hosts, with no physical network."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.drivers.types import SegmentRequest, segments
from neutrino.drivers.types.segments import Segment

MAX_VNI = 16777215


class Tunnel:
    """The type driver of one overlay (``vxlan``, ``geneve``): its name and the bytes its
    encapsulation adds to every frame (IPv4 outer header)."""

    def __init__(self, network_type: str, overhead: int, settings: Settings) -> None:
        self.network_type = network_type
        self.overhead = overhead
        self.vni_range = settings.vni_range
        self.physical_mtu = settings.physical_mtu

    def validate(self, request: SegmentRequest) -> None:
        if request.physical_network is not None:
            raise errors.InvalidInput(f"provider:physical_network specified for "
                                      f"{self.network_type} network.")
        seg_id = request.segmentation_id
        if seg_id is not None and not 1 <= seg_id <= MAX_VNI:
            raise errors.InvalidInput(f"{self.network_type} network segmentation_id {seg_id} "
                                      f"is out of range 1-{MAX_VNI}.")

    def reserve(self, conn: Connection, network_id: str, request: SegmentRequest) -> Segment:
        seg_id = request.segmentation_id
        if seg_id is None:
            seg_id = segments.first_free(conn, self.network_type, "", *self.vni_range)
        elif segments.taken(conn, self.network_type, "", seg_id):
            raise errors.Conflict(f"Unable to create the network. The tunnel ID {seg_id} is "
                                  f"in use.", type="TunnelIdInUse")
        return segments.store(conn, network_id, Segment(self.network_type, None, seg_id))

    def release(self, conn: Connection, network_id: str, segment: Segment) -> None:
        segments.remove(conn, network_id)

    def max_mtu(self) -> int:
        return self.physical_mtu - self.overhead
