"""Routers on a real data plane: ``qrouter-`` namespaces between real bridges, SNAT
through the external network ``public`` (``br-ex`` in the test's "hypervisor"
namespace), overlapping tenant subnets behind two routers, teardown, and an agent
restart under traffic.

Nothing is forwarded or NATed outside the namespaces the tests make: the "outside" is
a namespace plugged into br-ex, the "host" is the hypervisor namespace holding
172.24.4.1.  Every namespace, link and process is removed at teardown.
"""

from __future__ import annotations

import sqlite3
import subprocess
import time

from neutrino import names
from neutrino.agent.l3.routers import NAT_FAMILY, NAT_TABLE
from neutrino.linux import addressing, devices, namespaces, nft, routing, sysctl

from .conftest import ping
from .l3_fixtures import BRIDGE, HOST_IP, L3Cloud, l3_cloud, serve, wait_call  # noqa: F401
from .test_agent_dataplane import wait_for


def _ports_of(l3: L3Cloud, router_id: str) -> list[dict]:
    r = l3.api.get(f"/ports?device_id={router_id}")
    assert r.status_code == 200, r.text
    return r.json()["ports"]


def test_two_subnets_behind_one_router_reach_each_other(l3: L3Cloud) -> None:
    l3.start_agent()
    net1, sub1 = l3.cloud.network("10.1.0.0/24")
    net2, sub2 = l3.cloud.network("10.2.0.0/24")
    router = l3.router(gateway=False)
    l3.add_subnet(router["id"], sub1["id"])
    l3.add_subnet(router["id"], sub2["id"])
    vm1, vm2 = l3.cloud.boot(net1["id"]), l3.cloud.boot(net2["id"])
    assert vm1.lease["router"] == "10.1.0.1" and vm2.lease["router"] == "10.2.0.1"
    assert ping(vm1.ns, vm2.ip) and ping(vm2.ns, vm1.ip)

    # Neutron's names, forwarding only inside the router's namespace
    ns = names.router_namespace(router["id"])
    ports = _ports_of(l3, router["id"])
    inside = {lk.name for lk in devices.list_links(ns)}
    assert {names.router_interface(p["id"]) for p in ports} <= inside
    links = {lk.name: lk for lk in devices.list_links(l3.hostns)}
    for p in ports:
        assert links[names.tap(p["id"])].master == names.bridge(p["network_id"])
    assert sysctl.get("net.ipv4.ip_forward", netns=ns) == "1"
    assert sysctl.get("net.ipv4.ip_forward", netns=l3.hostns) == "0"
    # realisation is reported: the router's ports and the router go ACTIVE
    wait_for(lambda: all(p["status"] == "ACTIVE" for p in _ports_of(l3, router["id"])),
             what="router ports ACTIVE")
    for p in _ports_of(l3, router["id"]):
        assert p["binding:host_id"] == "hv1" and p["binding:vif_type"] == "bridge"
    assert l3.status("routers", router["id"]) == "ACTIVE"
    agents = {a["agent_type"]: a for a in l3.api.get("/agents").json()["agents"]}
    assert agents["L3 agent"]["alive"] and agents["L3 agent"]["configurations"]["routers"] == 1


def test_snat_to_the_outside_and_extra_routes(l3: L3Cloud) -> None:
    l3.start_agent()
    outside, outside_ip = l3.outside()
    serve(outside, 8080, "outside")
    net, sub = l3.cloud.network("10.3.0.0/24")
    router = l3.router()
    l3.add_subnet(router["id"], sub["id"])
    vm = l3.cloud.boot(net["id"])
    gw_ip = l3.get("routers", router["id"])["external_gateway_info"][
        "external_fixed_ips"][0]["ip_address"]
    # the listener sees the router's gateway address, not the instance's
    assert wait_call(vm.ns, outside_ip, 8080) == f"outside {gw_ip}"
    assert ping(vm.ns, HOST_IP), "the host (br-ex's address) answers through SNAT"
    ns = names.router_namespace(router["id"])
    default = [r for r in routing.list_routes(ns, family=4) if r.is_default]
    assert [r.gateway for r in default] == [HOST_IP]

    # an extra route: 192.0.2.0/24 via an instance acting as a router
    r = l3.api.put(f"/routers/{router['id']}/add_extraroutes", {"router": {"routes": [
        {"destination": "192.0.2.0/24", "nexthop": vm.ip}]}})
    assert r.status_code == 200, r.text
    wait_for(lambda: any(rt.dst == "192.0.2.0/24" and rt.gateway == vm.ip
                         for rt in routing.list_routes(ns)), what="the extra route")
    r = l3.api.put(f"/routers/{router['id']}/remove_extraroutes", {"router": {"routes": [
        {"destination": "192.0.2.0/24", "nexthop": vm.ip}]}})
    assert r.status_code == 200, r.text
    wait_for(lambda: not any(rt.dst == "192.0.2.0/24" for rt in routing.list_routes(ns)),
             what="the extra route gone")

    # no SNAT: the outside sees the instance itself (and cannot answer it: no route back)
    r = l3.api.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {
        "network_id": l3.public["id"], "enable_snat": False}}})
    assert r.status_code == 200, r.text
    wait_for(lambda: not any(rule.comment and rule.comment.startswith("snat ")
                             for c in nft.list_table(NAT_FAMILY, NAT_TABLE, netns=ns).chains
                             for rule in c.rules), what="the SNAT rule gone")


def test_overlapping_subnets_behind_two_routers(l3: L3Cloud) -> None:
    l3.start_agent()
    outside, outside_ip = l3.outside()
    serve(outside, 8080, "outside")
    seen = {}
    vms = {}
    for project in ("project-a", "project-b"):
        net, sub = l3.cloud.network("10.0.0.0/24", project=project)
        router = l3.router(project=project)
        l3.add_subnet(router["id"], sub["id"])
        vms[project] = l3.cloud.boot(net["id"], project=project, fixed_ip="10.0.0.10")
        seen[project] = l3.get("routers", router["id"])["external_gateway_info"][
            "external_fixed_ips"][0]["ip_address"]
    assert seen["project-a"] != seen["project-b"]
    for project, vm in vms.items():
        assert wait_call(vm.ns, outside_ip, 8080) == f"outside {seen[project]}"
        assert ping(vm.ns, "10.0.0.1")


def test_removing_interfaces_and_routers_removes_every_kernel_object(l3: L3Cloud) -> None:
    l3.start_agent()
    net1, sub1 = l3.cloud.network("10.4.0.0/24")
    _, sub2 = l3.cloud.network("10.5.0.0/24")
    router = l3.router()
    l3.add_subnet(router["id"], sub1["id"])
    l3.add_subnet(router["id"], sub2["id"])
    ns = names.router_namespace(router["id"])
    wait_for(lambda: namespaces.namespace_exists(ns) and len(
        [lk for lk in devices.list_links(ns) if lk.name.startswith(("qr-", "qg-"))]) == 3,
        what="the router's three ports")
    ports = {p["network_id"]: p for p in _ports_of(l3, router["id"])}
    gone = ports[net1["id"]]
    l3.remove_subnet(router["id"], sub1["id"])
    wait_for(lambda: names.router_interface(gone["id"]) not in
             {lk.name for lk in devices.list_links(ns)}, what="qr- of the removed interface")
    wait_for(lambda: names.tap(gone["id"]) not in
             {lk.name for lk in devices.list_links(l3.hostns)}, what="its tap")
    l3.remove_subnet(router["id"], sub2["id"])
    r = l3.api.delete(f"/routers/{router['id']}")
    assert r.status_code == 204, r.text
    wait_for(lambda: not namespaces.namespace_exists(ns), what="the router's namespace gone")
    taps = {p["id"] for p in ports.values()}
    wait_for(lambda: not {names.tap(p) for p in taps} & {
        lk.name for lk in devices.list_links(l3.hostns)}, what="every router tap gone")
    assert not (l3.cloud.state / "agent" / "l3" / router["id"]).exists()
    # the host's external bridge is not ours to remove; its address stays
    assert f"{HOST_IP}/24" in addressing.list_addresses(BRIDGE, l3.hostns)


def test_admin_down_router_is_taken_down_and_back(l3: L3Cloud) -> None:
    l3.start_agent()
    _, sub = l3.cloud.network("10.6.0.0/24")
    router = l3.router()
    l3.add_subnet(router["id"], sub["id"])
    ns = names.router_namespace(router["id"])
    wait_for(lambda: l3.status("routers", router["id"]) == "ACTIVE"
             and namespaces.namespace_exists(ns), what="router up")
    assert l3.api.put(f"/routers/{router['id']}",
                      {"router": {"admin_state_up": False}}).status_code == 200
    wait_for(lambda: not namespaces.namespace_exists(ns), what="namespace gone")
    wait_for(lambda: l3.status("routers", router["id"]) == "DOWN", what="router DOWN")
    assert l3.api.put(f"/routers/{router['id']}",
                      {"router": {"admin_state_up": True}}).status_code == 200
    wait_for(lambda: namespaces.namespace_exists(ns)
             and l3.status("routers", router["id"]) == "ACTIVE", what="router back")


def _pinging(src: str, dst: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", src, "ping", "-i", "0.02", "-c", str(count),
                             "-W", "1", dst], stdout=subprocess.PIPE, text=True)


def test_agent_restart_under_traffic_through_a_router_loses_nothing(l3: L3Cloud) -> None:
    l3.start_agent()
    l3.allow_ingress(protocol="icmp")  # the outside pings a floating IP
    outside, outside_ip = l3.outside()
    net1, sub1 = l3.cloud.network("10.7.0.0/24")
    net2, sub2 = l3.cloud.network("10.8.0.0/24")
    router = l3.router()
    l3.add_subnet(router["id"], sub1["id"])
    l3.add_subnet(router["id"], sub2["id"])
    vm1, vm2 = l3.cloud.boot(net1["id"]), l3.cloud.boot(net2["id"])
    fip = l3.floating_ip(vm2.port["id"])
    wait_for(lambda: l3.status("floatingips", fip["id"]) == "ACTIVE", what="FIP ACTIVE")
    assert ping(vm1.ns, vm2.ip) and ping(vm1.ns, outside_ip)
    ns = names.router_namespace(router["id"])
    before = ({lk.name: lk.index for lk in devices.list_links(ns)},
              {lk.name: lk.index for lk in devices.list_links(l3.hostns)},
              [(c.name, [r.handle for r in c.rules])
               for c in nft.list_table(NAT_FAMILY, NAT_TABLE, netns=ns).chains])
    pingers = [_pinging(vm1.ns, vm2.ip, 150), _pinging(vm1.ns, outside_ip, 150),
               _pinging(outside, fip["floating_ip_address"], 150)]
    time.sleep(0.5)
    l3.cloud.stop_agent()
    time.sleep(0.5)
    agent = l3.start_agent()
    wait_for(lambda: agent.passes > 0, what="the new agent's first pass")  # type: ignore
    for pinger in pingers:
        out, _ = pinger.communicate(timeout=30)
        assert " 0% packet loss" in out, out
    after = ({lk.name: lk.index for lk in devices.list_links(ns)},
             {lk.name: lk.index for lk in devices.list_links(l3.hostns)},
             [(c.name, [r.handle for r in c.rules])
              for c in nft.list_table(NAT_FAMILY, NAT_TABLE, netns=ns).chains])
    assert after == before, "a resync recreated a device or rewrote the NAT table"
    assert l3.status("routers", router["id"]) == "ACTIVE"


def _realised(l3: L3Cloud, router_id: str) -> list[tuple[int, str]]:
    """What the server stored of the L3 agent's reports on the router: (revision, status)."""
    with sqlite3.connect(l3.cloud.state / "db.sqlite") as db:
        return db.execute("SELECT revision, status FROM router_realisations "
                          "WHERE router_id = ?", (router_id,)).fetchall()


def test_the_l3_agent_reports_the_revision_it_realised(l3: L3Cloud) -> None:
    """The router's report names the revision realised: the server keeps it, and an
    update's new revision is reported once realised."""
    l3.start_agent()
    router = l3.router()
    wait_for(lambda: l3.status("routers", router["id"]) == "ACTIVE", what="router up")
    revision = l3.get("routers", router["id"])["revision_number"]
    wait_for(lambda: _realised(l3, router["id"]) == [(revision, "ACTIVE")],
             what=f"revision {revision} reported")
    r = l3.api.put(f"/routers/{router['id']}", {"router": {"name": "renamed"}})
    assert r.status_code == 200, r.text
    newer = r.json()["router"]["revision_number"]
    assert newer > revision
    wait_for(lambda: _realised(l3, router["id"]) == [(newer, "ACTIVE")],
             what=f"revision {newer} reported")
