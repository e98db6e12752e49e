"""Flat networks: a whole physical network (one of ``flat_networks``), untagged."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.drivers.types import SegmentRequest, segments
from neutrino.drivers.types.segments import Segment


class Flat:
    network_type = "flat"

    def __init__(self, settings: Settings) -> None:
        self.physical_networks = settings.flat_networks
        self.physical_mtu = settings.physical_mtu

    def validate(self, request: SegmentRequest) -> None:
        if request.segmentation_id is not None:
            raise errors.InvalidInput("segmentation_id prohibited for flat provider network.")
        if request.physical_network is None:
            raise errors.InvalidInput("physical_network required for flat provider network.")
        if request.physical_network not in self.physical_networks:
            raise errors.InvalidInput(f"physical_network '{request.physical_network}' "
                                      f"unknown for flat provider network.")

    def reserve(self, conn: Connection, network_id: str, request: SegmentRequest) -> Segment:
        physnet = request.physical_network or ""
        if segments.taken(conn, self.network_type, physnet, 0):
            raise errors.Conflict(f"Unable to create the flat network. Physical network "
                                  f"{physnet} is in use.", type="FlatNetworkInUse")
        return segments.store(conn, network_id, Segment(self.network_type, physnet, None))

    def release(self, conn: Connection, network_id: str, segment: Segment) -> None:
        segments.remove(conn, network_id)

    def max_mtu(self) -> int:
        return self.physical_mtu
