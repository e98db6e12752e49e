"""The host agent on a real data plane: a server in this process, the agent in a
thread with its "hypervisor" in a test namespace, instances in namespaces plugged
like a hypervisor would and taking their addresses from our DHCP.

Every namespace, link and process a test makes is removed at teardown, pass or
fail; the session fixture checks the host's own namespace is unchanged.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from neutrino import config
from neutrino.agent.agent import Agent
from neutrino.bus import InProcessBus
from neutrino.cli import instance as inst
from neutrino.linux import names, netlink, process
from neutrino.linux.run import run
from tests.conftest import Client, Server, start_server

from .conftest import need, ping

HOST = "hv1"


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(0.05)


@dataclass
class Vm:
    name: str
    ns: str
    port: dict
    lease: dict

    @property
    def ip(self) -> str:
        return self.port["fixed_ips"][0]["ip_address"]


@dataclass
class Cloud:
    server: Server
    api: Client
    hostns: str
    state: Path
    make_ns: Callable[[], str]
    agent: Agent | None = None
    networks: list[str] = field(default_factory=list)

    @property
    def bus(self) -> InProcessBus:
        return self.server._server.config.app.state.bus  # type: ignore[attr-defined]

    def settings(self, **overrides: object) -> config.Settings:
        return config.load(None, agent_host=HOST, agent_netns=self.hostns,
                           agent_state_dir=str(self.state / "agent"), agent_report_interval=0.3,
                           data_dir=self.state / "data",
                           physical_interface_mappings={"physnet1": "phys0"}, **overrides)

    def start_agent(self, **overrides: object) -> Agent:
        self.agent = Agent(self.bus, self.settings(**overrides), poll_interval=0.1)
        self.agent.start()
        return self.agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def network(self, cidr: str = "10.0.0.0/24", project: str | None = None,
                **attrs: object) -> tuple[dict, dict]:
        api = Client(self.server.url, project) if project else self.api
        net = api.create("networks", name=f"net-{uuid.uuid4().hex[:6]}", **attrs)
        self.networks.append(net["id"])
        sub = api.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
        return net, sub

    def boot(self, network_id: str, *, project: str | None = None,
             fixed_ip: str | None = None) -> Vm:
        """An instance as `neutrino instance boot` makes one (its plug and DHCP code)."""
        body: dict = {"network_id": network_id, "device_owner": inst.OWNER,
                      "binding:host_id": HOST, "device_id": str(uuid.uuid4())}
        if project:
            body["project_id"] = project
        if fixed_ip:
            body["fixed_ips"] = [{"ip_address": fixed_ip}]
        port = self.api.create("ports", **body)
        ns = self.make_ns()
        name = ns.removeprefix("nt-test-")
        settings = self.settings()
        inst._plug(settings, name, ns, port["id"], port["mac_address"])
        lease = inst._dhcp(settings, name, ns, 20)
        return Vm(name, ns, port, lease)

    def port(self, port_id: str) -> dict:
        return self.api.get(f"/ports/{port_id}").json()["port"]

    def active(self, port_id: str) -> bool:
        return self.port(port_id)["status"] == "ACTIVE"


@pytest.fixture
def cloud(make_ns: Callable[[], str]) -> Iterator[Cloud]:
    need("dnsmasq", "busybox", "ping")
    state = Path(tempfile.mkdtemp(prefix="nt-test-"))
    state.chmod(0o755)  # dnsmasq, no longer root, re-reads its files from here
    server = start_server(state, f"sqlite:///{state / 'db.sqlite'}", agent_down_time=2,
                          agent_report_interval=0.3)
    c = Cloud(server, Client(server.url), make_ns(), state, make_ns)
    try:
        yield c
    finally:
        c.stop_agent()
        server.stop()
        # the DHCP namespaces the agent made, whatever state the test left
        dhcp_dir = state / "agent" / "dhcp"
        made = set(c.networks) | ({p.name for p in dhcp_dir.iterdir()} if dhcp_dir.exists()
                                  else set())
        for net in made:
            ns = names.dhcp_namespace(net)
            for pid in process.namespace_pids(ns):
                process.terminate(pid, timeout=2)
            netlink.delete_namespace(ns)
        shutil.rmtree(state, ignore_errors=True)


def _agents(cloud: Cloud, query: str = "") -> list[dict]:
    r = cloud.api.get(f"/agents{query}")
    assert r.status_code == 200, r.text
    return r.json()["agents"]


def test_registration_heartbeat_and_down_time(cloud: Cloud) -> None:
    assert _agents(cloud) == []
    cloud.start_agent()
    agents = wait_for(lambda: len(_agents(cloud)) == 3 and _agents(cloud), what="agents")
    assert {(a["agent_type"], a["host"], a["alive"]) for a in agents} == {
        ("Linux bridge agent", HOST, True), ("DHCP agent", HOST, True),
        ("L3 agent", HOST, True)}
    l2 = next(a for a in agents if a["agent_type"] == "Linux bridge agent")
    assert l2["configurations"]["tunnel_types"] == ["vxlan"]
    first_beat = l2["heartbeat_timestamp"]
    wait_for(lambda: next(a for a in _agents(cloud) if a["id"] == l2["id"])
             ["heartbeat_timestamp"] > first_beat, 5, "a later heartbeat")
    cloud.stop_agent()
    wait_for(lambda: not any(a["alive"] for a in _agents(cloud)), 6, "agents to be dead")
    assert len(_agents(cloud, "?alive=false")) == 3 and _agents(cloud, "?alive=true") == []


def test_two_instances_take_dhcp_leases_and_ping(cloud: Cloud) -> None:
    cloud.start_agent()
    wait_for(lambda: len(_agents(cloud)) == 3, what="agents")
    net, sub = cloud.network("10.0.0.0/24")
    started = time.monotonic()
    vm1 = cloud.boot(net["id"])
    wait_for(lambda: cloud.active(vm1.port["id"]), what="vm1 ACTIVE")
    print(f"\nport create -> lease -> ACTIVE: {time.monotonic() - started:.2f}s")
    vm2 = cloud.boot(net["id"])
    wait_for(lambda: cloud.active(vm2.port["id"]), what="vm2 ACTIVE")
    port = cloud.port(vm1.port["id"])
    assert port["binding:vif_type"] == "bridge"
    assert port["binding:vif_details"]["port_filter"] is True
    for vm in (vm1, vm2):
        assert vm.lease["ip"] == vm.ip, "the address came from our DHCP"
        assert vm.lease["mtu"] == "1450" == str(net["mtu"]), "option 26: VXLAN's MTU"
        assert vm.lease["router"] == sub["gateway_ip"]
        assert netlink.get_link("eth0", vm.ns).mtu == 1450
    assert ping(vm1.ns, vm2.ip) and ping(vm2.ns, vm1.ip)
    # the kernel objects carry Neutron's names
    links = {lk.name: lk for lk in netlink.list_links(cloud.hostns)}
    bridge = names.bridge(net["id"])
    vni = cloud.api.get(f"/networks/{net['id']}").json()["network"]["provider:segmentation_id"]
    assert links[names.vxlan(vni)].master == bridge
    assert links[names.tap(vm1.port["id"])].master == bridge
    dhcp_ns = names.dhcp_namespace(net["id"])
    dhcp_ports = cloud.api.get(f"/ports?network_id={net['id']}&device_owner=network:dhcp"
                               ).json()["ports"]
    assert len(dhcp_ports) == 1 and dhcp_ports[0]["status"] == "ACTIVE"
    assert netlink.get_link(names.dhcp_ns_port(dhcp_ports[0]["id"]), dhcp_ns) is not None
    assert len(process.namespace_pids(dhcp_ns)) == 1, "one dnsmasq serves the network"

    # deleting ports and the network removes every link, namespace and process
    for vm in (vm1, vm2):
        assert cloud.api.delete(f"/ports/{vm.port['id']}").status_code == 204
        netlink.delete_link(names.tap(vm.port["id"]), cloud.hostns)  # the "hypervisor" unplugs
    assert cloud.api.delete(f"/networks/{net['id']}").status_code == 204
    wait_for(lambda: {lk.name for lk in netlink.list_links(cloud.hostns)} == {"lo"},
             what="the host namespace to be empty")
    wait_for(lambda: not netlink.namespace_exists(dhcp_ns), what="qdhcp namespace gone")
    assert not (cloud.state / "agent" / "dhcp" / net["id"]).exists()


def test_projects_with_the_same_cidr_never_meet(cloud: Cloud) -> None:
    cloud.start_agent()
    wait_for(lambda: len(_agents(cloud)) == 3, what="agents")
    net_a, _ = cloud.network("10.0.0.0/24", project="project-a")
    net_b, _ = cloud.network("10.0.0.0/24", project="project-b")
    a1 = cloud.boot(net_a["id"], project="project-a", fixed_ip="10.0.0.10")
    a2 = cloud.boot(net_a["id"], project="project-a", fixed_ip="10.0.0.11")
    b1 = cloud.boot(net_b["id"], project="project-b", fixed_ip="10.0.0.20")
    b2 = cloud.boot(net_b["id"], project="project-b", fixed_ip="10.0.0.11")
    assert ping(a1.ns, a2.ip) and ping(b1.ns, b2.ip)
    assert not ping(a1.ns, b1.ip, expect=False)
    assert not ping(b1.ns, a1.ip, expect=False)
    # the same address on both networks answers only in its own network
    before = netlink.get_link("eth0", b2.ns)
    assert ping(a1.ns, "10.0.0.11")
    neigh = {n.ip: n.mac for n in netlink.list_neighbours("eth0", a1.ns)}
    assert neigh.get("10.0.0.11") == a2.port["mac_address"]
    assert before is not None


def _pinging(src: str, dst: str, count: int) -> object:
    import subprocess

    return subprocess.Popen(["ip", "netns", "exec", src, "ping", "-i", "0.02", "-c", str(count),
                             "-W", "1", dst], stdout=subprocess.PIPE, text=True)


def test_agent_restart_loses_no_packet_and_changes_nothing(cloud: Cloud) -> None:
    cloud.start_agent()
    net, _ = cloud.network()
    vm1, vm2 = cloud.boot(net["id"]), cloud.boot(net["id"])
    wait_for(lambda: cloud.active(vm2.port["id"]), what="vm2 ACTIVE")
    indexes = {lk.name: lk.index for lk in netlink.list_links(cloud.hostns)}
    dnsmasq = process.namespace_pids(names.dhcp_namespace(net["id"]))
    pinger = _pinging(vm1.ns, vm2.ip, 150)
    time.sleep(0.5)
    cloud.stop_agent()
    time.sleep(0.5)
    agent = cloud.start_agent()
    wait_for(lambda: agent.passes > 0, what="the new agent's first pass")
    out, _ = pinger.communicate(timeout=30)  # type: ignore[attr-defined]
    assert " 0% packet loss" in out, out
    assert {lk.name: lk.index for lk in netlink.list_links(cloud.hostns)} == indexes, \
        "a resync recreated a device"
    assert process.namespace_pids(names.dhcp_namespace(net["id"])) == dnsmasq
    assert cloud.active(vm1.port["id"]) and cloud.active(vm2.port["id"])


def test_server_away_keeps_the_data_plane_and_resyncs_after(cloud: Cloud) -> None:
    agent = cloud.start_agent()
    net, _ = cloud.network()
    vm1, vm2 = cloud.boot(net["id"]), cloud.boot(net["id"])
    cloud.bus.available = False
    time.sleep(1.0)  # heartbeats and passes fail meanwhile
    assert ping(vm1.ns, vm2.ip)
    # a port made while the agent cannot hear: its event is lost, the resync finds it
    port = cloud.api.create("ports", network_id=net["id"], device_owner=inst.OWNER,
                            **{"binding:host_id": HOST})
    ns = cloud.make_ns()
    inst._plug(cloud.settings(), "late", ns, port["id"], port["mac_address"])
    time.sleep(0.5)
    assert not cloud.active(port["id"])
    cloud.bus.available = True
    wait_for(lambda: cloud.active(port["id"]), what="the late port ACTIVE after the resync")
    assert agent.synced


def test_nothing_touched_before_first_sync_then_only_ours_swept(cloud: Cloud) -> None:
    ns = cloud.hostns
    stray = names.bridge(str(uuid.uuid4()))
    netlink.ensure_bridge(stray, netns=ns)
    netlink.ensure_vxlan("vxlan-4000", vni=4000, netns=ns)
    netlink.ensure_bridge("br-foreign", netns=ns)
    netlink.ensure_veth("foreign0", "foreign1", netns=ns)
    netlink.set_link("foreign0", master=stray, netns=ns)
    before = {lk.name for lk in netlink.list_links(ns)}
    cloud.bus.available = False
    agent = cloud.start_agent()
    time.sleep(1.0)
    assert not agent.synced and {lk.name for lk in netlink.list_links(ns)} == before
    cloud.bus.available = True
    wait_for(lambda: agent.synced, what="the first sync")
    left = {lk.name: lk for lk in netlink.list_links(ns)}
    assert set(left) == before - {stray, "vxlan-4000"}
    assert left["foreign0"].master is None, "a foreign device is unplugged, not deleted"


def test_flat_network_reaches_the_physical_interface(cloud: Cloud) -> None:
    outside = cloud.make_ns()
    netlink.ensure_veth("phys0", "wire", netns=cloud.hostns, peer_netns=outside)
    netlink.ensure_addresses("wire", ["192.0.2.100/24"], netns=outside)
    cloud.start_agent()
    net = cloud.api.create("networks", name="flat", **{"provider:network_type": "flat",
                                                       "provider:physical_network": "physnet1"})
    cloud.networks.append(net["id"])
    cloud.api.create("subnets", network_id=net["id"], cidr="192.0.2.0/24", ip_version=4)
    vm = cloud.boot(net["id"])
    assert vm.lease["mtu"] == "1500"
    assert ping(vm.ns, "192.0.2.100")
    assert netlink.get_link("phys0", cloud.hostns).master == names.bridge(net["id"])


def test_vlan_port_fails_to_bind_without_8021q(cloud: Cloud) -> None:
    if netlink.vlan_supported():
        pytest.skip("this kernel has 802.1Q: VLAN ports bind (see test_vlan_network)")
    cloud.start_agent()
    wait_for(lambda: len(_agents(cloud)) == 3, what="agents")
    net = cloud.api.create("networks", **{"provider:network_type": "vlan",
                                          "provider:physical_network": "physnet1",
                                          "provider:segmentation_id": 1234})
    cloud.networks.append(net["id"])
    port = cloud.api.create("ports", network_id=net["id"], **{"binding:host_id": HOST})
    assert port["binding:vif_type"] == "binding_failed"


def test_vlan_network(cloud: Cloud) -> None:
    if not netlink.vlan_supported():
        pytest.skip("this kernel has no 802.1Q support (8021q): VLAN networks cannot be wired")
    cloud.start_agent()
    net = cloud.api.create("networks", **{"provider:network_type": "vlan",
                                          "provider:physical_network": "physnet1",
                                          "provider:segmentation_id": 1234})
    cloud.networks.append(net["id"])
    netlink.ensure_veth("phys0", "phys0-peer", netns=cloud.hostns)
    cloud.api.create("subnets", network_id=net["id"], cidr="10.9.0.0/24", ip_version=4)
    vm1, vm2 = cloud.boot(net["id"]), cloud.boot(net["id"])
    assert ping(vm1.ns, vm2.ip)
    assert netlink.get_link("phys0.1234", cloud.hostns) is not None


def test_unplugged_port_goes_down(cloud: Cloud) -> None:
    cloud.start_agent()
    net, _ = cloud.network()
    vm = cloud.boot(net["id"])
    wait_for(lambda: cloud.active(vm.port["id"]), what="ACTIVE")
    netlink.delete_link(names.tap(vm.port["id"]), cloud.hostns)
    wait_for(lambda: cloud.port(vm.port["id"])["status"] == "DOWN", what="DOWN after unplug")
    assert run(["true"], netns=vm.ns).ok
