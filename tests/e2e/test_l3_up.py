"""`neutrino up` + the stock `openstack` CLI + `neutrino instance`: the external network
``public`` made on first start, a router with its gateway on it, SNAT to the outside,
a floating IP the host reaches (and loses on disassociation), a restart under traffic,
and a teardown that leaves no router behind.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from neutrino import names
from neutrino.linux import addressing, devices, namespaces, routing
from tests.conftest import wait_for

from .l3_env import L3Up, l3up_fixture  # noqa: F401


def _wait(cond: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    return wait_for(cond, timeout, what, interval=0.1)


def test_router_snat_floating_ip_restart_and_teardown(l3up: L3Up) -> None:
    up = l3up.up
    up.start()
    # the external network, made on first start, and its host end in the "hypervisor"
    public = l3up.show("network", "show", "public")
    assert public["router:external"] is True and public["provider:network_type"] == "flat"
    _wait(lambda: "172.24.4.1/24" in addressing.list_addresses("br-ex", l3up.hostns),
          what="br-ex with the gateway address (the agent makes it)")

    os = l3up.openstack
    os("network", "create", "private")
    os("subnet", "create", "--network", "private", "--subnet-range", "10.0.0.0/24",
       "private-subnet")
    os("router", "create", "edge")
    os("router", "set", "--external-gateway", "public", "edge")
    os("router", "add", "subnet", "edge", "private-subnet")
    router = l3up.show("router", "show", "edge")
    gw_ip = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]

    vm = l3up.name("vm")
    out = up.neutrino("instance", "boot", vm, "--network", "private").stdout
    assert "ACTIVE" in out and "router 10.0.0.1" in out, out
    l3up.serve(names.instance_namespace(vm), 8080, "vm")
    # what comes through a floating IP is not from the default group's members: open it
    (port,) = l3up.show("port", "list", "--device-owner", "compute:neutrino",
                        "--network", "private", "--long")
    group = l3up.show("port", "show", port["ID"])["security_group_ids"][0]
    os("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "8080", group)
    os("security", "group", "rule", "create", "--protocol", "icmp", group)

    # SNAT: a machine on the external network sees the router's gateway address
    holder = l3up.show("port", "create", "--network", "public", "outside")
    outside_ip = holder["fixed_ips"][0]["ip_address"]
    outside = l3up.make_outside(outside_ip, holder["mac_address"])
    l3up.serve(outside, 8080, "outside")
    answer = _wait(lambda: l3up.call(names.instance_namespace(vm), outside_ip, 8080),
                   what="the outside through SNAT")
    assert answer == f"outside {gw_ip}"

    # a floating IP: the host's shell (br-ex's 172.24.4.1) reaches the instance
    fip = l3up.show("floating", "ip", "create", "public")
    address = fip["floating_ip_address"]
    started = time.monotonic()
    os("floating", "ip", "set", "--port", port["ID"], address)
    assert _wait(lambda: l3up.call(l3up.hostns, address, 8080, 0.5),
                 what="the floating IP") == "vm 172.24.4.1"
    print(f"\nfloating ip set -> first answer: {time.monotonic() - started:.3f}s")
    _wait(lambda: l3up.show("floating", "ip", "show", address)["status"] == "ACTIVE",
          what="floating IP ACTIVE")
    _wait(lambda: l3up.show("router", "show", "edge")["status"] == "ACTIVE", what="router")
    ports = l3up.show("port", "list", "--router", "edge", "--long")
    assert {p["Status"] for p in ports} == {"ACTIVE"}, ports

    # restart everything while traffic flows through the router both ways
    pingers = [subprocess.Popen(l3up.in_instance(vm, "ping", "-i", "0.02", "-c", "200",
                                                 "-W", "1", outside_ip),
                                stdout=subprocess.PIPE, text=True),
               subprocess.Popen(["ip", "netns", "exec", outside, "ping", "-i", "0.02", "-c",
                                 "200", "-W", "1", address], stdout=subprocess.PIPE, text=True)]
    time.sleep(0.5)
    up.stop()
    up.start()
    for pinger in pingers:
        out, _ = pinger.communicate(timeout=60)
        assert " 0% packet loss" in out, out

    # disassociated: the host loses it, and the status says so
    os("floating", "ip", "unset", "--port", address)
    _wait(lambda: l3up.call(l3up.hostns, address, 8080, 0.5) is None, what="FIP gone")
    _wait(lambda: l3up.show("floating", "ip", "show", address)["status"] == "DOWN",
          what="floating IP DOWN")

    # and away again, in this order: nothing of the router is left in any kernel
    os("floating", "ip", "delete", address)
    os("port", "delete", "outside")
    up.neutrino("instance", "delete", vm)
    os("router", "remove", "subnet", "edge", "private-subnet")
    os("router", "unset", "--external-gateway", "edge")
    os("router", "delete", "edge")
    qrouter = names.router_namespace(router["id"])
    _wait(lambda: not namespaces.namespace_exists(qrouter), what="the router's namespace gone")
    router_taps = {names.tap(p["ID"]) for p in ports}
    _wait(lambda: not router_taps & {lk.name for lk in devices.list_links(l3up.hostns)},
          what="the router ports' taps gone")
    assert not (l3up.base / "agent" / "l3" / router["id"]).exists()


def test_br_ex_deleted_or_stripped_by_hand_is_repaired(l3up: L3Up) -> None:
    """``br-ex`` and the public network's host side are state the agent reconciles:
    the bridge deleted, its address or its route removed by hand, each comes back by
    itself (no API call, no restart), and a router's gateway on it works again."""
    up = l3up.up
    up.start()
    ns = l3up.hostns
    address, cidr = "172.24.4.1/24", "172.24.4.0/24"

    def whole() -> bool:
        link = devices.get_link("br-ex", ns)
        return (link is not None and link.kind == "bridge" and link.up
                and address in addressing.list_addresses("br-ex", ns)
                and any(r.dst == cidr and r.dev == "br-ex"
                        for r in routing.list_routes(ns, family=4)))

    _wait(whole, what="br-ex made by the agent")
    os = l3up.openstack
    os("router", "create", "edge")
    os("router", "set", "--external-gateway", "public", "edge")
    router = l3up.show("router", "show", "edge")
    gateway = router["external_gateway_info"]["external_fixed_ips"][0]["ip_address"]
    _wait(lambda: ping(ns, gateway), what="the router's gateway answering the host")

    old = devices.get_link("br-ex", ns)
    assert old is not None
    assert devices.delete_link("br-ex", ns)  # the bridge, and the gateway's tap in it
    # made again (a new device: another index), whole
    _wait(lambda: (new := devices.get_link("br-ex", ns)) is not None
          and new.index != old.index and whole(), what="br-ex made again")
    _wait(lambda: ping(ns, gateway), what="the gateway answering through the new br-ex")

    addressing.ensure_addresses("br-ex", [], netns=ns)  # its address (and route) gone
    _wait(whole, what="br-ex's address given back")

    subprocess.run(["ip", "netns", "exec", ns, "ip", "route", "del", cidr, "dev", "br-ex"],
                   check=True)
    assert not whole()
    _wait(whole, what="the public subnet's route through br-ex put back")
    assert ping(ns, gateway)
    os("router", "unset", "--external-gateway", "edge")
    os("router", "delete", "edge")
    up.stop()


def ping(ns: str, ip: str) -> bool:
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", ip],
                          capture_output=True, check=False).returncode == 0
