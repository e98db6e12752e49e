"""The L2 reconciler's pure parts: desired state from snapshots, and diff()."""

from __future__ import annotations

import dataclasses
import itertools
import random

from neutrino import names
from neutrino.agent.l2 import bridges as l2
from neutrino.agent.l2.bridges import (
    BridgeSpec,
    DeleteLink,
    DeleteVlan,
    DeleteVlanFilter,
    EnsureBridge,
    EnsureFlood,
    EnsureVlan,
    EnsureVxlan,
    L2Config,
    L2Observed,
    Plug,
    Unplug,
)
from neutrino.agent.model import Network, Port, Segment, Snapshot
from neutrino.linux import bpf
from neutrino.linux.devices import Link, VxlanInfo

NET_A = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
NET_B = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
P1 = "11111111-1111-4111-8111-111111111111"
P2 = "22222222-2222-4222-8222-222222222222"
P3 = "33333333-3333-4333-8333-333333333333"
CFG = L2Config(interface_mappings={"physnet1": "eth1"})


def _snapshot(*, nets: tuple[str, ...] = (NET_A, NET_B), ports: dict[str, str] | None = None,
              vni: dict[str, int] | None = None) -> Snapshot:
    ports = {P1: NET_A, P2: NET_A, P3: NET_B} if ports is None else ports
    vni = vni or {NET_A: 101, NET_B: 102}
    networks = {n: Network(n, 1450, Segment("vxlan", None, vni[n]), l2=True) for n in nets}
    return Snapshot(1, networks, {p: Port(p, n, "fa:16:3e:00:00:0" + p[0], local=True)
                                  for p, n in ports.items() if n in networks})


_index = itertools.count(10)


def _link(name: str, kind: str | None, master: str | None = None, mtu: int = 1450,
          up: bool = True, vxlan: VxlanInfo | None = None, peer: str | None = None) -> Link:
    return Link(next(_index), name, kind, master, up, mtu, None, None, vxlan, peer=peer)


def _converged(want: dict[str, BridgeSpec], physdevs: tuple[str, ...] = ()) -> L2Observed:
    """The kernel as apply() would leave it for ``want`` (``physdevs``: the mapped
    physical devices, whose filters observe() reads)."""
    links: dict[str, Link] = {p: _link(p, None, mtu=1500) for p in physdevs}
    flood: dict[str, frozenset[str]] = {}
    vlans: dict[str, dict[int, str]] = {p: {} for p in physdevs}
    for spec in want.values():
        links[spec.bridge] = _link(spec.bridge, "bridge", mtu=spec.mtu)
        up = spec.uplink
        if up is not None and up.kind == "vlan":
            assert up.wire and up.parent and up.vid
            links[up.name] = _link(up.name, "veth", spec.bridge, spec.mtu, peer=up.wire)
            wire = links[up.wire] = _link(up.wire, "veth", None, spec.mtu, peer=up.name)
            vlans[up.wire] = {up.vid: bpf.vlan_push(up.vid, links[up.parent].index).filter_name}
            vlans[up.parent][up.vid] = bpf.vlan_pop(up.vid, wire.index).filter_name
        elif up is not None and up.kind == "vxlan":
            links[up.name] = _link(up.name, "vxlan", spec.bridge,
                                   vxlan=VxlanInfo(up.vni, 4789, None, False, None))
            flood[up.name] = frozenset(up.remotes)
        elif up is not None:
            links[up.name] = _link(up.name, None, spec.bridge, mtu=1500)
        for tap in spec.taps.values():
            links[tap] = _link(tap, "veth", spec.bridge, spec.mtu)
    return L2Observed(links, flood, vlans)


def test_from_empty_builds_bridges_uplinks_in_dependency_order() -> None:
    want = l2.desired(_snapshot(), CFG)
    seen = L2Observed({names.tap(P1): _link(names.tap(P1), "veth", mtu=1500)})
    plan = l2.diff(want, seen)
    br_a = names.bridge(NET_A)
    steps = [op for op in plan if op.key == br_a]
    assert steps == [EnsureBridge(br_a, 1450), EnsureVxlan(br_a, "vxlan-101", 101, None, 1450),
                     EnsureFlood(br_a, "vxlan-101", ()), Plug(br_a, names.tap(P1), 1450)]
    # taps that do not exist yet are left for whoever plugs the instance
    assert not any(isinstance(op, Plug) and op.name == names.tap(P2) for op in plan)


def test_converged_is_a_fixed_point() -> None:
    want = l2.desired(_snapshot(), CFG)
    assert l2.diff(want, _converged(want)) == []
    assert l2.diff(want, _converged(want), keys=[names.bridge(NET_A)]) == []


def test_input_order_does_not_matter() -> None:
    snap = _snapshot()
    want = l2.desired(snap, CFG)
    seen = _converged(l2.desired(_snapshot(ports={P1: NET_A}), CFG))
    expected = l2.diff(want, seen)
    for _ in range(5):
        items = list(want.items())
        random.shuffle(items)
        links = list(seen.links.items())
        random.shuffle(links)
        assert l2.diff(dict(items), L2Observed(dict(links), seen.flood)) == expected
    reversed_ports = Snapshot(1, dict(reversed(list(snap.networks.items()))),
                              dict(reversed(list(snap.ports.items()))))
    assert l2.desired(reversed_ports, CFG) == want


def test_squashed_changes_end_where_the_sequence_ends() -> None:
    """Several snapshots seen one by one, or only the last one: the same kernel."""
    steps = [_snapshot(nets=(NET_A,), ports={P1: NET_A}),
             _snapshot(ports={P1: NET_A, P3: NET_B}),
             _snapshot(nets=(NET_B,), ports={P3: NET_B})]
    final = l2.desired(steps[-1], CFG)
    seen = _converged(l2.desired(steps[0], CFG))
    for snap in steps:
        seen = _converged(l2.desired(snap, CFG))
    assert l2.diff(final, seen) == []
    squashed = l2.diff(final, _converged(l2.desired(steps[0], CFG)))
    assert DeleteLink(names.bridge(NET_A), names.bridge(NET_A)) in squashed
    assert EnsureBridge(names.bridge(NET_B), 1450) in squashed


def test_removal_is_reverse_order_and_spares_what_is_not_ours() -> None:
    want = l2.desired(_snapshot(), CFG)
    seen = _converged(want)
    br_a = names.bridge(NET_A)
    extra = dict(seen.links)
    extra["eth9"] = _link("eth9", None, br_a)  # someone's device in our bridge
    plan = l2.diff(l2.desired(_snapshot(nets=(NET_B,)), CFG), L2Observed(extra, seen.flood))
    steps = [op for op in plan if op.key == br_a]
    assert steps[-1] == DeleteLink(br_a, br_a)
    assert DeleteLink(br_a, "vxlan-101") in steps  # our uplink goes
    assert Unplug(br_a, "eth9") in steps and Unplug(br_a, names.tap(P1)) in steps
    assert not any(isinstance(op, DeleteLink) and op.name in ("eth9", names.tap(P1))
                   for op in plan), "never delete a device we did not make"


def test_full_sweep_only_touches_our_names() -> None:
    stray_bridge = names.bridge("cccccccc-cccc-4ccc-8ccc-cccccccccccc")
    seen = L2Observed({
        stray_bridge: _link(stray_bridge, "bridge"),
        "vxlan-999": _link("vxlan-999", "vxlan", vxlan=VxlanInfo(999, 4789, None, False, None)),
        "br-ex": _link("br-ex", "bridge"), "eth0": _link("eth0", None),
        "eth0.100": _link("eth0.100", "vlan"), "mytap": _link("mytap", "veth"),
    })
    plan = l2.diff({}, seen)
    assert {(type(op), op.name if hasattr(op, "name") else op.key) for op in plan} == {
        (DeleteLink, stray_bridge), (DeleteLink, "vxlan-999")}
    # a partial pass never sweeps
    assert l2.diff({}, seen, keys=[names.bridge(NET_A)]) == []


def test_drift_is_repaired() -> None:
    want = l2.desired(_snapshot(ports={P1: NET_A}, nets=(NET_A,)), CFG)
    seen = _converged(want)
    br = names.bridge(NET_A)
    links = dict(seen.links)
    links["vxlan-101"] = _link("vxlan-101", "vxlan", br,
                               vxlan=VxlanInfo(101, 4789, None, True, None))  # learning on
    links[names.tap(P1)] = _link(names.tap(P1), "veth", None)  # unplugged
    links[br] = _link(br, "bridge", mtu=1500)
    plan = l2.diff(want, L2Observed(links, seen.flood))
    assert plan == [EnsureBridge(br, 1450), EnsureVxlan(br, "vxlan-101", 101, None, 1450),
                    Plug(br, names.tap(P1), 1450)]


def _vlan_snapshot(*vids: tuple[str, int]) -> Snapshot:
    return Snapshot(1, {net: Network(net, 1500, Segment("vlan", "physnet1", vid), l2=True)
                        for net, vid in vids}, {})


def test_flat_and_vlan_uplinks() -> None:
    snap = Snapshot(1, {
        NET_A: Network(NET_A, 1500, Segment("flat", "physnet1"), l2=True),
        NET_B: Network(NET_B, 1500, Segment("vlan", "physnet1", 1000), l2=True),
    }, {})
    want = l2.desired(snap, CFG)
    plan = l2.diff(want, L2Observed({"eth1": _link("eth1", None, mtu=1500)}, vlans={"eth1": {}}))
    assert Plug(names.bridge(NET_A), "eth1", None) in plan
    # the bridge end keeps upstream's name; the wire end is ours: "vw-" + the same
    assert EnsureVlan(names.bridge(NET_B), "eth1.1000", "vw-eth1.1000", "eth1", 1000,
                      1500) in plan
    # an unmapped physical network has no uplink (its ports fail to bind anyway)
    assert l2.desired(snap, L2Config())[names.bridge(NET_A)].uplink is None


def test_vlan_converged_is_a_fixed_point_and_drift_rewires() -> None:
    want = l2.desired(_vlan_snapshot((NET_A, 1000), (NET_B, 1001)), CFG)
    seen = _converged(want, ("eth1",))
    assert l2.diff(want, seen) == []
    br = names.bridge(NET_A)
    ensure = EnsureVlan(br, "eth1.1000", "vw-eth1.1000", "eth1", 1000, 1500)
    # the pair made again (new ifindexes): eth1's program redirects into nothing
    links = dict(seen.links)
    links["vw-eth1.1000"] = _link("vw-eth1.1000", "veth", None, 1500, peer="eth1.1000")
    assert l2.diff(want, L2Observed(links, seen.flood, seen.vlans)) == [ensure]
    # eth1 made again: the wire end's program sends out of a device that is gone
    links = dict(seen.links)
    links["eth1"] = _link("eth1", None, mtu=1500)
    assert l2.diff(want, L2Observed(links, seen.flood, seen.vlans)) == [
        ensure, EnsureVlan(names.bridge(NET_B), "eth1.1001", "vw-eth1.1001", "eth1", 1001, 1500)]
    # a filter gone, the bridge end unplugged, the pair's MTU off: each rewires
    vlans = {d: dict(f) for d, f in seen.vlans.items()}
    del vlans["eth1"][1000]
    assert l2.diff(want, L2Observed(seen.links, seen.flood, vlans), keys=[br]) == [ensure]
    for name, change in (("eth1.1000", {"master": None}), ("vw-eth1.1000", {"mtu": 1400}),
                         ("vw-eth1.1000", {"peer": None})):
        links = dict(seen.links)
        links[name] = dataclasses.replace(links[name], **change)
        assert l2.diff(want, L2Observed(links, seen.flood, seen.vlans), keys=[br]) == [ensure]


def test_vlan_network_removed_takes_its_pair_and_filter() -> None:
    seen = _converged(l2.desired(_vlan_snapshot((NET_A, 1000), (NET_B, 1001)), CFG), ("eth1",))
    want = l2.desired(_vlan_snapshot((NET_B, 1001)), CFG)
    br_a = names.bridge(NET_A)
    expected = [DeleteVlan(br_a, "eth1.1000", "eth1", 1000), DeleteLink(br_a, br_a)]
    assert l2.diff(want, seen, keys=[br_a]) == expected  # the network's own pass
    assert l2.diff(want, seen) == expected  # a full pass: the same, nothing twice


def test_vlan_sweep_takes_only_our_strays() -> None:
    want = l2.desired(_vlan_snapshot((NET_B, 1001)), CFG)
    seen = _converged(want, ("eth1",))
    links = dict(seen.links)
    # a pair out of any bridge (a crash between two steps), a filter whose pair is gone
    links["eth1.1000"] = _link("eth1.1000", "veth", None, 1500, peer="vw-eth1.1000")
    links["vw-eth1.1000"] = _link("vw-eth1.1000", "veth", None, 1500, peer="eth1.1000")
    vlans = {d: dict(f) for d, f in seen.vlans.items()}
    vlans["eth1"][1000] = "nt-vlan1000-pop-00000000"
    vlans["eth1"][1002] = "nt-vlan1002-pop-00000000"
    # somebody else's devices named like ours but not a pair of ours
    links["eth2.7"] = _link("eth2.7", "veth", None, 1500, peer="eth2.8")
    links["eth2.8"] = _link("eth2.8", "veth", None, 1500, peer="eth2.7")
    plan = l2.diff(want, L2Observed(links, seen.flood, vlans))
    assert plan == [DeleteVlan("vw-eth1.1000", "vw-eth1.1000", "eth1", 1000),
                    DeleteVlanFilter("eth1", "eth1", 1002)]
    assert l2.diff(want, L2Observed(links, seen.flood, vlans), keys=[names.bridge(NET_B)]) == []


def test_vlan_moving_to_a_new_network_is_not_deleted_by_the_old_one() -> None:
    """Network A deleted and network B made on the same VLAN in one pass: whichever
    bridge's steps run first, the pair ends in B's bridge."""
    seen = _converged(l2.desired(_vlan_snapshot((NET_A, 1000)), CFG), ("eth1",))
    want = l2.desired(_vlan_snapshot((NET_B, 1000)), CFG)
    br_a, br_b = names.bridge(NET_A), names.bridge(NET_B)
    plan = l2.diff(want, seen)
    assert plan == [DeleteLink(br_a, br_a), EnsureBridge(br_b, 1500),
                    EnsureVlan(br_b, "eth1.1000", "vw-eth1.1000", "eth1", 1000, 1500)]
    assert not any(isinstance(op, DeleteVlan | DeleteVlanFilter) for op in plan)
    # the other way round: the new bridge's steps first, then the old one goes without it
    seen = _converged(l2.desired(_vlan_snapshot((NET_B, 1000)), CFG), ("eth1",))
    want = l2.desired(_vlan_snapshot((NET_A, 1000)), CFG)
    assert l2.diff(want, seen) == [
        EnsureBridge(br_a, 1500), EnsureVlan(br_a, "eth1.1000", "vw-eth1.1000", "eth1", 1000,
                                             1500),
        DeleteLink(br_b, br_b)]


def test_native_vlan_device_of_an_older_agent_is_replaced() -> None:
    want = l2.desired(_vlan_snapshot((NET_A, 1000)), CFG)
    br = names.bridge(NET_A)
    seen = L2Observed({"eth1": _link("eth1", None, mtu=1500), br: _link(br, "bridge", mtu=1500),
                       "eth1.1000": _link("eth1.1000", "vlan", br, 1500)}, vlans={"eth1": {}})
    assert l2.diff(want, seen) == [EnsureVlan(br, "eth1.1000", "vw-eth1.1000", "eth1", 1000,
                                              1500)]
    gone = l2.diff({}, seen)
    assert gone == [DeleteLink(br, "eth1.1000"), DeleteLink(br, br)]


def test_admin_down_ports_are_not_plugged() -> None:
    snap = _snapshot(ports={P1: NET_A}, nets=(NET_A,))
    down = Snapshot(1, snap.networks, {P1: Port(P1, NET_A, "fa:16:3e:00:00:01", local=True,
                                                admin_state_up=False)})
    want = l2.desired(down, CFG)
    seen = _converged(l2.desired(snap, CFG))
    assert l2.diff(want, seen) == [Unplug(names.bridge(NET_A), names.tap(P1))]


def test_a_tap_without_a_filter_decision_is_not_plugged() -> None:
    """Fail closed: with the firewall's decided taps given, a new tap the tables hold
    no decision for stays out of the bridge; one already plugged is left as it is."""
    want = l2.desired(_snapshot(), CFG)
    seen = _converged(want)
    t1, t2 = names.tap(P1), names.tap(P2)
    links = dict(seen.links)
    links[t1] = dataclasses.replace(links[t1], master=None, up=False)  # new: unplugged
    fresh = L2Observed(links, seen.flood, seen.vlans)
    plugs = {op.name for op in l2.diff(want, fresh) if isinstance(op, Plug)}
    assert plugs == {t1}, "without a firewall outcome every tap is plugged (as before)"
    assert [op for op in l2.diff(want, fresh, decided=frozenset({t2}))
            if isinstance(op, Plug)] == []
    assert {op.name for op in l2.diff(want, fresh, decided=frozenset({t1, t2}))
            if isinstance(op, Plug)} == {t1}
    # t2 is plugged already but has no decision: not unplugged (the bridge drops it)
    assert not any(isinstance(op, Unplug) for op in l2.diff(want, fresh, decided=frozenset()))
