"""The mechanism driver seam, with a second, real driver loaded by name through the
configuration (tests/api/mechanism_recorder.py): precommit inside the operation's
transaction (a refusal rolls all of it back and the client gets a 409), postcommit
after the commit and never after a rollback, read-only contexts, binding asked in the
configured order (linuxbridge first, binding as it always did)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from neutrino.bus import messages as m
from tests.api import mechanism_recorder
from tests.api.mechanism_recorder import Recorder
from tests.conftest import BACKENDS, Client, Server, assert_error, start_server

DRIVERS = ("linuxbridge", "tests.api.mechanism_recorder:Recorder")


@pytest.fixture(scope="module", params=BACKENDS)
def env(request: pytest.FixtureRequest, database_factory,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Recorder]]:
    url = database_factory(request.param)
    srv = start_server(tmp_path_factory.mktemp("mech"), url, mechanism_drivers=DRIVERS)
    recorder = mechanism_recorder.INSTANCES[-1]
    yield srv, recorder
    srv.stop()
    recorder.close()


@pytest.fixture
def admin(env: tuple[Server, Recorder]) -> Client:
    return Client(env[0].url)


@pytest.fixture
def recorder(env: tuple[Server, Recorder]) -> Recorder:
    rec = env[1]
    rec.calls.clear()
    rec.binds.clear()
    rec.refuse.clear()
    rec.fail.clear()
    return rec


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def names(client: Client, collection: str, name: str) -> list[dict]:
    return client.get(f"/{collection}?name={name}").json()[collection]


def test_precommit_sees_the_transaction_and_postcommit_the_commit(admin: Client,
                                                                  recorder: Recorder) -> None:
    name = unique("net")
    net = admin.create("networks", name=name)
    pre, post = (c for c in recorder.calls if c.current.get("name") == name)
    assert (pre.name, post.name) == ("create_network_precommit", "create_network_postcommit")
    # inside the transaction, the row is not yet there for anyone else; after, it is
    assert pre.committed is False and post.committed is True
    assert pre.current["id"] == net["id"] and pre.original is None
    # what an admin sees, with the network's segment
    assert pre.current["provider:network_type"] == "vxlan"
    assert [s.network_type for s in pre.context.segments] == ["vxlan"]


def test_a_precommit_veto_leaves_nothing_behind(admin: Client, recorder: Recorder) -> None:
    refused = unique("refused")
    recorder.refuse["create_network_precommit"] = {refused}
    r = admin.post("/networks", {"network": {"name": refused,
                                             "provider:network_type": "vlan"}})
    assert_error(r, 409, "MechanismDriverVeto", f"The recorder refuses {refused}")
    assert names(admin, "networks", refused) == []
    assert recorder.named(refused) == ["create_network_precommit"]  # no postcommit
    # its VLAN was not kept either: the same one is free for the next network
    vlan = recorder.calls[-1].current["provider:segmentation_id"]
    ok = admin.create("networks", name=unique("net"), **{
        "provider:network_type": "vlan", "provider:physical_network": "physnet1",
        "provider:segmentation_id": vlan})
    assert ok["provider:segmentation_id"] == vlan


def test_a_refused_port_takes_no_address(admin: Client, recorder: Recorder) -> None:
    net, sub = admin.network_with_subnet("10.61.0.0/29")
    refused = unique("refused")
    recorder.refuse["create_port_precommit"] = {refused}
    r = admin.post("/ports", {"port": {"network_id": net["id"], "name": refused,
                                       "fixed_ips": [{"ip_address": "10.61.0.2"}]}})
    assert_error(r, 409, "MechanismDriverVeto")
    assert names(admin, "ports", refused) == []
    # the address it asked for is free
    port = admin.create("ports", network_id=net["id"], fixed_ips=[{"ip_address": "10.61.0.2"}])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.61.0.2"}]


def test_no_postcommit_when_the_transaction_rolls_back_later(admin: Client,
                                                            recorder: Recorder) -> None:
    """A bulk create is one transaction: the second network's refusal undoes the first,
    whose precommit ran and whose postcommit never does."""
    first, second = unique("first"), unique("second")
    recorder.refuse["create_network_precommit"] = {second}
    r = admin.post("/networks", {"networks": [{"name": first}, {"name": second}]})
    assert_error(r, 409, "MechanismDriverVeto")
    assert names(admin, "networks", first) == names(admin, "networks", second) == []
    assert recorder.named(first) == ["create_network_precommit"]
    assert recorder.named(second) == ["create_network_precommit"]


def test_a_failing_driver_is_a_409_and_changes_nothing(admin: Client,
                                                       recorder: Recorder) -> None:
    name = unique("broken")
    recorder.fail["create_network_precommit"] = {name}
    r = admin.post("/networks", {"network": {"name": name}})
    err = assert_error(r, 409, "MechanismDriverError",
                       "Mechanism driver recorder failed in create_network_precommit")
    assert "broke" not in err["message"]  # the driver's insides stay in the log
    assert names(admin, "networks", name) == []


def test_a_failing_postcommit_keeps_the_change(admin: Client, recorder: Recorder) -> None:
    name = unique("kept")
    recorder.fail["create_network_postcommit"] = {name}
    made = admin.create("networks", name=name)  # 201: the change is committed
    assert [n["id"] for n in names(admin, "networks", name)] == [made["id"]]
    assert recorder.named(name) == ["create_network_precommit", "create_network_postcommit"]


def test_updates_and_deletes_with_their_original(admin: Client, recorder: Recorder) -> None:
    name, renamed = unique("net"), unique("renamed")
    net = admin.create("networks", name=name)
    port = admin.create("ports", network_id=net["id"], name=name)
    assert recorder.named(name)[-2:] == ["create_port_precommit", "create_port_postcommit"]
    port_pre = next(c for c in recorder.calls if c.name == "create_port_precommit"
                    and c.current["id"] == port["id"])
    assert port_pre.context.network.current["id"] == net["id"]

    r = admin.put(f"/networks/{net['id']}", {"network": {"name": renamed}})
    assert r.status_code == 200, r.text
    pre, post = recorder.calls[-2:]
    assert (pre.name, post.name) == ("update_network_precommit", "update_network_postcommit")
    assert pre.original["name"] == name and pre.current["name"] == renamed

    # a refused delete: the port stays
    recorder.refuse["delete_port_precommit"] = {name}
    assert_error(admin.delete(f"/ports/{port['id']}"), 409, "MechanismDriverVeto")
    assert admin.get(f"/ports/{port['id']}").status_code == 200
    recorder.refuse.clear()
    recorder.calls.clear()
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    pre, post = recorder.calls
    assert (pre.name, post.name) == ("delete_port_precommit", "delete_port_postcommit")
    # the port as it was; still there inside the transaction, gone after it
    assert pre.current["id"] == port["id"] and pre.committed and not post.committed

    recorder.calls.clear()
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert [c.name for c in recorder.calls] == ["delete_network_precommit",
                                                "delete_network_postcommit"]


def test_contexts_are_read_only(admin: Client, recorder: Recorder) -> None:
    net, _ = admin.network_with_subnet("10.62.0.0/24")
    admin.create("ports", network_id=net["id"])
    context = recorder.calls[-1].context
    with pytest.raises(TypeError):
        context.current["name"] = "changed"  # type: ignore[index]
    with pytest.raises(AttributeError):
        context.current["fixed_ips"].append({})  # a tuple
    with pytest.raises(TypeError):
        context.current["fixed_ips"][0]["ip_address"] = "10.62.0.99"  # type: ignore[index]


def test_binding_asks_the_drivers_in_order(env: tuple[Server, Recorder], admin: Client,
                                           recorder: Recorder) -> None:
    srv = env[0]
    host = unique("hv")
    bus = srv._server.config.app.state.bus  # type: ignore[attr-defined]
    bus.call(m.REPORT_STATE, m.AgentState(
        host, "Linux bridge agent", "neutrino-linuxbridge-agent", "t",
        {"tunnel_types": ["vxlan"], "interface_mappings": {}, "network_types": ["vxlan"]},
        start_flag=True))
    net = admin.create("networks", name=unique("net"))
    # linuxbridge first: a host with its agent is bound as it always was
    bridged = admin.create("ports", network_id=net["id"], **{"binding:host_id": host})
    assert bridged["binding:vif_type"] == "bridge"
    assert bridged["binding:vif_details"] == {"port_filter": True, "connectivity": "l2",
                                              "bridge_name": f"brq{net['id'][:11]}"}
    assert recorder.binds == []  # never asked: the first driver bound it
    # a host linuxbridge cannot bind falls to the next driver
    other = admin.create("ports", network_id=net["id"],
                         **{"binding:host_id": "recorder-1", "binding:profile": {"a": 1}})
    assert other["binding:vif_type"] == "other"
    assert other["binding:vif_details"]["driver"] == "recorder"
    (request,) = recorder.binds
    assert (request.host, request.network_id, request.port_id) == (
        "recorder-1", net["id"], other["id"])
    assert request.segment.network_type == "vxlan" and dict(request.profile) == {"a": 1}
    assert request.agents == ()  # it has no agent type
    # and none: binding failed, as before
    failed = admin.create("ports", network_id=net["id"], **{"binding:host_id": "nowhere"})
    assert failed["binding:vif_type"] == "binding_failed"
    assert recorder.binds[-1].host == "nowhere"


def test_what_other_services_make_and_remove_goes_through_the_port_service(
        admin: Client, recorder: Recorder) -> None:
    """A network's DHCP port, a router's interface and gateway, a floating IP's port, a
    project's HA network: made and removed by their own services, so the drivers hear of
    each."""
    ext = admin.create("networks", name=unique("ext"), **{"router:external": True})
    admin.create("subnets", network_id=ext["id"], cidr="172.31.9.0/24", ip_version=4)
    net, sub = admin.network_with_subnet("10.63.0.0/24")
    dhcp = admin.create("ports", network_id=net["id"], device_owner="network:dhcp")
    project = f"p-{uuid.uuid4().hex[:8]}"
    router = admin.create("routers", name=unique("r"), tenant_id=project, ha=True,
                          external_gateway_info={"network_id": ext["id"]})
    made = {c.current.get("device_owner") for c in recorder.calls
            if c.name == "create_port_postcommit"}
    assert "network:router_gateway" in made
    ha_net = next(c.current for c in recorder.calls if c.name == "create_network_postcommit"
                  and c.current["name"] == f"HA network project {project}")
    assert ha_net["project_id"] == ""

    r = admin.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    interface = r.json()["port_id"]
    assert any(c.name == "create_port_postcommit" and c.current["id"] == interface
               for c in recorder.calls)
    fip = admin.create("floatingips", floating_network_id=ext["id"])

    def deleted() -> set[str]:
        return {c.current["id"] for c in recorder.calls if c.name == "delete_port_postcommit"}

    assert admin.delete(f"/floatingips/{fip['id']}").status_code == 204
    assert fip["id"] in {c.current["device_id"] for c in recorder.calls
                         if c.name == "delete_port_postcommit"}
    r = admin.put(f"/routers/{router['id']}/remove_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    assert interface in deleted()
    assert admin.delete(f"/routers/{router['id']}").status_code == 204
    assert any(c.name == "delete_port_postcommit"
               and c.current["device_owner"] == "network:router_gateway" for c in recorder.calls)
    # the last HA router gone: its network too, through the network service
    assert ha_net["id"] in {c.current["id"] for c in recorder.calls
                            if c.name == "delete_network_postcommit"}

    recorder.calls.clear()
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    # its DHCP port first, through the port service, then the network
    assert [(c.name, c.current["id"]) for c in recorder.calls] == [
        ("delete_port_precommit", dhcp["id"]), ("delete_network_precommit", net["id"]),
        ("delete_port_postcommit", dhcp["id"]), ("delete_network_postcommit", net["id"])]
