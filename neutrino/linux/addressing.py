"""Interface addresses (``ip/prefixlen``): listed, and made exactly what is wanted."""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Iterable
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux import rtnl
from neutrino.linux.errors import KernelError, NamespaceNotFound
from neutrino.linux.ipr import handle, index_of, kernel_error, namespace_exists


def _iface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(cidr)


def _addresses(ipr: IPRoute, index: int) -> set[str]:
    return {f"{m.get('address')}/{m['prefixlen']}" for m in ipr.addr("dump", index=index)}


def list_addresses(name: str, netns: str | None = None) -> list[str]:
    """The link's addresses as ``ip/prefixlen``, IPv4 first."""
    # raw (rtnl), the kernel filtering by device: pyroute2 decodes every address of the
    # namespace (~0.2 ms each) to pick one device's
    if netns is not None and not namespace_exists(netns):
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
    found = rtnl.addresses(name, netns)
    if found is None:
        raise KernelError(f"listing addresses: no link {name!r}", errno.ENODEV,
                          "No such device")
    return sorted_addresses({str(_iface(a)) for a in found})


def sorted_addresses(addresses: Iterable[str]) -> list[str]:
    """IPv4 first, each family in address order."""
    return sorted(addresses, key=lambda a: (_iface(a).version, _iface(a)))


def ensure_addresses(name: str, addresses: Iterable[str], netns: str | None = None) -> bool:
    """Make the link's addresses exactly ``addresses`` (``ip/prefixlen``): add the
    missing, remove the extra.  IPv6 link-local addresses are the kernel's and are
    kept unless asked for."""
    want = {str(_iface(a)) for a in addresses}
    with handle(netns) as ipr:
        index = index_of(ipr, name, "setting addresses")
        have = _addresses(ipr, index)
        extra = {a for a in have - want if not _iface(a).ip.is_link_local or _iface(a).version == 4}
        for cidr in sorted(extra):
            iface = _iface(cidr)
            try:
                ipr.addr("del", index=index, address=str(iface.ip),
                         prefixlen=iface.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:
                    raise kernel_error(f"removing {cidr} from {name!r}", exc) from exc
        for cidr in sorted(want - have):
            iface = _iface(cidr)
            attrs: dict[str, Any] = {}
            if iface.version == 4 and iface.network.prefixlen < 31:
                attrs["broadcast"] = str(iface.network.broadcast_address)
            try:
                ipr.addr("add", index=index, address=str(iface.ip),
                         prefixlen=iface.network.prefixlen, **attrs)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise kernel_error(f"adding {cidr} to {name!r}", exc) from exc
        return bool(extra or want - have)

