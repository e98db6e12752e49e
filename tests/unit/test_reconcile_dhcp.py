"""The DHCP reconciler's pure parts: dnsmasq files from a snapshot, and diff()."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from neutrino import names
from neutrino.agent.dhcp import servers as dhcp
from neutrino.agent.dhcp.dnsmasq import Dnsmasq
from neutrino.agent.dhcp.servers import (
    DeleteNamespace,
    DeleteTap,
    DhcpSeen,
    EnsureAddresses,
    EnsureNamespace,
    EnsureVeth,
    Reload,
    RemoveFiles,
    RequestPort,
    Restart,
    Start,
    Stop,
    WriteFiles,
)
from neutrino.agent.model import DhcpOption, Network, Port, Segment, Snapshot, Subnet
from neutrino.bus import messages as m

NET = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
SUB = "5ub00000-0000-4000-8000-000000000000"
SUB6 = "5ub60000-0000-4000-8000-000000000000"
DHCP_PORT = "d0000000-0000-4000-8000-000000000000"
VM1 = "11111111-1111-4111-8111-111111111111"
VM2 = "22222222-2222-4222-8222-222222222222"
BACKEND = Dnsmasq(Path("/state"))


def _subnet(**kw: object) -> Subnet:
    base: dict = {"id": SUB, "ip_version": 4, "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1"}
    return Subnet(**{**base, **kw})


def _snapshot(subnets: tuple[Subnet, ...] = (), *, dhcp_port: bool = True,
              vms: tuple[str, ...] = (VM1, VM2), **port_kw: object) -> Snapshot:
    subnets = subnets or (_subnet(),)
    net = Network(NET, 1450, Segment("vxlan", None, 7), subnets, l2=True, dhcp=True)
    ports = {vm: Port(vm, NET, f"fa:16:3e:00:00:0{n}", ((SUB, f"10.0.0.{10 + n}"),),
                      "compute:nova", revision_number=n, **port_kw)  # type: ignore[arg-type]
             for n, vm in enumerate(vms, start=1)}
    if dhcp_port:
        ports[DHCP_PORT] = Port(DHCP_PORT, NET, "fa:16:3e:00:00:dd", ((SUB, "10.0.0.2"),),
                                "network:dhcp", local=True, host_dhcp=True)
    return Snapshot(1, {NET: net}, ports)


def _converged(want: dict[str, dhcp.DhcpSpec]) -> dict[str, DhcpSeen]:
    out = {}
    for key, spec in want.items():
        assert spec.port is not None
        out[key] = DhcpSeen(True, (spec.port.mac_address, spec.mtu, True),
                            frozenset(spec.addresses), True, dict(spec.files), True)
    return out


def test_from_empty_asks_for_the_port_first() -> None:
    want = dhcp.desired(_snapshot(dhcp_port=False), BACKEND)
    assert dhcp.diff(want, {}) == [RequestPort(NET)]


def test_from_empty_with_port_builds_in_order() -> None:
    want = dhcp.desired(_snapshot(), BACKEND)
    plan = dhcp.diff(want, {})
    ns = names.dhcp_namespace(NET)
    assert [type(op) for op in plan] == [EnsureNamespace, EnsureVeth, EnsureAddresses,
                                         WriteFiles, Start]
    assert plan[1] == EnsureVeth(NET, names.tap(DHCP_PORT), names.dhcp_ns_port(DHCP_PORT), ns,
                                 1450, "fa:16:3e:00:00:dd")
    assert plan[2] == EnsureAddresses(NET, names.dhcp_ns_port(DHCP_PORT), ns, ("10.0.0.2/24",))
    assert want[NET].served == {VM1: 1, VM2: 2}


def test_converged_is_a_fixed_point_and_order_free() -> None:
    snap = _snapshot()
    want = dhcp.desired(snap, BACKEND)
    assert dhcp.diff(want, _converged(want)) == []
    ports = list(snap.ports.items())
    random.shuffle(ports)
    shuffled = Snapshot(1, snap.networks, dict(reversed(ports)))
    assert dhcp.desired(shuffled, BACKEND) == want, "the same files whatever the order"


def test_a_new_port_is_a_reload_not_a_restart() -> None:
    before = dhcp.desired(_snapshot(vms=(VM1,)), BACKEND)
    after = dhcp.desired(_snapshot(), BACKEND)
    plan = dhcp.diff(after, _converged(before))
    assert [type(op) for op in plan] == [WriteFiles, Reload]
    assert {name for name, _ in plan[0].files} == {"host", "addn_hosts"}


def test_an_mtu_change_restarts() -> None:
    snap = _snapshot()
    before = dhcp.desired(snap, BACKEND)
    net = snap.networks[NET]
    bigger = Snapshot(1, {NET: Network(NET, 1400, net.segment, net.subnets, True, True)},
                      snap.ports)
    plan = dhcp.diff(dhcp.desired(bigger, BACKEND), _converged(before))
    assert [type(op) for op in plan] == [EnsureVeth, WriteFiles, Restart]


def test_squashed_sequence_lands_in_the_same_place() -> None:
    steps = [_snapshot(vms=()), _snapshot(vms=(VM1,)), _snapshot(vms=(VM2,))]
    final = dhcp.desired(steps[-1], BACKEND)
    one_by_one = _converged(dhcp.desired(steps[0], BACKEND))
    for snap in steps:
        one_by_one = _converged(dhcp.desired(snap, BACKEND))
    assert dhcp.diff(final, one_by_one) == []
    assert [type(op) for op in dhcp.diff(final, _converged(dhcp.desired(steps[0], BACKEND)))] \
        == [WriteFiles, Reload]


def test_teardown_in_reverse_and_release() -> None:
    want = dhcp.desired(_snapshot(), BACKEND)
    seen = _converged(want)
    tap = names.tap(DHCP_PORT)
    plan = dhcp.diff({}, seen, taps={NET: tap}, release=[NET])
    ns = names.dhcp_namespace(NET)
    assert plan == [Stop(NET, ns), DeleteTap(NET, tap), DeleteNamespace(NET, ns),
                    RemoveFiles(NET), RequestPort(NET, release=True)]
    assert dhcp.diff({}, seen, keys=["another"]) == []


def _files(snap: Snapshot, backend: Dnsmasq = BACKEND) -> dict[str, str]:
    return dict(dhcp.desired(snap, backend)[NET].files)


def test_dnsmasq_leases_gateway_mtu_and_options() -> None:
    opts = (DhcpOption("tftp-server", "10.0.0.9"), DhcpOption("66", "boot"))
    snap = _snapshot((_subnet(dns_nameservers=("8.8.8.8", "1.1.1.1"),
                              host_routes=(("192.168.0.0/24", "10.0.0.254"),)),),
                     extra_dhcp_opts=opts)
    f = _files(snap)
    assert f"dhcp-range=set:subnet-{SUB},10.0.0.0,static,255.255.255.0,86400s" in f["dnsmasq.conf"]
    assert f"dhcp-option-force=tag:subnet-{SUB},option:mtu,1450" in f["dnsmasq.conf"]
    assert f"interface={names.dhcp_ns_port(DHCP_PORT)}" in f["dnsmasq.conf"]
    assert f["host"].splitlines() == [
        f"fa:16:3e:00:00:01,set:port-{VM1},host-10-0-0-11,10.0.0.11",
        f"fa:16:3e:00:00:02,set:port-{VM2},host-10-0-0-12,10.0.0.12"]
    plain = _files(_snapshot())["host"].splitlines()
    assert plain[0] == "fa:16:3e:00:00:01,host-10-0-0-11,10.0.0.11", "no options, no tag"
    lines = f["opts"].splitlines()
    assert f"tag:subnet-{SUB},option:router,10.0.0.1" in lines
    assert f"tag:subnet-{SUB},option:dns-server,8.8.8.8,1.1.1.1" in lines
    assert (f"tag:subnet-{SUB},option:classless-static-route,192.168.0.0/24,10.0.0.254,"
            f"0.0.0.0/0,10.0.0.1") in lines
    assert f"tag:port-{VM1},option:tftp-server,10.0.0.9" in lines
    assert f"tag:port-{VM1},66,boot" in lines


def test_dnsmasq_no_gateway_and_dns_omission() -> None:
    f = _files(_snapshot((_subnet(gateway_ip=None),)))
    assert f"tag:subnet-{SUB},option:router" in f["opts"].splitlines()
    assert "dns-server" not in f["opts"], "by default dnsmasq offers itself"
    omit = Dnsmasq(Path("/state"), omit_dns_when_none=True)
    assert f"tag:subnet-{SUB},option:dns-server" in _files(_snapshot(), omit)["opts"].splitlines()


@pytest.mark.parametrize(("ra", "address", "keyword", "ra_on"), [
    ("slaac", "slaac", "ra-only", True),
    ("dhcpv6-stateless", "dhcpv6-stateless", "ra-stateless", True),
    ("dhcpv6-stateful", "dhcpv6-stateful", "static", True),
    (None, "dhcpv6-stateful", "static", False),
    (None, "slaac", None, False),
])
def test_dnsmasq_ipv6_modes(ra: str | None, address: str, keyword: str | None,
                            ra_on: bool) -> None:
    v6 = Subnet(SUB6, 6, "fd00:1::/64", "fd00:1::1", ipv6_ra_mode=ra, ipv6_address_mode=address)
    conf = _files(_snapshot((_subnet(), v6)))["dnsmasq.conf"]
    ranges = [line for line in conf.splitlines()
              if line.startswith(f"dhcp-range=set:subnet-{SUB6}")]
    assert ranges == ([f"dhcp-range=set:subnet-{SUB6},fd00:1::,{keyword},64,86400s"]
                      if keyword else [])
    assert ("enable-ra" in conf.splitlines()) == ra_on
    if ra_on:
        assert f"ra-param={names.dhcp_ns_port(DHCP_PORT)},mtu:1450,30,0" in conf


def test_messages_tolerate_one_version_apart() -> None:
    wire = m.Changed("port", "p", "n").to_wire()
    assert wire == {"type": "changed", "v": m.VERSION, "kind": "port", "id": "p",
                    "network_id": "n", "host": "", "router_id": None}
    newer = {**wire, "v": m.VERSION + 1, "something_new": 1}
    assert m.from_wire(newer) == m.Changed("port", "p", "n")
    older = {"type": "changed", "v": m.VERSION - 1, "kind": "port", "id": "p"}
    assert m.from_wire(older) == m.Changed("port", "p")
    with pytest.raises(m.MessageError, match="version"):
        m.from_wire({**wire, "v": m.VERSION + 2})
    with pytest.raises(m.MessageError, match="unknown message type"):
        m.from_wire({"type": "nope"})
    with pytest.raises(m.MessageError):
        m.from_wire({"type": "changed", "kind": "port"})  # id is required


def test_in_process_bus_calls_events_and_absence() -> None:
    from neutrino.bus import BusError, BusUnavailable, InProcessBus

    bus = InProcessBus()
    with pytest.raises(BusUnavailable):
        bus.call(m.SYNC, m.SyncRequest("h"))
    bus.serve(m.SYNC, lambda req: m.HostState(7, [{"id": req.host}]))  # type: ignore[attr-defined]
    assert bus.call(m.SYNC, m.SyncRequest("h")) == m.HostState(7, [{"id": "h"}])
    seen: list[m.Message] = []
    stop = bus.subscribe("changes", seen.append)
    bus.subscribe("changes", lambda msg: 1 / 0)  # a broken subscriber harms nobody
    bus.publish("changes", m.Changed("network", "n", "n"))
    stop()
    bus.publish("changes", m.Changed("network", "x", "x"))
    assert seen == [m.Changed("network", "n", "n")]
    bus.serve(m.REPORT_PORTS, lambda req: 1 / 0)  # type: ignore[arg-type,return-value]
    with pytest.raises(BusError, match="failed on the server"):
        bus.call(m.REPORT_PORTS, m.PortReports("h"))
    bus.available = False
    with pytest.raises(BusUnavailable):
        bus.call(m.SYNC, m.SyncRequest("h"))
