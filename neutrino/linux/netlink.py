"""Netlink through pyroute2: namespaces, links, addresses, routes, FDB, neighbours.

Thin, typed and idempotent: every ``ensure_*`` observes first and changes only what
differs, returning whether it changed anything, so a second call is a no-op; every
``delete_*`` treats "already gone" as success and returns whether it removed
something.  The namespace is a parameter (None = the agent's own namespace).
Interface names come from ``neutrino.linux.names``; this module never invents one.

No state is kept between calls (no IPDB-style mirror of the kernel): each call
opens one rtnetlink socket in the namespace, does its work and closes it.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from pyroute2 import IPRoute
from pyroute2 import netns as _netns
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import ndmsg

from neutrino.linux.errors import Conflict, KernelError, NamespaceNotFound, NotSupported

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
    try:
        # flags=0: never create a namespace as a side effect of opening a socket in it.
        ipr = IPRoute(netns=netns, flags=0) if netns is not None else IPRoute()
    except FileNotFoundError as exc:
        raise NamespaceNotFound(f"network namespace {netns!r} does not exist") from exc
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
    vxlan = vlan_id = parent = None
    if kind == "vxlan" and data is not None:
        underlay = data.get("vxlan_link")
        vxlan = VxlanInfo(vni=data.get("vxlan_id"), port=data.get("vxlan_port"),
                          local=data.get("vxlan_local") or data.get("vxlan_local6"),
                          learning=bool(data.get("vxlan_learning")),
                          underlay=names.get(underlay) if underlay else None)
    if kind == "vlan" and data is not None:
        vlan_id = data.get("vlan_id")
        parent = names.get(msg.get("link"))
    master = msg.get("master")
    return Link(index=msg["index"], name=msg.get("ifname"), kind=kind,
                master=names.get(master) if master else None,
                up=bool(msg["flags"] & _IFF_UP), mtu=msg.get("mtu"), mac=msg.get("address"),
                alias=msg.get("ifalias"), vxlan=vxlan, vlan_id=vlan_id, parent=parent)


def _find(ipr: IPRoute, name: str) -> Link | None:
    return next((link for link in _links(ipr) if link.name == name), None)


def _index(ipr: IPRoute, name: str, what: str) -> int:
    found = ipr.link_lookup(ifname=name)
    if not found:
        raise KernelError(f"{what}: no link {name!r}", errno.ENODEV, "No such device")
    return found[0]


def list_links(netns: str | None = None) -> list[Link]:
    with _ipr(netns) as ipr:
        return _links(ipr)


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


def vlan_supported() -> bool:
    """Whether this kernel can make 802.1Q sub-interfaces: 8021q built in or loaded,
    or a module there to load.  Read-only: nothing is created to find out."""
    if os.path.exists("/proc/net/vlan") or os.path.exists("/sys/module/8021q"):
        return True
    modules = f"/lib/modules/{os.uname().release}/kernel/net/8021q"
    return os.path.isdir(modules) and any(n.startswith("8021q.ko") for n in os.listdir(modules))


def ensure_vlan(name: str, *, parent: str, vid: int, mtu: int | None = None, up: bool = True,
                netns: str | None = None) -> bool:
    """An 802.1Q sub-interface of ``parent``.  Raises NotSupported on kernels built
    without 8021q."""
    with _ipr(netns) as ipr:
        link = _find(ipr, name)
        changed = False
        if link is not None:
            _require_kind(link, "vlan")
            if (link.vlan_id, link.parent) != (vid, parent):
                ipr.link("del", index=link.index)
                link = None
        if link is None:
            _add_link(ipr, name, "vlan", link=_index(ipr, parent, f"adding {name!r}"),
                      vlan_id=vid)
            changed = True
        return _set(ipr, name, mtu=mtu, up=up) or changed


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
    with _ipr(netns) as ipr:
        return _fdb(ipr, _index(ipr, dev, "listing the FDB"))


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
