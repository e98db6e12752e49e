"""L2: per network a bridge ``brq<net>``, its uplink (``vxlan-<vni>``, a flat physical
interface, or ``<physdev>.<vid>``), and the local ports' taps plugged into it.

Keys are bridge names.  The taps of instances are made by whoever plugs the
instance (a hypervisor, ``neutrino instance``); this reconciler plugs them into
the bridge once they appear, and unplugs what does not belong.  It deletes only
devices it recognises as its own by name (``brq…``, ``vxlan-…``, and the veth pairs
``<physdev>.<vid>``/``vw-<physdev>.<vid>`` of VLAN segments), never a physical
interface or a tap, and only the tc filters of its own VLAN segments.

A VLAN segment is a veth pair and two tc-BPF programs (``vlans.ensure_vlan``): the
kernel here has no 802.1Q sub-interfaces, and one way everywhere beats two.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from neutrino import names
from neutrino.agent.model import Network, Snapshot
from neutrino.agent.reconciler import Outcome, Pass, Reports, apply_plan
from neutrino.linux import bpf, devices, fdb, vlans
from neutrino.linux.devices import Link, VxlanInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class L2Config:
    netns: str | None = None
    vxlan_local_ip: str | None = None
    vxlan_remotes: tuple[str, ...] = ()
    interface_mappings: Mapping[str, str] = field(default_factory=dict)
    #: physical network -> an existing bridge its flat network uses (``public: br-ex``)
    bridge_mappings: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Uplink:
    kind: str  # "vxlan", "flat", "vlan"
    name: str
    vni: int | None = None
    local: str | None = None
    remotes: tuple[str, ...] = ()
    parent: str | None = None
    vid: int | None = None
    #: a VLAN segment's other veth end (``vw-<physdev>.<vid>``), beside ``name``
    wire: str | None = None


@dataclass(frozen=True)
class BridgeSpec:
    network_id: str
    bridge: str
    mtu: int
    uplink: Uplink | None
    #: port id -> tap name, for the local ports that should be plugged
    taps: Mapping[str, str] = field(default_factory=dict)
    #: a host bridge of ``bridge_mappings``: not ours, so only our taps are managed on
    #: it and it is never deleted
    mapped: bool = False


@dataclass(frozen=True)
class L2Observed:
    links: Mapping[str, Link] = field(default_factory=dict)
    #: VXLAN device -> its flood list (remote VTEPs)
    flood: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: physical device or VLAN wire end -> VLAN id -> the name of our tc filter for it
    vlans: Mapping[str, Mapping[int, str]] = field(default_factory=dict)

    def members(self, bridge: str) -> list[Link]:
        return sorted((lk for lk in self.links.values() if lk.master == bridge),
                      key=lambda lk: lk.name)

    def bridges(self) -> list[str]:
        return sorted(n for n, lk in self.links.items() if lk.kind == "bridge"
                      and (p := names.parse_link(n)) is not None and p.kind == names.Kind.BRIDGE)


# -- the plan's steps ----------------------------------------------------------------------

@dataclass(frozen=True)
class EnsureBridge:
    key: str
    mtu: int


@dataclass(frozen=True)
class EnsureVxlan:
    key: str
    name: str
    vni: int
    local: str | None
    mtu: int


@dataclass(frozen=True)
class EnsureFlood:
    key: str
    name: str
    remotes: tuple[str, ...]


@dataclass(frozen=True)
class EnsureVlan:
    """The veth pair ``name``/``wire`` and its two programs, ``name`` in the bridge."""

    key: str
    name: str
    wire: str
    parent: str
    vid: int
    mtu: int


@dataclass(frozen=True)
class DeleteVlan:
    """``parent``'s filter for ``vid`` (when known), then the pair of which ``name`` is
    an end."""

    key: str
    name: str
    parent: str | None
    vid: int


@dataclass(frozen=True)
class DeleteVlanFilter:
    """A filter of ours on a physical device whose VLAN nothing here wants."""

    key: str
    name: str  # the device
    vid: int


@dataclass(frozen=True)
class Plug:
    """Put a device into the bridge and bring it up (``mtu`` None: leave it)."""

    key: str
    name: str
    mtu: int | None


@dataclass(frozen=True)
class Unplug:
    key: str
    name: str


@dataclass(frozen=True)
class DeleteLink:
    key: str
    name: str


L2Op = (EnsureBridge | EnsureVxlan | EnsureFlood | EnsureVlan | Plug | Unplug | DeleteLink
        | DeleteVlan | DeleteVlanFilter)


# -- desired -------------------------------------------------------------------------------

def _uplink(net: Network, cfg: L2Config) -> Uplink | None:
    seg = net.segment
    if seg is None:
        return None
    if seg.network_type == "vxlan" and seg.segmentation_id:
        return Uplink("vxlan", names.vxlan(seg.segmentation_id), vni=seg.segmentation_id,
                      local=cfg.vxlan_local_ip or None, remotes=tuple(sorted(cfg.vxlan_remotes)))
    physdev = cfg.interface_mappings.get(seg.physical_network or "")
    if physdev is None:
        return None
    if seg.network_type == "flat":
        return Uplink("flat", physdev)
    if seg.network_type == "vlan" and seg.segmentation_id:
        return Uplink("vlan", names.vlan(physdev, seg.segmentation_id), parent=physdev,
                      vid=seg.segmentation_id,
                      wire=names.vlan_wire(physdev, seg.segmentation_id))
    return None


def mapped_bridge(net: Network, cfg: L2Config) -> str | None:
    """The host bridge a flat network uses by ``bridge_mappings``, if any."""
    seg = net.segment
    if seg is None or seg.network_type != "flat":
        return None
    return cfg.bridge_mappings.get(seg.physical_network or "")


def bridge_of(net: Network, cfg: L2Config) -> str:
    return mapped_bridge(net, cfg) or names.bridge(net.id)


def desired(snapshot: Snapshot, cfg: L2Config) -> dict[str, BridgeSpec]:
    """Bridge name -> what it should be, for every network with local ports."""
    out = {}
    for net in snapshot.networks.values():
        if not net.l2:
            continue
        taps = {p.id: names.tap(p.id) for p in snapshot.ports_on(net.id)
                if p.local and p.admin_state_up}
        mapped = mapped_bridge(net, cfg)
        if mapped is not None:
            out[mapped] = BridgeSpec(net.id, mapped, net.mtu, None, taps, mapped=True)
            continue
        bridge = names.bridge(net.id)
        out[bridge] = BridgeSpec(net.id, bridge, net.mtu, _uplink(net, cfg), taps)
    return out


# -- observed ------------------------------------------------------------------------------

def _is_wire(link: Link) -> bool:
    parsed = names.parse_link(link.name)
    return link.kind == "veth" and parsed is not None and parsed.kind == names.Kind.VLAN_WIRE


def observe(cfg: L2Config) -> L2Observed:
    # VLAN filters live on the mapped physical devices and our wire ends: read with the
    # links over the same socket
    physdevs = set(cfg.interface_mappings.values())
    view = vlans.vlan_view(lambda lk: lk.name in physdevs or _is_wire(lk), cfg.netns)
    links = {lk.name: lk for lk in view.links}
    flood = {}
    for name, lk in links.items():
        parsed = names.parse_link(name)
        if lk.kind == "vxlan" and parsed is not None and parsed.kind == names.Kind.VXLAN:
            flood[name] = frozenset(e.dst for e in fdb.list_fdb(name, cfg.netns)
                                    if e.mac == fdb.FLOOD_MAC and e.dst)
    return L2Observed(links, flood, view.filters)


# -- diff (pure) ---------------------------------------------------------------------------

def _ours_to_delete(link: Link) -> bool:
    """Uplinks we made: VXLAN devices (and 802.1Q sub-interfaces an older agent made on
    a kernel with 8021q) named as we name them."""
    parsed = names.parse_link(link.name)
    return parsed is not None and (
        (link.kind == "vxlan" and parsed.kind == names.Kind.VXLAN)
        or (link.kind == "vlan" and parsed.kind == names.Kind.VLAN))


def _vlan_end(link: Link) -> int | None:
    """The VLAN id when ``link`` is the bridge end of one of our VLAN pairs: a veth named
    ``<physdev>.<vid>`` whose peer is ``vw-<physdev>.<vid>``."""
    parsed = names.parse_link(link.name)
    peer = names.parse_link(link.peer) if link.peer else None
    if (link.kind == "veth" and parsed is not None and parsed.kind == names.Kind.VLAN
            and peer is not None and peer.kind == names.Kind.VLAN_WIRE
            and (peer.ident, peer.physdev) == (parsed.ident, parsed.physdev)):
        return int(parsed.ident)
    return None


def _physdevs(seen: L2Observed) -> list[str]:
    """The physical devices whose filters were looked at."""
    return sorted(d for d in seen.vlans if d in seen.links and not _is_wire(seen.links[d]))


def _physdev_of(name: str, vid: int, seen: L2Observed) -> str | None:
    """The physical device one of whose VLAN ``vid`` pair's ends is called ``name``
    (names may be cut and hashed: matched by making them again)."""
    return next((dev for dev in _physdevs(seen)
                 if name in (names.vlan(dev, vid), names.vlan_wire(dev, vid))), None)


def _remove(bridge: str, member: Link, seen: L2Observed) -> L2Op:
    """How a member that does not belong goes: ours deleted, anyone else's unplugged."""
    vid = _vlan_end(member)
    if vid is not None:
        return DeleteVlan(bridge, member.name, _physdev_of(member.name, vid, seen), vid)
    return DeleteLink(bridge, member.name) if _ours_to_delete(member) \
        else Unplug(bridge, member.name)


def _vxlan_ok(link: Link | None, up: Uplink, bridge: str, mtu: int) -> bool:
    want = VxlanInfo(vni=up.vni or 0, port=devices.VXLAN_PORT, local=up.local, learning=False,
                     underlay=None)
    return (link is not None and link.kind == "vxlan" and link.vxlan == want
            and link.mtu == mtu and link.master == bridge and link.up)


def _vlan_ok(up: Uplink, bridge: str, mtu: int, seen: L2Observed) -> bool:
    """The pair is whole, up, at the network's MTU, its bridge end plugged, and both
    filters run exactly the programs ensure_vlan would attach now (the ifindexes they
    redirect to are in their code, hence in their names)."""
    inner, wire = seen.links.get(up.name), seen.links.get(up.wire or "")
    lower = seen.links.get(up.parent or "")
    if inner is None or wire is None or lower is None or up.vid is None:
        return False
    return (inner.kind == wire.kind == "veth" and inner.peer == wire.name
            and wire.peer == inner.name and inner.mtu == wire.mtu == mtu and wire.up
            and _plugged(inner, bridge, None)
            and seen.vlans.get(wire.name, {}).get(up.vid)
            == bpf.vlan_push(up.vid, lower.index).filter_name
            and seen.vlans.get(lower.name, {}).get(up.vid)
            == bpf.vlan_pop(up.vid, wire.index).filter_name)


def _plugged(link: Link | None, bridge: str, mtu: int | None) -> bool:
    return (link is not None and link.master == bridge and link.up
            and (mtu is None or link.mtu == mtu))


def _build(spec: BridgeSpec, seen: L2Observed, claimed: Mapping[str, str],
           decided: frozenset[str] | None = None) -> list[L2Op]:
    key = spec.bridge
    plan: list[L2Op] = []
    br = seen.links.get(key)
    if br is None or br.kind != "bridge" or br.mtu != spec.mtu or not br.up:
        plan.append(EnsureBridge(key, spec.mtu))
    expected = set(spec.taps.values())
    up = spec.uplink
    if up is not None:
        expected.add(up.name)
        link = seen.links.get(up.name)
        if up.kind == "vxlan":
            if not _vxlan_ok(link, up, key, spec.mtu):
                plan.append(EnsureVxlan(key, up.name, up.vni or 0, up.local, spec.mtu))
            if link is None or seen.flood.get(up.name, frozenset()) != frozenset(up.remotes):
                plan.append(EnsureFlood(key, up.name, up.remotes))
        elif up.kind == "vlan":
            if not _vlan_ok(up, key, spec.mtu, seen):
                plan.append(EnsureVlan(key, up.name, up.wire or "", up.parent or "",
                                       up.vid or 0, spec.mtu))
        elif not _plugged(link, key, None):
            plan.append(Plug(key, up.name, None))  # a flat network's physical interface
    for tap in sorted(spec.taps.values()):
        link = seen.links.get(tap)
        if link is not None and not _plugged(link, key, spec.mtu) \
                and (decided is None or tap in decided or _plugged(link, key, None)):
            # fail closed: a tap the firewall has no decision for is not plugged (one
            # plugged already only gets its MTU; the bridge drops what it sends)
            plan.append(Plug(key, tap, spec.mtu))
    for member in seen.members(key):
        if member.name in expected or claimed.get(member.name, key) != key:
            continue  # ours, or another bridge's uplink: its own steps move it there
        if spec.mapped:
            # the host's bridge: whatever the operator plugged in stays; only taps go
            parsed = names.parse_link(member.name)
            if parsed is not None and parsed.kind == names.Kind.TAP:
                plan.append(Unplug(key, member.name))
            continue
        plan.append(_remove(key, member, seen))
    return plan


def _teardown(bridge: str, seen: L2Observed, claimed: Mapping[str, str]) -> list[L2Op]:
    """Reverse order: members out (ours deleted, others only unplugged), then the bridge.
    A member another bridge wants as its uplink is left for that bridge's steps."""
    plan = [_remove(bridge, m, seen) for m in seen.members(bridge) if m.name not in claimed]
    return [*plan, DeleteLink(bridge, bridge)]


def _sweep(want: Mapping[str, BridgeSpec], seen: L2Observed, plan: list[L2Op]) -> list[L2Op]:
    """Left by a crash between two steps, or by a network deleted while we were away:
    VXLAN devices and VLAN pairs of ours in no bridge, and filters of ours on physical
    devices for VLANs nothing here wants."""
    ups = [s.uplink for s in want.values() if s.uplink is not None]
    wanted_uplinks = {u.name for u in ups} | {u.wire for u in ups if u.wire}
    wanted_vlans = {(u.parent, u.vid) for u in ups if u.kind == "vlan"}
    going = {(op.parent, op.vid) for op in plan if isinstance(op, DeleteVlan)}
    out: list[L2Op] = []
    for name, link in sorted(seen.links.items()):
        if name in wanted_uplinks:
            continue
        if link.master is None and _ours_to_delete(link) and link.kind == "vxlan":
            out.append(DeleteLink(name, name))
        elif _is_wire(link):
            inner = seen.links.get(link.peer or "")
            if inner is not None and inner.master is not None:
                continue  # in a bridge: that bridge's steps take it
            vid = int(names.parse_link(name).ident)  # type: ignore[union-attr]
            parent = _physdev_of(name, vid, seen)
            out.append(DeleteVlan(name, name, parent, vid))
            going.add((parent, vid))
    for dev in _physdevs(seen):  # a wire end's filter goes with the device
        for vid in sorted(seen.vlans[dev]):
            if (dev, vid) not in wanted_vlans and (dev, vid) not in going:
                out.append(DeleteVlanFilter(dev, dev, vid))
    return out


def diff(want: Mapping[str, BridgeSpec], seen: L2Observed,
         keys: Iterable[str] | None = None,
         decided: frozenset[str] | None = None) -> list[L2Op]:
    """The steps that turn ``seen`` into ``want`` for ``keys`` (bridge names; None:
    every bridge either side knows, plus a sweep of strays: VXLAN devices, VLAN pairs
    and VLAN filters).  With ``decided`` (the taps the firewall's tables hold a decision
    for), no other tap is plugged."""
    full = keys is None
    todo = set(want) | set(seen.bridges()) if keys is None else set(keys)
    claimed = {s.uplink.name: b for b, s in want.items() if s.uplink is not None}
    plan: list[L2Op] = []
    for key in sorted(todo):
        if key in want:
            plan.extend(_build(want[key], seen, claimed, decided))
        elif key in seen.links and seen.links[key].kind == "bridge" \
                and (p := names.parse_link(key)) is not None and p.kind == names.Kind.BRIDGE:
            plan.extend(_teardown(key, seen, claimed))  # never a host bridge of bridge_mappings
    if full:
        plan.extend(_sweep(want, seen, plan))
    return plan


# -- apply ---------------------------------------------------------------------------------

class L2:
    """The bridges reconciler: after the firewall (a tap is plugged once its port has
    a filter decision), after L3 and DHCP (which make their ports' taps) and after the
    external bridge (a gateway's tap goes into ``br-ex``)."""

    name = "l2"
    after = ("firewall", "l3", "dhcp", "external")
    scoped = True

    def __init__(self, cfg: L2Config) -> None:
        self.cfg = cfg
        #: the ports whose taps are plugged and up (and may pass traffic)
        self.wired: set[str] = set()
        #: the agent namespace's links as the last pass left them (for the watchers)
        self.links: Mapping[str, Link] = {}

    def keys_of(self, network_ids: Iterable[str], snapshot: Snapshot | None = None) -> list[str]:
        nets = snapshot.networks if snapshot is not None else {}
        return [bridge_of(nets[n], self.cfg) if n in nets else names.bridge(n)
                for n in network_ids]

    def bridge_of(self, net: Network) -> str:
        return bridge_of(net, self.cfg)

    def host(self) -> L2Observed:
        """The links (and VLAN filters) as they are now."""
        return observe(self.cfg)

    # -- the Reconciler protocol --------------------------------------------------------

    def desired(self, p: Pass) -> dict[str, BridgeSpec]:
        return desired(p.snapshot, self.cfg)

    def observe(self, p: Pass, want: Mapping[str, BridgeSpec]) -> L2Observed:
        return observe(self.cfg)

    def _keys(self, p: Pass) -> list[str] | None:
        return None if p.networks is None else self.keys_of(p.networks, p.snapshot)

    def diff(self, p: Pass, want: Mapping[str, BridgeSpec], seen: L2Observed) -> list[L2Op]:
        fw = p.outcomes.get("firewall")
        decided = fw.facts.get("decided") if fw is not None else None
        return diff(want, seen, self._keys(p), decided)

    def apply(self, p: Pass, plan: Sequence[L2Op]) -> dict[str, Exception]:
        return apply_plan(plan, self._do, "l2")

    def report(self, p: Pass, want: Mapping[str, BridgeSpec], seen: L2Observed,
               plan: Sequence[L2Op], failed: Mapping[str, Exception],
               out: Reports) -> Outcome:
        """A port is up once its tap is plugged, up, and has a filter decision: a port
        the firewall could not filter stays DOWN (fail closed)."""
        snap = p.snapshot
        keys = self._keys(p)
        fw = p.outcomes.get("firewall")
        decided = fw.facts.get("decided") if fw is not None else None
        after = observe(self.cfg) if plan else seen
        self.links = after.links
        by_bridge = {self.bridge_of(n): n.id for n in snap.networks.values()}
        wired: set[str] = set()
        late: set[str] = set()
        for bridge, spec in want.items():
            if keys is not None and bridge not in keys:
                wired |= {pid for pid in spec.taps if pid in self.wired}
                continue
            ok = bridge not in failed
            for pid, plugged in self.wired_ports(spec, after).items():
                tap = spec.taps[pid]
                up = ok and plugged and (decided is None or tap in decided)
                port = snap.ports.get(pid)
                out.port(pid, "l2", up, port.revision_number if port else 0)
                if up:
                    wired.add(pid)
                elif ok and tap in after.links and (decided is None or tap in decided):
                    late.add(spec.network_id)  # the tap appeared during this pass
        self.wired = wired
        return Outcome(len(plan), frozenset(by_bridge.get(k, k) for k in failed),
                       frozenset(late), {"links": after.links})

    def _do(self, op: L2Op) -> None:
        ns = self.cfg.netns
        match op:
            case EnsureBridge(key, mtu):
                devices.ensure_bridge(key, mtu=mtu, netns=ns)
            case EnsureVxlan(key, name, vni, local, mtu):
                devices.ensure_vxlan(name, vni=vni, local=local, mtu=mtu, netns=ns)
                devices.set_link(name, master=key, up=True, netns=ns)
            case EnsureFlood(_, name, remotes):
                fdb.ensure_flood(name, remotes, netns=ns)
            case EnsureVlan(key, name, wire, parent, vid, mtu):
                vlans.ensure_vlan(name, wire=wire, parent=parent, vid=vid, mtu=mtu, netns=ns)
                devices.set_link(name, master=key, up=True, netns=ns)
            case DeleteVlan(_, name, parent, vid):
                vlans.delete_vlan(name, parent=parent, vid=vid, netns=ns)
            case DeleteVlanFilter(_, dev, vid):
                vlans.delete_vlan_filter(dev, vid, ns)
            case Plug(key, name, mtu):
                devices.set_link(name, master=key, mtu=mtu, up=True, netns=ns)
            case Unplug(_, name):
                devices.set_link(name, master=None, netns=ns)
            case DeleteLink(_, name):
                devices.delete_link(name, netns=ns)
            case _:
                raise AssertionError(f"unknown l2 step {op!r}")

    @staticmethod
    def wired_ports(spec: BridgeSpec, seen: L2Observed) -> dict[str, bool]:
        """Port id -> whether its tap is plugged into the bridge and up."""
        return {pid: _plugged(seen.links.get(tap), spec.bridge, None)
                for pid, tap in spec.taps.items()}
