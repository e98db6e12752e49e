"""IP address management: pure functions over addresses, no database.

The subnet service stores pools; the port service asks :func:`first_free`
for an address and relies on the ``ip_allocations`` primary key to make a
double allocation impossible even if two servers race.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from neutrino import errors

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address

SLAAC_MODES = ("slaac", "dhcpv6-stateless")


@dataclass(frozen=True, slots=True)
class Pool:
    start: IPAddr
    end: IPAddr

    def __contains__(self, ip: IPAddr) -> bool:
        return ip.version == self.start.version and self.start <= ip <= self.end

    def as_dict(self) -> dict[str, str]:
        return {"start": str(self.start), "end": str(self.end)}


def network(cidr: str) -> IPNetwork:
    return ipaddress.ip_network(cidr)


def default_gateway(net: IPNetwork) -> IPAddr | None:
    """IPv4: the first host.  IPv6: the subnet-router anycast address, as upstream."""
    if net.version == 6:
        return net.network_address
    if net.num_addresses < 2:
        return None
    return net.network_address + 1


def reserved(net: IPNetwork) -> set[IPAddr]:
    """Addresses never handed out: the network address, and IPv4's broadcast."""
    out: set[IPAddr] = {net.network_address}
    if net.version == 4 and net.prefixlen < 31:
        out.add(net.broadcast_address)
    return out


def default_pools(net: IPNetwork, gateway: IPAddr | None) -> list[Pool]:
    """Every usable host address, minus the gateway (which splits the range)."""
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    if net.prefixlen >= (31 if net.version == 4 else 127):
        first, last = net.network_address, net.broadcast_address
    if first > last:
        return []
    if gateway is None or not (first <= gateway <= last):
        return [Pool(first, last)]
    pools = []
    if gateway > first:
        pools.append(Pool(first, gateway - 1))
    if gateway < last:
        pools.append(Pool(gateway + 1, last))
    return pools


def validate_pools(net: IPNetwork, pools: Sequence[dict[str, str]]) -> list[Pool]:
    """Turn requested pools into :class:`Pool` values, refusing impossible ones.

    A pool must lie in the usable range: past the network address, and before the
    broadcast address for IPv4 subnets larger than /31 (upstream's bounds).
    """
    usable_first = net.network_address + 1
    usable_last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    if net.version == 4 and net.prefixlen >= 31:
        usable_first, usable_last = net.network_address, net.broadcast_address
    out: list[Pool] = []
    for p in pools:
        start, end = ipaddress.ip_address(p["start"]), ipaddress.ip_address(p["end"])
        if start.version != net.version or end.version != net.version:
            raise errors.BadRequest(
                f"The allocation pool {start}-{end} is not valid: it is not of IP version "
                f"{net.version}.", type="InvalidAllocationPool")
        if start > end:
            raise errors.BadRequest(
                f"The allocation pool {start}-{end} is not valid: its start is after its end.",
                type="InvalidAllocationPool")
        if start < usable_first or end > usable_last:
            raise errors.BadRequest(
                f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                type="OutOfBoundsAllocationPool")
        out.append(Pool(start, end))
    ordered = sorted(out, key=lambda p: p.start)
    for a, b in itertools.pairwise(ordered):
        if b.start <= a.end:
            listed = " ".join(f"{p.start}-{p.end}" for p in (a, b))
            raise errors.Conflict(
                f"Found overlapping allocation pools: {listed} for subnet {net}.",
                type="OverlappingAllocationPools")
    return ordered


def check_version(net: IPNetwork, value: str, attribute: str) -> None:
    """Refuse an address or network of the other IP version than the subnet's."""
    if ipaddress.ip_network(value, strict=False).version != net.version:
        raise errors.InvalidInput(f"{attribute} '{value}' does not match the ip_version "
                                  f"'{net.version}'.")


def check_gateway(net: IPNetwork, gateway: IPAddr | None, pools: Iterable[Pool]) -> None:
    if gateway is None:
        return
    check_version(net, str(gateway), "gateway_ip")
    if net.version == 4 and net.prefixlen < 31 and gateway in reserved(net):
        raise errors.InvalidInput("Gateway is not valid on subnet.")
    for pool in pools:
        if gateway in pool:
            raise errors.Conflict(
                f"Gateway ip {gateway} conflicts with allocation pool {pool.start}-{pool.end}.",
                type="GatewayConflictWithAllocationPools")


def first_free(pools: Sequence[Pool], taken: set[str]) -> str | None:
    """The lowest address of the pools that is not taken (pools are in order).

    Works on integers: a port create walks past every address already taken, and
    ``ipaddress`` objects made that walk the most expensive part of allocating.
    """
    if not pools:
        return None
    family = socket.AF_INET if pools[0].start.version == 4 else socket.AF_INET6
    used: set[int] = set()
    for text in taken:
        try:
            used.add(int.from_bytes(socket.inet_pton(family, text), "big"))
        except OSError:  # another family's address: never in these pools
            continue
    for pool in pools:
        ip, end = int(pool.start), int(pool.end)
        while ip <= end:
            if ip not in used:
                return str(type(pool.start)(ip))
            ip += 1
    return None


def eui64(cidr: str, mac: str) -> str:
    """The SLAAC address a host with ``mac`` forms in the /64 ``cidr`` (RFC 4291 App. A)."""
    net = ipaddress.IPv6Network(cidr)
    octets = [int(b, 16) for b in mac.split(":")]
    octets[0] ^= 0x02
    iid = [*octets[:3], 255, 254, *octets[3:]]
    suffix = int.from_bytes(bytes(iid), "big")
    return str(ipaddress.IPv6Address(int(net.network_address) | suffix))


def is_auto_address(subnet: dict) -> bool:
    """Whether ports get their address by SLAAC on this subnet (no pool allocation)."""
    return auto_address(subnet["ip_version"], subnet["ipv6_ra_mode"],
                        subnet["ipv6_address_mode"])


def auto_address(version: int, ra_mode: str | None, address_mode: str | None) -> bool:
    """SLAAC by the address mode or, when that is unset, by the RA mode (as upstream)."""
    if version != 6:
        return False
    return address_mode in SLAAC_MODES or (address_mode is None and ra_mode in SLAAC_MODES)


def overlaps(a: str, b: str) -> bool:
    na, nb = ipaddress.ip_network(a), ipaddress.ip_network(b)
    return na.version == nb.version and na.overlaps(nb)


def in_pools(ip: str, pools: Iterable[Pool]) -> bool:
    addr = ipaddress.ip_address(ip)
    return any(addr in p for p in pools)
