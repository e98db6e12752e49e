"""Active/active: several `neutrino serve` processes on one PostgreSQL database and one
`neutrino agent` over RabbitMQ, whose "hypervisor" is a test namespace.  Instances
(namespaces plugged like VMs, with DHCP leases) booted through one server are ACTIVE
through the other; a server stopped (SIGTERM) and started again changes nothing, and
a port made after it still goes ACTIVE.  The same with one `serve --workers 4`.

Every process, namespace and exchange made here is removed at teardown, pass or fail.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from neutrino import config, names
from neutrino.cli import instance as inst
from neutrino.linux import process
from neutrino.linux.devices import delete_link
from neutrino.linux.namespaces import delete_namespace
from neutrino.services.realisation.agents import timestamp
from tests import conftest
from tests.conftest import Client, free_port
from tests.dataplane.conftest import make_ns, need, ping
from tests.rabbit import AMQP_URL, delete_topology, need_broker, new_prefix

__all__ = ["make_ns"]  # the fixture, used by name

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))
HOST = "hv-active"


def wait_for(cond: Callable[[], object], timeout: float = 30.0, what: str = "") -> object:
    return conftest.wait_for(cond, timeout, what, interval=0.1)


@dataclass
class Cloud:
    state: Path
    database_url: str
    hostns: str
    prefix: str
    make_ns: Callable[[], str]
    servers: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    agent: subprocess.Popen | None = None
    networks: list[str] = field(default_factory=list)

    def api(self, name: str) -> Client:
        return Client(f"http://127.0.0.1:{self.ports[name]}")

    def _spawn(self, *argv: str, log: str) -> subprocess.Popen:
        out = (self.state / log).open("a")
        # only the config files speak: NEUTRINO_* of the caller would override them
        env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
        return subprocess.Popen([NEUTRINO, *argv], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)

    def start_server(self, name: str, workers: int = 1) -> None:
        port = self.ports.setdefault(name, free_port())
        cfg = self.state / f"{name}.toml"
        cfg.write_text(
            f'port = {port}\nworkers = {workers}\ndata_dir = "{self.state / name}"\n'
            f'database_url = "{self.database_url}"\n'
            f'bus_url = "{AMQP_URL}"\nbus_prefix = "{self.prefix}"\n'
            f'auth = "noauth"\nlog_level = "warning"\n')
        proc = self.servers[name] = self._spawn("serve", "--config", str(cfg),
                                                log=f"{name}.log")

        def up() -> bool:
            assert proc.poll() is None, self.logs()
            try:
                return requests.get(f"http://127.0.0.1:{port}/v2.0/networks", timeout=1).ok
            except requests.ConnectionError:
                return False
        wait_for(up, 60, f"server {name} to answer")

    def stop_server(self, name: str) -> None:
        proc = self.servers.pop(name)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, self.logs()

    def start_agent(self) -> None:
        cfg = self.state / "agent.toml"
        cfg.write_text(
            f'bus_url = "{AMQP_URL}"\nbus_prefix = "{self.prefix}"\n'
            f'agent_host = "{HOST}"\nagent_netns = "{self.hostns}"\n'
            f'agent_state_dir = "{self.state / "agent"}"\nagent_report_interval = 0.5\n'
            f'data_dir = "{self.state / "agent-data"}"\n')
        self.agent = self._spawn("agent", "--config", str(cfg), log="agent.log")

    def settings(self) -> config.Settings:
        return config.load(self.state / "agent.toml")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text()[-4000:]}"
                         for p in sorted(self.state.glob("*.log")))

    def registered(self, via: str) -> bool:
        agents = self.api(via).get("/agents").json()["agents"]
        alive = {a["agent_type"] for a in agents if a["alive"] and a["host"] == HOST}
        return {"Linux bridge agent", "DHCP agent"} <= alive

    def heard_since(self, via: str, since: str) -> bool:
        """The agent's heartbeats reached a server at or after ``since``: back from its
        backoff after finding no server (it resyncs then)."""
        agents = self.api(via).get("/agents").json()["agents"]
        return all(a["heartbeat_timestamp"] >= since for a in agents if a["host"] == HOST)

    def restart_server(self, name: str, workers: int = 1) -> None:
        """SIGTERM, start again; once the agent is heard from again (the only server
        gone, the agent backs off and comes back later)."""
        self.stop_server(name)
        self.start_server(name, workers)
        since = timestamp()
        wait_for(lambda: self.heard_since(name, since), 30, "the agent to be heard again")

    def network(self, via: str, cidr: str) -> dict:
        net = self.api(via).create("networks", name=f"net-{uuid.uuid4().hex[:6]}")
        self.networks.append(net["id"])
        self.api(via).create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
        return net

    def boot(self, via: str, network_id: str) -> tuple[dict, str]:
        """A port made through server ``via``, bound to the agent's host, and an instance
        plugged into it that takes its address by DHCP."""
        port = self.api(via).create("ports", network_id=network_id, device_owner=inst.OWNER,
                                    device_id=str(uuid.uuid4()), **{"binding:host_id": HOST})
        ns = self.make_ns()
        name = ns.removeprefix("nt-test-")
        inst._plug(self.settings(), name, ns, port["id"], port["mac_address"])
        lease = inst._dhcp(self.settings(), name, ns, 20)
        assert lease.get("ip") == port["fixed_ips"][0]["ip_address"], lease
        return port, ns

    def reboot(self, via: str, port: dict, ns: str) -> None:
        """The instance's tap goes (its VM stopped), through ``via`` the port shows DOWN;
        plugged again, the port is ACTIVE again (its DHCP was known all along)."""
        delete_link(names.tap(port["id"]), netns=self.hostns)
        wait_for(lambda: self.statuses(via, [port]) == {port["id"]: "DOWN"}, 30,
                 "the unplugged port DOWN")
        inst._plug(self.settings(), ns.removeprefix("nt-test-"), ns, port["id"],
                   port["mac_address"])

    def statuses(self, via: str, ports: list[dict]) -> dict[str, str]:
        listed = self.api(via).get("/ports").json()["ports"]
        shown = {p["id"]: p["status"] for p in listed}
        return {p["id"]: shown.get(p["id"], "missing") for p in ports}

    def all_active(self, via: str, ports: list[dict]) -> bool:
        return set(self.statuses(via, ports).values()) == {"ACTIVE"}


@pytest.fixture
def cloud(make_ns: Callable[[], str], database_factory) -> Iterator[Cloud]:
    need("dnsmasq", "busybox", "ping")
    need_broker()
    url = database_factory("postgresql")
    state = Path(tempfile.mkdtemp(prefix="nt-test-"))
    state.chmod(0o755)  # dnsmasq, no longer root, re-reads its files from here
    made = Cloud(state, url, make_ns(), new_prefix(), make_ns)
    try:
        yield made
    finally:
        for name in list(made.servers):
            proc = made.servers.pop(name)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if made.agent is not None and made.agent.poll() is None:
            made.agent.send_signal(signal.SIGTERM)
            try:
                made.agent.wait(20)
            except subprocess.TimeoutExpired:
                made.agent.kill()
                made.agent.wait(5)
        print(made.logs())  # shown when the test failed
        dhcp_dir = state / "agent" / "dhcp"
        nets = set(made.networks) | ({p.name for p in dhcp_dir.iterdir()}
                                     if dhcp_dir.exists() else set())
        for net in nets:
            ns = names.dhcp_namespace(net)
            for pid in process.namespace_pids(ns):
                process.terminate(pid, timeout=2)
            delete_namespace(ns)
        delete_topology(made.prefix)
        shutil.rmtree(state, ignore_errors=True)


def _check_both(cloud: Cloud, ports: list[dict], servers: tuple[str, ...]) -> None:
    for via in servers:
        wait_for(lambda v=via: cloud.all_active(v, ports), 30,
                 f"every port ACTIVE through {via}: {cloud.statuses(via, ports)}")


def test_two_servers_one_database_one_agent(cloud: Cloud) -> None:
    cloud.start_server("a")  # first alone: it migrates the database
    cloud.start_server("b")
    cloud.start_agent()
    wait_for(lambda: cloud.registered("b"), 30, "the agent to register")

    net = cloud.network("a", "10.7.0.0/24")
    booted = [cloud.boot("a", net["id"]) for _ in range(3)]
    ports = [p for p, _ in booted]
    _check_both(cloud, ports, ("b", "a"))
    vm, peer = booted[0][1], ports[1]["fixed_ips"][0]["ip_address"]
    assert ping(vm, peer)

    # server a goes and comes back: through both, nothing changed
    cloud.stop_server("a")
    assert cloud.all_active("b", ports), cloud.statuses("b", ports)
    cloud.start_server("a")
    since = timestamp()
    wait_for(lambda: cloud.heard_since("a", since), 30, "the agent's heartbeats")
    _check_both(cloud, ports, ("a", "b"))
    # reports now taken by whichever server still count with those taken before
    cloud.reboot("b", *booted[2])
    _check_both(cloud, ports, ("a", "b"))
    # its writes reach the agent again, and their reports show on the other server
    port, _ = cloud.boot("a", net["id"])
    ports.append(port)
    _check_both(cloud, ports, ("b", "a"))
    port, _ = cloud.boot("b", net["id"])
    ports.append(port)
    _check_both(cloud, ports, ("a", "b"))
    assert ping(vm, peer)


def test_one_server_with_four_workers(cloud: Cloud) -> None:
    cloud.start_server("w", workers=4)
    cloud.start_agent()
    wait_for(lambda: cloud.registered("w"), 30, "the agent to register")

    net = cloud.network("w", "10.8.0.0/24")
    booted = [cloud.boot("w", net["id"]) for _ in range(4)]  # spread over the workers
    ports = [p for p, _ in booted]
    _check_both(cloud, ports, ("w",) * 4)  # each read may be another worker's

    cloud.restart_server("w", workers=4)
    _check_both(cloud, ports, ("w",) * 4)
    cloud.reboot("w", *booted[3])
    _check_both(cloud, ports, ("w",) * 4)
    port, _ = cloud.boot("w", net["id"])
    ports.append(port)
    _check_both(cloud, ports, ("w",) * 4)
    assert ping(booted[0][1], ports[-1]["fixed_ips"][0]["ip_address"])
