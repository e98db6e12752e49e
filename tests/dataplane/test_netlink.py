"""netlink against the real kernel: every ensure is idempotent, observed by listing."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from neutrino import names
from neutrino.linux import addressing, bpf, devices, fdb, namespaces, neighbours, routing, vlans
from neutrino.linux.errors import Conflict, KernelError, NamespaceNotFound
from neutrino.linux.run import run

from .conftest import Lan, need, new_id, ping, plug
from .packets import ETH_P_ARP, Tap, arp_request, mac_bytes


def test_namespace_ensure_delete_idempotent() -> None:
    need()
    name = f"nt-test-{new_id()[:8]}"
    try:
        assert namespaces.ensure_namespace(name) is True
        assert namespaces.ensure_namespace(name) is False
        assert name in namespaces.list_namespaces()
        lo = devices.get_link("lo", netns=name)
        assert lo is not None and lo.up, "lo is brought up, as upstream does"
    finally:
        assert namespaces.delete_namespace(name) is True
    assert namespaces.delete_namespace(name) is False
    assert name not in namespaces.list_namespaces()


def test_missing_namespace_is_an_error_not_created() -> None:
    need()
    name = f"nt-test-{new_id()[:8]}"
    with pytest.raises(NamespaceNotFound):
        devices.list_links(netns=name)
    assert name not in namespaces.list_namespaces()


def test_bridge_idempotent_with_mtu(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    br = names.bridge(new_id())
    assert devices.ensure_bridge(br, mtu=1450, netns=ns) is True
    before = devices.list_links(ns)
    assert devices.ensure_bridge(br, mtu=1450, netns=ns) is False
    assert devices.list_links(ns) == before
    link = devices.get_link(br, ns)
    assert link is not None and (link.kind, link.mtu, link.up) == ("bridge", 1450, True)
    # A changed MTU is applied in place, nothing else moves.
    assert devices.ensure_bridge(br, mtu=1400, netns=ns) is True
    after = devices.get_link(br, ns)
    assert after is not None and (after.index, after.mtu) == (link.index, 1400)


def test_name_taken_by_another_kind_is_a_conflict(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_bridge("brqtaken", netns=ns)
    with pytest.raises(Conflict):
        devices.ensure_veth("brqtaken", "peer0", netns=ns)


def test_veth_across_namespaces_idempotent(make_ns: Callable[[], str]) -> None:
    host, guest = make_ns(), make_ns()
    port = new_id()
    tap, inside = names.dhcp_tap(port), names.dhcp_ns_port(port)
    assert devices.ensure_veth(tap, inside, netns=host, peer_netns=guest, mtu=1450) is True
    host_before, guest_before = devices.list_links(host), devices.list_links(guest)
    assert devices.ensure_veth(tap, inside, netns=host, peer_netns=guest, mtu=1450) is False
    assert (devices.list_links(host), devices.list_links(guest)) == (host_before, guest_before)
    ends = [devices.get_link(tap, host), devices.get_link(inside, guest)]
    assert all(e is not None and (e.kind, e.mtu, e.up) == ("veth", 1450, True) for e in ends)
    assert devices.get_link(inside, host) is None, "the peer lives only in the guest namespace"


def test_veth_half_pair_is_rebuilt(make_ns: Callable[[], str]) -> None:
    host, guest, elsewhere = make_ns(), make_ns(), make_ns()
    devices.ensure_veth("tapx", "eth0", netns=host, peer_netns=elsewhere)
    # The peer is not where we want it: ensure makes a correct pair.
    assert devices.ensure_veth("tapx", "eth0", netns=host, peer_netns=guest) is True
    assert devices.get_link("eth0", guest) is not None
    assert devices.get_link("eth0", elsewhere) is None


def test_set_link_changes_only_what_differs(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_bridge("brq0", netns=ns)
    devices.ensure_veth("tap0", "tap0p", netns=ns, up=False)
    spec = {"up": True, "mtu": 1400, "mac": "FA:16:3E:12:34:56", "alias": "port 1234",
            "master": "brq0"}
    assert devices.set_link("tap0", netns=ns, **spec) is True
    link = devices.get_link("tap0", ns)
    assert link is not None
    assert (link.up, link.mtu, link.mac, link.alias, link.master) == \
        (True, 1400, "fa:16:3e:12:34:56", "port 1234", "brq0")
    before = devices.list_links(ns)
    assert devices.set_link("tap0", netns=ns, **spec) is False
    assert devices.list_links(ns) == before
    assert devices.set_link("tap0", netns=ns, master=None, up=False) is True
    link = devices.get_link("tap0", ns)
    assert link is not None and (link.master, link.up) == (None, False)
    with pytest.raises(KernelError):
        devices.set_link("nope0", netns=ns, up=True)


def test_delete_link_ignores_absent(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_bridge("brq1", netns=ns)
    assert devices.delete_link("brq1", ns) is True
    assert devices.delete_link("brq1", ns) is False
    assert devices.get_link("brq1", ns) is None


def test_addresses_add_missing_remove_extra(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_veth("ns-a", "ns-b", netns=ns)
    want = ["10.1.0.5/24", "10.2.0.5/16", "fd00:1::5/64"]
    assert addressing.ensure_addresses("ns-a", want, netns=ns) is True
    assert addressing.ensure_addresses("ns-a", want, netns=ns) is False
    have = addressing.list_addresses("ns-a", ns)
    assert set(want) <= set(have)
    assert addressing.ensure_addresses("ns-a", ["10.1.0.5/24", "10.3.0.1/24"], netns=ns) is True
    have = addressing.list_addresses("ns-a", ns)
    assert [a for a in have if not a.startswith("fe80:")] == ["10.1.0.5/24", "10.3.0.1/24"]
    # The kernel's IPv6 link-local address is not ours to remove.
    assert any(a.startswith("fe80:") for a in have)


def test_routes_default_and_specific(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_veth("qg-x", "qg-y", netns=ns)
    addressing.ensure_addresses("qg-x", ["172.24.4.10/24"], netns=ns)
    assert routing.ensure_default_route("172.24.4.1", netns=ns) is True
    assert routing.ensure_default_route("172.24.4.1", netns=ns) is False
    extra = [routing.Route("10.10.0.0/16", gateway="172.24.4.20"),
             routing.Route("10.20.0.0/24", gateway="172.24.4.21", dev="qg-x")]
    assert routing.ensure_routes(extra, netns=ns) is True
    before = routing.list_routes(ns, family=4)
    assert routing.ensure_routes(extra, netns=ns) is False
    assert routing.list_routes(ns, family=4) == before
    assert routing.Route("default", gateway="172.24.4.1", dev="qg-x") in before
    assert {(r.dst, r.gateway) for r in extra} <= {(r.dst, r.gateway) for r in before}
    # Dropping one extra route prunes it, keeps the default and the connected route.
    assert routing.ensure_routes(extra[:1], netns=ns) is True
    dsts = {r.dst for r in routing.list_routes(ns, family=4)}
    assert dsts == {"0.0.0.0/0", "172.24.4.0/24", "10.10.0.0/16"}
    assert routing.ensure_default_route("172.24.4.2", netns=ns) is True
    assert [r.gateway for r in routing.list_routes(ns, family=4) if r.is_default] == \
        ["172.24.4.2"]
    assert routing.delete_default_route(netns=ns) is True
    assert routing.delete_default_route(netns=ns) is False
    # the routes through one device only (what the external bridge's check polls)
    addressing.ensure_addresses("qg-y", ["192.0.2.1/24"], netns=ns)
    through = routing.list_routes(ns, family=4, dev="qg-y")
    assert {r.dst for r in through} == {"192.0.2.0/24"} and through[0].dev == "qg-y"
    assert {r.dst for r in routing.list_routes(ns, family=4, dev="qg-x")} == \
        {"172.24.4.0/24", "10.10.0.0/16"}


def test_neighbours(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_veth("qr-n", "qr-m", netns=ns)
    assert neighbours.ensure_neighbour("qr-n", "10.5.0.9", "FA:16:3E:00:00:09", ns) is True
    assert neighbours.ensure_neighbour("qr-n", "10.5.0.9", "fa:16:3e:00:00:09", ns) is False
    assert neighbours.Neighbour("10.5.0.9", "fa:16:3e:00:00:09", "permanent") in \
        neighbours.list_neighbours("qr-n", ns)
    # A new MAC for the same address replaces the entry.
    assert neighbours.ensure_neighbour("qr-n", "10.5.0.9", "fa:16:3e:00:00:0a", ns) is True
    assert [n.mac for n in neighbours.list_neighbours("qr-n", ns) if n.ip == "10.5.0.9"] == \
        ["fa:16:3e:00:00:0a"]
    assert neighbours.delete_neighbour("qr-n", "10.5.0.9", ns) is True
    assert neighbours.delete_neighbour("qr-n", "10.5.0.9", ns) is False


def test_vxlan_device_and_flood_list(make_ns: Callable[[], str]) -> None:
    ns = make_ns()
    devices.ensure_veth("uplink0", "uplink1", netns=ns)
    addressing.ensure_addresses("uplink0", ["192.0.2.1/24"], netns=ns)
    dev = names.vxlan(1001)
    spec = {"vni": 1001, "local": "192.0.2.1", "port": 4789, "underlay": "uplink0",
            "mtu": 1450}
    assert devices.ensure_vxlan(dev, netns=ns, **spec) is True
    before = devices.list_links(ns)
    assert devices.ensure_vxlan(dev, netns=ns, **spec) is False
    assert devices.list_links(ns) == before
    link = devices.get_link(dev, ns)
    assert link is not None and link.vxlan == devices.VxlanInfo(
        vni=1001, port=4789, local="192.0.2.1", learning=False, underlay="uplink0")
    # The same, as `ip -d link` shows it.
    shown = json.loads(run(["ip", "-d", "-j", "link", "show", dev], netns=ns).stdout)[0]
    data = shown["linkinfo"]["info_data"]
    assert (shown["linkinfo"]["info_kind"], data["id"], data["port"], data["local"]) == \
        ("vxlan", 1001, 4789, "192.0.2.1")
    assert data.get("learning") is False and shown["mtu"] == 1450
    # What the kernel cannot change in place is recreated.
    assert devices.ensure_vxlan(dev, netns=ns, **{**spec, "port": 4790}) is True
    recreated = devices.get_link(dev, ns)
    assert recreated is not None and recreated.vxlan is not None
    assert recreated.vxlan.port == 4790
    # Head-end replication: the flood list is exactly the remotes given.
    assert fdb.ensure_flood(dev, ["192.0.2.2", "192.0.2.3"], ns) is True
    assert fdb.ensure_flood(dev, ["192.0.2.3", "192.0.2.2"], ns) is False
    assert fdb.ensure_flood(dev, ["192.0.2.3"], ns) is True
    assert fdb.list_fdb(dev, ns) == [fdb.FdbEntry(fdb.FLOOD_MAC, "192.0.2.3")]
    assert fdb.fdb_append(dev, "fa:16:3e:aa:bb:cc", "192.0.2.4", ns) is True
    assert fdb.fdb_append(dev, "fa:16:3e:aa:bb:cc", "192.0.2.4", ns) is False
    assert fdb.fdb_delete(dev, "fa:16:3e:aa:bb:cc", "192.0.2.4", ns) is True
    assert fdb.fdb_delete(dev, "fa:16:3e:aa:bb:cc", "192.0.2.4", ns) is False


def _arp_replies(tap: Tap, vid: int | None) -> list[tuple[int | None, tuple[str, bytes]]]:
    """Ask for 10.50.0.1 on the wire, tagged ``vid``: the (tag, answer) of each reply."""
    tap.send(arp_request(mac_bytes("02:00:00:00:00:99"), "10.50.0.99", "10.50.0.1", vid))
    return [(f.vid, reply) for f in tap.frames(1.0)
            if not f.outgoing and (reply := f.arp_reply()) is not None]


def test_vlan_segment_tags_frames_on_the_wire(make_ns: Callable[[], str]) -> None:
    """A VLAN segment without 802.1Q: a veth pair and two tc-BPF programs.  "far" is
    the other end of the wire; it talks raw frames, tagged in-band."""
    need("ping", "tc")
    host, far, vm = make_ns(), make_ns(), make_ns()
    devices.ensure_veth("phys0", "wire0", netns=host, peer_netns=far)
    # somebody else's filter on phys0's ingress, ahead of ours (matching nothing we
    # send): kept whatever we do
    run(["tc", "qdisc", "add", "dev", "phys0", "clsact"], netns=host)
    run(["tc", "filter", "add", "dev", "phys0", "ingress", "prio", "1", "protocol", "all",
         "u32", "match", "u32", "0xdeadbeef", "0xffffffff", "at", "0", "flowid", "1:1"],
        netns=host)
    bridge = names.bridge(new_id())
    devices.ensure_bridge(bridge, mtu=1500, netns=host)
    plug(host, bridge, vm, "10.50.0.1/24")
    vm_mac = mac_bytes(devices.get_link("eth0", vm).mac or "")
    dev, wire = names.vlan("phys0", 100), names.vlan_wire("phys0", 100)
    spec = {"wire": wire, "parent": "phys0", "vid": 100, "mtu": 1500, "netns": host}
    assert vlans.ensure_vlan(dev, **spec) is True
    devices.set_link(dev, master=bridge, netns=host)

    def state() -> tuple[object, ...]:
        return (devices.list_links(host), vlans.vlan_filters("phys0", host),
                vlans.vlan_filters(wire, host))

    before = state()
    assert vlans.ensure_vlan(dev, **spec) is False, "a second ensure changes nothing"
    assert state() == before
    links = {lk.name: lk for lk in before[0]}  # type: ignore[attr-defined]
    assert (links[dev].kind, links[dev].peer, links[dev].mtu, links[dev].master) == \
        ("veth", wire, 1500, bridge)
    assert (links[wire].kind, links[wire].peer, links[wire].master) == ("veth", dev, None)
    assert addressing.list_addresses(dev, host) == addressing.list_addresses(wire, host) == [], \
        "no link-local address: the pair sends nothing of its own"
    pop = vlans.vlan_filters("phys0", host)
    assert list(pop) == [100] and pop[100].startswith("nt-vlan100-pop-")
    assert list(vlans.vlan_filters(wire, host)) == [100]
    shown = run(["tc", "filter", "show", "dev", "phys0", "ingress"], netns=host).stdout
    assert "u32" in shown and pop[100] in shown and "direct-action" in shown

    with Tap(far, "wire0") as tap:
        # wire -> bridge: only VLAN 100 reaches the instance; its answer leaves tagged 100
        assert _arp_replies(tap, 100) == [(100, ("10.50.0.1", vm_mac))]
        assert _arp_replies(tap, 200) == []
        assert _arp_replies(tap, None) == []
        # bridge -> wire: what the instance sends is tagged too
        run(["ping", "-c", "1", "-W", "1", "10.50.0.77"], netns=vm, check=False)
        asked = [f for f in tap.frames(0.5) if f.ethertype == ETH_P_ARP and not f.outgoing]
        assert asked and {f.vid for f in asked} == {100}, asked

    # untagged traffic on phys0 goes on as before: our filter says "not mine"
    addressing.ensure_addresses("phys0", ["192.0.2.1/24"], netns=host)
    addressing.ensure_addresses("wire0", ["192.0.2.2/24"], netns=far)
    assert ping(far, "192.0.2.1")

    # the pair made again (new ifindexes): the programs are replaced to match
    devices.delete_link(wire, host)
    assert vlans.ensure_vlan(dev, **spec) is True
    devices.set_link(dev, master=bridge, netns=host)
    assert vlans.vlan_filters("phys0", host)[100] != pop[100]
    with Tap(far, "wire0") as tap:
        assert _arp_replies(tap, 100) == [(100, ("10.50.0.1", vm_mac))]

    # deletion: phys0's filter and both ends go, somebody else's filter stays
    assert vlans.delete_vlan(dev, parent="phys0", vid=100, netns=host) is True
    assert vlans.delete_vlan(dev, parent="phys0", vid=100, netns=host) is False
    assert vlans.vlan_filters("phys0", host) == {}
    left = {lk.name for lk in devices.list_links(host)}
    assert dev not in left and wire not in left
    shown = run(["tc", "filter", "show", "dev", "phys0", "ingress"], netns=host).stdout
    assert "u32" in shown and "nt-vlan" not in shown
    with Tap(far, "wire0") as tap:
        assert _arp_replies(tap, 100) == []
    assert ping(far, "192.0.2.1")


def test_bpf_verifier_log_comes_back() -> None:
    need()
    bad = bpf.Program(bpf.assemble([bpf.exit_()]), "nt_bad", "nt-bad")  # r0 never set
    with pytest.raises(KernelError, match="R0 !read_ok"):
        bpf.load(bad)
    assert bpf.unavailable() is None and vlans.vlan_supported()


def test_bridge_connects_namespaces(lan: Lan) -> None:
    assert ping(lan.a, lan.ip_b)
    assert ping(lan.b, lan.ip_a)
    ports = [link.name for link in devices.list_links(lan.hub) if link.master == lan.bridge]
    assert len(ports) == 2 and all(names.parse_link(p).kind == names.Kind.TAP for p in ports)
    # Unplug b: a can no longer reach it.
    devices.set_link(ports[1], master=None, netns=lan.hub)
    assert not ping(lan.a, lan.ip_b, expect=False)
