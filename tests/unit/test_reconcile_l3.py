"""The L3 reconciler's pure parts: router specs from snapshots, NAT rules, diff(),
reports, which events concern which routers; and the bits of L2 and binding that
make the external network's host bridge (``bridge_mappings``) work."""

from __future__ import annotations

import dataclasses
import itertools
import random

from neutrino import names
from neutrino.agent.l2 import bridges as l2
from neutrino.agent.l3 import external
from neutrino.agent.l3 import routers as l3
from neutrino.agent.l3.routers import (
    Announce,
    ApplyNat,
    DeleteNamespace,
    DeleteNat,
    DeletePort,
    EnsureAddresses,
    EnsureNamespace,
    EnsurePort,
    EnsureRoutes,
    Forget,
    RouterSeen,
    RouterSpec,
    SetSysctls,
)
from neutrino.agent.model import (
    FloatingIp,
    Network,
    Port,
    Router,
    RouterAddress,
    RouterPort,
    Segment,
    Snapshot,
)
from neutrino.bus import messages as m
from neutrino.drivers.mechanism.linuxbridge import LinuxBridge, can_realise
from neutrino.drivers.types.segments import Segment as DbSegment
from neutrino.linux.devices import Link

R1 = "11111111-1111-4111-8111-111111111111"
R2 = "22222222-2222-4222-8222-222222222222"
P_INT = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
P_INT2 = "abababab-abab-4aba-8aba-abababababab"
P_GW = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
NET = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
NET2 = "cdcdcdcd-cdcd-4cdc-8cdc-cdcdcdcdcdcd"
PUBLIC = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
FIP = "eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee"
VM_PORT = "ffffffff-ffff-4fff-8fff-ffffffffffff"


def _router(*, fips: tuple[FloatingIp, ...] = (), snat: bool = True, gateway: bool = True,
            routes: tuple[tuple[str, str], ...] = (), rid: str = R1,
            second: bool = False) -> Router:
    interfaces = [RouterPort(P_INT, NET, "fa:16:3e:00:00:01", 1450,
                             (RouterAddress("s1", "10.0.0.1", "10.0.0.0/24", "10.0.0.1"),))]
    if second:
        interfaces.append(RouterPort(P_INT2, NET2, "fa:16:3e:00:00:03", 1450,
                                     (RouterAddress("s2", "10.1.0.1", "10.1.0.0/24"),)))
    gw = RouterPort(P_GW, PUBLIC, "fa:16:3e:00:00:02", 1500,
                    (RouterAddress("pub", "172.24.4.10", "172.24.4.0/24", "172.24.4.1"),))
    return Router(rid, True, snat, gw if gateway else None, tuple(interfaces), routes, fips,
                  revision_number=REVISION)


def _fip(address: str = "172.24.4.20", fixed: str = "10.0.0.5", fid: str = FIP) -> FloatingIp:
    return FloatingIp(fid, address, fixed, VM_PORT, revision_number=FIP_REVISION)


_index = itertools.count(10)
REVISION, FIP_REVISION = 7, 3


def _converged(spec: RouterSpec) -> RouterSeen:
    """The kernel as apply() would leave it for ``spec``."""
    links = {p.device: Link(next(_index), p.device, "veth", None, True, p.mtu, p.mac, None)
             for p in spec.ports}
    return RouterSeen(True, True, links, {p.device: frozenset(p.addresses) for p in spec.ports},
                      frozenset(p.tap for p in spec.ports), frozenset(spec.defaults),
                      frozenset(spec.routes), dict(spec.sysctls),
                      l3.signature(spec.nat) if spec.nat else None)


def test_from_empty_builds_in_dependency_order() -> None:
    spec = l3.router_spec(_router(fips=(_fip(),)))
    plan = l3.diff({R1: spec}, {})
    kinds = [type(op) for op in plan]
    assert kinds[:2] == [EnsureNamespace, SetSysctls]
    # ports before NAT, NAT before the addresses (a floating IP never answers un-NATed),
    # routes once the addresses make their next hops reachable, announcements last
    assert kinds.index(EnsurePort) < kinds.index(ApplyNat) < kinds.index(EnsureAddresses) \
        < kinds.index(EnsureRoutes) < kinds.index(Announce)
    qg = names.router_gateway(P_GW)
    assert EnsureAddresses(R1, names.router_namespace(R1), qg,
                           ("172.24.4.10/24", "172.24.4.20/32")) in plan
    announced = {(op.device, op.ip) for op in plan if isinstance(op, Announce)}
    assert announced == {(qg, "172.24.4.10"), (qg, "172.24.4.20"),
                         (names.router_interface(P_INT), "10.0.0.1")}
    routes = next(op for op in plan if isinstance(op, EnsureRoutes))
    assert routes.defaults == ((4, "172.24.4.1", qg),)
    assert all(op.key == R1 for op in plan)


def test_converged_is_a_fixed_point_in_any_order() -> None:
    routers = [_router(fips=(_fip(),), routes=(("192.0.2.0/24", "10.0.0.7"),)),
               _router(rid=R2, gateway=False, second=True)]
    for order in itertools.permutations(routers):
        want = l3.desired(Snapshot(routers={r.id: r for r in order}))
        seen = {k: _converged(s) for k, s in want.items()}
        assert l3.diff(want, seen) == []
        assert l3.diff(want, seen, keys=[R1]) == []


def test_nat_rules() -> None:
    chains = {c.name: c for c in l3.nat_chains(
        _router(fips=(_fip(),)), l3.router_spec(_router()).ports[-1])}
    qg = names.router_gateway(P_GW)
    pre = chains["prerouting"].rules
    assert [r.expr for r in pre] == [[
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                   "right": "172.24.4.20"}}, {"dnat": {"addr": "10.0.0.5"}}]]
    post = [r.expr for r in chains["postrouting"].rules]
    assert post[0][-1] == {"accept": None}, "east-west first: routed, not NATed"
    assert post[1][-1] == {"snat": {"addr": "172.24.4.20"}}
    assert post[2] == [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}},
                                  "right": qg}}, {"snat": {"addr": "172.24.4.10"}}]
    assert post[3][-1] == {"masquerade": None}, "the hairpin"
    assert all(r.comment and "#" in r.comment for c in chains.values() for r in c.rules)
    # no SNAT: only the floating IPs are NATed; no gateway: no table at all
    no_snat = l3.router_spec(_router(fips=(_fip(),), snat=False)).nat
    assert not any(r.comment.startswith("snat ") for c in no_snat for r in c.rules)
    assert l3.router_spec(_router(gateway=False)).nat == ()


def test_a_floating_ip_change_touches_only_nat_and_addresses() -> None:
    before = l3.router_spec(_router())
    after = l3.router_spec(_router(fips=(_fip(),)))
    plan = l3.diff({R1: after}, {R1: _converged(before)})
    assert [type(op) for op in plan] == [ApplyNat, EnsureAddresses, Announce]
    back = l3.diff({R1: before}, {R1: _converged(after)})
    assert [type(op) for op in back] == [ApplyNat, EnsureAddresses]
    # the same floating IP forwarded elsewhere is another table (its comments differ)
    moved = l3.router_spec(_router(fips=(_fip(fixed="10.0.0.6"),)))
    assert [type(op) for op in l3.diff({R1: moved}, {R1: _converged(after)})] == [ApplyNat]


def test_squashed_changes_end_where_the_sequence_ends() -> None:
    steps = [_router(), _router(fips=(_fip(),)), _router(fips=(_fip(), _fip(
        "172.24.4.21", "10.0.0.6", VM_PORT))), _router(second=True), _router(gateway=False)]
    rng = random.Random(7)
    for _ in range(20):
        seen = _converged(l3.router_spec(rng.choice(steps)))
        last = rng.choice(steps)
        plan = l3.diff({R1: l3.router_spec(last)}, {R1: seen})
        assert not any(isinstance(op, (DeleteNamespace, EnsureNamespace)) for op in plan)
        assert l3.diff({R1: l3.router_spec(last)},
                       {R1: _converged(l3.router_spec(last))}) == []


def test_removed_interface_and_gateway() -> None:
    full = l3.router_spec(_router(second=True, fips=(_fip(),)))
    bare = l3.router_spec(_router(gateway=False))
    plan = l3.diff({R1: bare}, {R1: _converged(full)})
    ns = names.router_namespace(R1)
    assert plan[:2] == [DeletePort(R1, ns, names.router_gateway(P_GW)),
                        DeletePort(R1, ns, names.router_interface(P_INT2))]
    assert DeleteNat(R1, ns) in plan
    routes = next(op for op in plan if isinstance(op, EnsureRoutes))
    assert routes.defaults == ()


def test_teardown_in_reverse_and_only_what_is_ours() -> None:
    seen = _converged(l3.router_spec(_router(second=True)))
    plan = l3.diff({}, {R1: seen})
    ns = names.router_namespace(R1)
    assert [type(op) for op in plan] == [DeletePort, DeletePort, DeletePort, DeleteNamespace,
                                         Forget]
    assert plan[-2] == DeleteNamespace(R1, ns)
    # a marker whose namespace is already gone is only forgotten; unknown keys: nothing
    assert l3.diff({}, {R2: RouterSeen(marked=True)}) == [Forget(R2)]
    assert l3.diff({}, {R2: RouterSeen()}) == []


def test_admin_down_router_is_not_wanted() -> None:
    r = Router(R1, admin_state_up=False)
    assert l3.desired(Snapshot(routers={R1: r})) == {}


def test_drift_is_repaired() -> None:
    spec = l3.router_spec(_router(fips=(_fip(),)))
    seen = _converged(spec)
    qr = names.router_interface(P_INT)
    broken = RouterSeen(seen.marked, True, {**seen.links, qr: Link(1, qr, "veth", None, False,
                                                                     1500, "fa:16:3e:00:00:01",
                                                                     None)},
                        {**seen.addresses, qr: frozenset()}, seen.taps, frozenset(),
                        seen.routes, {**seen.sysctls, "net.ipv4.ip_forward": "0"}, None)
    kinds = {type(op) for op in l3.diff({R1: spec}, {R1: broken})}
    assert kinds == {SetSysctls, EnsurePort, ApplyNat, EnsureAddresses, EnsureRoutes, Announce}


def test_reports_routers_and_floating_ips() -> None:
    agent = l3.L3(l3.L3Config())
    with_fip = _router(fips=(_fip(),))
    snap = Snapshot(routers={R1: with_fip})
    want = l3.desired(snap)
    routers, fips = agent.reports(snap, [R1], want, {})
    # each with the revision it realised (what the server keeps a late report out by)
    assert routers == [{"router_id": R1, "status": "ACTIVE", "revision": REVISION}]
    assert fips == [{"floatingip_id": FIP, "status": "ACTIVE", "revision": FIP_REVISION}]
    # disassociated: the router no longer lists it, it is reported DOWN once (no
    # revision known: the snapshot no longer has it)
    snap = Snapshot(routers={R1: _router()})
    routers, fips = agent.reports(snap, [R1], l3.desired(snap), {})
    assert fips == [{"floatingip_id": FIP, "status": "DOWN", "revision": 0}]
    # a failure is an ERROR; a router gone from the snapshot is not reported
    snap = Snapshot(routers={R1: with_fip})
    routers, fips = agent.reports(snap, [R1], l3.desired(snap), {R1: RuntimeError("x")})
    assert routers == [{"router_id": R1, "status": "ERROR", "revision": REVISION}]
    assert agent.reports(Snapshot(), [R1], {}, {}) == ([], [])


def test_events_mark_the_right_routers() -> None:
    snap = Snapshot(routers={R1: _router(fips=(_fip(),)), R2: _router(rid=R2, gateway=False)})
    keys = l3.L3.keys_for_change
    assert keys(m.Changed("router", R2), snap) == {l3.router_key(R2)}
    # a floating IP: the router it goes through now, and the one that had it
    assert keys(m.Changed("floatingip", FIP, router_id=None), snap) == {l3.router_key(R1)}
    assert keys(m.Changed("floatingip", "other", router_id=R2), snap) == {l3.router_key(R2)}
    # the port a floating IP forwards to (deleting it disassociates), a router's own port
    assert keys(m.Changed("port", VM_PORT, NET), snap) == {l3.router_key(R1)}
    assert keys(m.Changed("port", P_GW, PUBLIC), snap) == {l3.router_key(R1)}
    assert keys(m.Changed("subnet", "s1", NET), snap) == {l3.router_key(R1), l3.router_key(R2)}
    assert keys(m.Changed("port", "unrelated", NET), snap) == set()
    assert l3.split_keys({NET, l3.router_key(R1)}) == ([NET], [R1])


def test_snapshot_merge_keeps_routers_not_asked_about() -> None:
    old = Snapshot(1, routers={R1: _router(), R2: _router(rid=R2)})
    newer = Snapshot(2, routers={R1: _router(fips=(_fip(),))})
    merged = old.merged(newer, [], [R1, "gone"])
    assert merged.routers[R1].floatingips and R2 in merged.routers
    assert old.merged(newer, None).routers.keys() == {R1}
    # a network the server sent without being asked (a router's) replaces the old one
    net = Network(NET, 1450, None, l2=True)
    old = Snapshot(1, {NET: net}, {"p": Port("p", NET, "fa:16:3e:00:00:09", local=True)})
    assert old.merged(Snapshot(2, {NET: net}), []).ports == {}


# -- the external network's host bridge --------------------------------------------------------

PUBLIC_SEG = Segment("flat", "public")


def test_l2_uses_the_mapped_host_bridge_and_never_removes_it() -> None:
    cfg = l2.L2Config(bridge_mappings={"public": "br-ex"})
    snap = Snapshot(1, {PUBLIC: Network(PUBLIC, 1500, PUBLIC_SEG, l2=True)},
                    {P_GW: Port(P_GW, PUBLIC, "fa:16:3e:00:00:02", local=True)})
    want = l2.desired(snap, cfg)
    assert list(want) == ["br-ex"] and want["br-ex"].mapped and want["br-ex"].uplink is None
    tap = names.tap(P_GW)
    seen = l2.L2Observed({
        "br-ex": Link(1, "br-ex", "bridge", None, True, 1500, None, None),
        tap: Link(2, tap, "veth", None, True, 1500, None, None),
        "eth9": Link(3, "eth9", None, "br-ex", True, 1500, None, None),
        "tapdeadbeef-00": Link(4, "tapdeadbeef-00", "veth", "br-ex", True, 1500, None, None)})
    plan = l2.diff(want, seen)
    assert l2.Plug("br-ex", tap, 1500) in plan
    assert l2.Unplug("br-ex", "tapdeadbeef-00") in plan, "a stale tap of ours goes"
    assert not any(getattr(op, "name", "") == "eth9" for op in plan), "the operator's stays"
    # nothing local on it any more: the host bridge is left alone
    assert l2.diff({}, seen, keys=["br-ex"]) == []
    assert l2.L2(cfg).keys_of([PUBLIC], snap) == ["br-ex"]


def test_binding_on_a_mapped_bridge() -> None:
    agent = {"interface_mappings": {}, "bridge_mappings": {"public": "br-ex"},
             "network_types": ["flat", "vxlan"], "tunnel_types": ["vxlan"]}
    seg = DbSegment("flat", "public", None)
    assert can_realise(seg, agent)
    assert not can_realise(DbSegment("flat", "physnet1", None), agent)
    binding = LinuxBridge().bind("hv1", PUBLIC, seg, [agent])
    assert binding.vif_type == "bridge" and binding.vif_details["bridge_name"] == "br-ex"


def test_uplink_masquerade_is_one_explicit_rule() -> None:
    (chain,) = external.masquerade_chains("172.24.4.0/24", "br-ex")
    (rule,) = chain.rules
    assert chain.hook == "postrouting" and rule.expr[-1] == {"masquerade": None}
    assert {"match": {"op": "!=", "left": {"meta": {"key": "oifname"}}, "right": "br-ex"}} \
        in rule.expr


def test_the_external_bridge_is_repaired_step_by_step() -> None:
    """br-ex is reconciled: gone, it is made with its address; its address gone, put
    back (the operator's others kept); its route gone, put back; whole, nothing."""
    cfg = external.ExternalConfig("br-ex", "172.24.4.1", "172.24.4.0/24", 1500)
    kinds = [type(op) for op in external.diff_external(cfg, external.ExternalSeen())]
    assert kinds == [external.EnsureBridge, external.EnsureAddress]
    br = Link(3, "br-ex", "bridge", None, True, 1500, None, None)
    whole = external.ExternalSeen(br, frozenset({"172.24.4.1/24", "192.0.2.1/24"}), True)
    assert external.diff_external(cfg, whole) == []
    stripped = dataclasses.replace(whole, addresses=frozenset({"192.0.2.1/24"}), route=False)
    (op,) = external.diff_external(cfg, stripped)
    assert isinstance(op, external.EnsureAddress) and op.others == ("192.0.2.1/24",)
    (op,) = external.diff_external(cfg, dataclasses.replace(whole, route=False))
    assert isinstance(op, external.EnsureRoute) and op.cidr == "172.24.4.0/24"
    down = dataclasses.replace(whole, link=dataclasses.replace(br, up=False))
    assert [type(op) for op in external.diff_external(cfg, down)] == [external.EnsureBridge]
    masq = dataclasses.replace(cfg, masquerade=True)
    assert [type(op) for op in external.diff_external(masq, whole)] == \
        [external.EnsureMasquerade]
    assert external.diff_external(None, external.ExternalSeen()) == []
