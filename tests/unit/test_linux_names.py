"""Kernel names: Neutron's spelling, the 15-character limit, and parsing back."""

from __future__ import annotations

import pytest

from neutrino import names
from neutrino.names import Kind, Parsed

NET = "9f3c1a2b-4d5e-4f60-8a9b-0c1d2e3f4a5b"
PORT = "d0c2e8b1-3f4a-4b5c-9d6e-7f8091a2b3c4"
ROUTER = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"


def test_names_follow_neutron() -> None:
    assert names.bridge(NET) == "brq9f3c1a2b-4d"
    assert names.tap(PORT) == "tapd0c2e8b1-3f"
    assert names.router_interface(PORT) == "qr-d0c2e8b1-3f"
    assert names.router_gateway(PORT) == "qg-d0c2e8b1-3f"
    assert names.dhcp_tap(PORT) == "tapd0c2e8b1-3f"
    assert names.dhcp_ns_port(PORT) == "ns-d0c2e8b1-3f"
    assert names.dhcp_namespace(NET) == f"qdhcp-{NET}"
    assert names.router_namespace(ROUTER) == f"qrouter-{ROUTER}"
    assert names.vxlan(1) == "vxlan-1"
    assert names.vxlan(names.MAX_VNI) == "vxlan-16777215"
    assert names.vlan("eth1", 100) == "eth1.100"
    assert names.vlan_wire("eth1", 100) == "vw-eth1.100"


def test_every_link_name_fits_ifnamsiz() -> None:
    builders = (names.bridge, names.tap, names.router_interface, names.router_gateway,
                names.dhcp_tap, names.dhcp_ns_port)
    for build in builders:
        # A 3-character prefix + 11 id characters: 14, inside IFNAMSIZ - 1 = 15.
        assert len(build(PORT)) == 14 <= names.MAX_IFNAME == 15
    assert len(names.vxlan(names.MAX_VNI)) <= 15


def test_long_physdev_is_truncated_with_a_hash() -> None:
    a = names.vlan("enp175s0f1np1", 4094)
    b = names.vlan("enp175s0f1np2", 4094)
    assert len(a) == len(b) == 15 and a.endswith(".4094") and b.endswith(".4094")
    assert a != b, "two long devices sharing a prefix must not collide"
    assert a.startswith("enp1") and names.vlan("enp175s0f1np1", 4094) == a, "stable"
    assert names.vlan("eth10", 4094) == "eth10.4094"
    assert len(names.vlan("a" * 15, 1)) == 15
    # the wire end: the same rule behind its prefix
    w1, w2 = names.vlan_wire("enp175s0f1np1", 4094), names.vlan_wire("enp175s0f1np2", 4094)
    assert len(w1) == len(w2) == 15 and w1 != w2 and w1.startswith("vw-e")
    assert names.vlan_wire("phys0", 4094) == "vw-phys0.4094"
    assert names.vlan_wire("ethernet1", 1) == "vw-ethernet1.1"
    assert len(names.vlan_wire("a" * 15, 4094)) == 15


@pytest.mark.parametrize("call", [
    lambda: names.vxlan(0),
    lambda: names.vxlan(names.MAX_VNI + 1),
    lambda: names.vlan("eth0", 0),
    lambda: names.vlan("eth0", 4095),
    lambda: names.vlan("x" * 16, 5),
    lambda: names.vlan_wire("eth0", 0),
    lambda: names.vlan_wire("eth0", 4095),
    lambda: names.vlan_wire("x" * 16, 5),
    lambda: names.tap(""),
    lambda: names.tap("ab/cd"),
    lambda: names.bridge("a b"),
    lambda: names.dhcp_namespace(""),
    lambda: names.router_namespace("a/b"),
])
def test_bad_input_is_refused(call) -> None:
    with pytest.raises(AssertionError):
        call()


def test_parse_back() -> None:
    prefix = PORT[:11]
    assert names.parse_link(names.bridge(NET)) == Parsed(Kind.BRIDGE, NET[:11])
    assert names.parse_link(names.tap(PORT)) == Parsed(Kind.TAP, prefix)
    assert names.parse_link(names.router_interface(PORT)) == Parsed(Kind.ROUTER_INTERFACE, prefix)
    assert names.parse_link(names.router_gateway(PORT)) == Parsed(Kind.ROUTER_GATEWAY, prefix)
    assert names.parse_link(names.dhcp_ns_port(PORT)) == Parsed(Kind.DHCP_NS_PORT, prefix)
    assert names.parse_link(names.vxlan(4242)) == Parsed(Kind.VXLAN, "4242")
    assert names.parse_link(names.vlan("eth1", 100)) == Parsed(Kind.VLAN, "100", "eth1")
    assert names.parse_link(names.vlan_wire("eth1", 100)) == Parsed(Kind.VLAN_WIRE, "100", "eth1")
    long = names.vlan_wire("enp175s0f1np1", 4094)
    assert names.parse_link(long) == Parsed(Kind.VLAN_WIRE, "4094", long[3:-5])
    assert names.parse_namespace(names.dhcp_namespace(NET)) == Parsed(Kind.DHCP_NAMESPACE, NET)
    assert names.parse_namespace(names.router_namespace(ROUTER)) == \
        Parsed(Kind.ROUTER_NAMESPACE, ROUTER)


@pytest.mark.parametrize("name", [
    "eth0", "lo", "docker0", "tap0", "tapfoo", "brq", "virbr0", "qr-", "vnet3",
    "vxlan-0", "vxlan-007", "vxlan-16777216", "vxlan-x", "eth0.0", "eth0.4095", ".100",
    "tapD0C2E8B1-3F",  # upper case is not how ids are spelt
    "vw-", "vw-eth0", "vw-eth0.0", "vw-eth0.4095", "vw-.100", "vw-eth0.x",
])
def test_other_links_are_not_ours(name: str) -> None:
    assert names.parse_link(name) is None


@pytest.mark.parametrize("name", ["qdhcp-", "qrouter-", "cni-1234", "nt-test-abc",
                                  "qdhcp-NET", "qrouter-x y"])
def test_other_namespaces_are_not_ours(name: str) -> None:
    assert names.parse_namespace(name) is None


def test_nft_names_of_a_port_and_a_remote_group() -> None:
    assert names.sg_spoof_chain(PORT) == f"spoof-{PORT}"
    assert names.sg_ingress_chain(PORT) == f"in-{PORT}"
    assert names.sg_egress_chain(PORT) == f"out-{PORT}"
    assert names.sg_remote_set(NET, "IPv4") == f"rg4-{NET}"
    assert names.parse_sg_remote_set(names.sg_remote_set(NET, "IPv6")) == (NET, 6)
    for other in ("fingerprint", "rg4-", "rg5-x", "forward"):
        assert names.parse_sg_remote_set(other) is None


def test_names_is_importable_without_the_kernel_layer() -> None:
    """Server code computes kernel names too (``neutrino trace``): importing names must
    not pull in neutrino.linux (pyroute2, the kernel)."""
    import subprocess
    import sys

    code = ("import sys, neutrino.names; "
            "sys.exit(sorted(m for m in sys.modules if m.startswith('neutrino.linux')) != [])")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
