"""The bridge forwarding database of VXLAN devices: the flood list (head-end
replication) and single entries."""

from __future__ import annotations

import errno
from collections.abc import Iterable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux import rtnl
from neutrino.linux.errors import KernelError
from neutrino.linux.ipr import handle, index_of, ip_text, kernel_error

FLOOD_MAC = "00:00:00:00:00:00"


@dataclass(frozen=True)
class FdbEntry:
    mac: str
    dst: str | None  # the remote VTEP for VXLAN entries


def _fdb(ipr: IPRoute, index: int) -> list[FdbEntry]:
    return [FdbEntry(m.get("lladdr"), m.get("dst"))
            for m in ipr.fdb("dump", ifindex=index) if m["ifindex"] == index]


def list_fdb(dev: str, netns: str | None = None) -> list[FdbEntry]:
    # the kernel filters the dump (rtnl): the whole FDB holds a few entries per bridge port
    entries = rtnl.fdb(dev, netns)
    if entries is None:
        raise KernelError(f"listing the FDB: no link {dev!r}", errno.ENODEV, "No such device")
    return [FdbEntry(e.get("lladdr"), e.get("dst")) for e in entries]


def fdb_append(dev: str, mac: str, dst: str, netns: str | None = None) -> bool:
    """Add a (mac, remote) entry beside those already there, like `bridge fdb append`."""
    entry = FdbEntry(mac.lower(), ip_text(dst))
    with handle(netns) as ipr:
        index = index_of(ipr, dev, "appending to the FDB")
        if entry in _fdb(ipr, index):
            return False
        try:
            ipr.fdb("append", ifindex=index, lladdr=entry.mac, dst=entry.dst)
        except NetlinkError as exc:
            raise kernel_error(f"fdb append {entry.mac} dst {entry.dst} on {dev!r}", exc) \
                from exc
        return True


def fdb_delete(dev: str, mac: str, dst: str, netns: str | None = None) -> bool:
    entry = FdbEntry(mac.lower(), ip_text(dst))
    with handle(netns) as ipr:
        index = index_of(ipr, dev, "deleting from the FDB")
        if entry not in _fdb(ipr, index):
            return False
        try:
            ipr.fdb("del", ifindex=index, lladdr=entry.mac, dst=entry.dst)
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise kernel_error(f"fdb del {entry.mac} dst {entry.dst} on {dev!r}", exc) \
                from exc
        return True


def ensure_flood(dev: str, remotes: Iterable[str], netns: str | None = None) -> bool:
    """Make the all-zero (flood) entries of a VXLAN device exactly ``remotes``: BUM
    traffic is copied to each remote VTEP (head-end replication)."""
    want = {ip_text(r) for r in remotes}
    have = {e.dst for e in list_fdb(dev, netns) if e.mac == FLOOD_MAC and e.dst}
    changed = False
    for remote in sorted(want - have):
        changed = fdb_append(dev, FLOOD_MAC, remote, netns) or changed
    for remote in sorted(have - want):
        changed = fdb_delete(dev, FLOOD_MAC, remote, netns) or changed
    return changed

