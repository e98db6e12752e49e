"""Agents over the API (admin only, as upstream), binding by live agents, and port
status from realisation reports, driven through the bus as an agent would."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from neutrino.bus import messages as m
from tests.conftest import Client, Server, assert_error, start_server


def _bus(server: Server):  # type: ignore[no-untyped-def]
    return server._server.config.app.state.bus  # type: ignore[attr-defined]


def _register(server: Server, host: str, *, vlan: bool = False) -> list[str]:
    ids = []
    for agent_type, binary, config in (
            ("Linux bridge agent", "neutrino-linuxbridge-agent",
             {"tunnel_types": ["vxlan"], "interface_mappings": {"physnet1": "eth1"},
              "network_types": ["flat", "vxlan"] + (["vlan"] if vlan else [])}),
            ("DHCP agent", "neutrino-dhcp-agent", {"dhcp_driver": "dnsmasq"})):
        reply = _bus(server).call(m.REPORT_STATE, m.AgentState(host, agent_type, binary, "t",
                                                               config, start_flag=True))
        assert isinstance(reply, m.AgentRegistered)
        ids.append(reply.agent_id)
    return ids


def _report(server: Server, host: str, port_id: str, component: str, up: bool) -> None:
    _bus(server).call(m.REPORT_PORTS, m.PortReports(host, [
        {"port_id": port_id, "component": component, "up": up, "revision": 1}]))


def test_agents_api_is_admin_only_and_upstream_shaped(server: Server, admin: Client,
                                                      project_client) -> None:
    host = f"h-{uuid.uuid4().hex[:6]}"
    l2_id, dhcp_id = _register(server, host)
    listed = admin.get(f"/agents?host={host}").json()["agents"]
    assert {a["id"] for a in listed} == {l2_id, dhcp_id}
    agent = admin.get(f"/agents/{l2_id}").json()["agent"]
    assert set(agent) == {"id", "agent_type", "binary", "topic", "host", "admin_state_up",
                          "alive", "availability_zone", "description", "heartbeat_timestamp",
                          "started_at", "created_at", "configurations"}
    assert agent["alive"] is True and agent["agent_type"] == "Linux bridge agent"
    assert len(agent["heartbeat_timestamp"]) == 19 and agent["heartbeat_timestamp"][10] == " "
    assert [a["id"] for a in admin.get(f"/agents?host={host}&agent_type=DHCP%20agent")
            .json()["agents"]] == [dhcp_id]
    assert len(admin.get(f"/agents?host={host}&alive=true").json()["agents"]) == 2
    assert_error(admin.get("/agents?alive=maybe"), 400, "InvalidInput")

    member = project_client()
    assert member.get("/agents").json() == {"agents": []}
    assert_error(member.get(f"/agents/{l2_id}"), 404, "AgentNotFound")
    assert_error(member.put(f"/agents/{l2_id}", {"agent": {"description": "x"}}), 404)

    assert_error(admin.post("/agents", {"agent": {}}), 400, "BadRequest")
    assert_error(admin.put(f"/agents/{l2_id}", {"agent": {"host": "y"}}), 400)
    r = admin.put(f"/agents/{l2_id}", {"agent": {"admin_state_up": False,
                                                 "description": "maintenance"}})
    assert r.status_code == 200, r.text
    assert r.json()["agent"]["admin_state_up"] is False
    assert r.json()["agent"]["description"] == "maintenance"
    assert admin.put(f"/agents/{l2_id}", {"agent": {"admin_state_up": True}}).status_code == 200
    assert_error(admin.get(f"/agents/{l2_id}/tags"), 404)

    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert "agent" in aliases and "agent-resources-synced" not in aliases

    assert admin.delete(f"/agents/{dhcp_id}").status_code == 204
    assert_error(admin.get(f"/agents/{dhcp_id}"), 404, "AgentNotFound")
    # a live agent's next heartbeat registers it again
    assert dhcp_id not in _register(server, host)


def test_binding_follows_live_agents(server: Server, admin: Client) -> None:
    host = f"h-{uuid.uuid4().hex[:6]}"
    net = admin.create("networks", name="bind")
    early = admin.create("ports", network_id=net["id"], **{"binding:host_id": host})
    assert early["binding:vif_type"] == "binding_failed" and early["status"] == "DOWN"
    unbound = admin.create("ports", network_id=net["id"])
    assert unbound["binding:vif_type"] == "unbound"
    _register(server, host)
    rebound = admin.get(f"/ports/{early['id']}").json()["port"]
    assert rebound["binding:vif_type"] == "bridge", "bound once its host's agent came up"
    assert rebound["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                              "bridge_name": f"brq{net['id'][:11]}"}
    port = admin.put(f"/ports/{unbound['id']}", {"port": {"binding:host_id": host}}).json()
    assert port["port"]["binding:vif_type"] == "bridge"
    vlan = admin.create("networks", **{"provider:network_type": "vlan",
                                       "provider:physical_network": "physnet1"})
    refused = admin.create("ports", network_id=vlan["id"], **{"binding:host_id": host})
    assert refused["binding:vif_type"] == "binding_failed", "this agent cannot do VLANs"
    for p in (early, unbound, refused):
        admin.delete(f"/ports/{p['id']}")


def test_status_follows_realisation(server: Server, admin: Client) -> None:
    host = f"h-{uuid.uuid4().hex[:6]}"
    _register(server, host)
    net, _ = admin.network_with_subnet("10.0.0.0/24")
    port = admin.create("ports", network_id=net["id"], **{"binding:host_id": host})

    def status() -> str:
        return admin.get(f"/ports/{port['id']}").json()["port"]["status"]

    assert status() == "DOWN"
    _report(server, host, port["id"], "l2", True)
    assert status() == "DOWN", "wired, but DHCP does not know it yet"
    _report(server, host, port["id"], "dhcp", True)
    assert status() == "ACTIVE"
    _report(server, "another-host", port["id"], "l2", False)
    assert status() == "ACTIVE", "only the bound host's agent speaks for the port"
    _report(server, host, port["id"], "l2", False)
    assert status() == "DOWN"
    _report(server, host, port["id"], "l2", True)
    assert status() == "ACTIVE"
    moved = admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": "elsewhere"}})
    assert moved.json()["port"]["status"] == "DOWN", "DOWN until the new host wires it"


def test_sync_gives_the_host_its_desired_state(server: Server, admin: Client) -> None:
    host = f"h-{uuid.uuid4().hex[:6]}"
    _register(server, host)
    net, sub = admin.network_with_subnet("10.0.0.0/24")
    port = admin.create("ports", network_id=net["id"], **{"binding:host_id": host})
    bus = _bus(server)
    reply = bus.call(m.DHCP_PORT, m.DhcpPortRequest(host, net["id"]))
    assert isinstance(reply, m.DhcpPort) and reply.port is not None
    assert reply.port["device_owner"] == "network:dhcp"
    again = bus.call(m.DHCP_PORT, m.DhcpPortRequest(host, net["id"]))
    assert again.port["id"] == reply.port["id"], "one DHCP port per host and network"
    state = bus.call(m.SYNC, m.SyncRequest(host, [net["id"]]))
    assert isinstance(state, m.HostState)
    [network] = state.networks
    assert network["l2"] and network["segment"]["provider:network_type"] == "vxlan"
    assert network["mtu"] == 1450 and network["subnets"][0]["id"] == sub["id"]
    ids = {p["id"] for p in state.ports}
    assert {port["id"], reply.port["id"]} <= ids
    gone = bus.call(m.DHCP_PORT, m.DhcpPortRequest(host, net["id"], release=True))
    assert gone.port is None
    assert admin.get(f"/ports/{reply.port['id']}").status_code == 404


@pytest.fixture
def quick_server(tmp_path: Path) -> Iterator[Server]:
    srv = start_server(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite'}", agent_down_time=1)
    yield srv
    srv.stop()


def test_alive_turns_false_after_the_down_time(quick_server: Server) -> None:
    admin = Client(quick_server.url)
    _register(quick_server, "quiet")
    assert all(a["alive"] for a in admin.get("/agents").json()["agents"])
    time.sleep(2.2)
    agents = admin.get("/agents").json()["agents"]
    assert agents and not any(a["alive"] for a in agents)
    assert admin.get("/agents?alive=true").json()["agents"] == []
    net = admin.create("networks", name="n")
    port = admin.create("ports", network_id=net["id"], **{"binding:host_id": "quiet"})
    assert port["binding:vif_type"] == "binding_failed", "a dead agent binds nothing"
