"""Netlink through pyroute2: namespaces, links, addresses, routes, FDB, neighbours,
and VLAN segments (a veth pair and tc-BPF programs).

Thin, typed and idempotent: every ``ensure_*`` observes first and changes only what
differs, returning whether it changed anything, so a second call is a no-op; every
``delete_*`` treats "already gone" as success and returns whether it removed
something.  The namespace is a parameter (None = the agent's own namespace).
Interface names come from ``neutrino.names``; this module never invents one.

No state is kept between calls (no IPDB-style mirror of the kernel): each call
opens one rtnetlink socket in the namespace, does its work and closes it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from neutrino.linux import bpf, rtnl
from neutrino.linux.errors import (
    Conflict,
    KernelError,
    LinuxError,
    NamespaceNotFound,
    NotSupported,
)

NETNS_DIR = "/run/netns"
VXLAN_PORT = 4789
FLOOD_MAC = "00:00:00:00:00:00"
MAIN_TABLE = 254
# Routes we add carry proto "static"; connected routes are the kernel's ("kernel"),
# so pruning our routes can never remove one the kernel made.
RTPROT_STATIC = 4
_IFF_UP = 0x1
_AF = {4: 2, 6: 10}  # AF_INET, AF_INET6


# --- errors -----------------------------------------------------------------------------

def _kernel_error(what: str, exc: NetlinkError) -> KernelError:
    return KernelError(what, exc.code, os.strerror(exc.code) if exc.code else str(exc))


# --- namespaces -------------------------------------------------------------------------

def _ns_path(name: str) -> str:
    assert name and "/" not in name, f"bad namespace name {name!r}"
    return os.path.join(NETNS_DIR, name)


def namespace_exists(name: str) -> bool:
    # A namespace is a bind mount of nsfs; a plain file left by a crash is not one.
    return os.path.ismount(_ns_path(name))


def list_namespaces() -> list[str]:
    return sorted(n for n in _netns.listnetns(NETNS_DIR) if namespace_exists(n))


def ensure_namespace(name: str) -> bool:
    """Create the namespace (with ``lo`` up, as upstream does) unless it exists."""
    if namespace_exists(name):
        return False
    path = _ns_path(name)
    if os.path.exists(path):
        os.unlink(path)  # stale mount point from a crashed `ip netns add`
    try:
        _netns.create(name)
    except FileExistsError:
        return False  # someone created it between our check and now
    set_link("lo", up=True, netns=name)
    return True


def delete_namespace(name: str) -> bool:
    """Remove the namespace's name.  Links in it die with it once no process holds
    it, so stop its daemons first."""
    path = _ns_path(name)
    if not os.path.exists(path):
        return False
    try:
        _netns.remove(name)
    except FileNotFoundError:
        return False
    return True


@contextmanager
def _ipr(netns: str | None) -> Iterator[IPRoute]:
    """One rtnetlink socket in ``netns`` for the duration of one public call."""
    if netns is not None and not namespace_exists(netns):
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist")
    # opened with this thread inside the namespace: IPRoute(netns=) would fork the
    # process for it (tens of ms in an agent that shares it with the API server)
    with rtnl.entered(netns):
        ipr = IPRoute()
    try:
        yield ipr
    except NetlinkError as exc:
        # Callers see our errors only, never pyroute2's.
        raise _kernel_error(f"netlink request{f' in netns {netns}' if netns else ''}", exc) \
            from exc
    finally:
        ipr.close()


# --- links ------------------------------------------------------------------------------

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


def _links(ipr: IPRoute) -> list[Link]:
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


def _find(ipr: IPRoute, name: str) -> Link | None:
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


def _index(ipr: IPRoute, name: str, what: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise KernelError(f"{what}: no link {name!r}", errno.ENODEV, "No such device")
    return found[0]


def list_links(netns: str | None = None) -> list[Link]:
    # raw and lean (rtnl): pyroute2 decodes every attribute, ~0.3 ms a link
    msgs = rtnl.dump_links(netns)
    names = {m["index"]: m.get("ifname") for m in msgs}
    return [_link(m, names) for m in msgs]


def get_link(name: str, netns: str | None = None) -> Link | None:
    with _ipr(netns) as ipr:
        return _find(ipr, name)


def _add_link(ipr: IPRoute, name: str, kind: str, **attrs: Any) -> None:
    try:
        ipr.link("add", ifname=name, kind=kind, **attrs)
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            raise NotSupported(f"this kernel cannot create {kind} links "
                               f"(module not built): adding {name!r} failed") from exc
        raise _kernel_error(f"adding {kind} link {name!r}", exc) from exc


def _set(ipr: IPRoute, name: str, *, up: bool | None = None, mtu: int | None = None,
         mac: str | None = None, alias: str | None = None,
         master: str | _Unset | None = UNSET) -> bool:
    """Change what differs on one link; True if anything did."""
    link = _find(ipr, name)
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
        change["master"] = _index(ipr, master, f"enslaving {name!r}") if master else 0
    # Bring up last, after the MAC/MTU changes that some drivers only take while down.
    if up is not None and link.up != up:
        change["state"] = "up" if up else "down"
    if not change:
        return False
    try:
        ipr.link("set", index=link.index, **change)
    except NetlinkError as exc:
        raise _kernel_error(f"setting {sorted(change)} on link {name!r}", exc) from exc
    return True


def set_link(name: str, *, netns: str | None = None, up: bool | None = None,
             mtu: int | None = None, mac: str | None = None, alias: str | None = None,
             master: str | _Unset | None = UNSET) -> bool:
    """Set state/MTU/MAC/alias/master where they differ (``master=None`` detaches).
    Arguments left out are not touched."""
    with _ipr(netns) as ipr:
        return _set(ipr, name, up=up, mtu=mtu, mac=mac, alias=alias, master=master)


def delete_link(name: str, netns: str | None = None) -> bool:
    with _ipr(netns) as ipr:
        link = _find(ipr, name)
        if link is None:
            return False
        try:
            ipr.link("del", index=link.index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise _kernel_error(f"deleting link {name!r}", exc) from exc
        return True


def _require_kind(link: Link, kind: str) -> None:
    if link.kind != kind:
        raise Conflict(f"link {link.name!r} exists as {link.kind or 'a device'}, not {kind}")


def ensure_bridge(name: str, *, mtu: int | None = None, up: bool = True,
                  netns: str | None = None) -> bool:
    """A Linux bridge without STP and without forward delay: ports forward at once,
    like upstream's brq devices."""
    with _ipr(netns) as ipr:
        link = _find(ipr, name)
        changed = False
        if link is None:
            _add_link(ipr, name, "bridge", br_stp_state=0, br_forward_delay=0)
            changed = True
        else:
            _require_kind(link, "bridge")
        return _set(ipr, name, mtu=mtu, up=up) or changed


def ensure_veth(name: str, peer: str, *, netns: str | None = None,
                peer_netns: str | _Unset | None = UNSET, mtu: int | None = None,
                up: bool = True) -> bool:
    """A veth pair: ``name`` in ``netns``, ``peer`` in ``peer_netns`` (by default the
    same namespace; None is the agent's own), made in one request so a crash never
    leaves the peer stranded in the wrong namespace."""
    if peer_netns is UNSET:
        peer_netns = netns
    with _ipr(netns) as ipr, _ipr(peer_netns) as peer_ipr:
        local = _find(ipr, name)
        other = _find(peer_ipr, peer)
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
        changed = _set(ipr, name, mtu=mtu, up=up) or changed
        return _set(peer_ipr, peer, mtu=mtu, up=up) or changed


def _add_veth(ipr: IPRoute, name: str, peer: str, peer_netns: str | None) -> None:
    if peer_netns is None:
        _add_link(ipr, name, "veth", peer={"ifname": peer})
        return
    fd = os.open(_ns_path(peer_netns), os.O_RDONLY)
    try:
        _add_link(ipr, name, "veth", peer={"ifname": peer, "net_ns_fd": fd})
    finally:
        os.close(fd)


def ensure_vxlan(name: str, *, vni: int, local: str | None = None, port: int = VXLAN_PORT,
                 underlay: str | None = None, learning: bool = False, mtu: int | None = None,
                 up: bool = True, netns: str | None = None) -> bool:
    """A VXLAN device for head-end replication (flood list in the FDB, see
    ``ensure_flood``); learning off, as the agent programs every remote MAC.  The
    kernel cannot change VNI, port, local address or underlay in place, so a device
    that differs is deleted and made again."""
    want = VxlanInfo(vni=vni, port=port, local=_addr(local) if local else None,
                     learning=learning, underlay=underlay)
    with _ipr(netns) as ipr:
        link = _find(ipr, name)
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
                attrs["vxlan_link"] = _index(ipr, underlay, f"binding {name!r}")
            _add_link(ipr, name, "vxlan", **attrs)
            changed = True
        return _set(ipr, name, mtu=mtu, up=up) or changed


# --- VLAN segments: a veth pair and two tc-BPF programs -----------------------------------
#
# A VLAN segment needs no 802.1Q sub-interface (this kernel has none: no
# CONFIG_VLAN_8021Q, no bridge vlan_filtering).  Per VLAN ``vid`` on the physical device
# P: a veth pair, ``<P>.<vid>`` in the network's bridge and ``vw-<P>.<vid>`` beside it.
# On the ingress of ``vw-…`` a program tags what the bridge sends and redirects it out of
# P; on P's ingress one program per VLAN takes the frames tagged ``vid``, untags them and
# redirects them out of ``vw-…``, so they come into the bridge; everything else goes on
# through P as before (a flat network on P keeps working).  See ``neutrino.linux.bpf``.

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
    return _kernel_error(what, exc)


def _vlan_filters(ipr: IPRoute, index: int) -> dict[int, str]:
    """VLAN id -> filter name, for the ingress filters of ours on one device; anyone
    else's (another priority, handle or name) is not listed."""
    try:
        msgs = list(ipr.get_filters(index=index, parent=_TC_INGRESS))
    except NetlinkError as exc:
        if exc.code in (errno.EINVAL, errno.ENOENT, errno.EOPNOTSUPP):
            return {}  # no ingress qdisc: no filters
        raise _kernel_error("listing tc filters", exc) from exc
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
        raise _kernel_error(f"deleting the VLAN {vid} filter of {dev!r}", exc) from exc
    return True


def _no_ipv6_addresses(ipr: IPRoute, index: int) -> None:
    """No link-local address on a segment's veth ends: with one the kernel would send
    its own DAD, router solicitations and MLD into the bridge and onto the wire."""
    try:
        ipr.link("set", index=index, af_spec={"attrs": [["AF_INET6", {"attrs": [
            ["IFLA_INET6_ADDR_GEN_MODE", _IN6_ADDR_GEN_MODE_NONE]]}]]})
    except NetlinkError as exc:
        if exc.code not in (errno.EAFNOSUPPORT, errno.EOPNOTSUPP):
            raise _kernel_error("turning off IPv6 addresses", exc) from exc


def _delete_index(ipr: IPRoute, index: int, name: str) -> None:
    try:
        ipr.link("del", index=index)
    except NetlinkError as exc:
        if exc.code != errno.ENODEV:  # went with its peer already
            raise _kernel_error(f"deleting link {name!r}", exc) from exc


def ensure_vlan(name: str, *, wire: str, parent: str, vid: int, mtu: int | None = None,
                netns: str | None = None) -> bool:
    """VLAN ``vid`` on ``parent``, reachable through the veth end ``name`` (for the
    network's bridge; enslaving it is the caller's): the pair ``name``/``wire`` and the
    two programs, each replaced when it is not exactly the one wanted (e.g. after the
    pair or ``parent`` was made again with new ifindexes).  Raises NotSupported when
    this kernel cannot load or attach tc programs."""
    with _ipr(netns) as ipr:
        lower = _find(ipr, parent)
        if lower is None:
            raise KernelError(f"VLAN {vid}: no physical device {parent!r}", errno.ENODEV,
                              "No such device")
        inner, outer = _find(ipr, name), _find(ipr, wire)
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
            _add_link(ipr, name, "veth", peer={"ifname": wire})
            for end in (name, wire):
                _no_ipv6_addresses(ipr, _index(ipr, end, f"VLAN {vid}"))
            changed = True
        changed = _set(ipr, name, mtu=mtu, up=True) or changed
        changed = _set(ipr, wire, mtu=mtu, up=True) or changed
        wire_index = _index(ipr, wire, f"VLAN {vid}")
        # the way out first, so a frame let in is never answered into nothing
        changed = _ensure_filter(ipr, wire_index, wire, vid,
                                 bpf.vlan_push(vid, lower.index)) or changed
        return _ensure_filter(ipr, lower.index, parent, vid,
                              bpf.vlan_pop(vid, wire_index)) or changed


def delete_vlan(name: str, *, parent: str | None, vid: int, netns: str | None = None) -> bool:
    """Remove VLAN ``vid``'s filter from ``parent`` (first: it would redirect into a
    device about to go), then the veth pair of which ``name`` is either end."""
    with _ipr(netns) as ipr:
        removed = False
        if parent is not None:
            index = ipr.link_lookup(ifname=parent)
            if index:
                removed = _delete_filter(ipr, index[0], parent, vid)
        link = _find(ipr, name)
        if link is not None:
            _delete_index(ipr, link.index, name)
            removed = True
        return removed


def delete_vlan_filter(dev: str, vid: int, netns: str | None = None) -> bool:
    """Remove our filter for ``vid`` from ``dev``'s ingress (never anyone else's)."""
    with _ipr(netns) as ipr:
        index = ipr.link_lookup(ifname=dev)
        return bool(index) and _delete_filter(ipr, index[0], dev, vid)


def vlan_filters(dev: str, netns: str | None = None) -> dict[int, str]:
    """VLAN id -> the name of our tc filter for it on ``dev``'s ingress."""
    with _ipr(netns) as ipr:
        return _vlan_filters(ipr, _index(ipr, dev, "listing tc filters"))


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
    with _ipr(netns) as ipr:
        return VlanView(links, {lk.name: _vlan_filters(ipr, lk.index) for lk in picked})


# --- addresses --------------------------------------------------------------------------

def _addr(ip: str) -> str:
    return str(ipaddress.ip_address(ip))


def _iface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(cidr)


def _addresses(ipr: IPRoute, index: int) -> set[str]:
    return {f"{m.get('address')}/{m['prefixlen']}" for m in ipr.addr("dump", index=index)}


def list_addresses(name: str, netns: str | None = None) -> list[str]:
    """The link's addresses as ``ip/prefixlen``, IPv4 first."""
    with _ipr(netns) as ipr:
        found = _addresses(ipr, _index(ipr, name, "listing addresses"))
    return sorted(found, key=lambda a: (_iface(a).version, _iface(a)))


def ensure_addresses(name: str, addresses: Iterable[str], netns: str | None = None) -> bool:
    """Make the link's addresses exactly ``addresses`` (``ip/prefixlen``): add the
    missing, remove the extra.  IPv6 link-local addresses are the kernel's and are
    kept unless asked for."""
    want = {str(_iface(a)) for a in addresses}
    with _ipr(netns) as ipr:
        index = _index(ipr, name, "setting addresses")
        have = _addresses(ipr, index)
        extra = {a for a in have - want if not _iface(a).ip.is_link_local or _iface(a).version == 4}
        for cidr in sorted(extra):
            iface = _iface(cidr)
            try:
                ipr.addr("del", index=index, address=str(iface.ip),
                         prefixlen=iface.network.prefixlen)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:
                    raise _kernel_error(f"removing {cidr} from {name!r}", exc) from exc
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
                    raise _kernel_error(f"adding {cidr} to {name!r}", exc) from exc
        return bool(extra or want - have)


# --- routes -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """One route: ``dst`` as a CIDR (``default`` accepted), optional gateway and
    device.  ``proto`` is what the kernel reports and does not take part in equality."""

    dst: str
    gateway: str | None = None
    dev: str | None = None
    proto: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", _network(self.dst, self.gateway))
        if self.gateway is not None:
            object.__setattr__(self, "gateway", _addr(self.gateway))

    @property
    def version(self) -> int:
        return ipaddress.ip_network(self.dst).version

    @property
    def is_default(self) -> bool:
        return ipaddress.ip_network(self.dst).prefixlen == 0


def _network(dst: str, gateway: str | None) -> str:
    if dst == "default":
        return "::/0" if gateway and ":" in gateway else "0.0.0.0/0"
    return str(ipaddress.ip_network(dst, strict=False))


def _routes(ipr: IPRoute, family: int | None, table: int) -> list[Route]:
    names = {m["index"]: m.get("ifname") for m in ipr.link("dump")}
    found = []
    for version in (family,) if family else (4, 6):
        for msg in ipr.route("dump", family=_AF[version], table=table):
            if msg["type"] != 1:  # unicast only: not local, broadcast, multicast…
                continue
            dst = msg.get("dst") or ("::" if version == 6 else "0.0.0.0")
            oif = msg.get("oif")
            found.append(Route(f"{dst}/{msg['dst_len']}", gateway=msg.get("gateway"),
                               dev=names.get(oif) if oif else None, proto=msg["proto"]))
    return found


def list_routes(netns: str | None = None, *, family: int | None = None,
                table: int = MAIN_TABLE) -> list[Route]:
    """Unicast routes of one table (main by default), IPv4 and IPv6 unless ``family``."""
    with _ipr(netns) as ipr:
        return _routes(ipr, family, table)


def _replace_route(ipr: IPRoute, route: Route, table: int) -> None:
    attrs: dict[str, Any] = {"dst": route.dst, "table": table, "proto": RTPROT_STATIC,
                             "family": _AF[route.version]}
    if route.gateway:
        attrs["gateway"] = route.gateway
    if route.dev:
        attrs["oif"] = _index(ipr, route.dev, f"route to {route.dst}")
    try:
        ipr.route("replace", **attrs)
    except NetlinkError as exc:
        raise _kernel_error(f"route to {route.dst} via {route.gateway or route.dev}", exc) \
            from exc


def _delete_route(ipr: IPRoute, route: Route, table: int) -> bool:
    try:
        ipr.route("del", dst=route.dst, table=table, family=_AF[route.version])
    except NetlinkError as exc:
        if exc.code == errno.ESRCH:
            return False
        raise _kernel_error(f"deleting route to {route.dst}", exc) from exc
    return True


def ensure_default_route(gateway: str, *, dev: str | None = None, netns: str | None = None,
                         table: int = MAIN_TABLE) -> bool:
    """The default route of the gateway's family goes via ``gateway``."""
    want = Route("default", gateway=gateway, dev=dev)
    with _ipr(netns) as ipr:
        have = [r for r in _routes(ipr, want.version, table) if r.is_default]
        if have == [want] or (dev is None and len(have) == 1 and have[0].gateway == want.gateway):
            return False
        _replace_route(ipr, want, table)
        return True


def delete_default_route(*, family: int = 4, netns: str | None = None,
                         table: int = MAIN_TABLE) -> bool:
    with _ipr(netns) as ipr:
        removed = False
        for route in [r for r in _routes(ipr, family, table) if r.is_default]:
            removed = _delete_route(ipr, route, table) or removed
        return removed


def ensure_routes(routes: Iterable[Route], *, netns: str | None = None, prune: bool = True,
                  table: int = MAIN_TABLE) -> bool:
    """Add or fix each route (one route per destination).  With ``prune``, also remove
    the other non-default routes we added earlier (proto static) in the families
    given; the default route belongs to ``ensure_default_route`` and connected
    routes to the kernel, so neither is touched."""
    want = {r.dst: r for r in routes}
    assert not any(r.is_default for r in want.values()), "use ensure_default_route"
    with _ipr(netns) as ipr:
        have = _routes(ipr, None, table)
        by_dst = {r.dst: r for r in have}
        changed = False
        for dst, route in want.items():
            current = by_dst.get(dst)
            if current is None or current.gateway != route.gateway or \
                    (route.dev is not None and current.dev != route.dev):
                _replace_route(ipr, route, table)
                changed = True
        if prune:
            families = {r.version for r in want.values()} or {4, 6}
            for route in have:
                if (route.proto == RTPROT_STATIC and not route.is_default
                        and route.dst not in want and route.version in families):
                    changed = _delete_route(ipr, route, table) or changed
        return changed


# --- a namespace at once ------------------------------------------------------------------

@dataclass(frozen=True)
class NamespaceView:
    links: list[Link]
    #: link name -> its addresses (``ip/prefixlen``), IPv4 first
    addresses: dict[str, list[str]]
    routes: list[Route]  # the main table's unicast routes


def view(netns: str | None = None) -> NamespaceView:
    """Links, addresses and the main table's routes over one socket: a reconciler that
    looks at a whole namespace pays for one netlink socket, not one per link (in another
    namespace each costs a fork)."""
    with _ipr(netns) as ipr:
        links = _links(ipr)
        names = {lk.index: lk.name for lk in links}
        found: dict[str, set[str]] = {}
        for msg in ipr.addr("dump"):
            name = names.get(msg["index"])
            if name is not None:
                found.setdefault(name, set()).add(f"{msg.get('address')}/{msg['prefixlen']}")
        routes = _routes(ipr, None, MAIN_TABLE)
    addresses = {name: sorted(a, key=lambda x: (_iface(x).version, _iface(x)))
                 for name, a in found.items()}
    return NamespaceView(links, addresses, routes)


# --- bridge FDB (VXLAN flooding) -------------------------------------------------------

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
    entry = FdbEntry(mac.lower(), _addr(dst))
    with _ipr(netns) as ipr:
        index = _index(ipr, dev, "appending to the FDB")
        if entry in _fdb(ipr, index):
            return False
        try:
            ipr.fdb("append", ifindex=index, lladdr=entry.mac, dst=entry.dst)
        except NetlinkError as exc:
            raise _kernel_error(f"fdb append {entry.mac} dst {entry.dst} on {dev!r}", exc) \
                from exc
        return True


def fdb_delete(dev: str, mac: str, dst: str, netns: str | None = None) -> bool:
    entry = FdbEntry(mac.lower(), _addr(dst))
    with _ipr(netns) as ipr:
        index = _index(ipr, dev, "deleting from the FDB")
        if entry not in _fdb(ipr, index):
            return False
        try:
            ipr.fdb("del", ifindex=index, lladdr=entry.mac, dst=entry.dst)
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise _kernel_error(f"fdb del {entry.mac} dst {entry.dst} on {dev!r}", exc) \
                from exc
        return True


def ensure_flood(dev: str, remotes: Iterable[str], netns: str | None = None) -> bool:
    """Make the all-zero (flood) entries of a VXLAN device exactly ``remotes``: BUM
    traffic is copied to each remote VTEP (head-end replication)."""
    want = {_addr(r) for r in remotes}
    have = {e.dst for e in list_fdb(dev, netns) if e.mac == FLOOD_MAC and e.dst}
    changed = False
    for remote in sorted(want - have):
        changed = fdb_append(dev, FLOOD_MAC, remote, netns) or changed
    for remote in sorted(have - want):
        changed = fdb_delete(dev, FLOOD_MAC, remote, netns) or changed
    return changed


# --- neighbours -------------------------------------------------------------------------

@dataclass(frozen=True)
class Neighbour:
    ip: str
    mac: str | None
    state: str  # "permanent", "reachable", "stale", "failed"…


_NUD_NAMES = {v: k for k, v in ndmsg.states.items() if isinstance(v, int)}


def _neighbours(ipr: IPRoute, index: int) -> list[Neighbour]:
    found = []
    for msg in ipr.neigh("dump", ifindex=index):
        if msg["ifindex"] != index or msg["family"] not in _AF.values():
            continue
        found.append(Neighbour(msg.get("dst"), msg.get("lladdr"),
                               _NUD_NAMES.get(msg["state"], str(msg["state"]))))
    return found


def list_neighbours(dev: str, netns: str | None = None) -> list[Neighbour]:
    with _ipr(netns) as ipr:
        return _neighbours(ipr, _index(ipr, dev, "listing neighbours"))


def ensure_neighbour(dev: str, ip: str, mac: str, netns: str | None = None) -> bool:
    """A permanent neighbour entry (ARP/ND), e.g. pre-populated for a known port."""
    want = Neighbour(_addr(ip), mac.lower(), "permanent")
    with _ipr(netns) as ipr:
        index = _index(ipr, dev, "setting a neighbour")
        if want in _neighbours(ipr, index):
            return False
        try:
            ipr.neigh("replace", ifindex=index, dst=want.ip, lladdr=want.mac,
                      state=ndmsg.states["permanent"], family=_AF[_ip_version(want.ip)])
        except NetlinkError as exc:
            raise _kernel_error(f"neighbour {want.ip} lladdr {want.mac} on {dev!r}", exc) \
                from exc
        return True


def delete_neighbour(dev: str, ip: str, netns: str | None = None) -> bool:
    address = _addr(ip)
    with _ipr(netns) as ipr:
        index = _index(ipr, dev, "deleting a neighbour")
        if not any(n.ip == address for n in _neighbours(ipr, index)):
            return False
        try:
            ipr.neigh("del", ifindex=index, dst=address, family=_AF[_ip_version(address)])
        except NetlinkError as exc:
            if exc.code == errno.ENOENT:
                return False
            raise _kernel_error(f"deleting neighbour {address} on {dev!r}", exc) from exc
        return True


def _ip_version(ip: str) -> int:
    return ipaddress.ip_address(ip).version
