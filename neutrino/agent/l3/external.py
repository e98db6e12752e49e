"""The host's end of the external network: the bridge ``br-ex`` and its address.

Devstack gives the host the public subnet's gateway address on ``br-ex``, so that the
host's shell reaches routers' gateways and floating IPs directly.  That is all this
does by default: the host does not forward for the external network and nothing is
NATed towards the machine's own uplink.  ``masquerade`` (the ``public_uplink_masquerade``
setting) changes exactly that, explicitly: forwarding on in the agent's namespace, and
one nftables table that masquerades the public subnet leaving through anything but the
bridge.
"""

from __future__ import annotations

import ipaddress

from neutrino import names
from neutrino.linux import addressing, devices, nft, sysctl

MASQUERADE_TABLE = names.PUBLIC_MASQUERADE_TABLE


def ensure_bridge(bridge: str, gateway_ip: str, cidr: str, *, netns: str | None = None,
                  mtu: int | None = None) -> bool:
    """The bridge, up, holding ``gateway_ip`` with the subnet's prefix (other addresses
    the operator gave it stay).  True if anything changed."""
    net = ipaddress.ip_network(cidr)
    address = f"{ipaddress.ip_address(gateway_ip)}/{net.prefixlen}"
    changed = devices.ensure_bridge(bridge, mtu=mtu, netns=netns)
    have = addressing.list_addresses(bridge, netns)
    if address not in have:
        addressing.ensure_addresses(bridge, [*have, address], netns=netns)
        changed = True
    return changed


def masquerade_chains(cidr: str, bridge: str) -> tuple[nft.Chain, ...]:
    rule = nft.Rule([nft.match(nft.payload("ip", "saddr"), cidr),
                     nft.match(nft.meta("oifname"), bridge, "!="), {"masquerade": None}],
                    f"public network {cidr} out to the uplink")
    return (nft.Chain("postrouting", (rule,), "nat", "postrouting", 100),)


def masquerade(cidr: str, bridge: str, *, netns: str | None = None) -> None:
    """Forward and masquerade the public subnet to the host's uplink (explicit opt-in)."""
    sysctl.ensure("net.ipv4.ip_forward", 1, netns=netns)
    nft.apply_table("ip", MASQUERADE_TABLE, masquerade_chains(cidr, bridge), netns=netns)
