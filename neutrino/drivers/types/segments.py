"""Type drivers: which segment (VNI, VLAN, flat physnet) a network gets.

Segments are allocated inside the network's transaction; the unique key on
``segments`` makes a double allocation impossible, and a lost race is retried
by :meth:`neutrino.db.engine.Database.write`.
"""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.db import tables as t

#: bytes an encapsulation adds to every frame (IPv4 outer header)
OVERHEAD = {"vxlan": 50, "geneve": 58, "vlan": 0, "flat": 0}
TYPES = tuple(OVERHEAD)
#: how many of the lowest free segment ids a new network picks from at random
FREE_CHOICES = 64


@dataclass(frozen=True, slots=True)
class Segment:
    network_type: str
    physical_network: str | None
    segmentation_id: int | None

    def as_attrs(self) -> dict:
        return {"provider:network_type": self.network_type,
                "provider:physical_network": self.physical_network,
                "provider:segmentation_id": self.segmentation_id}


class SegmentAllocator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def max_mtu(self, network_type: str) -> int:
        if network_type not in OVERHEAD:
            raise errors.InvalidInput(f"network_type value '{network_type}' not supported.")
        return self.settings.physical_mtu - OVERHEAD[network_type]

    def allocate(self, conn: Connection, network_id: str, requested: dict) -> Segment:
        """Reserve a segment for a new network, from ``provider:*`` or the tenant default."""
        ntype = requested.get("provider:network_type")
        physnet = requested.get("provider:physical_network")
        seg_id = requested.get("provider:segmentation_id")
        if ntype is None:
            if physnet is not None or seg_id is not None:
                raise errors.InvalidInput("network_type required.")
            ntype = self.settings.tenant_network_type
        if ntype not in TYPES:
            raise errors.InvalidInput(f"network_type value '{ntype}' not supported.")
        segment = self._validate(conn, ntype, physnet, seg_id)
        row = {"network_id": network_id, "network_type": segment.network_type,
               "physical_network": segment.physical_network or "",
               "segmentation_id": segment.segmentation_id or 0}
        conn.execute(t.segments.insert().values(row))
        return segment

    def _validate(self, conn: Connection, ntype: str, physnet: str | None,
                  seg_id: int | None) -> Segment:
        s = self.settings
        if ntype in ("vxlan", "geneve"):
            if physnet is not None:
                raise errors.InvalidInput(f"provider:physical_network specified for {ntype} "
                                          "network.")
            lo, hi = s.vni_range
            if seg_id is None:
                seg_id = self._first_free(conn, ntype, "", lo, hi)
            elif not 1 <= seg_id <= 16777215:
                raise errors.InvalidInput(f"{ntype} network segmentation_id {seg_id} is out of "
                                          "range 1-16777215.")
            else:
                self._check_free(conn, ntype, "", seg_id)
            return Segment(ntype, None, seg_id)
        if ntype == "vlan":
            if physnet is None:
                if seg_id is not None:
                    raise errors.InvalidInput("segmentation_id requires physical_network for "
                                              "VLAN provider network.")
                if not s.vlan_ranges:
                    raise errors.Conflict("Unable to create the network. No tenant network "
                                          "is available for allocation.",
                                          type="NoNetworkAvailable")
                physnet = next(iter(s.vlan_ranges))
            if physnet not in s.vlan_ranges:
                raise errors.InvalidInput(f"physical_network '{physnet}' unknown for VLAN "
                                          "provider network.")
            if seg_id is None:
                lo, hi = s.vlan_ranges[physnet]
                seg_id = self._first_free(conn, ntype, physnet, lo, hi)
            elif not 1 <= seg_id <= 4094:
                raise errors.InvalidInput("segmentation_id out of range (1 through 4094).")
            else:
                self._check_free(conn, ntype, physnet, seg_id)
            return Segment(ntype, physnet, seg_id)
        if ntype == "flat":  # the last of TYPES
            if seg_id is not None:
                raise errors.InvalidInput("segmentation_id prohibited for flat provider "
                                          "network.")
            if physnet is None:
                raise errors.InvalidInput("physical_network required for flat provider network.")
            if physnet not in s.flat_networks:
                raise errors.InvalidInput(f"physical_network '{physnet}' unknown for flat "
                                          "provider network.")
            self._check_free(conn, ntype, physnet, 0)
            return Segment(ntype, physnet, None)
        raise AssertionError(f"unhandled network type {ntype}")

    def _first_free(self, conn: Connection, ntype: str, physnet: str, lo: int, hi: int) -> int:
        used = set(conn.scalars(
            sa.select(t.segments.c.segmentation_id).where(
                t.segments.c.network_type == ntype,
                t.segments.c.physical_network == physnet,
                t.segments.c.segmentation_id.between(lo, hi))))
        # Concurrent creates all see the same lowest free id, and all but one would lose
        # on the unique key, again and again.  A random pick among the lowest free ones
        # lets them succeed side by side (a rare collision is retried).
        free = list(itertools.islice((c for c in range(lo, hi + 1) if c not in used),
                                     FREE_CHOICES))
        if free:
            return random.choice(free)
        raise errors.Conflict("Unable to create the network. No tenant network is available "
                              "for allocation.", type="NoNetworkAvailable")

    def _check_free(self, conn: Connection, ntype: str, physnet: str, seg_id: int) -> None:
        taken = conn.scalar(sa.select(t.segments.c.network_id).where(
            t.segments.c.network_type == ntype,
            t.segments.c.physical_network == physnet,
            t.segments.c.segmentation_id == seg_id))
        if taken is None:
            return
        # upstream's words and types, one per kind of segment
        if ntype == "flat":
            raise errors.Conflict(f"Unable to create the flat network. Physical network "
                                  f"{physnet} is in use.", type="FlatNetworkInUse")
        if ntype == "vlan":
            raise errors.Conflict(f"Unable to create the network. The VLAN {seg_id} on "
                                  f"physical network {physnet} is in use.", type="VlanIdInUse")
        raise errors.Conflict(f"Unable to create the network. The tunnel ID {seg_id} is in "
                              f"use.", type="TunnelIdInUse")

    @staticmethod
    def load(conn: Connection, network_ids: list[str]) -> dict[str, Segment]:
        rows = conn.execute(sa.select(t.segments).where(t.segments.c.network_id.in_(network_ids)))
        return {r.network_id: Segment(r.network_type, r.physical_network or None,
                                      r.segmentation_id or None) for r in rows}
