"""The type drivers a server runs (``type_drivers``), by network type."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.drivers import loading
from neutrino.drivers.types import SegmentRequest, TypeDriver, flat, geneve, segments, vlan, vxlan
from neutrino.drivers.types.segments import Segment

#: Neutrino's own, by the name ``type_drivers`` gives them
BUILTIN: Mapping[str, loading.Factory] = {
    "flat": flat.Flat, "vlan": vlan.Vlan, "vxlan": vxlan.driver, "geneve": geneve.driver}


class TypeDrivers:
    def __init__(self, settings: Settings) -> None:
        self.drivers: dict[str, TypeDriver] = {}
        for name in settings.type_drivers:
            driver = loading.load("type", name, BUILTIN, settings)
            self.drivers[driver.network_type] = driver
        self.tenant_network_type = settings.tenant_network_type
        if self.tenant_network_type not in self.drivers:
            raise ValueError(f"tenant_network_type {self.tenant_network_type!r} has no type "
                             f"driver: type_drivers are {', '.join(self.drivers)}")

    def driver(self, network_type: str) -> TypeDriver:
        found = self.drivers.get(network_type)
        if found is None:
            raise errors.InvalidInput(f"network_type value '{network_type}' not supported.")
        return found

    def max_mtu(self, network_type: str) -> int:
        return self.driver(network_type).max_mtu()

    def allocate(self, conn: Connection, network_id: str, requested: Mapping) -> Segment:
        """The segment of a new network, from its ``provider:*`` attributes or the tenant
        type's free ones."""
        ntype = requested.get("provider:network_type")
        request = SegmentRequest(ntype or self.tenant_network_type,
                                 requested.get("provider:physical_network"),
                                 requested.get("provider:segmentation_id"))
        if ntype is None and (request.physical_network is not None
                              or request.segmentation_id is not None):
            raise errors.InvalidInput("network_type required.")
        driver = self.driver(request.network_type)
        driver.validate(request)
        return driver.reserve(conn, network_id, request)

    def release(self, conn: Connection, network_id: str) -> None:
        segment = segments.load(conn, [network_id]).get(network_id)
        if segment is not None:
            # a type no longer configured still gives its segments back
            driver = self.drivers.get(segment.network_type)
            if driver is not None:
                driver.release(conn, network_id, segment)
            else:
                segments.remove(conn, network_id)

    @staticmethod
    def load(conn: Connection, network_ids: Sequence[str]) -> dict[str, Segment]:
        return segments.load(conn, network_ids)
