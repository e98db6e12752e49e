"""Neighbour entries (ARP/ND): listed, permanent ones set and removed."""

from __future__ import annotations

import errno
import ipaddress
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from neutrino.linux.ipr import AF, handle, index_of, ip_text, kernel_error


@dataclass(frozen=True)
class Neighbour:
    ip: str
    mac: str | None
    state: str  # "permanent", "reachable", "stale", "failed"…


_NUD_NAMES = {v: k for k, v in ndmsg.states.items() if isinstance(v, int)}


def _neighbours(ipr: IPRoute, index: int) -> list[Neighbour]:
    found = []
    for msg in ipr.neigh("dump", ifindex=index):
        if msg["ifindex"] != index or msg["family"] not in AF.values():
            continue
        found.append(Neighbour(msg.get("dst"), msg.get("lladdr"),
                               _NUD_NAMES.get(msg["state"], str(msg["state"]))))
    return found


def list_neighbours(dev: str, netns: str | None = None) -> list[Neighbour]:
    with handle(netns) as ipr:
        return _neighbours(ipr, index_of(ipr, dev, "listing neighbours"))


def ensure_neighbour(dev: str, ip: str, mac: str, netns: str | None = None) -> bool:
    """A permanent neighbour entry (ARP/ND), e.g. pre-populated for a known port."""
    want = Neighbour(ip_text(ip), mac.lower(), "permanent")
    with handle(netns) as ipr:
        index = index_of(ipr, dev, "setting a neighbour")
        if want in _neighbours(ipr, index):
            return False
        try:
            ipr.neigh("replace", ifindex=index, dst=want.ip, lladdr=want.mac,
                      state=ndmsg.states["permanent"], family=AF[_ip_version(want.ip)])
        except NetlinkError as exc:
            raise kernel_error(f"neighbour {want.ip} lladdr {want.mac} on {dev!r}", exc) \
                from exc
        return True


def delete_neighbour(dev: str, ip: str, netns: str | None = None) -> bool:
    address = ip_text(ip)
    with handle(netns) as ipr:
        index = index_of(ipr, dev, "deleting a neighbour")
        if not any(n.ip == address for n in _neighbours(ipr, index)):
            return False
        try:
            ipr.neigh("del", ifindex=index, dst=address, family=AF[_ip_version(address)])
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise kernel_error(f"deleting neighbour {address} on {dev!r}", exc) from exc
        return True


def _ip_version(ip: str) -> int:
    return ipaddress.ip_address(ip).version
