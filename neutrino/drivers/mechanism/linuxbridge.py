"""The linuxbridge mechanism driver: ports on Linux bridges, ``tap<port>`` in
``brq<network>`` (or a flat network's mapped bridge), vif_type ``bridge``.

It binds a port where a live Linux bridge agent can wire the network's segment.  It
keeps no backend of its own: its agents learn every change from the bus, so it does
not follow changes (its precommit and postcommit calls are never made).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neutrino import names
from neutrino.config import Settings
from neutrino.drivers.mechanism import (
    BINDING_FAILED,
    UNBOUND,
    Binding,
    BindingRequest,
    NetworkContext,
    PortContext,
)
from neutrino.drivers.types.segments import Segment

AGENT_TYPE = "Linux bridge agent"


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
    name = "linuxbridge"
    agent_type = AGENT_TYPE
    vif_type = "bridge"
    follows_changes = False

    def __init__(self, settings: Settings | None = None) -> None:
        pass  # nothing to configure: what a host can do is what its agents report

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

    def bind_port(self, request: BindingRequest) -> Binding | None:
        binding = self.bind(request.host, request.network_id, request.segment,
                            request.agents)
        return binding if binding.bound else None

    # changes: never called (follows_changes is False)

    def create_network_precommit(self, context: NetworkContext) -> None: pass

    def create_network_postcommit(self, context: NetworkContext) -> None: pass

    def update_network_precommit(self, context: NetworkContext) -> None: pass

    def update_network_postcommit(self, context: NetworkContext) -> None: pass

    def delete_network_precommit(self, context: NetworkContext) -> None: pass

    def delete_network_postcommit(self, context: NetworkContext) -> None: pass

    def create_port_precommit(self, context: PortContext) -> None: pass

    def create_port_postcommit(self, context: PortContext) -> None: pass

    def update_port_precommit(self, context: PortContext) -> None: pass

    def update_port_postcommit(self, context: PortContext) -> None: pass

    def delete_port_precommit(self, context: PortContext) -> None: pass

    def delete_port_postcommit(self, context: PortContext) -> None: pass
