"""Device owners the L2 core knows by name (who a port belongs to)."""

from __future__ import annotations

DHCP_OWNER = "network:dhcp"
#: device owners whose ports the network itself owns (they never block a delete)
NETWORK_OWNED_PORTS = (DHCP_OWNER,)
#: a router's port too, though not named ``network:router*``
ROUTER_HA_INTERFACE = "network:ha_router_replicated_interface"
#: device owners whose ports their service (Nova, Ironic, Manila) removes, not members
SERVICE_MANAGED_OWNERS = ("compute:", "baremetal:", "manila:")


def is_router(device_owner: str) -> bool:
    return device_owner.startswith("network:router")
