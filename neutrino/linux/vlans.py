"""VLAN segments: a veth pair and two tc-BPF programs, and the tc filters that hold them.

A VLAN segment needs no 802.1Q sub-interface (this kernel has none: no
CONFIG_VLAN_8021Q, no bridge vlan_filtering).  Per VLAN ``vid`` on the physical device
P: a veth pair, ``<P>.<vid>`` in the network's bridge and ``vw-<P>.<vid>`` beside it.
On the ingress of ``vw-…`` a program tags what the bridge sends and redirects it out of
P; on P's ingress one program per VLAN takes the frames tagged ``vid``, untags them and
redirects them out of ``vw-…``, so they come into the bridge; everything else goes on
through P as before (a flat network on P keeps working).  See ``neutrino.linux.bpf``.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux import bpf
from neutrino.linux.devices import Link, add_link, find, list_links, modify
from neutrino.linux.errors import Conflict, KernelError, LinuxError, NotSupported
from neutrino.linux.ipr import handle, index_of, kernel_error

_TC_H_INGRESS_ROOT = 0xFFFFFFF1  # where clsact and the ingress qdisc hang
_TC_INGRESS = 0xFFFFFFF2  # the parent of ingress filters, for clsact and ingress alike
_ETH_P_ALL = 0x0003
#: VLAN ``vid``'s filter has priority VLAN_PRIO_BASE + vid and handle vid: one per VLAN,
#: found, replaced and deleted alone
VLAN_PRIO_BASE = 0x8000
_IN6_ADDR_GEN_MODE_NONE = 1


def vlan_supported() -> bool:
    """Whether VLAN segments can be made here: tc programs can be loaded (bpf()).  Read
    only: a trivial program is loaded and closed to find out."""
    return bpf.unavailable() is None


def vlan_unsupported_reason() -> str | None:
    """Why VLAN segments cannot be made here (one line), or None when they can."""
    return bpf.unavailable()


def _tc_error(what: str, exc: NetlinkError) -> LinuxError:
    if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
        return NotSupported(f"{what}: this kernel has no clsact qdisc or cls_bpf "
                            f"(CONFIG_NET_SCH_INGRESS, CONFIG_NET_CLS_BPF)")
    return kernel_error(what, exc)


def _vlan_filters(ipr: IPRoute, index: int) -> dict[int, str]:
    """VLAN id -> filter name, for the ingress filters of ours on one device; anyone
    else's (another priority, handle or name) is not listed."""
    try:
        msgs = list(ipr.get_filters(index=index, parent=_TC_INGRESS))
    except NetlinkError as exc:
        if exc.code in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP):
            return {}  # no ingress qdisc: no filters
        raise kernel_error("listing tc filters", exc) from exc
    found = {}
    for msg in msgs:
        if msg.get_attr("TCA_KIND") != "bpf" or not msg["handle"]:
            continue  # handle 0: the chain's head, not a filter
        vid = (msg["info"] >> 16) - VLAN_PRIO_BASE
        options = msg.get_attr("TCA_OPTIONS")
        name = options.get_attr("TCA_BPF_NAME") if options is not None else None
        if 0 < vid < 4095 and msg["handle"] == vid and name \
                and name.startswith(f"{bpf.FILTER_PREFIX}{vid}-"):
            found[vid] = name
    return found


def _ensure_ingress_qdisc(ipr: IPRoute, index: int, dev: str) -> None:
    """A clsact qdisc unless the device has one (or an ``ingress`` qdisc, which takes
    the same ingress filters).  Never removed: someone else may use it too."""
    kinds = {m.get_attr("TCA_KIND") for m in ipr.tc("dump", index=index)
             if m["index"] == index and m["parent"] == _TC_H_INGRESS_ROOT}
    if kinds & {"clsact", "ingress"}:
        return
    try:
        ipr.tc("add", "clsact", index=index)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _tc_error(f"adding a clsact qdisc to {dev!r}", exc) from exc


def _ensure_filter(ipr: IPRoute, index: int, dev: str, vid: int, program: bpf.Program) -> bool:
    """Our filter for ``vid`` on the device's ingress runs exactly ``program``; a filter
    that differs is replaced in place (atomically: no frame misses both)."""
    if _vlan_filters(ipr, index).get(vid) == program.filter_name:
        return False
    _ensure_ingress_qdisc(ipr, index, dev)
    fd = bpf.load(program)
    try:
        ipr.tc("replace-filter", "bpf", index=index, handle=vid, parent=_TC_INGRESS,
               prio=VLAN_PRIO_BASE + vid, protocol=_ETH_P_ALL, fd=fd,
               name=program.filter_name, direct_action=True)
    except NetlinkError as exc:
        raise _tc_error(f"attaching {program.filter_name} to {dev!r}", exc) from exc
    finally:
        os.close(fd)  # the filter holds its own reference to the program
    return True


def _delete_filter(ipr: IPRoute, index: int, dev: str, vid: int) -> bool:
    if vid not in _vlan_filters(ipr, index):
        return False  # gone, or not ours
    try:
        ipr.tc("del-filter", "bpf", index=index, handle=vid, parent=_TC_INGRESS,
               prio=VLAN_PRIO_BASE + vid, protocol=_ETH_P_ALL)
    except NetlinkError as exc:
        if exc.code == errno.ENOENT:
            return False
        raise kernel_error(f"deleting the VLAN {vid} filter of {dev!r}", exc) from exc
    return True


def _no_ipv6_addresses(ipr: IPRoute, index: int) -> None:
    """No link-local address on a segment's veth ends: with one the kernel would send
    its own DAD, router solicitations and MLD into the bridge and onto the wire."""
    try:
        ipr.link("set", index=index, af_spec={"attrs": [["AF_INET6", {"attrs": [
            ["IFLA_INET6_ADDR_GEN_MODE", _IN6_ADDR_GEN_MODE_NONE]]}]]})
    except NetlinkError as exc:
        if exc.code not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP):
            raise kernel_error("turning off IPv6 addresses", exc) from exc


def _delete_index(ipr: IPRoute, index: int, name: str) -> None:
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:  # went with its peer already
            raise kernel_error(f"deleting link {name!r}", exc) from exc


def ensure_vlan(name: str, *, wire: str, parent: str, vid: int, mtu: int | None = None,
                netns: str | None = None) -> bool:
    """VLAN ``vid`` on ``parent``, reachable through the veth end ``name`` (for the
    network's bridge; enslaving it is the caller's): the pair ``name``/``wire`` and the
    two programs, each replaced when it is not exactly the one wanted (e.g. after the
    pair or ``parent`` was made again with new ifindexes).  Raises NotSupported when
    this kernel cannot load or attach tc programs."""
    with handle(netns) as ipr:
        lower = find(ipr, parent)
        if lower is None:
            raise KernelError(f"VLAN {vid}: no physical device {parent!r}", errno.ENODEV,
                              "No such device")
        inner, outer = find(ipr, name), find(ipr, wire)
        changed = False
        if not (inner is not None and outer is not None and inner.kind == outer.kind == "veth"
                and inner.peer == wire and outer.peer == name):
            for link in (inner, outer):
                if link is None:
                    continue
                # a "vlan" link by our name: the sub-interface an 802.1Q kernel had made
                if link.kind not in ("veth", "vlan"):
                    raise Conflict(f"link {link.name!r} exists as {link.kind or 'a device'}, "
                                   f"not veth")
                _delete_index(ipr, link.index, link.name)
            add_link(ipr, name, "veth", peer={"ifname": wire})
            for end in (name, wire):
                _no_ipv6_addresses(ipr, index_of(ipr, end, f"VLAN {vid}"))
            changed = True
        changed = modify(ipr, name, mtu=mtu, up=True) or changed
        changed = modify(ipr, wire, mtu=mtu, up=True) or changed
        wire_index = index_of(ipr, wire, f"VLAN {vid}")
        # the way out first, so a frame let in is never answered into nothing
        changed = _ensure_filter(ipr, wire_index, wire, vid,
                                 bpf.vlan_push(vid, lower.index)) or changed
        return _ensure_filter(ipr, lower.index, parent, vid,
                              bpf.vlan_pop(vid, wire_index)) or changed


def delete_vlan(name: str, *, parent: str | None, vid: int, netns: str | None = None) -> bool:
    """Remove VLAN ``vid``'s filter from ``parent`` (first: it would redirect into a
    device about to go), then the veth pair of which ``name`` is either end."""
    with handle(netns) as ipr:
        removed = False
        if parent is not None:
            index = ipr.link_lookup(ifname=parent)
            if index:
                removed = _delete_filter(ipr, index[0], parent, vid)
        link = find(ipr, name)
        if link is not None:
            _delete_index(ipr, link.index, name)
            removed = True
        return removed


def delete_vlan_filter(dev: str, vid: int, netns: str | None = None) -> bool:
    """Remove our filter for ``vid`` from ``dev``'s ingress (never anyone else's)."""
    with handle(netns) as ipr:
        index = ipr.link_lookup(ifname=dev)
        return bool(index) and _delete_filter(ipr, index[0], dev, vid)


def vlan_filters(dev: str, netns: str | None = None) -> dict[int, str]:
    """VLAN id -> the name of our tc filter for it on ``dev``'s ingress."""
    with handle(netns) as ipr:
        return _vlan_filters(ipr, index_of(ipr, dev, "listing tc filters"))


@dataclass(frozen=True)
class VlanView:
    links: list[Link]
    #: device -> VLAN id -> the name of our tc filter for it (devices asked for only)
    filters: dict[str, dict[int, str]]


def vlan_view(with_filters: Callable[[Link], bool], netns: str | None = None) -> VlanView:
    """The links, and the VLAN filters of those ``with_filters`` picks."""
    links = list_links(netns)  # lean (rtnl): pyroute2 decodes a dump at ~0.3 ms a link
    picked = [lk for lk in links if with_filters(lk)]
    if not picked:
        return VlanView(links, {})
    with handle(netns) as ipr:
        return VlanView(links, {lk.name: _vlan_filters(ipr, lk.index) for lk in picked})

