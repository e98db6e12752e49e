"""The bus over RabbitMQ: calls and replies, change marks, versions one apart, a lost
connection (cut by a TCP proxy, never by restarting the broker), and the real server
side answering an agent.  Each test names its exchanges with a fresh prefix and deletes
them at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from neutrino.bus import BusError, BusUnavailable
from neutrino.bus import messages as m
from neutrino.bus.amqp import AmqpBus
from neutrino.bus.core import CHANGES
from neutrino.cli.main import main
from tests import conftest
from tests.conftest import Client, free_port, start_server
from tests.rabbit import AMQP_URL, Proxy, delete_topology, need_broker, new_prefix

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


def wait_for(cond: Callable[[], object], timeout: float = 10.0, what: str = "") -> Any:
    return conftest.wait_for(cond, timeout, what, interval=0.02)


class Buses:
    def __init__(self) -> None:
        self.prefix = new_prefix()
        self.made: list[AmqpBus] = []
        self.proxies: list[Proxy] = []

    def __call__(self, name: str, url: str = AMQP_URL, wait: bool = True) -> AmqpBus:
        bus = AmqpBus(url, prefix=self.prefix, name=name, min_backoff=0.1, max_backoff=0.5)
        self.made.append(bus)
        assert not wait or bus.wait_connected(10), f"{name} did not connect"
        return bus

    def proxy(self) -> Proxy:
        proxy = Proxy()
        self.proxies.append(proxy)
        return proxy


@pytest.fixture
def buses() -> Iterator[Buses]:
    need_broker()
    made = Buses()
    try:
        yield made
    finally:
        for bus in made.made:
            bus.close()
        for proxy in made.proxies:
            proxy.close()
        delete_topology(made.prefix)


def _sync(req: m.Message) -> m.Message:
    assert isinstance(req, m.SyncRequest)
    return m.HostState(7, [{"id": req.host, "asked": req.network_ids}])


def test_call_reply_errors_and_absence(buses: Buses) -> None:
    agent = buses("agent")
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="no server answers 'sync'"):
        agent.call(m.SYNC, m.SyncRequest("h"))
    assert time.monotonic() - started < 1.0, "no server: known at once, not after a timeout"

    server = buses("server")
    server.serve(m.SYNC, _sync)
    assert agent.call(m.SYNC, m.SyncRequest("h", ["n1"])) == m.HostState(
        7, [{"id": "h", "asked": ["n1"]}])
    # concurrent callers each get their own answer
    answers: dict[str, m.Message] = {}

    def ask(host: str) -> None:
        answers[host] = agent.call(m.SYNC, m.SyncRequest(host))
    threads = [threading.Thread(target=ask, args=(f"h{i}",)) for i in range(20)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert {h: a.networks[0]["id"] for h, a in answers.items()} == {  # type: ignore[attr-defined]
        f"h{i}": f"h{i}" for i in range(20)}

    server.serve(m.REPORT_PORTS, lambda req: 1 / 0)  # type: ignore[arg-type,return-value]
    with pytest.raises(BusError, match="failed on the server: ZeroDivisionError"):
        agent.call(m.REPORT_PORTS, m.PortReports("h"))

    def slow(req: m.Message) -> m.Message:
        time.sleep(1.5)
        return m.Ack()
    server.serve(m.DHCP_PORT, slow)
    with pytest.raises(BusUnavailable, match=r"no answer to 'dhcp_port' within 0\.3s"):
        agent.call(m.DHCP_PORT, m.DhcpPortRequest("h", "n"), timeout=0.3)
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]

    server.close()  # the server goes away: its queue goes with it
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="no server answers"):
        agent.call(m.SYNC, m.SyncRequest("h"))
    assert time.monotonic() - started < 1.0
    again = buses("server-again")
    again.serve(m.SYNC, _sync)
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]


def test_change_marks_reach_every_agent(buses: Buses) -> None:
    server, a, b = buses("server"), buses("agent-a"), buses("agent-b")
    seen_a: list[m.Message] = []
    seen_b: list[m.Message] = []
    stop_a = a.subscribe(CHANGES, seen_a.append)
    b.subscribe(CHANGES, lambda msg: 1 / 0)  # a broken subscriber harms nobody
    b.subscribe(CHANGES, seen_b.append)
    changes = [m.Changed("port", "p1", "n1", "hv1.example.org"), m.Changed("network", "n2", "n2"),
               m.Changed("subnet", "s1", "n1")]
    for change in changes:
        server.publish(CHANGES, change)
    wait_for(lambda: len(seen_a) == 3 and len(seen_b) == 3, what="the marks")
    assert seen_a == changes == seen_b, "in order, to every agent, whatever the host"
    server.publish("other-topic", m.Changed("network", "x", "x"))
    stop_a()
    server.publish(CHANGES, m.Changed("network", "n3", "n3"))
    wait_for(lambda: len(seen_b) == 4, what="the last mark")
    time.sleep(0.2)
    assert len(seen_a) == 3, "unsubscribed: nothing more"
    assert seen_b[-1] == m.Changed("network", "n3", "n3")


def _as_version(delta: int, drop: tuple[str, ...] = (), **extra: object) \
        -> Callable[[m.Message], dict[str, Any]]:
    """How a peer ``delta`` versions away writes a message: a newer one adds fields, an
    older one lacks the fields added since."""
    def encode(msg: m.Message) -> dict[str, Any]:
        wire = {k: v for k, v in msg.to_wire().items() if k not in drop}
        return {**wire, "v": m.VERSION + delta, **extra}
    return encode


def test_versions_one_apart(buses: Buses) -> None:
    server, agent = buses("server"), buses("agent")
    received: list[m.Message] = []

    def report_state(req: m.Message) -> m.Message:
        received.append(req)
        return m.AgentRegistered("agent-1", 75)
    server.serve(m.REPORT_STATE, report_state)
    server.serve(m.SYNC, _sync)
    state = m.AgentState("hv1", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A",
                         {"devices": 1}, start_flag=True, availability_zone="az1")

    # a newer agent: fields this server does not know are ignored
    agent.encode = _as_version(+1, load_balancing="fancy")
    assert agent.call(m.REPORT_STATE, state) == m.AgentRegistered("agent-1", 75)
    assert received[-1] == state
    # an older agent: what it does not send takes the defaults
    agent.encode = _as_version(-1, drop=("availability_zone", "network_ids"))
    assert agent.call(m.REPORT_STATE, state) == m.AgentRegistered("agent-1", 75)
    assert received[-1].availability_zone is None  # type: ignore[attr-defined]
    assert agent.call(m.SYNC, m.SyncRequest("h", ["n"])).networks == [  # type: ignore[attr-defined]
        {"id": "h", "asked": None}]
    # two versions apart: refused, loudly, on both sides
    agent.encode = _as_version(+2)
    with pytest.raises(BusError, match="version"):
        agent.call(m.SYNC, m.SyncRequest("h"))
    agent.encode = _as_version(0)

    # a newer server answers with fields this agent does not know; an older one without
    # the ones added since
    server.encode = _as_version(+1, drop=(), renamed_nothing=True)
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]
    server.encode = _as_version(-1, drop=("ports",))
    reply = agent.call(m.SYNC, m.SyncRequest("h"))
    assert isinstance(reply, m.HostState) and reply.ports == []
    server.encode = _as_version(+2)
    with pytest.raises(BusError, match="cannot read the server's answer"):
        agent.call(m.SYNC, m.SyncRequest("h"))

    # events: one version apart is read, two apart dropped (the agent resyncs anyway)
    seen: list[m.Message] = []
    agent.subscribe(CHANGES, seen.append)
    server.encode = _as_version(+1, owner="new")
    server.publish(CHANGES, m.Changed("port", "p1", "n1", "hv1"))
    server.encode = _as_version(+2)
    server.publish(CHANGES, m.Changed("port", "p2", "n1", "hv1"))
    server.encode = _as_version(-1, drop=("host",))
    server.publish(CHANGES, m.Changed("port", "p3", "n1", "hv1"))
    wait_for(lambda: len(seen) == 2, what="two readable marks")
    time.sleep(0.2)
    assert seen == [m.Changed("port", "p1", "n1", "hv1"), m.Changed("port", "p3", "n1", "")]


def test_lost_connection_fails_fast_reconnects_and_says_so(buses: Buses) -> None:
    server = buses("server")
    server.serve(m.SYNC, _sync)
    proxy = buses.proxy()
    agent = buses("agent", proxy.url)
    reconnects: list[float] = []
    agent.on_reconnect(lambda: reconnects.append(time.monotonic()))
    seen: list[m.Message] = []
    agent.subscribe(CHANGES, seen.append)
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]
    assert agent.connections == 1

    proxy.cut()  # the network between this agent and the broker goes
    wait_for(lambda: not agent.connected, what="the agent to notice")
    started = time.monotonic()
    with pytest.raises(BusUnavailable, match="not connected"):
        agent.call(m.SYNC, m.SyncRequest("h"))
    assert time.monotonic() - started < 0.5
    server.publish(CHANGES, m.Changed("network", "missed", "missed"))  # lost for the agent
    time.sleep(1.0)  # reconnect attempts fail meanwhile, with backoff
    assert agent.connections == 1

    proxy.restore()
    wait_for(lambda: agent.connected, what="the reconnect")
    wait_for(lambda: reconnects, what="the reconnect callback")  # the agent resyncs on it
    assert agent.connections == 2
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]
    server.publish(CHANGES, m.Changed("network", "after", "after"))
    wait_for(lambda: seen, what="marks after the reconnect")
    assert seen == [m.Changed("network", "after", "after")]


def test_server_connection_lost_keeps_its_events_and_serves_again(buses: Buses) -> None:
    proxy = buses.proxy()
    server = buses("server", proxy.url)
    server.serve(m.SYNC, _sync)
    agent = buses("agent")
    seen: list[m.Message] = []
    agent.subscribe(CHANGES, seen.append)
    assert agent.call(m.SYNC, m.SyncRequest("h")).generation == 7  # type: ignore[attr-defined]

    proxy.cut()
    wait_for(lambda: not server.connected, what="the server to notice")
    # its queue went with its connection: agents know at once the server is away
    wait_for(lambda: _unavailable(agent), 5, "calls to fail while the server is away")
    # events of writes committed meanwhile wait for the connection
    server.publish(CHANGES, m.Changed("port", "p1", "n1", "hv1"))
    server.publish(CHANGES, m.Changed("port", "p2", "n1", "hv1"))
    time.sleep(0.3)
    assert seen == []
    proxy.restore()
    wait_for(lambda: len(seen) == 2, what="the kept events")
    assert [c.id for c in seen] == ["p1", "p2"]  # type: ignore[attr-defined]
    wait_for(lambda: not _unavailable(agent), 5, "the server to serve again")


def _unavailable(agent: AmqpBus) -> bool:
    try:
        agent.call(m.SYNC, m.SyncRequest("h"), timeout=2)
    except BusUnavailable:
        return True
    return False


def test_the_server_side_answers_an_agent_over_amqp(buses: Buses, tmp_path: Path) -> None:
    """The real server (API + AgentServer) with bus_url set: registration shows in the
    API, a committed write reaches the agent as a mark, reports make a port ACTIVE."""
    server = start_server(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", bus_url=AMQP_URL,
                          bus_prefix=buses.prefix)
    bus = server._server.config.app.state.bus  # type: ignore[attr-defined]
    try:
        assert isinstance(bus, AmqpBus) and bus.wait_connected(10)
        agent = buses("agent")
        marks: list[m.Message] = []
        agent.subscribe(CHANGES, marks.append)
        config = {"tunnel_types": ["vxlan"], "network_types": ["flat", "vxlan"],
                  "interface_mappings": {}}
        reply = agent.call(m.REPORT_STATE, m.AgentState(
            "hv1", "Linux bridge agent", "neutrino-linuxbridge-agent", "N/A", config,
            start_flag=True))
        assert isinstance(reply, m.AgentRegistered)
        api = Client(server.url)
        agents = api.get("/agents").json()["agents"]
        assert [(a["id"], a["host"], a["alive"]) for a in agents] == [
            (reply.agent_id, "hv1", True)]

        net = api.create("networks", name="n")
        port = api.create("ports", network_id=net["id"], **{"binding:host_id": "hv1"})
        assert port["binding:vif_type"] == "bridge" and port["status"] == "DOWN"
        wait_for(lambda: any(getattr(c, "id", None) == port["id"] for c in marks),
                 what="the port's mark")
        state = agent.call(m.SYNC, m.SyncRequest("hv1"))
        assert isinstance(state, m.HostState)
        assert [p["id"] for p in state.ports] == [port["id"]]
        agent.call(m.REPORT_PORTS, m.PortReports("hv1", [
            {"port_id": port["id"], "component": "l2", "up": True,
             "revision": state.ports[0]["revision_number"]}]))
        assert api.get(f"/ports/{port['id']}").json()["port"]["status"] == "ACTIVE"
    finally:
        server.stop()
        bus.close()


def test_agent_command_needs_a_bus_url(tmp_path: Path, capsys: pytest.CaptureFixture,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEUTRINO_BUS_URL", raising=False)
    cfg = tmp_path / "agent.toml"
    cfg.write_text('agent_host = "hv1"\n')
    assert main(["agent", "--config", str(cfg)]) == 2
    assert "bus_url" in capsys.readouterr().err


def test_serve_with_two_workers_on_postgresql(buses: Buses, tmp_path: Path,
                                              database_factory) -> None:
    """`neutrino serve` as operators run it (PostgreSQL, two workers, bus_url): both
    workers publish marks, and both consume the agents' calls: a port's reports from L2
    and DHCP, taken by whichever worker, meet in the database and make it ACTIVE."""
    url = database_factory("postgresql")
    port = free_port()
    cfg = tmp_path / "neutrino.toml"
    cfg.write_text(f'database_url = "{url}"\nport = {port}\nworkers = 2\nauth = "noauth"\n'
                   f'bus_url = "{AMQP_URL}"\nbus_prefix = "{buses.prefix}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEUTRINO_")}
    proc = subprocess.Popen([NEUTRINO, "serve", "--config", str(cfg)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api = Client(f"http://127.0.0.1:{port}")

        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read()  # type: ignore[union-attr]
            try:
                return api.get("/networks").status_code == 200
            except requests.ConnectionError:
                return False
        wait_for(up, 30, "serve to answer")
        agent = buses("agent")
        marks: list[m.Message] = []
        agent.subscribe(CHANGES, marks.append)
        config = {"tunnel_types": ["vxlan"], "network_types": ["flat", "vxlan"]}
        for kind, binary in (("Linux bridge agent", "neutrino-linuxbridge-agent"),
                             ("DHCP agent", "neutrino-dhcp-agent")):
            wait_for(lambda k=kind, b=binary: _registers(agent, k, b, config), 15,
                     "both workers' consumers to be up")
        assert {a["agent_type"] for a in api.get("/agents").json()["agents"]} == {
            "Linux bridge agent", "DHCP agent"}
        net, _ = api.network_with_subnet("10.1.0.0/24")
        ports = [api.create("ports", network_id=net["id"], **{"binding:host_id": "hv1"})
                 for _ in range(4)]  # the requests spread over both workers
        wait_for(lambda: {p["id"] for p in ports} <= {getattr(c, "id", "") for c in marks},
                 what="a mark for every port")
        for p in ports:
            for component in ("l2", "dhcp"):  # two calls, maybe two workers
                agent.call(m.REPORT_PORTS, m.PortReports("hv1", [
                    {"port_id": p["id"], "component": component, "up": True,
                     "revision": p["revision_number"]}]))
        assert [api.get(f"/ports/{p['id']}").json()["port"]["status"] for p in ports] == [
            "ACTIVE"] * 4
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out


def _registers(agent: AmqpBus, kind: str, binary: str, config: dict) -> bool:
    try:
        agent.call(m.REPORT_STATE, m.AgentState("hv1", kind, binary, "N/A", config,
                                                start_flag=True), timeout=5)
    except BusUnavailable:
        return False
    return True
