"""Mechanism drivers: may this port be bound on that host, and how is it plugged.

A driver is pure: it sees the host, the network's segment and the configurations
the host's live agents reported, and answers a :class:`Binding`.  The services
load those facts inside the port's transaction (ML2's precommit seam).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neutrino import names
from neutrino.drivers.types.segments import Segment

UNBOUND = "unbound"
BINDING_FAILED = "binding_failed"


@dataclass(frozen=True)
class Binding:
    vif_type: str
    vif_details: dict[str, Any] = field(default_factory=dict)

    @property
    def bound(self) -> bool:
        return self.vif_type not in (UNBOUND, BINDING_FAILED)


def can_realise(segment: Segment, configurations: Mapping[str, Any]) -> bool:
    """Whether an agent that reported ``configurations`` can wire ``segment``
    (upstream's check_segment_for_agent, plus what this host's kernel can do)."""
    types = configurations.get("network_types")
    if types is not None and segment.network_type not in types:
        return False  # e.g. vlan where the kernel cannot load tc-BPF programs
    if segment.network_type in ("vxlan", "geneve"):
        return segment.network_type in configurations.get("tunnel_types", ())
    if segment.network_type in ("flat", "vlan"):
        # a flat network may also use an existing bridge of its physical network
        return (segment.physical_network in configurations.get("interface_mappings", {})
                or (segment.network_type == "flat" and segment.physical_network
                    in (configurations.get("bridge_mappings") or {})))
    return False


class LinuxBridge:
    """Ports on Linux bridges: ``tap<port>`` in ``brq<network>`` (vif_type "bridge")."""

    name = "linuxbridge"
    agent_type = "Linux bridge agent"
    vif_type = "bridge"

    def bind(self, host: str, network_id: str, segment: Segment | None,
             agents: Sequence[Mapping[str, Any]]) -> Binding:
        """``agents``: the configurations of the live agents of our type on ``host``."""
        if not host:
            return Binding(UNBOUND)
        if segment is None or not any(can_realise(segment, a) for a in agents):
            return Binding(BINDING_FAILED)
        mapped = next((a["bridge_mappings"][segment.physical_network] for a in agents
                       if segment.network_type == "flat"
                       and segment.physical_network in (a.get("bridge_mappings") or {})),
                      None)
        return Binding(self.vif_type, {"port_filter": True, "connectivity": "l2",
                                       "bridge_name": mapped or names.bridge(network_id)})
