"""A tenant network over VXLAN between two "hosts", each one a namespace.

host1 and host2 share an underlay (a veth pair); each has the network's bridge and
VXLAN device, and one instance plugged into the bridge.  The instances ping each
other through the tunnel, which only works while the flood list points at the
other host.
"""

from __future__ import annotations

from collections.abc import Callable

from neutrino import names
from neutrino.linux import addressing, devices, fdb

from .conftest import need, new_id, ping, plug

VNI = 4242


def _host(ns: str, underlay: str, local: str, remote: str, network_id: str) -> str:
    bridge, vxlan = names.bridge(network_id), names.vxlan(VNI)
    devices.ensure_bridge(bridge, mtu=1450, netns=ns)
    devices.ensure_vxlan(vxlan, vni=VNI, local=local, underlay=underlay, mtu=1450, netns=ns)
    devices.set_link(vxlan, master=bridge, netns=ns)
    fdb.ensure_flood(vxlan, [remote], netns=ns)
    return bridge


def test_instances_ping_across_vxlan(make_ns: Callable[[], str]) -> None:
    need("ping")
    host1, host2, vm1, vm2 = make_ns(), make_ns(), make_ns(), make_ns()
    devices.ensure_veth("underlay", "underlay", netns=host1, peer_netns=host2)
    addressing.ensure_addresses("underlay", ["198.51.100.1/24"], netns=host1)
    addressing.ensure_addresses("underlay", ["198.51.100.2/24"], netns=host2)
    network = new_id()
    br1 = _host(host1, "underlay", "198.51.100.1", "198.51.100.2", network)
    br2 = _host(host2, "underlay", "198.51.100.2", "198.51.100.1", network)
    plug(host1, br1, vm1, "10.88.0.1/24")
    plug(host2, br2, vm2, "10.88.0.2/24")
    devices.set_link("eth0", mtu=1450, netns=vm1)
    devices.set_link("eth0", mtu=1450, netns=vm2)

    assert ping(vm1, "10.88.0.2")
    assert ping(vm2, "10.88.0.1")
    # Everything was already in place: a second pass over host1 changes nothing.
    before = devices.list_links(host1)
    _host(host1, "underlay", "198.51.100.1", "198.51.100.2", network)
    assert devices.list_links(host1) == before

    # Without a flood entry host1's VXLAN device has nowhere to send: traffic stops.
    assert fdb.ensure_flood(names.vxlan(VNI), [], netns=host1) is True
    assert not ping(vm1, "10.88.0.2", expect=False)
    assert fdb.ensure_flood(names.vxlan(VNI), ["198.51.100.2"], netns=host1) is True
    assert ping(vm1, "10.88.0.2")
