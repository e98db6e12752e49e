"""Geneve networks: VNIs of ``vni_range`` (RFC 8926; 58 bytes over IPv4 with the option
room upstream reserves)."""

from __future__ import annotations

from neutrino.config import Settings
from neutrino.drivers.types.tunnel import Tunnel

OVERHEAD = 58


def driver(settings: Settings) -> Tunnel:
    return Tunnel("geneve", OVERHEAD, settings)
