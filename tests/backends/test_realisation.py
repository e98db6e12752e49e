"""Realisation is data: two `neutrino serve` processes on one database (PostgreSQL,
MariaDB), each on a bus prefix of its own so that the test chooses which one takes
an agent's call.  A report taken by one server counts on the other, a restarted
server still knows what was reported, a report of an older revision does not make a
port ACTIVE (while the port's own status writes do not make reports stale), the
generation grows across servers and restarts, and concurrent reports from several
hosts through both servers lose nothing.  Calls delivered twice change nothing more.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from neutrino.bus import BusUnavailable
from neutrino.bus import messages as m
from neutrino.bus.amqp import AmqpBus
from neutrino.db import tables as t
from tests import conftest
from tests.backends.serving import Served, serve
from tests.conftest import Client
from tests.rabbit import AMQP_URL, delete_topology, need_broker, new_prefix

L2_AGENT = ("Linux bridge agent", "neutrino-linuxbridge-agent")
DHCP_AGENT = ("DHCP agent", "neutrino-dhcp-agent")


class Cloud:
    """Servers ``a`` and ``b`` on one database; ``bus(name)`` is an agent's bus to one."""

    def __init__(self, tmp: Path, url: str) -> None:
        self.tmp, self.url = tmp, url
        self.prefixes = {"a": new_prefix(), "b": new_prefix()}
        self.served: dict[str, Served] = {}
        self._running: dict[str, contextlib.AbstractContextManager] = {}
        self._buses: dict[str, AmqpBus] = {}
        self.engine = sa.create_engine(url)

    def start(self, name: str) -> None:
        where = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        where.mkdir()
        ctx = serve(where, self.url, bus_url=AMQP_URL, bus_prefix=self.prefixes[name],
                    log_level="warning")
        self.served[name] = ctx.__enter__()
        self._running[name] = ctx
        bus = self.bus(name)
        # answering once its queue is bound
        conftest.wait_for(lambda: _answers(bus), 20, f"server {name} to take calls")

    def stop(self, name: str) -> None:
        ctx = self._running.pop(name)
        del self.served[name]
        ctx.__exit__(None, None, None)  # SIGTERM; it must stop cleanly

    def api(self, name: str) -> Client:
        return Client(self.served[name].url)

    def bus(self, name: str) -> AmqpBus:
        if name not in self._buses:
            bus = AmqpBus(AMQP_URL, prefix=self.prefixes[name], name=f"test-agent-{name}")
            assert bus.wait_connected(10)
            self._buses[name] = bus
        return self._buses[name]

    def close(self) -> None:
        for name in list(self._running):
            self.stop(name)
        for bus in self._buses.values():
            bus.close()
        for prefix in self.prefixes.values():
            delete_topology(prefix)
        self.engine.dispose()

    # -- as an agent ----------------------------------------------------------------------

    def register(self, via: str, host: str, *kinds: tuple[str, str]) -> None:
        for kind, binary in kinds or (L2_AGENT, DHCP_AGENT):
            reply = self.bus(via).call(m.REPORT_STATE, m.AgentState(
                host, kind, binary, "N/A", {"tunnel_types": ["vxlan"],
                                            "network_types": ["flat", "vxlan"]},
                start_flag=True))
            assert isinstance(reply, m.AgentRegistered)

    def report(self, via: str, host: str, *reports: tuple[str, str, bool, int]) -> None:
        reply = self.bus(via).call(m.REPORT_PORTS, m.PortReports(host, [
            {"port_id": p, "component": comp, "up": up, "revision": rev}
            for p, comp, up, rev in reports]))
        assert isinstance(reply, m.Ack)

    def status(self, via: str, port_id: str) -> str:
        return self.api(via).get(f"/ports/{port_id}").json()["port"]["status"]

    def rows(self, port_ids: list[str]) -> set[tuple]:
        pr = t.port_realisations
        with self.engine.connect() as conn:
            return {tuple(r) for r in conn.execute(
                sa.select(pr.c.port_id, pr.c.component, pr.c.host, pr.c.revision, pr.c.up)
                .where(pr.c.port_id.in_(port_ids)))}


def _answers(bus: AmqpBus) -> bool:
    try:
        bus.call(m.SYNC, m.SyncRequest("nobody"), timeout=3)
    except BusUnavailable:
        return False
    return True


@pytest.fixture(params=["postgresql", "mariadb"])
def cloud(request: pytest.FixtureRequest, tmp_path: Path, database_factory) -> Iterator[Cloud]:
    need_broker()
    made = Cloud(tmp_path, database_factory(request.param))
    try:
        made.start("a")  # first alone: it migrates the database
        made.start("b")
        yield made
    finally:
        made.close()


def _port(api: Client, network_id: str, host: str) -> dict:
    return api.create("ports", network_id=network_id, **{"binding:host_id": host})


def test_a_report_taken_by_one_server_counts_on_every_server_and_after_a_restart(
        cloud: Cloud) -> None:
    host = f"hv-{uuid.uuid4().hex[:6]}"
    cloud.register("a", host)
    net, _ = cloud.api("a").network_with_subnet("10.0.0.0/24")
    port = _port(cloud.api("a"), net["id"], host)
    rev = port["revision_number"]

    cloud.report("a", host, (port["id"], "l2", True, rev))
    assert cloud.status("b", port["id"]) == "DOWN", "wired, but DHCP does not know it yet"
    cloud.report("b", host, (port["id"], "dhcp", True, rev))
    assert cloud.status("a", port["id"]) == cloud.status("b", port["id"]) == "ACTIVE", \
        "server b did not know what server a was told"
    assert cloud.rows([port["id"]]) == {(port["id"], "l2", host, rev, True),
                                        (port["id"], "dhcp", host, rev, True)}

    # restarted, server a still knows both reports: one of them again (a redelivery, or
    # the agent telling it anew) leaves the port ACTIVE
    cloud.stop("a")
    cloud.start("a")
    assert cloud.status("a", port["id"]) == "ACTIVE"
    cloud.report("a", host, (port["id"], "l2", True, rev))
    assert cloud.status("a", port["id"]) == cloud.status("b", port["id"]) == "ACTIVE"
    cloud.report("a", host, (port["id"], "l2", False, rev))
    assert cloud.status("b", port["id"]) == "DOWN"
    cloud.report("b", host, (port["id"], "l2", True, rev))
    assert cloud.status("a", port["id"]) == "ACTIVE"

    # the rows go with their port
    assert cloud.api("b").delete(f"/ports/{port['id']}").status_code == 204
    assert cloud.rows([port["id"]]) == set()


def test_a_report_of_an_older_revision_does_not_make_a_port_active(cloud: Cloud) -> None:
    host = f"hv-{uuid.uuid4().hex[:6]}"
    cloud.register("a", host)
    net, _ = cloud.api("a").network_with_subnet("10.0.0.0/24")
    port = _port(cloud.api("a"), net["id"], host)
    old = port["revision_number"]
    updated = cloud.api("b").put(f"/ports/{port['id']}", {"port": {"name": "renamed"}})
    new = updated.json()["port"]["revision_number"]
    assert new > old

    # the host realised the port as it was before the update: not what it is now
    cloud.report("a", host, (port["id"], "l2", True, old), (port["id"], "dhcp", True, old))
    assert cloud.status("b", port["id"]) == "DOWN", "a report of an older revision counted"
    cloud.report("b", host, (port["id"], "l2", True, new), (port["id"], "dhcp", True, new))
    shown = cloud.api("a").get(f"/ports/{port['id']}").json()["port"]
    assert shown["status"] == "ACTIVE"
    assert shown["revision_number"] == new + 1, "a status change bumps the revision"

    # the server's own status writes do not make the host's reports stale
    cloud.report("a", host, (port["id"], "l2", False, new))
    assert cloud.status("b", port["id"]) == "DOWN"
    cloud.report("b", host, (port["id"], "l2", True, new))
    assert cloud.status("a", port["id"]) == "ACTIVE"
    # a late report (redelivered after a newer one) is left out
    cloud.report("a", host, (port["id"], "l2", False, new))
    cloud.report("b", host, (port["id"], "l2", True, old))
    assert cloud.status("a", port["id"]) == "DOWN"
    assert (port["id"], "l2", host, new, False) in cloud.rows([port["id"]])

    # any other change asks for the new revision again
    renamed = cloud.api("a").put(f"/ports/{port['id']}", {"port": {"name": "again"}})
    latest = renamed.json()["port"]["revision_number"]
    cloud.report("b", host, (port["id"], "l2", True, new))
    assert cloud.status("a", port["id"]) == "DOWN"
    cloud.report("b", host, (port["id"], "l2", True, latest), (port["id"], "dhcp", True, latest))
    assert cloud.status("a", port["id"]) == "ACTIVE"


def test_generations_grow_across_servers_and_restarts(cloud: Cloud) -> None:
    def generation(via: str) -> int:
        state = cloud.bus(via).call(m.SYNC, m.SyncRequest("hv-none"))
        assert isinstance(state, m.HostState)
        return state.generation

    first = generation("a")
    assert generation("b") == first, "the servers disagree on the generation"
    cloud.api("b").create("networks", name="g")
    second = generation("a")
    assert second > first, "a change through server b did not move server a's generation"
    assert generation("b") == second
    unchanged = cloud.api("a").get("/networks")  # a read is no change
    assert unchanged.status_code == 200 and generation("b") == second
    cloud.stop("a")
    cloud.start("a")
    assert generation("a") == second, "a restart changed the generation"
    cloud.api("a").create("networks", name="g2")
    assert generation("b") > second


def test_concurrent_reports_from_several_hosts_lose_nothing(cloud: Cloud) -> None:
    """Four hosts wire eight ports each while a fifth host's DHCP agent reports them all,
    every call through either server at once: no call fails, no row is lost, every
    port ends ACTIVE on both servers."""
    tag = uuid.uuid4().hex[:6]
    hosts = [f"hv{i}-{tag}" for i in range(4)]
    dhcp_host = f"dhcp-{tag}"
    for host in hosts:
        cloud.register("a", host, L2_AGENT)
    cloud.register("b", dhcp_host, DHCP_AGENT)
    api = cloud.api("a")
    net, _ = api.network_with_subnet("10.2.0.0/24")
    ports = {host: [_port(api, net["id"], host) for _ in range(8)] for host in hosts}
    everything = [p for mine in ports.values() for p in mine]

    def wire(i: int, host: str) -> None:
        for n, p in enumerate(ports[host]):
            cloud.report("ab"[(i + n) % 2], host, (p["id"], "l2", True, p["revision_number"]))

    def serve_dhcp(via: str, order: list[dict]) -> None:
        for start in range(0, len(order), 4):  # a few ports a call, as an agent batches
            cloud.report(via, dhcp_host, *[(p["id"], "dhcp", True, p["revision_number"])
                                           for p in order[start:start + 4]])

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        jobs = [pool.submit(wire, i, host) for i, host in enumerate(hosts)]
        jobs += [pool.submit(serve_dhcp, "a", everything),
                 pool.submit(serve_dhcp, "b", everything[::-1])]
        for job in jobs:
            job.result(timeout=120)  # a call that failed raises here

    ids = [p["id"] for p in everything]
    rows = cloud.rows(ids)
    assert {(r[0], r[1], r[2]) for r in rows} == \
        {(p["id"], "l2", host) for host, mine in ports.items() for p in mine} | \
        {(p["id"], "dhcp", dhcp_host) for p in everything}
    for via in ("a", "b"):
        listed = cloud.api(via).get(f"/ports?network_id={net['id']}&device_owner=").json()
        statuses = {p["id"]: p["status"] for p in listed["ports"]}
        assert {pid: statuses[pid] for pid in ids} == dict.fromkeys(ids, "ACTIVE")


def test_a_dhcp_port_asked_for_twice_at_once_is_made_once(cloud: Cloud) -> None:
    """The same request delivered to both servers at once (as a redelivery can)."""
    host = f"dhcp-{uuid.uuid4().hex[:6]}"
    cloud.register("a", host, DHCP_AGENT)
    api = cloud.api("a")
    nets = [api.network_with_subnet(f"10.3.{i}.0/24")[0] for i in range(4)]

    def ask(via: str, network_id: str) -> str:
        reply = cloud.bus(via).call(m.DHCP_PORT, m.DhcpPortRequest(host, network_id))
        assert isinstance(reply, m.DhcpPort) and reply.port is not None
        return reply.port["id"]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = {net["id"]: [pool.submit(ask, via, net["id"]) for via in "abab"]
                   for net in nets}
        for net_id, futures in answers.items():
            made = {f.result(timeout=60) for f in futures}
            listed = api.get(f"/ports?network_id={net_id}&device_owner=network:dhcp").json()
            assert len(made) == 1 and [p["id"] for p in listed["ports"]] == list(made)


def test_router_and_floating_ip_reports_are_rows_every_server_reads(cloud: Cloud) -> None:
    tag = uuid.uuid4().hex[:6]
    host = f"l3-{tag}"
    for kind, binary, conf in (
            (*L2_AGENT, {"bridge_mappings": {"public": "br-ex"},
                         "network_types": ["flat", "vxlan"]}),
            ("L3 agent", "neutrino-l3-agent", {"agent_mode": "legacy"})):
        cloud.bus("a").call(m.REPORT_STATE, m.AgentState(host, kind, binary, "N/A", conf,
                                                         start_flag=True))
    api = cloud.api("a")
    public = api.create("networks", name=f"public-{tag}", **{
        "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    api.create("subnets", network_id=public["id"], cidr="172.24.4.0/24", ip_version=4,
               gateway_ip="172.24.4.1", enable_dhcp=False)
    net, sub = api.network_with_subnet("10.4.0.0/24")
    router = api.create("routers", name="r", external_gateway_info={"network_id": public["id"]})
    assert api.put(f"/routers/{router['id']}/add_router_interface",
                   {"subnet_id": sub["id"]}).status_code == 200
    port = api.create("ports", network_id=net["id"])
    fip = api.create("floatingips", floating_network_id=public["id"], port_id=port["id"])
    rev = api.get(f"/routers/{router['id']}").json()["router"]["revision_number"]

    def report(via: str, who: str, routers: list[tuple[str, int]],
               fips: tuple[str, ...] = ()) -> None:
        reply = cloud.bus(via).call(m.REPORT_ROUTERS, m.RouterReports(
            who, [{"router_id": router["id"], "status": s, "revision": r} for s, r in routers],
            [{"floatingip_id": fip["id"], "status": s} for s in fips]))
        assert isinstance(reply, m.Ack)

    def shown(via: str) -> tuple[str, str]:
        return (cloud.api(via).get(f"/routers/{router['id']}").json()["router"]["status"],
                cloud.api(via).get(f"/floatingips/{fip['id']}").json()["floatingip"]["status"])

    report("a", host, [("ERROR", rev)], ("DOWN",))
    assert shown("b") == ("ERROR", "DOWN")
    report("b", host, [("ACTIVE", rev)], ("ACTIVE",))
    assert shown("a") == shown("b") == ("ACTIVE", "ACTIVE")
    # only the host forwarding a floating IP (its router's) speaks for it
    report("b", f"other-{tag}", [("DOWN", rev)], ("DOWN",))
    assert shown("a") == ("ACTIVE", "ACTIVE")

    # a late report (of an older revision than the one taken) is left out
    report("a", host, [("DOWN", rev + 1)])
    report("b", host, [("ACTIVE", rev)])
    assert shown("a")[0] == "DOWN"
    with cloud.engine.connect() as conn:
        rr, fr = t.router_realisations, t.floatingip_realisations
        assert set(conn.execute(sa.select(rr.c.component, rr.c.host, rr.c.revision, rr.c.status)
                                .where(rr.c.router_id == router["id"]))) == {
            ("l3", host, rev + 1, "DOWN"), ("l3", f"other-{tag}", rev, "DOWN")}
        assert set(conn.execute(sa.select(fr.c.host, fr.c.status)
                                .where(fr.c.floatingip_id == fip["id"]))) == {
            (host, "ACTIVE"), (f"other-{tag}", "DOWN")}

    cloud.stop("a")
    cloud.start("a")
    report("a", host, [("DOWN", rev + 1)], ("ACTIVE",))  # the same again: nothing changes
    assert shown("a") == shown("b") == ("DOWN", "ACTIVE")
    assert cloud.api("b").delete(f"/floatingips/{fip['id']}").status_code == 204
    with cloud.engine.connect() as conn:
        assert conn.scalar(sa.select(sa.func.count()).select_from(fr).where(
            fr.c.floatingip_id == fip["id"])) == 0
