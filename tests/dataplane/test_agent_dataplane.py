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

from neutrino import config, names
from neutrino.agent.agent import Agent
from neutrino.bus import InProcessBus
from neutrino.cli import instance as inst
from neutrino.linux import addressing, devices, namespaces, neighbours, process, vlans
from neutrino.linux.run import run
from tests.conftest import Client, Server, start_server, wait_for

from .conftest import need, ping
from .packets import Tap

HOST = "hv1"


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
    #: more hypervisors (``add_host``): host name -> its namespace, and their agents
    hosts: dict[str, str] = field(default_factory=dict)
    agents: dict[str, Agent] = field(default_factory=dict)

    @property
    def bus(self) -> InProcessBus:
        return self.server._server.config.app.state.bus  # type: ignore[attr-defined]

    def add_host(self, host: str) -> str:
        """Another hypervisor: its own namespace, its own agent (``start_agent(host)``)."""
        self.hosts[host] = self.make_ns()
        return self.hosts[host]

    def ns_of(self, host: str = HOST) -> str:
        return self.hostns if host == HOST else self.hosts[host]

    def settings(self, host: str = HOST, **overrides: object) -> config.Settings:
        state = "agent" if host == HOST else f"agent-{host}"
        return config.load(None, agent_host=host, agent_netns=self.ns_of(host),
                           agent_state_dir=str(self.state / state), agent_report_interval=0.3,
                           data_dir=self.state / "data",
                           physical_interface_mappings={"physnet1": "phys0"}, **overrides)

    def start_agent(self, host: str = HOST, **overrides: object) -> Agent:
        agent = Agent(self.bus, self.settings(host, **overrides), poll_interval=0.1)
        if host == HOST:
            self.agent = agent
        else:
            self.agents[host] = agent
        agent.start()
        return agent

    def stop_agent(self) -> None:
        if self.agent is not None:
            self.agent.stop()
            self.agent = None

    def stop_agents(self) -> None:
        self.stop_agent()
        while self.agents:
            self.agents.popitem()[1].stop()

    def network(self, cidr: str = "10.0.0.0/24", project: str | None = None,
                **attrs: object) -> tuple[dict, dict]:
        api = Client(self.server.url, project) if project else self.api
        net = api.create("networks", name=f"net-{uuid.uuid4().hex[:6]}", **attrs)
        self.networks.append(net["id"])
        sub = api.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
        return net, sub

    def boot(self, network_id: str, *, project: str | None = None,
             fixed_ip: str | None = None, host: str = HOST) -> Vm:
        """An instance as `neutrino instance boot` makes one (its plug and DHCP code)."""
        body: dict = {"network_id": network_id, "device_owner": inst.OWNER,
                      "binding:host_id": host, "device_id": str(uuid.uuid4())}
        if project:
            body["project_id"] = project
        if fixed_ip:
            body["fixed_ips"] = [{"ip_address": fixed_ip}]
        port = self.api.create("ports", **body)
        ns = self.make_ns()
        name = ns.removeprefix("nt-test-")
        settings = self.settings(host)
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
        c.stop_agents()
        server.stop()
        # the DHCP namespaces the agents made (every host's), whatever state the test left
        made = set(c.networks) | {p.name for dhcp_dir in state.glob("agent*/dhcp")
                                  for p in dhcp_dir.iterdir()}
        for net in made:
            ns = names.dhcp_namespace(net)
            for pid in process.namespace_pids(ns):
                process.terminate(pid, timeout=2)
            namespaces.delete_namespace(ns)
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
        assert devices.get_link("eth0", vm.ns).mtu == 1450
    assert ping(vm1.ns, vm2.ip) and ping(vm2.ns, vm1.ip)
    # the kernel objects carry Neutron's names
    links = {lk.name: lk for lk in devices.list_links(cloud.hostns)}
    bridge = names.bridge(net["id"])
    vni = cloud.api.get(f"/networks/{net['id']}").json()["network"]["provider:segmentation_id"]
    assert links[names.vxlan(vni)].master == bridge
    assert links[names.tap(vm1.port["id"])].master == bridge
    dhcp_ns = names.dhcp_namespace(net["id"])
    dhcp_ports = cloud.api.get(f"/ports?network_id={net['id']}&device_owner=network:dhcp"
                               ).json()["ports"]
    assert len(dhcp_ports) == 1 and dhcp_ports[0]["status"] == "ACTIVE"
    assert devices.get_link(names.dhcp_ns_port(dhcp_ports[0]["id"]), dhcp_ns) is not None
    assert len(process.namespace_pids(dhcp_ns)) == 1, "one dnsmasq serves the network"

    # deleting ports and the network removes every link, namespace and process
    for vm in (vm1, vm2):
        assert cloud.api.delete(f"/ports/{vm.port['id']}").status_code == 204
        devices.delete_link(names.tap(vm.port["id"]), cloud.hostns)  # the "hypervisor" unplugs
    assert cloud.api.delete(f"/networks/{net['id']}").status_code == 204
    wait_for(lambda: {lk.name for lk in devices.list_links(cloud.hostns)} == {"lo"},
             what="the host namespace to be empty")
    wait_for(lambda: not namespaces.namespace_exists(dhcp_ns), what="qdhcp namespace gone")
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
    before = devices.get_link("eth0", b2.ns)
    assert ping(a1.ns, "10.0.0.11")
    neigh = {n.ip: n.mac for n in neighbours.list_neighbours("eth0", a1.ns)}
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
    indexes = {lk.name: lk.index for lk in devices.list_links(cloud.hostns)}
    dnsmasq = process.namespace_pids(names.dhcp_namespace(net["id"]))
    pinger = _pinging(vm1.ns, vm2.ip, 150)
    time.sleep(0.5)
    cloud.stop_agent()
    time.sleep(0.5)
    agent = cloud.start_agent()
    wait_for(lambda: agent.passes > 0, what="the new agent's first pass")
    out, _ = pinger.communicate(timeout=30)  # type: ignore[attr-defined]
    assert " 0% packet loss" in out, out
    assert {lk.name: lk.index for lk in devices.list_links(cloud.hostns)} == indexes, \
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
    devices.ensure_bridge(stray, netns=ns)
    devices.ensure_vxlan("vxlan-4000", vni=4000, netns=ns)
    devices.ensure_bridge("br-foreign", netns=ns)
    devices.ensure_veth("foreign0", "foreign1", netns=ns)
    devices.set_link("foreign0", master=stray, netns=ns)
    before = {lk.name for lk in devices.list_links(ns)}
    cloud.bus.available = False
    agent = cloud.start_agent()
    time.sleep(1.0)
    assert not agent.synced and {lk.name for lk in devices.list_links(ns)} == before
    cloud.bus.available = True
    wait_for(lambda: agent.synced, what="the first sync")
    left = {lk.name: lk for lk in devices.list_links(ns)}
    assert set(left) == before - {stray, "vxlan-4000"}
    assert left["foreign0"].master is None, "a foreign device is unplugged, not deleted"


def test_sweep_spares_unbridged_vxlan_devices_named_otherwise(cloud: Cloud) -> None:
    # the test above has only a stray named like ours; a VXLAN device of someone
    # else's (any other name), in no bridge, must survive the same sweep
    ns = cloud.hostns
    devices.ensure_vxlan("vxlan-4000", vni=4000, netns=ns)  # ours: proves the sweep ran
    devices.ensure_vxlan("vx-foreign", vni=4001, netns=ns)
    agent = cloud.start_agent()
    wait_for(lambda: agent.synced, what="the first sync")
    wait_for(lambda: devices.get_link("vxlan-4000", ns) is None, what="our stray swept")
    foreign = devices.get_link("vx-foreign", ns)
    assert foreign is not None and foreign.kind == "vxlan", "never delete what is not ours"


def test_vxlan_device_carries_the_networks_vni(cloud: Cloud) -> None:
    # the device's name alone is checked elsewhere; the VNI on the wire is what
    # separates networks, so read it back from the kernel (an admin-chosen VNI)
    cloud.start_agent()
    net, _ = cloud.network("10.0.0.0/24", **{"provider:network_type": "vxlan",
                                              "provider:segmentation_id": 4242})
    cloud.boot(net["id"])
    dev = names.vxlan(4242)
    wait_for(lambda: devices.get_link(dev, cloud.hostns), what="the VXLAN device")
    link = devices.get_link(dev, cloud.hostns)
    assert link is not None and link.master == names.bridge(net["id"])
    assert link.vxlan is not None and link.vxlan.vni == 4242, link.vxlan


def test_flat_network_reaches_the_physical_interface(cloud: Cloud) -> None:
    outside = cloud.make_ns()
    devices.ensure_veth("phys0", "wire", netns=cloud.hostns, peer_netns=outside)
    addressing.ensure_addresses("wire", ["192.0.2.100/24"], netns=outside)
    cloud.start_agent()
    net = cloud.api.create("networks", name="flat", **{"provider:network_type": "flat",
                                                       "provider:physical_network": "physnet1"})
    cloud.networks.append(net["id"])
    cloud.api.create("subnets", network_id=net["id"], cidr="192.0.2.0/24", ip_version=4)
    vm = cloud.boot(net["id"])
    assert vm.lease["mtu"] == "1500"
    assert ping(vm.ns, "192.0.2.100")
    assert devices.get_link("phys0", cloud.hostns).master == names.bridge(net["id"])


VLAN = {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}
U32_NOTHING = ["u32", "match", "u32", "0xdeadbeef", "0xffffffff", "at", "0", "flowid", "1:1"]


def _vlan_objects(ns: str) -> tuple[set[str], dict[int, str]]:
    """The links of a host namespace, and the VLAN filters on its phys0."""
    return {lk.name for lk in devices.list_links(ns)}, vlans.vlan_filters("phys0", ns)


def _tagged(tap: Tap, src: Vm, dst: Vm) -> set[int | None]:
    """The tags of the IPv4 frames on the wire while ``src`` pings ``dst``."""
    tap.frames(0.1)  # what came before
    assert ping(src.ns, dst.ip)
    return {f.vid for f in tap.frames(0.5) if f.ethertype == 0x0800}


def test_vlan_networks_across_two_hosts(cloud: Cloud) -> None:
    """Two hypervisors whose phys0 are the two ends of one wire: the instances of a VLAN
    network on both meet over it, tagged; the same subnet on another VLAN, or flat
    (untagged) on the same wire, never meets them; deleting the networks leaves nothing
    behind on either host."""
    hv2 = cloud.add_host("hv2")
    devices.ensure_veth("phys0", "phys0", netns=cloud.hostns, peer_netns=hv2)  # the wire
    cloud.start_agent()
    cloud.start_agent("hv2")
    agents = wait_for(lambda: len(_agents(cloud, "?alive=true")) == 6 and _agents(cloud),
                      what="both hosts' agents")
    for a in agents:
        if a["agent_type"] == "Linux bridge agent":
            assert "vlan" in a["configurations"]["network_types"], "no 802.1Q needed"
    net1, _ = cloud.network("10.9.0.0/24", **VLAN, **{"provider:segmentation_id": 1234})
    net2, _ = cloud.network("10.9.0.0/24", **VLAN, **{"provider:segmentation_id": 1235})
    flat, _ = cloud.network("10.9.0.0/24", **{"provider:network_type": "flat",
                                              "provider:physical_network": "physnet1"})
    assert net1["mtu"] == net2["mtu"] == 1500, "VLAN adds no overhead"
    a1 = cloud.boot(net1["id"], fixed_ip="10.9.0.10")
    b1 = cloud.boot(net1["id"], fixed_ip="10.9.0.11", host="hv2")
    a2 = cloud.boot(net2["id"], fixed_ip="10.9.0.20")
    b2 = cloud.boot(net2["id"], fixed_ip="10.9.0.11", host="hv2")  # b1's address
    b3 = cloud.boot(net2["id"], fixed_ip="10.9.0.21", host="hv2")
    f1 = cloud.boot(flat["id"], fixed_ip="10.9.0.30")  # phys0 itself in the flat bridges
    f2 = cloud.boot(flat["id"], fixed_ip="10.9.0.11", host="hv2")
    for vm in (a1, b1, a2, b2, b3, f1, f2):  # every lease crossed the wire from one host's DHCP
        assert vm.lease["ip"] == vm.ip and vm.lease["mtu"] == "1500"
        wait_for(lambda vm=vm: cloud.active(vm.port["id"]), what=f"{vm.name} ACTIVE")
        assert cloud.port(vm.port["id"])["binding:vif_type"] == "bridge"
    assert ping(a1.ns, b1.ip) and ping(b1.ns, a1.ip) and ping(a2.ns, b3.ip)
    # 10.9.0.11 answers on each network as its own instance; the others are out of reach
    for src, owner in ((a1, b1), (a2, b2), (f1, f2)):
        assert ping(src.ns, "10.9.0.11")
        assert {n.ip: n.mac for n in neighbours.list_neighbours("eth0", src.ns)}["10.9.0.11"] \
            == owner.port["mac_address"]
    assert not ping(a1.ns, b3.ip, expect=False) and not ping(b3.ns, a1.ip, expect=False)
    assert not ping(f1.ns, b3.ip, expect=False) and not ping(b1.ns, f1.ip, expect=False)
    # on the wire each VLAN's frames carry its own tag; the flat network's none
    with Tap(hv2, "phys0") as tap:
        assert _tagged(tap, a1, b1) == {1234}
        assert _tagged(tap, a2, b3) == {1235}
        assert _tagged(tap, f1, f2) == {None}
    # the kernel objects: upstream's <phys>.<vid> in the bridge, its wire end, the filters
    for host, ns in ((HOST, cloud.hostns), ("hv2", hv2)):
        links = {lk.name: lk for lk in devices.list_links(ns)}
        for net, vid in ((net1, 1234), (net2, 1235)):
            inner = links[names.vlan("phys0", vid)]
            assert (inner.kind, inner.master, inner.mtu, inner.peer) == \
                ("veth", names.bridge(net["id"]), 1500, names.vlan_wire("phys0", vid)), host
        assert set(vlans.vlan_filters("phys0", ns)) == {1234, 1235}, host

    # a restart of both agents changes nothing (the filters are found as they should be)
    before = {ns: (devices.list_links(ns), vlans.vlan_filters("phys0", ns))
              for ns in (cloud.hostns, hv2)}
    cloud.stop_agents()
    agents2 = [cloud.start_agent(), cloud.start_agent("hv2")]
    wait_for(lambda: all(a.passes > 0 for a in agents2), what="the new agents' first pass")
    assert {ns: (devices.list_links(ns), vlans.vlan_filters("phys0", ns))
            for ns in (cloud.hostns, hv2)} == before, "a resync rewired a VLAN"
    assert ping(a1.ns, b1.ip)

    # deleting ports and networks removes every object on both hosts
    for vm, ns in ((a1, cloud.hostns), (a2, cloud.hostns), (f1, cloud.hostns), (b1, hv2),
                   (b2, hv2), (b3, hv2), (f2, hv2)):
        assert cloud.api.delete(f"/ports/{vm.port['id']}").status_code == 204
        devices.delete_link(names.tap(vm.port["id"]), ns)  # the "hypervisor" unplugs
    for net in (net1, net2, flat):
        assert cloud.api.delete(f"/networks/{net['id']}").status_code == 204
    for ns in (cloud.hostns, hv2):
        wait_for(lambda ns=ns: _vlan_objects(ns) == ({"lo", "phys0"}, {}),
                 what="the host namespace to be empty but for phys0")
    for net in (net1, net2, flat):
        wait_for(lambda net=net: not namespaces.namespace_exists(names.dhcp_namespace(net["id"])),
                 what="qdhcp namespace gone")


def test_vlan_leftovers_are_swept_and_others_filters_kept(cloud: Cloud) -> None:
    """What deleted networks left while no agent ran (a pair in a stale bridge, a pair
    in none, phys0's filter of a pair already gone) goes with the first full pass;
    somebody else's filter on phys0 stays."""
    ns = cloud.hostns
    outside = cloud.make_ns()
    devices.ensure_veth("phys0", "wire", netns=ns, peer_netns=outside)
    run(["tc", "qdisc", "add", "dev", "phys0", "clsact"], netns=ns)
    run(["tc", "filter", "add", "dev", "phys0", "ingress", "prio", "1", "protocol", "all",
         *U32_NOTHING], netns=ns)
    stale = names.bridge(str(uuid.uuid4()))
    devices.ensure_bridge(stale, netns=ns)
    for vid in (1300, 1301, 1302):
        vlans.ensure_vlan(names.vlan("phys0", vid), wire=names.vlan_wire("phys0", vid),
                            parent="phys0", vid=vid, netns=ns)
    devices.set_link(names.vlan("phys0", 1300), master=stale, netns=ns)
    devices.delete_link(names.vlan("phys0", 1302), ns)
    assert set(vlans.vlan_filters("phys0", ns)) == {1300, 1301, 1302}
    agent = cloud.start_agent()
    wait_for(lambda: agent.synced, what="the first sync")
    wait_for(lambda: _vlan_objects(ns) == ({"lo", "phys0"}, {}), what="the leftovers swept")
    shown = run(["tc", "filter", "show", "dev", "phys0", "ingress"], netns=ns).stdout
    assert "u32" in shown and "nt-vlan" not in shown


def test_unplugged_port_goes_down(cloud: Cloud) -> None:
    cloud.start_agent()
    net, _ = cloud.network()
    vm = cloud.boot(net["id"])
    wait_for(lambda: cloud.active(vm.port["id"]), what="ACTIVE")
    devices.delete_link(names.tap(vm.port["id"]), cloud.hostns)
    wait_for(lambda: cloud.port(vm.port["id"])["status"] == "DOWN", what="DOWN after unplug")
    assert run(["true"], netns=vm.ns).ok
