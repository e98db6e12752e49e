"""Two processes over RabbitMQ, as on two hosts: `neutrino serve` (SQLite) and a separate
`neutrino agent` whose "hypervisor" is a test namespace.  The agent registers, wires a
bound port (ACTIVE), survives being killed with its data plane intact and resyncs when it
comes back, and rides out a cut connection to the broker.

The agent reaches the broker through a TCP proxy, so "the network to the broker goes"
is a cut there; the broker itself is never restarted.  Every process, namespace and
exchange the test makes is removed at teardown, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from neutrino import config, names
from neutrino.cli import instance as inst
from neutrino.linux import devices, namespaces, process
from tests import conftest
from tests.conftest import Client, free_port
from tests.rabbit import AMQP_URL, Proxy, delete_topology, need_broker, new_prefix

from .conftest import need, ping

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))
HOST = "hv-amqp"


def wait_for(cond: Callable[[], object], timeout: float = 20.0, what: str = "") -> object:
    return conftest.wait_for(cond, timeout, what, interval=0.1)


@dataclass
class Hosts:
    state: Path
    hostns: str
    prefix: str
    proxy: Proxy
    make_ns: Callable[[], str]
    port: int = field(default_factory=free_port)
    server: subprocess.Popen | None = None
    agent: subprocess.Popen | None = None
    networks: list[str] = field(default_factory=list)
    starts: int = 0

    @property
    def api(self) -> Client:
        return Client(f"http://127.0.0.1:{self.port}")

    def settings(self) -> config.Settings:
        return config.load(self.state / "agent.toml")

    def write_configs(self) -> None:
        (self.state / "server.toml").write_text(
            f'port = {self.port}\ndata_dir = "{self.state / "data"}"\n'
            f'database_url = "sqlite:///{self.state / "db.sqlite"}"\n'
            f'bus_url = "{AMQP_URL}"\nbus_prefix = "{self.prefix}"\n'
            f'auth = "noauth"\nagent_down_time = 3\nlog_level = "warning"\n')
        # the agent's host reaches the broker through the proxy (to cut it)
        (self.state / "agent.toml").write_text(
            f'bus_url = "{self.proxy.url}"\nbus_prefix = "{self.prefix}"\n'
            f'agent_host = "{HOST}"\nagent_netns = "{self.hostns}"\n'
            f'agent_state_dir = "{self.state / "agent"}"\nagent_report_interval = 0.5\n'
            f'data_dir = "{self.state / "agent-data"}"\n')

    def _spawn(self, *argv: str, log: str) -> subprocess.Popen:
        out = (self.state / log).open("a")
        # only the config files speak: NEUTRINO_* of the caller would override them
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
        return subprocess.Popen([NEUTRINO, *argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)

    def start_server(self) -> None:
        self.server = self._spawn("serve", "--config", str(self.state / "server.toml"),
                                  log="server.log")

        def up() -> bool:
            assert self.server is not None and self.server.poll() is None, self.logs()
            try:
                return requests.get(f"{self.api.base}/v2.0/networks", timeout=1).ok
            except requests.ConnectionError:
                return False
        wait_for(up, 30, "neutrino serve to answer")

    def start_agent(self) -> None:
        self.starts += 1
        self.agent = self._spawn("agent", "--config", str(self.state / "agent.toml"),
                                 log="agent.log")

    def kill_agent(self) -> None:
        """As if the process crashed: no chance to tidy up anything."""
        assert self.agent is not None
        self.agent.kill()
        self.agent.wait(10)
        self.agent = None

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}"
                         for p in sorted(self.state.glob("*.log")))

    def agents(self) -> list[dict]:
        return self.api.get("/agents").json()["agents"]

    def alive(self) -> set[str]:
        return {a["agent_type"] for a in self.agents() if a["alive"] and a["host"] == HOST}

    def registered(self) -> bool:
        return {"Linux bridge agent", "DHCP agent"} <= self.alive()

    def network(self, cidr: str) -> dict:
        net = self.api.create("networks", name=f"net-{uuid.uuid4().hex[:6]}")
        self.networks.append(net["id"])
        self.api.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
        return net

    def boot(self, network_id: str, dhcp: bool = True) -> tuple[dict, str]:
        """A port bound to the agent's host and an instance plugged into it (its tap in
        the agent's namespace), with a DHCP lease unless ``dhcp`` is False."""
        port = self.api.create("ports", network_id=network_id, device_owner=inst.OWNER,
                               device_id=str(uuid.uuid4()), **{"binding:host_id": HOST})
        ns = self.make_ns()
        name = ns.removeprefix("nt-test-")
        inst._plug(self.settings(), name, ns, port["id"], port["mac_address"])
        if dhcp:
            inst._dhcp(self.settings(), name, ns, 20)
        return port, ns

    def status(self, port_id: str) -> str:
        return self.api.get(f"/ports/{port_id}").json()["port"]["status"]

    def links(self) -> dict[str, int]:
        return {lk.name: lk.index for lk in devices.list_links(self.hostns)}


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture
def hosts(make_ns: Callable[[], str]) -> Iterator[Hosts]:
    need("dnsmasq", "busybox", "ping")
    need_broker()
    state = Path(tempfile.mkdtemp(prefix="nt-test-"))
    state.chmod(0o755)  # dnsmasq, no longer root, re-reads its files from here
    h = Hosts(state, make_ns(), new_prefix(), Proxy(), make_ns)
    h.write_configs()
    try:
        yield h
    finally:
        _stop(h.agent)
        _stop(h.server)
        print(h.logs())  # shown when the test failed
        h.proxy.close()
        dhcp_dir = state / "agent" / "dhcp"
        made = set(h.networks) | ({p.name for p in dhcp_dir.iterdir()} if dhcp_dir.exists()
                                  else set())
        for net in made:
            ns = names.dhcp_namespace(net)
            for pid in process.namespace_pids(ns):
                process.terminate(pid, timeout=2)
            namespaces.delete_namespace(ns)
        delete_topology(h.prefix)
        shutil.rmtree(state, ignore_errors=True)


def test_server_and_agent_processes_over_rabbitmq(hosts: Hosts) -> None:
    started = time.monotonic()
    hosts.start_server()
    hosts.start_agent()
    wait_for(hosts.registered, 30, "the agent to register through RabbitMQ")

    net = hosts.network("10.0.0.0/24")
    (port1, vm1), (port2, _vm2) = hosts.boot(net["id"]), hosts.boot(net["id"])
    for port in (port1, port2):
        wait_for(lambda p=port: hosts.status(p["id"]) == "ACTIVE", what="ports ACTIVE")
    ip2 = port2["fixed_ips"][0]["ip_address"]
    assert ping(vm1, ip2)
    bridge, tap1 = names.bridge(net["id"]), names.tap(port1["id"])
    links = hosts.links()
    assert bridge in links and tap1 in links
    assert devices.get_link(tap1, hosts.hostns).master == bridge
    dnsmasq = process.namespace_pids(names.dhcp_namespace(net["id"]))
    assert len(dnsmasq) == 1

    # the agent dies: its data plane stays, traffic flows; the server sees it go
    hosts.kill_agent()
    assert hosts.links() == links, "killing the agent changed the data plane"
    assert ping(vm1, ip2)
    wait_for(lambda: not hosts.alive(), 15, "the agent shown dead")
    # a port made meanwhile waits for an agent
    port3, _vm3 = hosts.boot(net["id"], dhcp=False)
    time.sleep(1.0)
    assert hosts.status(port3["id"]) == "DOWN"

    # back: it registers again and resyncs, touching nothing that was right
    hosts.start_agent()
    wait_for(hosts.registered, 30, "the agent alive again")
    wait_for(lambda: hosts.status(port3["id"]) == "ACTIVE", what="the late port ACTIVE")
    after = hosts.links()
    assert {k: v for k, v in after.items() if k in links} == links, \
        "the resync recreated a device"
    assert process.namespace_pids(names.dhcp_namespace(net["id"])) == dnsmasq
    assert hosts.status(port1["id"]) == hosts.status(port2["id"]) == "ACTIVE"

    # the agent's host loses the broker: nothing changes, and once back it catches up
    # with what happened meanwhile (its marks were lost with its queue)
    hosts.proxy.cut()
    port4, _vm4 = hosts.boot(net["id"], dhcp=False)
    time.sleep(1.5)
    assert hosts.status(port4["id"]) == "DOWN"
    assert ping(vm1, ip2)
    assert {k: v for k, v in hosts.links().items() if k in links} == links
    hosts.proxy.restore()
    wait_for(lambda: hosts.status(port4["id"]) == "ACTIVE", 30,
             "the port made while away ACTIVE after the reconnect")
    assert hosts.agent is not None and hosts.agent.poll() is None
    print(f"\nserve + agent over RabbitMQ: {time.monotonic() - started:.1f}s")
