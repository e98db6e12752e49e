"""Floating IPs on a real data plane: the "host" (the hypervisor namespace holding
br-ex's 172.24.4.1) reaches an instance's TCP server through its floating IP, loses it
on disassociation; hairpin; gratuitous ARP when a floating IP moves; status.

Every namespace, link and process is removed at teardown.
"""

from __future__ import annotations

import time

import pytest

from neutrino import names
from neutrino.linux import addressing, neighbours

from .conftest import ping
from .l3_fixtures import HOST_IP, L3Cloud, call, have_sg_reconciler, l3_cloud, serve, wait_call  # noqa: F401
from .test_agent_dataplane import wait_for


def _behind_router(l3: L3Cloud, cidr: str) -> tuple[dict, dict, dict]:
    net, sub = l3.cloud.network(cidr)
    router = l3.router()
    l3.add_subnet(router["id"], sub["id"])
    return net, sub, router


def test_host_reaches_an_instance_through_its_floating_ip_until_disassociated(
        l3: L3Cloud) -> None:
    l3.start_agent()
    l3.allow_ingress(protocol="tcp", port_range_min=8080, port_range_max=8080)
    net, _, router = _behind_router(l3, "10.10.0.0/24")
    vm = l3.cloud.boot(net["id"])
    serve(vm.ns, 8080, "vm")
    fip = l3.floating_ip()
    address = fip["floating_ip_address"]
    assert fip["status"] == "DOWN"
    started = time.monotonic()
    l3.associate(fip["id"], vm.port["id"])
    # the host's own address reaches the instance, which sees the host as the caller
    assert wait_call(l3.hostns, address, 8080) == f"vm {HOST_IP}"
    print(f"\nfloating IP associated -> first answer: {time.monotonic() - started:.3f}s")
    wait_for(lambda: l3.status("floatingips", fip["id"]) == "ACTIVE", what="FIP ACTIVE")
    gateway, = l3.api.get(f"/ports?device_id={router['id']}&device_owner="
                          f"network:router_gateway").json()["ports"]
    qg = names.router_gateway(gateway["id"])
    ns = names.router_namespace(router["id"])
    assert f"{address}/32" in addressing.list_addresses(qg, ns)
    # and the instance goes out as its floating IP
    assert ping(vm.ns, HOST_IP)

    l3.associate(fip["id"], None)
    wait_for(lambda: call(l3.hostns, address, 8080, 0.5) is None, what="FIP unreachable")
    wait_for(lambda: l3.status("floatingips", fip["id"]) == "DOWN", what="FIP DOWN")
    assert f"{address}/32" not in addressing.list_addresses(qg, ns)

    # associated again, then deleted
    l3.associate(fip["id"], vm.port["id"])
    assert wait_call(l3.hostns, address, 8080) == f"vm {HOST_IP}"
    assert l3.api.delete(f"/floatingips/{fip['id']}").status_code == 204
    wait_for(lambda: call(l3.hostns, address, 8080, 0.5) is None, what="deleted FIP gone")


def test_hairpin_through_floating_ips(l3: L3Cloud) -> None:
    l3.start_agent()
    # hairpinned traffic comes from a floating IP or the router: not from group members
    l3.allow_ingress(protocol="tcp", port_range_min=8080, port_range_max=8080)
    net, _, _ = _behind_router(l3, "10.11.0.0/24")
    vm1, vm2, vm3 = (l3.cloud.boot(net["id"]) for _ in range(3))
    serve(vm1.ns, 8080, "vm1")
    fips = [l3.floating_ip(vm.port["id"]) for vm in (vm1, vm2)]
    fip1, fip2 = (f["floating_ip_address"] for f in fips)
    for f in fips:
        wait_for(lambda f=f: l3.status("floatingips", f["id"]) == "ACTIVE", what="FIPs ACTIVE")
    # an instance reaches its own floating IP
    assert wait_call(vm1.ns, fip1, 8080) == f"vm1 {fip1}"
    # a neighbour with a floating IP comes as its floating IP, one without as the router
    assert wait_call(vm2.ns, fip1, 8080) == f"vm1 {fip2}"
    assert wait_call(vm3.ns, fip1, 8080) == "vm1 10.11.0.1"
    # east-west traffic itself is never NATed
    assert wait_call(vm2.ns, vm1.ip, 8080) == f"vm1 {vm2.ip}"


def test_gratuitous_arp_moves_a_floating_ip_between_routers(l3: L3Cloud) -> None:
    l3.start_agent()
    l3.allow_ingress(protocol="icmp")
    outside, _ = l3.outside()
    net_a, _, _ = _behind_router(l3, "10.12.0.0/24")
    net_b, _, _ = _behind_router(l3, "10.13.0.0/24")
    vm_a, vm_b = l3.cloud.boot(net_a["id"]), l3.cloud.boot(net_b["id"])
    fip = l3.floating_ip(vm_a.port["id"])
    address = fip["floating_ip_address"]
    assert ping(outside, address)
    mac_a = {n.ip: n.mac for n in neighbours.list_neighbours("eth0", outside)}[address]
    l3.associate(fip["id"], None)
    l3.associate(fip["id"], vm_b.port["id"])
    # the outside learns the new owner without asking (arping -U from the new router)
    wait_for(lambda: {n.ip: n.mac for n in neighbours.list_neighbours("eth0", outside)}
             .get(address) not in (None, mac_a), 10, "the neighbour entry to move")
    assert ping(outside, address)


def test_security_groups_apply_to_traffic_through_a_floating_ip(l3: L3Cloud) -> None:
    why = have_sg_reconciler()
    if why:
        pytest.skip(why)
    l3.start_agent()
    net, _, _ = _behind_router(l3, "10.14.0.0/24")
    r = l3.api.post("/security-groups", {"security_group": {"name": "web-only"}})
    assert r.status_code == 201, r.text
    sg = r.json()["security_group"]
    r = l3.api.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": sg["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": 8080, "port_range_max": 8080}})
    assert r.status_code == 201, r.text
    vm = l3.cloud.boot(net["id"])
    r = l3.api.put(f"/ports/{vm.port['id']}", {"port": {"security_groups": [sg["id"]]}})
    assert r.status_code == 200, r.text
    serve(vm.ns, 8080, "vm")
    serve(vm.ns, 9090, "vm")
    address = l3.floating_ip(vm.port["id"])["floating_ip_address"]
    assert wait_call(l3.hostns, address, 8080) == f"vm {HOST_IP}"
    time.sleep(1.0)
    assert call(l3.hostns, address, 9090, 1.0) is None, "port 9090 is not allowed"
