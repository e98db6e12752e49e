"""VXLAN networks: VNIs of ``vni_range`` (RFC 7348; 50 bytes over IPv4)."""

from __future__ import annotations

from neutrino.config import Settings
from neutrino.drivers.types.tunnel import Tunnel

OVERHEAD = 50


def driver(settings: Settings) -> Tunnel:
    return Tunnel("vxlan", OVERHEAD, settings)
