"""Change events are written with the transaction that caused them (the outbox), for
every object it touched, and published after the commit.  On every backend, with a
real server: what the bus's subscribers get (the in-process bus, as `neutrino up`'s
agent hears it), and what the outbox holds when the publisher is held back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from neutrino.bus import messages as m
from neutrino.bus.core import CHANGES
from neutrino.db import tables as t
from neutrino.rpc.publisher import FAULT_ENV, Publisher
from neutrino.services.core.events import generation
from tests.api.test_l3_hosts import _register, settle
from tests.conftest import BACKENDS, Client, Server, assert_error, start_server


class Heard:
    """What the bus's subscribers were told, as (kind, id) and whole messages."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.messages: list[m.Changed] = []
        bus = server._server.config.app.state.bus  # type: ignore[attr-defined]
        self.stop = bus.subscribe(CHANGES, self.messages.append)

    def got(self) -> set[tuple[str, str]]:
        """The (kind, id) of every event published since the last clear, once the
        outbox drained."""
        settle(self.server)
        return {(e.kind, e.id) for e in self.messages}

    def clear(self) -> None:
        settle(self.server)
        self.messages.clear()


@pytest.fixture
def heard(server: Server) -> Iterator[Heard]:
    h = Heard(server)
    h.clear()
    yield h
    h.stop()


def test_router_interface_adds_its_ports_event(server: Server, admin: Client,
                                               heard: Heard) -> None:
    net, sub = admin.network_with_subnet("10.20.0.0/24")
    router = admin.create("routers", name="r")
    heard.clear()
    r = admin.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    got = heard.got()
    assert ("port", r.json()["port_id"]) in got, got
    assert ("router", router["id"]) in got
    port_events = [e for e in heard.messages if e.id == r.json()["port_id"]]
    assert all(e.network_id == net["id"] for e in port_events)

    heard.clear()
    r = admin.put(f"/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    assert {("port", r.json()["port_id"]), ("router", router["id"])} <= heard.got()


def test_network_delete_records_its_ports_and_subnets(server: Server, admin: Client,
                                                      heard: Heard) -> None:
    net, sub = admin.network_with_subnet("10.21.0.0/24")
    # the network's own ports (a DHCP port), which its delete removes
    dhcp = admin.create("ports", network_id=net["id"], device_owner="network:dhcp",
                        device_id=f"dhcp-{uuid.uuid4()}", **{"binding:host_id": "hv-a"})
    heard.clear()
    r = admin.delete(f"/networks/{net['id']}")
    assert r.status_code == 204, r.text
    assert heard.got() == {("network", net["id"]), ("subnet", sub["id"]),
                              ("port", dhcp["id"])}
    (gone,) = [e for e in heard.messages if e.kind == "port"]
    assert (gone.network_id, gone.host) == (net["id"], "hv-a")  # read before it went


def test_port_update_of_groups_records_the_groups(server: Server, heard: Heard) -> None:
    project = uuid.uuid4().hex
    user = Client(server.url, project)
    net, _ = user.network_with_subnet("10.22.0.0/24")
    web = user.create("security-groups", name="web")
    db = user.create("security-groups", name="db")
    heard.clear()
    port = user.create("ports", network_id=net["id"], security_groups=[web["id"]])
    assert {("port", port["id"]), ("security_group", web["id"])} <= heard.got()

    # web -> db: both groups' members changed, nothing else
    heard.clear()
    r = user.put(f"/ports/{port['id']}", {"port": {"security_groups": [db["id"]]}})
    assert r.status_code == 200, r.text
    assert heard.got() == {("port", port["id"]), ("security_group", web["id"]),
                              ("security_group", db["id"])}
    # a new address: its group's members' addresses changed
    heard.clear()
    r = user.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [{"ip_address": "10.22.0.77"}]}})
    assert r.status_code == 200, r.text
    assert heard.got() == {("port", port["id"]), ("security_group", db["id"])}
    # a name: the port alone
    heard.clear()
    r = user.put(f"/ports/{port['id']}", {"port": {"name": "renamed"}})
    assert r.status_code == 200, r.text
    assert heard.got() == {("port", port["id"])}
    # nothing changed: no event at all
    heard.clear()
    r = user.put(f"/ports/{port['id']}", {"port": {"name": "renamed"}})
    assert r.status_code == 200, r.text
    assert heard.got() == set()
    # gone: it leaves its group
    r = user.delete(f"/ports/{port['id']}")
    assert r.status_code == 204
    assert heard.got() == {("port", port["id"]), ("security_group", db["id"])}
    # a rule names its group
    heard.clear()
    user.create("security-group-rules", security_group_id=web["id"],
                direction="ingress", ethertype="IPv4", protocol="tcp",
                port_range_min=22, port_range_max=22)
    assert heard.got() == {("security_group", web["id"])}


def test_port_delete_records_its_floating_ip(server: Server, admin: Client,
                                             heard: Heard) -> None:
    tag = uuid.uuid4().hex[:6]
    public = admin.create("networks", name=f"pub-{tag}", **{"router:external": True})
    admin.create("subnets", network_id=public["id"], cidr="172.30.0.0/24", ip_version=4)
    net, sub = admin.network_with_subnet("10.23.0.0/24")
    router = admin.create("routers", name="r", external_gateway_info={
        "network_id": public["id"]})
    assert admin.put(f"/routers/{router['id']}/add_router_interface",
                     {"subnet_id": sub["id"]}).status_code == 200
    port = admin.create("ports", network_id=net["id"])
    fip = admin.create("floatingips", floating_network_id=public["id"], port_id=port["id"])
    assert fip["router_id"] == router["id"]
    heard.clear()
    r = admin.delete(f"/ports/{port['id']}")
    assert r.status_code == 204
    assert {("port", port["id"]), ("floatingip", fip["id"])} <= heard.got()
    (event,) = [e for e in heard.messages if e.kind == "floatingip"]
    assert event.router_id is None  # disassociated
    assert admin.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None


def test_an_agent_coming_up_records_the_ports_it_binds(server: Server, admin: Client,
                                                        heard: Heard) -> None:
    """Writes the agents' calls make are recorded too: a router nobody realised binds
    its ports to the first L3 agent that comes up."""
    _, sub = admin.network_with_subnet("10.24.0.0/24")
    router = admin.create("routers", name="r")
    r = admin.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200
    heard.clear()
    host = f"l3-{uuid.uuid4().hex[:6]}"
    _register(server, host)
    got = heard.got()
    assert ("port", r.json()["port_id"]) in got and ("router", router["id"]) in got
    assert any(e.kind == "port" and e.host == host for e in heard.messages)


def test_a_refused_write_records_nothing(server: Server, admin: Client,
                                         heard: Heard) -> None:
    net, _ = admin.network_with_subnet("10.25.0.0/24")
    admin.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.25.0.9"}])
    heard.clear()
    before = server.db.run_read(generation)
    # the port row is written, then its address conflicts: the transaction rolls back
    r = admin.post("/ports", {"port": {"network_id": net["id"],
                                        "fixed_ips": [{"ip_address": "10.25.0.9"}]}})
    assert_error(r, 409, "IpAddressAlreadyAllocated")
    assert heard.got() == set()
    assert server.db.run_read(generation) == before
    # a committed write: one generation for the whole transaction, whatever it recorded
    heard.clear()
    admin.create("ports", network_id=net["id"])
    assert len(heard.got()) >= 2  # its port and its project's default group
    assert server.db.run_read(generation) == before + 1


# -- the outbox itself, with the publisher held back ------------------------------------

@pytest.fixture(scope="module", params=BACKENDS)
def held(request: pytest.FixtureRequest, database_factory,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose publisher publishes nothing (the injected fault): what the writes
    recorded stays in the outbox to be read."""
    url = database_factory(request.param)
    mp = pytest.MonkeyPatch()
    mp.setenv(FAULT_ENV, "hold")
    try:
        srv = start_server(tmp_path_factory.mktemp("held"), url)
    finally:
        mp.undo()
    yield srv
    srv.stop()


def _outbox(server: Server) -> list[sa.Row]:
    o = t.outbox_events
    return server.db.run_read(lambda conn: conn.execute(
        sa.select(o).order_by(o.c.id)).all())


def test_the_outbox_holds_each_transactions_events(held: Server) -> None:
    admin = Client(held.url)
    start = len(_outbox(held))
    net = admin.create("networks", name="n")
    rows = _outbox(held)[start:]
    assert [(r.kind, r.object_id, r.topic) for r in rows] == [("network", net["id"], CHANGES)]
    assert m.from_wire(rows[0].payload) == m.Changed("network", net["id"], net["id"])
    assert rows[0].created_at.endswith("Z")

    # one transaction, several objects: a subnet and its network (a new revision)
    sub = admin.create("subnets", network_id=net["id"], cidr="10.26.0.0/24", ip_version=4)
    rows = _outbox(held)[start + 1:]
    assert [(r.kind, r.object_id) for r in rows] == [("subnet", sub["id"]),
                                                    ("network", net["id"])]
    # ids grow in commit order; nothing was published (held), so nothing was deleted
    ids = [r.id for r in _outbox(held)]
    assert ids == sorted(ids) and len(ids) == len(set(ids))

    # the held rows go out once a publisher without the fault runs (as after a restart)
    bus = held._server.config.app.state.bus  # type: ignore[attr-defined]
    heard: list[m.Changed] = []
    stop = bus.subscribe(CHANGES, heard.append)
    try:
        total = len(_outbox(held))
        assert Publisher(bus, held.db).drain() == total
        assert _outbox(held) == []
        assert m.Changed("subnet", sub["id"], net["id"]) in heard
        assert len(heard) == total
    finally:
        stop()


def test_a_tag_is_a_new_revision_and_its_event(server: Server, admin: Client,
                                               heard: Heard) -> None:
    """Hosts realise revisions: a tag write makes one, so it tells them (else a host
    would go on reporting the revision before it, which no longer counts)."""
    net, sub = admin.network_with_subnet("10.27.0.0/24")
    port = admin.create("ports", network_id=net["id"])
    for collection, item, kind in (("ports", port, "port"), ("networks", net, "network"),
                                   ("subnets", sub, "subnet")):
        heard.clear()
        r = admin.put(f"/{collection}/{item['id']}/tags/blue")
        assert r.status_code == 201, r.text
        assert heard.got() == {(kind, item["id"])}
        shown = admin.get(f"/{collection}/{item['id']}").json()[kind]
        assert shown["revision_number"] > item["revision_number"]
    # the same tags again: no new revision, no event
    heard.clear()
    r = admin.put(f"/ports/{port['id']}/tags", {"tags": ["blue"]})
    assert r.status_code == 200
    assert heard.got() == set()
