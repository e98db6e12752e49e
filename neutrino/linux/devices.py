"""Links: listing and changing them, bridges, veth pairs and VXLAN devices.

Every ``ensure_*`` observes first and changes only what differs, returning whether it
changed anything; ``delete_link`` treats "already gone" as success.  Interface names
come from :mod:`neutrino.names`; this module never invents one.
"""

from __future__ import annotations

import errno
import os
from contextlib import suppress
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from neutrino.linux import rtnl
from neutrino.linux.errors import Conflict, KernelError, NotSupported
from neutrino.linux.ipr import handle, index_of, ip_text, kernel_error, ns_path

VXLAN_PORT = 4789
_IFF_UP = 0x1


@dataclass(frozen=True)
class VxlanInfo:
    vni: int
    port: int
    local: str | None
    learning: bool
    underlay: str | None  # name of the device the tunnel is bound to


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None  # "bridge", "veth", "vxlan", "vlan"…; None for physical and loopback
    master: str | None
    up: bool  # administratively up (IFF_UP), whatever the carrier
    mtu: int
    mac: str | None
    alias: str | None
    vxlan: VxlanInfo | None = None
    vlan_id: int | None = None
    parent: str | None = None  # the lower device of a vlan link
    peer: str | None = None  # the other end of a veth pair, when in the same namespace


class _Unset(Enum):
    UNSET = 0


UNSET = _Unset.UNSET


def dump_links(ipr: IPRoute) -> list[Link]:
    msgs = list(ipr.link("dump"))
    names = {m["index"]: m.get("ifname") for m in msgs}
    return [_link(m, names) for m in msgs]


def _link(msg: Any, names: dict[int, str]) -> Link:
    info = msg.get("linkinfo")
    kind = info.get("kind") if info is not None else None
    data = info.get("data") if info is not None else None
    vxlan = vlan_id = parent = peer = None
    if kind == "vxlan" and data is not None:
        underlay = data.get("vxlan_link")
        vxlan = VxlanInfo(vni=data.get("vxlan_id"), port=data.get("vxlan_port"),
                          local=data.get("vxlan_local") or data.get("vxlan_local6"),
                          learning=bool(data.get("vxlan_learning")),
                          underlay=names.get(underlay) if underlay else None)
    if kind == "vlan" and data is not None:
        vlan_id = data.get("vlan_id")
        parent = names.get(msg.get("link"))
    if kind == "veth" and msg.get("link") and msg.get("link_netnsid") is None:
        peer = names.get(msg.get("link"))
    master = msg.get("master")
    return Link(index=msg["index"], name=msg.get("ifname"), kind=kind,
                master=names.get(master) if master else None,
                up=bool(msg["flags"] & _IFF_UP), mtu=msg.get("mtu"), mac=msg.get("address"),
                alias=msg.get("ifalias"), vxlan=vxlan, vlan_id=vlan_id, parent=parent,
                peer=peer)


def find(ipr: IPRoute, name: str) -> Link | None:
    # that link (and the names it refers to) only: decoding a dump of every link costs
    # ~0.3 ms a link, per step of a plan
    try:
        msg = ipr.link("get", ifname=name)[0]
    except NetlinkError as exc:
        if exc.code == errno.ENODEV:
            return None
        raise
    info = msg.get("linkinfo")
    data = info.get("data") if info is not None else None
    refs = {msg.get("master"), msg.get("link"),
            data.get("vxlan_link") if data is not None and hasattr(data, "get") else None}
    names = {}
    for index in refs - {None, 0}:
        with suppress(NetlinkError):  # e.g. a veth peer's index in another namespace
            names[index] = ipr.link("get", index=index)[0].get("ifname")
    return _link(msg, names)


def list_links(netns: str | None = None) -> list[Link]:
    # raw and lean (rtnl): pyroute2 decodes every attribute, ~0.3 ms a link
    msgs = rtnl.dump_links(netns)
    names = {m["index"]: m.get("ifname") for m in msgs}
    return [_link(m, names) for m in msgs]


def get_link(name: str, netns: str | None = None) -> Link | None:
    with handle(netns) as ipr:
        return find(ipr, name)


def add_link(ipr: IPRoute, name: str, kind: str, **attrs: Any) -> None:
    try:
        ipr.link("add", ifname=name, kind=kind, **attrs)
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            raise NotSupported(f"this kernel cannot create {kind} links "
                               f"(module not built): adding {name!r} failed") from exc
        raise kernel_error(f"adding {kind} link {name!r}", exc) from exc


def modify(ipr: IPRoute, name: str, *, up: bool | None = None, mtu: int | None = None,
         mac: str | None = None, alias: str | None = None,
         master: str | _Unset | None = UNSET) -> bool:
    """Change what differs on one link; True if anything did."""
    link = find(ipr, name)
    if link is None:
        raise KernelError(f"setting link {name!r}", errno.ENODEV, "No such device")
    change: dict[str, Any] = {}
    if mtu is not None and link.mtu != mtu:
        change["mtu"] = mtu
    if mac is not None and (link.mac or "").lower() != mac.lower():
        change["address"] = mac.lower()
    if alias is not None and (link.alias or "") != alias:
        change["ifalias"] = alias
    if master is not UNSET and link.master != master:
        change["master"] = index_of(ipr, master, f"enslaving {name!r}") if master else 0
    # Bring up last, after the MAC/MTU changes that some drivers only take while down.
    if up is not None and link.up != up:
        change["state"] = "up" if up else "down"
    if not change:
        return False
    try:
        ipr.link("set", index=link.index, **change)
    except NetlinkError as exc:
        raise kernel_error(f"setting {sorted(change)} on link {name!r}", exc) from exc
    return True


def set_link(name: str, *, netns: str | None = None, up: bool | None = None,
             mtu: int | None = None, mac: str | None = None, alias: str | None = None,
             master: str | _Unset | None = UNSET) -> bool:
    """Set state/MTU/MAC/alias/master where they differ (``master=None`` detaches).
    Arguments left out are not touched."""
    with handle(netns) as ipr:
        return modify(ipr, name, up=up, mtu=mtu, mac=mac, alias=alias, master=master)


def delete_link(name: str, netns: str | None = None) -> bool:
    with handle(netns) as ipr:
        link = find(ipr, name)
        if link is None:
            return False
        try:
            ipr.link("del", index=link.index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise kernel_error(f"deleting link {name!r}", exc) from exc
        return True


def _require_kind(link: Link, kind: str) -> None:
    if link.kind != kind:
        raise Conflict(f"link {link.name!r} exists as {link.kind or 'a device'}, not {kind}")


def ensure_bridge(name: str, *, mtu: int | None = None, up: bool = True,
                  netns: str | None = None) -> bool:
    """A Linux bridge without STP and without forward delay: ports forward at once,
    like upstream's brq devices."""
    with handle(netns) as ipr:
        link = find(ipr, name)
        changed = False
        if link is None:
            add_link(ipr, name, "bridge", br_stp_state=0, br_forward_delay=0)
            changed = True
        else:
            _require_kind(link, "bridge")
        return modify(ipr, name, mtu=mtu, up=up) or changed


def ensure_veth(name: str, peer: str, *, netns: str | None = None,
                peer_netns: str | _Unset | None = UNSET, mtu: int | None = None,
                up: bool = True) -> bool:
    """A veth pair: ``name`` in ``netns``, ``peer`` in ``peer_netns`` (by default the
    same namespace; None is the agent's own), made in one request so a crash never
    leaves the peer stranded in the wrong namespace."""
    if peer_netns is UNSET:
        peer_netns = netns
    with handle(netns) as ipr, handle(peer_netns) as peer_ipr:
        local = find(ipr, name)
        other = find(peer_ipr, peer)
        changed = False
        if local is not None:
            _require_kind(local, "veth")
            if other is None:
                # Half a pair (the peer was moved or renamed): rebuild it.
                ipr.link("del", index=local.index)
                local = None
        if local is None:
            if other is not None:
                _require_kind(other, "veth")
                peer_ipr.link("del", index=other.index)  # the stale half of an old pair
            _add_veth(ipr, name, peer, peer_netns if peer_netns != netns else None)
            changed = True
        changed = modify(ipr, name, mtu=mtu, up=up) or changed
        return modify(peer_ipr, peer, mtu=mtu, up=up) or changed


def _add_veth(ipr: IPRoute, name: str, peer: str, peer_netns: str | None) -> None:
    if peer_netns is None:
        add_link(ipr, name, "veth", peer={"ifname": peer})
        return
    fd = os.open(ns_path(peer_netns), os.O_RDONLY)
    try:
        add_link(ipr, name, "veth", peer={"ifname": peer, "net_ns_fd": fd})
    finally:
        os.close(fd)


def ensure_vxlan(name: str, *, vni: int, local: str | None = None, port: int = VXLAN_PORT,
                 underlay: str | None = None, learning: bool = False, mtu: int | None = None,
                 up: bool = True, netns: str | None = None) -> bool:
    """A VXLAN device for head-end replication (flood list in the FDB, see
    ``ensure_flood``); learning off, as the agent programs every remote MAC.  The
    kernel cannot change VNI, port, local address or underlay in place, so a device
    that differs is deleted and made again."""
    want = VxlanInfo(vni=vni, port=port, local=ip_text(local) if local else None,
                     learning=learning, underlay=underlay)
    with handle(netns) as ipr:
        link = find(ipr, name)
        changed = False
        if link is not None:
            _require_kind(link, "vxlan")
            if link.vxlan != want:
                ipr.link("del", index=link.index)
                link = None
        if link is None:
            attrs: dict[str, Any] = {"vxlan_id": vni, "vxlan_port": port,
                                     "vxlan_learning": int(learning)}
            if local:
                attrs["vxlan_local6" if ":" in want.local else "vxlan_local"] = want.local
            if underlay:
                attrs["vxlan_link"] = index_of(ipr, underlay, f"binding {name!r}")
            add_link(ipr, name, "vxlan", **attrs)
            changed = True
        return modify(ipr, name, mtu=mtu, up=up) or changed

