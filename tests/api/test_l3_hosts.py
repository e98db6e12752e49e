"""The server's L3 side, driven through the bus as an L3 agent would: scheduling routers
to a live L3 agent (their ports bound there), the desired state a host gets for its
routers, the change events router and floating IP writes publish (their ports' too),
and the status that realisation reports set.  On every backend."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from neutrino.bus import messages as m
from neutrino.bus.core import CHANGES
from neutrino.db import tables as t
from tests.conftest import Client, Server, wait_for


def _bus(server: Server):  # type: ignore[no-untyped-def]
    return server._server.config.app.state.bus  # type: ignore[attr-defined]


def published(server: Server) -> bool:
    """Whether the outbox is empty: every event committed so far was published (a row
    goes only after its event was handed to the bus's subscribers)."""
    return server.db.run_read(
        lambda conn: conn.scalar(sa.select(sa.func.count()).select_from(t.outbox_events))) == 0


def settle(server: Server) -> None:
    wait_for(lambda: published(server), 10, "the outbox to drain")


def _register(server: Server, host: str, *, l3: bool = True) -> None:
    agents = [("Linux bridge agent", "neutrino-linuxbridge-agent",
               {"tunnel_types": ["vxlan"], "interface_mappings": {},
                "bridge_mappings": {"public": "br-ex"}, "network_types": ["flat", "vxlan"]})]
    if l3:
        agents.append(("L3 agent", "neutrino-l3-agent", {"agent_mode": "legacy"}))
    for agent_type, binary, config in agents:
        reply = _bus(server).call(m.REPORT_STATE, m.AgentState(host, agent_type, binary, "t",
                                                               config, start_flag=True))
        assert isinstance(reply, m.AgentRegistered)


def _sync(server: Server, host: str, routers: list[str] | None = None) -> m.HostState:
    state = _bus(server).call(m.SYNC, m.SyncRequest(host, None if routers is None else [],
                                                    routers))
    assert isinstance(state, m.HostState)
    return state


def _router_ports(admin: Client, router_id: str) -> list[dict]:
    return admin.get(f"/ports?device_id={router_id}").json()["ports"]


def test_scheduling_state_events_and_reports(server: Server, admin: Client) -> None:
    tag = uuid.uuid4().hex[:6]
    public = admin.create("networks", name=f"public-{tag}", **{
        "router:external": True, "provider:network_type": "flat",
        "provider:physical_network": "public"})
    admin.create("subnets", network_id=public["id"], cidr="172.24.4.0/24", ip_version=4,
                 gateway_ip="172.24.4.1", enable_dhcp=False)
    net, sub = admin.network_with_subnet("10.0.0.0/24")
    events: list[m.Changed] = []
    unsubscribe = _bus(server).subscribe(CHANGES, events.append)
    try:
        # no L3 agent yet: stored, not scheduled (upstream without an L3 agent)
        router = admin.create("routers", name="r", external_gateway_info={
            "network_id": public["id"]})
        r = admin.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
        assert r.status_code == 200, r.text
        assert {p["binding:host_id"] for p in _router_ports(admin, router["id"])} == {""}
        settle(server)
        assert any(e.kind == "router" and e.id == router["id"] for e in events)

        # an L3 agent comes to life: the routers nobody realises are its own now
        host = f"l3-{tag}"
        _register(server, host)
        ports = _router_ports(admin, router["id"])
        assert {(p["binding:host_id"], p["binding:vif_type"]) for p in ports} == {
            (host, "bridge")}
        gateway = next(p for p in ports if p["device_owner"] == "network:router_gateway")
        assert gateway["binding:vif_details"]["bridge_name"] == "br-ex"

        # the host's desired state: the router, its ports with addresses and MTU
        state = _sync(server, host)
        (mine,) = [x for x in state.routers if x["id"] == router["id"]]
        assert mine["gateway"]["fixed_ips"][0]["gateway_ip"] == "172.24.4.1"
        assert mine["gateway"]["mtu"] == 1500
        (interface,) = mine["interfaces"]
        assert interface["fixed_ips"][0]["ip_address"] == "10.0.0.1"
        assert interface["mtu"] == net["mtu"] and mine["enable_snat"] is True
        assert {n["id"] for n in state.networks} >= {public["id"], net["id"]}
        assert _sync(server, f"other-{tag}").routers == []

        # a floating IP: events name the router it goes through, the state lists it
        port = admin.create("ports", network_id=net["id"])
        fip = admin.create("floatingips", floating_network_id=public["id"],
                           port_id=port["id"])
        assert fip["status"] == "DOWN"
        settle(server)
        assert any(e.kind == "floatingip" and e.id == fip["id"] and
                   e.router_id == router["id"] for e in events)
        (mine,) = _sync(server, host, [router["id"]]).routers
        assert mine["floatingips"] == [{
            "id": fip["id"], "floating_ip_address": fip["floating_ip_address"],
            "fixed_ip_address": port["fixed_ips"][0]["ip_address"], "port_id": port["id"],
            "revision_number": fip["revision_number"]}]

        # realisation reports set the status; only the router's own host speaks for it
        def report(who: str, router_status: str, fip_status: str) -> None:
            _bus(server).call(m.REPORT_ROUTERS, m.RouterReports(
                who, [{"router_id": router["id"], "status": router_status}],
                [{"floatingip_id": fip["id"], "status": fip_status}]))

        report(host, "ERROR", "DOWN")
        assert admin.get(f"/routers/{router['id']}").json()["router"]["status"] == "ERROR"
        report(f"other-{tag}", "DOWN", "ACTIVE")
        assert admin.get(f"/routers/{router['id']}").json()["router"]["status"] == "ERROR"
        report(host, "ACTIVE", "ACTIVE")
        assert admin.get(f"/routers/{router['id']}").json()["router"]["status"] == "ACTIVE"
        assert admin.get(f"/floatingips/{fip['id']}").json()["floatingip"]["status"] == \
            "ACTIVE"

        # disassociated: the event still reaches the router's host (from its snapshot), a
        # late ACTIVE report is ignored, DOWN is taken
        settle(server)
        events.clear()
        r = admin.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
        assert r.status_code == 200, r.text
        settle(server)
        assert [(e.kind, e.router_id) for e in events] == [("floatingip", None)]
        assert _sync(server, host, [router["id"]]).routers[0]["floatingips"] == []
        report(host, "ACTIVE", "ACTIVE")
        report(host, "ACTIVE", "DOWN")
        assert admin.get(f"/floatingips/{fip['id']}").json()["floatingip"]["status"] == "DOWN"

        # a new interface is bound at once (the router is scheduled): the router's event
        # and its new port's (made, then bound to the router's host)
        net2, sub2 = admin.network_with_subnet("10.1.0.0/24")
        settle(server)
        events.clear()
        r = admin.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub2["id"]})
        assert r.status_code == 200, r.text
        added = next(p for p in _router_ports(admin, router["id"])
                     if p["network_id"] == net2["id"])
        assert added["binding:host_id"] == host and added["status"] == "DOWN"
        settle(server)
        assert [(e.kind, e.id, e.network_id, e.host) for e in events] == [
            ("port", added["id"], net2["id"], ""), ("port", added["id"], net2["id"], host),
            ("router", router["id"], None, host)]
        # removal: the router's event and its removed port's
        events.clear()
        r = admin.put(f"/routers/{router['id']}/remove_router_interface",
                      {"subnet_id": sub2["id"]})
        assert r.status_code == 200, r.text
        settle(server)
        assert [(e.kind, e.id, e.host) for e in events] == [
            ("port", added["id"], host), ("router", router["id"], host)]

        # deleting: the event goes out while the router still exists (its host is known),
        # with its gateway port's
        assert admin.delete(f"/floatingips/{fip['id']}").status_code == 204
        r = admin.put(f"/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]})
        assert r.status_code == 200, r.text
        settle(server)
        events.clear()
        assert admin.delete(f"/routers/{router['id']}").status_code == 204
        settle(server)
        assert [(e.kind, e.id, e.host) for e in events] == [
            ("router", router["id"], host), ("port", gateway["id"], host)]
        assert _sync(server, host, [router["id"]]).routers == []
    finally:
        unsubscribe()
