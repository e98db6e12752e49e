"""Routers: CRUD, the external gateway, interfaces, extra routes, and the guards that
keep a router's ports, subnets and networks from changing under it.

Expectations match the upstream server (checked request by request); deliberate
differences are listed in docs/api-differences.md.  The last test drives the same
steps with the real ``openstack`` CLI.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.api.test_openstack_cli import OPENSTACK, Cli, write_clouds_yaml
from tests.conftest import Client, Server, assert_error, start_server

ROUTER_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "admin_state_up", "status", "external_gateway_info", "routes",
    "distributed", "ha", "availability_zone_hints", "availability_zones",
}
INTERFACE_KEYS = {"id", "tenant_id", "project_id", "port_id", "network_id", "subnet_id",
                  "subnet_ids"}
MISSING = "6f2b1c5e-8a4d-4c1e-9f00-000000000000"


@pytest.fixture
def admin(server: Server) -> Client:
    """The admin, whose project makes more routers here than its quota allows."""
    client = Client(server.url)
    r = client.put("/quotas/fake_project_id", {"quota": {"router": -1, "floatingip": -1}})
    assert r.status_code == 200, r.text
    return client


def external(admin: Client, cidr: str, **extra: object) -> tuple[dict, dict]:
    """An external network (made by the admin, as only admins may) and its subnet."""
    net = admin.create("networks", name="public", **{"router:external": True}, **extra)
    sub = admin.create("subnets", network_id=net["id"], cidr=cidr, ip_version=4)
    return net, sub


def router_ports(admin: Client, router_id: str, owner: str | None = None) -> list[dict]:
    params = {"device_id": router_id}
    if owner:
        params["device_owner"] = owner
    return admin.get("/ports", params=params).json()["ports"]


def add(client: Client, router_id: str, **body: object):
    return client.put(f"/routers/{router_id}/add_router_interface", body)


def remove(client: Client, router_id: str, **body: object):
    return client.put(f"/routers/{router_id}/remove_router_interface", body)


# -- CRUD -----------------------------------------------------------------------------

def test_router_defaults_update_list_delete(admin: Client) -> None:
    router = admin.create("routers", name="r1")
    assert set(router) == ROUTER_KEYS
    assert router["status"] == "ACTIVE" and router["admin_state_up"] is True
    assert router["external_gateway_info"] is None and router["routes"] == []
    assert router["distributed"] is False and router["ha"] is False
    assert router["availability_zone_hints"] == [] and router["availability_zones"] == []
    assert router["revision_number"] == 1 and router["tenant_id"] == router["project_id"]
    assert admin.get(f"/routers/{router['id']}").json()["router"] == router

    r = admin.put(f"/routers/{router['id']}", {"router": {
        "name": "r1b", "description": "edge", "admin_state_up": False}})
    assert r.status_code == 200, r.text
    updated = r.json()["router"]
    assert (updated["name"], updated["description"], updated["admin_state_up"]) == \
        ("r1b", "edge", False)
    assert updated["revision_number"] == 2
    # nothing changed: no new revision
    same = admin.put(f"/routers/{router['id']}", {"router": {"name": "r1b"}}).json()["router"]
    assert same["revision_number"] == 2
    assert_error(admin.put(f"/routers/{router['id']}", {"router": {"name": "x"}},
                           headers={"If-Match": "revision_number=1"}),
                 412, "RevisionNumberConstraintFailed")

    listed = admin.get("/routers", params={"name": "r1b"}).json()["routers"]
    assert [x["id"] for x in listed] == [router["id"]]
    assert_error(admin.get("/routers", params={"status": "ACTIVE"}), 400, "HTTPBadRequest",
                 "['status'] is invalid attribute for filtering")
    assert_error(admin.get("/routers", params={"distributed": "false"}), 400)
    tagged = admin.create("routers", name="tagged", tags=["edge"])
    assert [x["id"] for x in admin.get("/routers", params={"tags": "edge"}).json()[
        "routers"]] == [tagged["id"]]

    for rid in (router["id"], tagged["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204
    assert_error(admin.get(f"/routers/{router['id']}"), 404, "RouterNotFound",
                 f"Router {router['id']} could not be found")
    assert_error(admin.delete(f"/routers/{router['id']}"), 404, "RouterNotFound")


def test_router_attributes_refused(admin: Client) -> None:
    assert_error(admin.post("/routers", {"router": {"routes": []}}), 400, "HTTPBadRequest",
                 "Attribute 'routes' not allowed in POST")
    assert_error(admin.post("/routers", {"router": {"status": "DOWN"}}), 400)
    assert_error(admin.post("/routers", {"router": {"external_gateway_info": "x"}}), 400,
                 "HTTPBadRequest", "Invalid input for external_gateway_info")
    assert_error(admin.post("/routers", {"router": {"external_gateway_info": {
        "enable_snat": False}}}), 400, "HTTPBadRequest", "Expected keys: {'network_id'}")
    assert_error(admin.post("/routers", {"router": {"external_gateway_info": {
        "network_id": "abc"}}}), 400, "HTTPBadRequest", "'abc' is not a valid UUID")
    assert_error(admin.post("/routers", {"router": {"external_gateway_info": {
        "network_id": MISSING, "foo": 1}}}), 400, "HTTPBadRequest", "Unexpected keys")


def test_distributed_and_ha_are_admin_only(admin: Client, project_client) -> None:
    member = project_client()
    mine = member.create("routers", name="mine")
    assert "distributed" not in mine and "ha" not in mine
    assert set(mine) == ROUTER_KEYS - {"distributed", "ha"}
    for attr in ("distributed", "ha"):
        assert_error(member.post("/routers", {"router": {attr: True}}), 403,
                     "PolicyNotAuthorized", f"rule:create_router:{attr} is disallowed")
        assert_error(member.put(f"/routers/{mine['id']}", {"router": {attr: False}}), 403,
                     "PolicyNotAuthorized", f"rule:update_router:{attr} is disallowed")
    # admins: stored (the data plane realises them later); null is the default
    dvr = admin.create("routers", name="dvr", distributed=True, ha=True)
    assert dvr["distributed"] is True and dvr["ha"] is True
    plain = admin.create("routers", name="plain", distributed=None, ha=None)
    assert plain["distributed"] is False and plain["ha"] is False
    # another project's router does not exist for a member
    assert_error(member.get(f"/routers/{plain['id']}"), 404, "RouterNotFound")
    assert [x["id"] for x in member.get("/routers").json()["routers"]] == [mine["id"]]
    assert_error(member.put(f"/routers/{plain['id']}", {"router": {"name": "x"}}), 404)
    assert_error(member.delete(f"/routers/{plain['id']}"), 404)
    for rid in (dvr["id"], plain["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204


def test_distributed_and_ha_change_only_while_down(admin: Client) -> None:
    router = admin.create("routers", name="migrating")
    path = f"/routers/{router['id']}"
    assert_error(admin.put(path, {"router": {"distributed": True}}), 400, "BadRequest",
                 "Bad router request: Cannot change the 'distributed' attribute of active "
                 "routers. Please set router admin_state_up to False prior to upgrade.")
    assert_error(admin.put(path, {"router": {"ha": True}}), 400, "BadRequest",
                 "Cannot change HA attribute of active routers")
    # distributed needs the router down before the request (upstream's
    # router-admin-state-down-before-update); ha may go down in the same request
    assert_error(admin.put(path, {"router": {"admin_state_up": False, "distributed": True}}),
                 400, "BadRequest")
    r = admin.put(path, {"router": {"admin_state_up": False, "ha": True}})
    assert r.status_code == 200 and r.json()["router"]["ha"] is True
    r = admin.put(path, {"router": {"distributed": True}})
    assert r.status_code == 200 and r.json()["router"]["distributed"] is True
    r = admin.put(path, {"router": {"distributed": None, "ha": None, "admin_state_up": True}})
    assert r.json()["router"]["distributed"] is True and r.json()["router"]["ha"] is True
    assert admin.delete(path).status_code == 204


def test_router_quota(admin: Client, project_client) -> None:
    member = project_client()
    assert member.get(f"/quotas/{_project(member)}").json()["quota"]["router"] == 10
    r = admin.put(f"/quotas/{_project(member)}", {"quota": {"router": 1}})
    assert r.status_code == 200
    member.create("routers", name="one")
    assert_error(member.post("/routers", {"router": {"name": "two"}}), 409, "OverQuota",
                 "['router']")
    details = member.get(f"/quotas/{_project(member)}/details").json()["quota"]["router"]
    assert details == {"limit": 1, "used": 1, "reserved": 0}


def _project(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


# -- external networks and the gateway ---------------------------------------------

def test_external_network_visible_to_all_but_ports_for_admins(admin: Client,
                                                             project_client) -> None:
    net, sub = external(admin, "198.51.100.0/24")
    member = project_client()
    assert net["id"] in {n["id"] for n in member.get("/networks").json()["networks"]}
    shown = member.get(f"/networks/{net['id']}").json()["network"]
    assert shown["router:external"] is True and shown["shared"] is False
    assert member.get(f"/subnets/{sub['id']}").json()["subnet"]["router:external"] is True
    listed = member.get("/networks", params={"router:external": "true"}).json()["networks"]
    assert net["id"] in {n["id"] for n in listed}
    # only admins make ports and subnets on an external network that is not shared
    assert_error(member.post("/ports", {"port": {"network_id": net["id"]}}), 403,
                 "PolicyNotAuthorized", "rule:create_port is disallowed")
    assert_error(member.post("/subnets", {"subnet": {
        "network_id": net["id"], "cidr": "198.51.101.0/24", "ip_version": 4}}), 403)
    assert_error(member.put(f"/networks/{net['id']}", {"network": {"name": "x"}}), 403)
    assert_error(member.post("/networks", {"network": {"router:external": True}}), 403,
                 "PolicyNotAuthorized", "rule:create_network:router:external is disallowed")
    # shared as well: anyone may plug into it
    admin.put(f"/networks/{net['id']}", {"network": {"shared": True}})
    port = member.create("ports", network_id=net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert member.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_gateway_set_renumber_snat_and_clear(admin: Client) -> None:
    net, sub = external(admin, "198.51.102.0/24")
    router = admin.create("routers", name="gw",
                          external_gateway_info={"network_id": net["id"]})
    gw = router["external_gateway_info"]
    assert gw["network_id"] == net["id"] and gw["enable_snat"] is True
    [fixed] = gw["external_fixed_ips"]
    assert fixed["subnet_id"] == sub["id"] and fixed["ip_address"].startswith("198.51.102.")
    assert router["revision_number"] == 2
    [port] = router_ports(admin, router["id"])
    assert port["device_owner"] == "network:router_gateway"
    assert port["project_id"] == "" and port["tenant_id"] == ""
    assert port["port_security_enabled"] is False and port["status"] == "DOWN"
    assert port["fixed_ips"] == [fixed]

    path = f"/routers/{router['id']}"
    r = admin.put(path, {"router": {"external_gateway_info": {
        "network_id": net["id"], "enable_snat": False}}})
    assert r.json()["router"]["external_gateway_info"]["enable_snat"] is False
    assert r.json()["router"]["revision_number"] == 3
    # a chosen address renumbers the same port
    r = admin.put(path, {"router": {"external_gateway_info": {
        "network_id": net["id"], "external_fixed_ips": [{"ip_address": "198.51.102.77"}]}}})
    assert r.status_code == 200, r.text
    gw = r.json()["router"]["external_gateway_info"]
    assert gw["external_fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "198.51.102.77"}]
    assert gw["enable_snat"] is True  # not given: the default again (as upstream)
    assert [p["id"] for p in router_ports(admin, router["id"])] == [port["id"]]
    # the same again changes nothing
    again = admin.put(path, {"router": {"external_gateway_info": {
        "network_id": net["id"], "external_fixed_ips": [{"ip_address": "198.51.102.77"}]}}})
    assert again.json()["router"]["revision_number"] == r.json()["router"]["revision_number"]

    for clear in ({}, None):
        r = admin.put(path, {"router": {"external_gateway_info": clear}})
        assert r.status_code == 200 and r.json()["router"]["external_gateway_info"] is None
        assert router_ports(admin, router["id"]) == []
        admin.put(path, {"router": {"external_gateway_info": {"network_id": net["id"]}}})
    # another external network: a new gateway port there
    other, other_sub = external(admin, "198.51.103.0/24")
    r = admin.put(path, {"router": {"external_gateway_info": {"network_id": other["id"]}}})
    [moved] = router_ports(admin, router["id"])
    assert moved["network_id"] == other["id"]
    assert r.json()["router"]["external_gateway_info"]["external_fixed_ips"][0][
        "subnet_id"] == other_sub["id"]
    assert admin.delete(path).status_code == 204
    assert router_ports(admin, router["id"]) == []
    for n in (net, other):
        assert admin.delete(f"/networks/{n['id']}").status_code == 204


def test_gateway_errors(admin: Client) -> None:
    net, sub = external(admin, "198.51.104.0/24")
    internal, _ = admin.network_with_subnet("10.40.0.0/24")
    router = admin.create("routers", name="gw-errors")
    path = f"/routers/{router['id']}"

    def gateway(**info: object):
        return admin.put(path, {"router": {"external_gateway_info": info}})

    assert_error(gateway(network_id=internal["id"]), 400, "BadRequest",
                 f"Bad router request: Network {internal['id']} is not an external network.")
    assert_error(gateway(network_id=MISSING), 404, "NetworkNotFound")
    assert_error(gateway(network_id=net["id"], external_fixed_ips=[
        {"ip_address": "198.51.104.1"}]), 400, "BadRequest",
        "External IP 198.51.104.1 is the same as the gateway IP")
    assert_error(gateway(network_id=net["id"], external_fixed_ips=[
        {"ip_address": "10.9.9.9"}]), 400, "InvalidIpForNetwork")
    holder = admin.create("ports", network_id=net["id"],
                          fixed_ips=[{"ip_address": "198.51.104.50"}])
    assert_error(gateway(network_id=net["id"], external_fixed_ips=[
        {"ip_address": "198.51.104.50"}]), 409, "IpAddressAlreadyAllocated")
    # nothing was half-made
    assert admin.get(path).json()["router"]["external_gateway_info"] is None
    assert router_ports(admin, router["id"]) == []
    r = gateway(network_id=net["id"], external_fixed_ips=[{"subnet_id": sub["id"]}])
    assert r.status_code == 200, r.text
    assert admin.delete(path).status_code == 204
    assert admin.delete(f"/ports/{holder['id']}").status_code == 204


def test_gateway_sub_attributes_are_admin_only(admin: Client, project_client) -> None:
    net, sub = external(admin, "198.51.105.0/24")
    member = project_client()
    router = member.create("routers", name="mine",
                           external_gateway_info={"network_id": net["id"]})
    assert router["external_gateway_info"]["network_id"] == net["id"]
    # the gateway port belongs to no project: members do not see it
    assert member.get("/ports", params={"device_id": router["id"]}).json()["ports"] == []
    for op, attr, value in [("create", "enable_snat", False),
                            ("create", "external_fixed_ips", [{"subnet_id": sub["id"]}]),
                            ("update", "enable_snat", True),
                            ("update", "external_fixed_ips", [{"ip_address": "198.51.105.9"}])]:
        info = {"network_id": net["id"], attr: value}
        r = member.post("/routers", {"router": {"external_gateway_info": info}}) \
            if op == "create" else \
            member.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": info}})
        assert_error(r, 403, "PolicyNotAuthorized",
                     f"rule:{op}_router:external_gateway_info:{attr} is disallowed by policy")
    r = member.put(f"/routers/{router['id']}", {"router": {"external_gateway_info": {}}})
    assert r.status_code == 200 and r.json()["router"]["external_gateway_info"] is None
    assert member.delete(f"/routers/{router['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


# -- interfaces --------------------------------------------------------------------------

def test_interface_by_subnet(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.41.0.0/24")
    router = admin.create("routers", name="by-subnet")
    r = add(admin, router["id"], subnet_id=sub["id"])
    assert r.status_code == 200, r.text
    info = r.json()
    assert set(info) == INTERFACE_KEYS
    assert info["id"] == router["id"] and info["subnet_id"] == sub["id"]
    assert info["subnet_ids"] == [sub["id"]] and info["network_id"] == net["id"]
    assert info["project_id"] == info["tenant_id"] == router["project_id"]
    port = admin.get(f"/ports/{info['port_id']}").json()["port"]
    assert port["device_owner"] == "network:router_interface"
    assert port["device_id"] == router["id"] and port["project_id"] == router["project_id"]
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.41.0.1"}]
    assert port["port_security_enabled"] is False and port["status"] == "DOWN"
    assert admin.get(f"/routers/{router['id']}").json()["router"]["revision_number"] == 2

    assert_error(add(admin, router["id"], subnet_id=sub["id"]), 400, "BadRequest",
                 f"Bad router request: Router already has a port on subnet {sub['id']}.")
    r = remove(admin, router["id"], subnet_id=sub["id"])
    assert r.status_code == 200, r.text
    assert r.json() == info
    assert admin.get(f"/ports/{info['port_id']}").status_code == 404
    assert_error(remove(admin, router["id"], subnet_id=sub["id"]), 404,
                 "RouterInterfaceNotFoundForSubnet",
                 f"Router {router['id']} has no interface on subnet {sub['id']}")
    assert admin.delete(f"/routers/{router['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_interface_request_errors(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.42.0.0/24")
    nogw = admin.create("subnets", network_id=net["id"], cidr="10.43.0.0/24", ip_version=4,
                        gateway_ip=None)
    router = admin.create("routers", name="errors")
    rid = router["id"]
    assert_error(add(admin, rid, subnet_id=nogw["id"]), 400, "BadRequest",
                 "Bad router request: Subnet for router interface must have a gateway IP.")
    assert_error(add(admin, rid), 400, "BadRequest",
                 "Bad router request: Either subnet_id or port_id must be specified.")
    assert_error(admin.put(f"/routers/{rid}/add_router_interface", "x"), 400, "BadRequest")
    assert_error(add(admin, rid, subnet_id=sub["id"], port_id=sub["id"]), 400, "BadRequest",
                 "Cannot specify both subnet-id and port-id")
    assert_error(add(admin, rid, subnet_id="nope"), 400, "BadRequest",
                 "Bad router request: 'nope' is not a valid UUID.")
    assert_error(add(admin, rid, port_id=None), 400, "BadRequest",
                 "Bad router request: 'None' is not a valid UUID.")
    assert_error(add(admin, rid, subnet_id=MISSING), 404, "SubnetNotFound")
    assert_error(add(admin, rid, port_id=MISSING), 404, "PortNotFound")
    assert_error(add(admin, MISSING, subnet_id=sub["id"]), 404, "RouterNotFound")
    assert_error(remove(admin, rid), 400, "BadRequest")
    assert_error(admin.put(f"/routers/{rid}/add_router_interface", None), 400)
    # the verbs are PUT only; unknown verbs do not exist
    assert_error(admin.get(f"/routers/{rid}/add_router_interface"), 405,
                 "HTTPMethodNotAllowed")
    assert_error(admin.put(f"/routers/{rid}/frobnicate", {}), 404, "HTTPNotFound")
    assert_error(admin.put(f"/networks/{net['id']}/add_router_interface", {}), 404)
    assert router_ports(admin, rid) == []
    assert admin.get(f"/routers/{rid}").json()["router"]["revision_number"] == 1
    assert admin.delete(f"/routers/{rid}").status_code == 204


def test_overlapping_subnets_on_one_router(admin: Client) -> None:
    pub, pub_sub = external(admin, "198.51.106.0/24")
    _, sub1 = admin.network_with_subnet("10.44.0.0/24")
    _, sub2 = admin.network_with_subnet("10.44.0.0/25")
    _, sub3 = admin.network_with_subnet("198.51.106.0/25")
    router = admin.create("routers", name="overlaps",
                          external_gateway_info={"network_id": pub["id"]})
    assert add(admin, router["id"], subnet_id=sub1["id"]).status_code == 200
    assert_error(add(admin, router["id"], subnet_id=sub2["id"]), 400, "BadRequest",
                 f"Cidr 10.44.0.0/25 of subnet {sub2['id']} overlaps with cidr 10.44.0.0/24 of "
                 f"subnet {sub1['id']}")
    # the external network's subnets count too
    assert_error(add(admin, router["id"], subnet_id=sub3["id"]), 400, "BadRequest",
                 f"overlaps with cidr 198.51.106.0/24 of subnet {pub_sub['id']}")
    # and the other way round: a gateway onto a network overlapping an interface
    other = admin.create("routers", name="overlaps-2")
    assert add(admin, other["id"], subnet_id=sub3["id"]).status_code == 200
    r = admin.put(f"/routers/{other['id']}", {"router": {
        "external_gateway_info": {"network_id": pub["id"]}}})
    assert_error(r, 400, "BadRequest", "overlaps with cidr 198.51.106.0/25")
    # another router may have the overlapping subnet
    assert add(admin, other["id"], subnet_id=sub2["id"]).status_code == 200
    for rid, sub in ((router["id"], sub1), (other["id"], sub3), (other["id"], sub2)):
        assert remove(admin, rid, subnet_id=sub["id"]).status_code == 200
    for rid in (router["id"], other["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204


def test_interface_by_port(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.45.0.0/24")
    extra = admin.create("subnets", network_id=net["id"], cidr="10.46.0.0/24", ip_version=4)
    router = admin.create("routers", name="by-port")
    rid = router["id"]
    port = admin.create("ports", network_id=net["id"], name="mine",
                        fixed_ips=[{"subnet_id": sub["id"], "ip_address": "10.45.0.10"}])
    r = add(admin, rid, port_id=port["id"])
    assert r.status_code == 200, r.text
    assert r.json() == {"id": rid, "tenant_id": port["project_id"],
                        "project_id": port["project_id"], "port_id": port["id"],
                        "network_id": net["id"], "subnet_id": sub["id"],
                        "subnet_ids": [sub["id"]]}
    attached = admin.get(f"/ports/{port['id']}").json()["port"]
    assert attached["device_owner"] == "network:router_interface"
    assert attached["device_id"] == rid and attached["name"] == "mine"
    # in use now
    assert_error(add(admin, router["id"], port_id=port["id"]), 409, "PortInUse",
                 f"Unable to complete operation on port {port['id']} for network "
                 f"{net['id']}. Port already has an attached device {rid}.")
    vm = admin.create("ports", network_id=net["id"], device_id="vm-1",
                      device_owner="compute:nova")
    assert_error(add(admin, rid, port_id=vm["id"]), 409, "PortInUse")
    bare = admin.create("ports", network_id=net["id"], fixed_ips=[])
    assert_error(add(admin, rid, port_id=bare["id"]), 400, "BadRequest",
                 "Router port must have at least one fixed IP")
    two = admin.create("ports", network_id=net["id"], fixed_ips=[
        {"subnet_id": extra["id"]}, {"subnet_id": sub["id"]}])
    other = admin.create("routers", name="by-port-2")
    assert_error(add(admin, other["id"], port_id=two["id"]), 400, "BadRequest",
                 "Cannot have multiple IPv4 subnets on router port")
    # a second port on an attached subnet
    again = admin.create("ports", network_id=net["id"], fixed_ips=[{"subnet_id": sub["id"]}])
    assert_error(add(admin, rid, port_id=again["id"]), 400, "BadRequest",
                 f"Router already has a port on subnet {sub['id']}")
    # removal by port: the port goes (as upstream)
    assert_error(remove(admin, rid, port_id=vm["id"]), 404, "RouterInterfaceNotFound",
                 f"Router {rid} does not have an interface with id {vm['id']}")
    assert_error(remove(admin, rid, port_id=port["id"], subnet_id=extra["id"]), 400,
                 "SubnetMismatchForPort")
    r = remove(admin, rid, port_id=port["id"], subnet_id=sub["id"])
    assert r.status_code == 200 and r.json()["port_id"] == port["id"]
    assert admin.get(f"/ports/{port['id']}").status_code == 404
    for p in (vm, bare, two, again):
        assert admin.delete(f"/ports/{p['id']}").status_code == 204
    for x in (rid, other["id"]):
        assert admin.delete(f"/routers/{x}").status_code == 204


def test_ipv6_subnets_share_one_interface(admin: Client) -> None:
    net = admin.create("networks", name="v6")
    a = admin.create("subnets", network_id=net["id"], cidr="2001:db8:47::/64", ip_version=6,
                     ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    b = admin.create("subnets", network_id=net["id"], cidr="2001:db8:48::/64", ip_version=6,
                     ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    external_ra = admin.create("subnets", network_id=net["id"], cidr="2001:db8:49::/64",
                               ip_version=6, ipv6_address_mode="slaac")
    router = admin.create("routers", name="v6")
    first = add(admin, router["id"], subnet_id=a["id"]).json()
    second = add(admin, router["id"], subnet_id=b["id"]).json()
    assert second["port_id"] == first["port_id"] and second["subnet_ids"] == [b["id"]]
    port = admin.get(f"/ports/{first['port_id']}").json()["port"]
    assert sorted(f["ip_address"] for f in port["fixed_ips"]) == [a["gateway_ip"],
                                                                  b["gateway_ip"]]
    assert_error(add(admin, router["id"], subnet_id=external_ra["id"]), 400, "BadRequest",
                 "configured to receive RAs from an external router")
    # removing one prefix keeps the port for the other
    assert remove(admin, router["id"], subnet_id=a["id"]).json()["port_id"] == port["id"]
    left = admin.get(f"/ports/{port['id']}").json()["port"]["fixed_ips"]
    assert [f["subnet_id"] for f in left] == [b["id"]]
    # a SLAAC subnet with an interface cannot go
    assert_error(admin.delete(f"/subnets/{b['id']}"), 409, "SubnetInUse")
    assert remove(admin, router["id"], subnet_id=b["id"]).status_code == 200
    assert admin.get(f"/ports/{port['id']}").status_code == 404
    assert admin.delete(f"/routers/{router['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_members_and_interfaces(admin: Client, project_client) -> None:
    member = project_client()
    net = member.create("networks", name="own")
    sub = member.create("subnets", network_id=net["id"], cidr="10.50.0.0/24", ip_version=4)
    router = member.create("routers", name="own")
    info = add(member, router["id"], subnet_id=sub["id"]).json()
    assert info["project_id"] == _project(member)
    port = member.get(f"/ports/{info['port_id']}").json()["port"]
    assert port["device_owner"] == "network:router_interface"
    reader = Client(member.base, project=_project(member), roles="reader")
    assert_error(add(reader, router["id"], subnet_id=sub["id"]), 403, "PolicyNotAuthorized",
                 "rule:add_router_interface is disallowed")
    assert_error(reader.post("/routers", {"router": {}}), 403, "PolicyNotAuthorized")
    assert reader.get(f"/routers/{router['id']}").status_code == 200
    # another project can neither see nor use the router
    stranger = project_client()
    assert_error(add(stranger, router["id"], subnet_id=sub["id"]), 404, "RouterNotFound")
    theirs = stranger.create("routers", name="theirs")
    assert_error(add(stranger, theirs["id"], subnet_id=sub["id"]), 404, "SubnetNotFound")
    # a network shared with everybody is not theirs to route (upstream: LP-1757482)
    shared, shared_sub = admin.network_with_subnet("10.51.0.0/24")
    admin.put(f"/networks/{shared['id']}", {"network": {"shared": True}})
    assert_error(add(stranger, theirs["id"], subnet_id=shared_sub["id"]), 400, "BadRequest",
                 f"Cannot add interface to router because subnet {shared_sub['id']} is not "
                 f"owned by project making the request")
    # ... nor a port of theirs there holding an address outside the pools (the gateway)
    gw_port = admin.create("ports", network_id=shared["id"], project_id=_project(stranger),
                           fixed_ips=[{"ip_address": "10.51.0.1"}])
    assert_error(add(stranger, theirs["id"], port_id=gw_port["id"]), 400, "BadRequest",
                 f"specified port {gw_port['id']} has an IP address out of the allocation "
                 f"pool of subnet {shared_sub['id']}")
    # but one with an address from the pools is fine
    pool_port = stranger.create("ports", network_id=shared["id"])
    r = add(stranger, theirs["id"], port_id=pool_port["id"])
    assert r.status_code == 200, r.text
    assert remove(stranger, theirs["id"], port_id=pool_port["id"]).status_code == 200
    assert admin.delete(f"/ports/{gw_port['id']}").status_code == 204
    assert remove(member, router["id"], subnet_id=sub["id"]).status_code == 200
    assert member.delete(f"/routers/{router['id']}").status_code == 204
    assert stranger.delete(f"/routers/{theirs['id']}").status_code == 204
    assert admin.delete(f"/networks/{shared['id']}").status_code == 204


# -- guards ---------------------------------------------------------------------------------

def test_router_ports_subnets_and_networks_are_guarded(admin: Client) -> None:
    pub, pub_sub = external(admin, "198.51.107.0/24")
    net, sub = admin.network_with_subnet("10.52.0.0/24")
    router = admin.create("routers", name="guarded",
                          external_gateway_info={"network_id": pub["id"]})
    rid = router["id"]
    info = add(admin, rid, subnet_id=sub["id"]).json()
    [gw] = router_ports(admin, rid, "network:router_gateway")

    for port_id, owner in ((info["port_id"], "network:router_interface"),
                           (gw["id"], "network:router_gateway")):
        assert_error(admin.delete(f"/ports/{port_id}"), 409, "ServicePortInUse",
                     f"Port {port_id} cannot be deleted directly via the port API: has device "
                     f"owner {owner}.")
    assert_error(admin.put(f"/ports/{info['port_id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.52.0.9"}]}}), 400,
        "IPAddressChangeNotAllowed", f"IP updates for port {info['port_id']} are not allowed")
    # other changes are fine, and keeping the address is no change
    r = admin.put(f"/ports/{info['port_id']}", {"port": {"name": "qr", "fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.52.0.1"}]}})
    assert r.status_code == 200 and r.json()["port"]["name"] == "qr"

    assert_error(admin.delete(f"/routers/{rid}"), 409, "RouterInUse",
                 f"Router {rid} has ports still attached: {info['port_id']}")
    assert_error(admin.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse")
    assert_error(admin.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    assert_error(admin.delete(f"/subnets/{pub_sub['id']}"), 409, "SubnetInUse")
    assert_error(admin.delete(f"/networks/{pub['id']}"), 409, "NetworkInUse", gw["id"])
    assert_error(admin.put(f"/networks/{pub['id']}", {"network": {"router:external": False}}),
                 409, "ExternalNetworkInUse",
                 f"External network {pub['id']} cannot be updated to be made non-external, "
                 f"since it has existing gateway ports.")
    assert admin.get(f"/networks/{pub['id']}").json()["network"]["router:external"] is True

    assert remove(admin, rid, subnet_id=sub["id"]).status_code == 200
    assert admin.delete(f"/routers/{rid}").status_code == 204  # takes its gateway along
    assert admin.get(f"/ports/{gw['id']}").status_code == 404
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    r = admin.put(f"/networks/{pub['id']}", {"network": {"router:external": False}})
    assert r.status_code == 200
    assert admin.delete(f"/networks/{pub['id']}").status_code == 204


# -- extra routes --------------------------------------------------------------------------

def test_extra_routes(admin: Client) -> None:
    pub, _ = external(admin, "198.51.108.0/24")
    net, sub = admin.network_with_subnet("10.53.0.0/24")
    router = admin.create("routers", name="routes")
    rid, path = router["id"], f"/routers/{router['id']}"

    def routes(*pairs: tuple[str, str]) -> list[dict]:
        return [{"destination": d, "nexthop": h} for d, h in pairs]

    assert_error(admin.put(path, {"router": {"routes": routes(("10.60.0.0/16",
                                                                 "10.53.0.5"))}}),
                 400, "InvalidRoutes",
                 "Invalid format for routes: [{'destination': '10.60.0.0/16', 'nexthop': "
                 "'10.53.0.5'}], the nexthop is not connected with router")
    add(admin, rid, subnet_id=sub["id"])
    assert_error(admin.put(path, {"router": {"routes": routes(("10.60.0.0/16",
                                                                 "10.53.0.1"))}}),
                 400, "InvalidRoutes", "the nexthop is used by router")
    assert_error(admin.put(path, {"router": {"routes": routes(("10.60.0.1/16",
                                                                 "10.53.0.5"))}}),
                 400, "HTTPBadRequest", "Invalid input for routes")
    assert_error(admin.put(path, {"router": {"routes": routes(
        ("10.60.0.0/16", "10.53.0.5"), ("10.60.0.0/16", "10.53.0.5"))}}), 400,
        "HTTPBadRequest", "Duplicate")
    many = routes(*((f"10.{n}.0.0/16", "10.53.0.5") for n in range(100, 131)))
    assert_error(admin.put(path, {"router": {"routes": many}}), 400, "RoutesExhausted",
                 "The number of routes exceeds the maximum 30.")

    r = admin.put(path, {"router": {"routes": routes(("10.60.0.0/16", "10.53.0.5"))}})
    assert r.status_code == 200 and r.json()["router"]["routes"] == routes(
        ("10.60.0.0/16", "10.53.0.5"))
    revision = r.json()["router"]["revision_number"]
    # through the gateway's subnet too
    admin.put(path, {"router": {"external_gateway_info": {"network_id": pub["id"]}}})
    r = admin.put(f"{path}/add_extraroutes", {"router": {"routes": routes(
        ("10.61.0.0/16", "198.51.108.9"), ("10.60.0.0/16", "10.53.0.5"))}})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"router"} and set(r.json()["router"]) == ROUTER_KEYS
    assert r.json()["router"]["routes"] == routes(("10.60.0.0/16", "10.53.0.5"),
                                                  ("10.61.0.0/16", "198.51.108.9"))
    assert r.json()["router"]["revision_number"] > revision
    # the gateway cannot go while a route needs it
    assert_error(admin.put(path, {"router": {"external_gateway_info": None}}), 400,
                 "InvalidRoutes")
    r = admin.put(f"{path}/remove_extraroutes", {"router": {"routes": routes(
        ("10.61.0.0/16", "198.51.108.9"), ("10.99.0.0/16", "10.53.0.7"))}})
    assert r.json()["router"]["routes"] == routes(("10.60.0.0/16", "10.53.0.5"))
    assert_error(admin.put(f"{path}/add_extraroutes", {"routes": []}), 400)
    assert_error(admin.put(f"{path}/add_extraroutes", {"router": {}}), 400)
    assert_error(admin.put(f"{path}/add_extraroutes", {"router": {"routes": routes(
        ("10.62.0.0/16", "10.77.0.1"))}}), 400, "InvalidRoutes")
    # an interface a route goes through stays
    assert_error(remove(admin, rid, subnet_id=sub["id"]), 409, "RouterInterfaceInUseByRoute",
                 f"Router interface for subnet {sub['id']} on router {rid} cannot be deleted, "
                 f"as it is required by one or more routes.")
    r = admin.put(path, {"router": {"routes": None}})
    assert r.json()["router"]["routes"] == []
    assert remove(admin, rid, subnet_id=sub["id"]).status_code == 200
    assert admin.delete(path).status_code == 204
    for n in (net, pub):
        assert admin.delete(f"/networks/{n['id']}").status_code == 204


def test_extension_discovery(admin: Client) -> None:
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert {"router", "ext-gw-mode", "extraroute", "extraroute-atomic", "dvr", "l3-ha",
            "router-admin-state-down-before-update", "fip-port-details",
            "l3-port-ip-change-not-allowed", "external-net",
            "subnet-external-network"} <= aliases
    # what is not implemented is not advertised
    assert not {"floating-ip-router-writable", "l3-flavors", "l3_agent_scheduler",
                "floatingip-pools", "qos-fip", "external-gateway-multihoming"} & aliases
    assert admin.get("/extensions/extraroute-atomic").status_code == 200
    resources = {r["collection"] for r in admin.get("/").json()["resources"]}
    assert {"routers", "floatingips"} <= resources


# -- the real openstack CLI ---------------------------------------------------------------

@pytest.fixture(scope="module")
def cli_env(database_factory: Callable[[str], str],
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cli, Client]]:
    if not OPENSTACK.exists():
        pytest.skip(f"the openstack CLI is not installed beside {OPENSTACK.parent}")
    srv = start_server(tmp_path_factory.mktemp("cli-l3"), database_factory("sqlite"))
    clouds = write_clouds_yaml(tmp_path_factory.mktemp("cli-l3") / "clouds.yaml", srv.url)
    yield Cli(clouds), Client(srv.url)
    srv.stop()


@pytest.mark.cli
def test_openstack_cli_router_and_floating_ip(cli_env: tuple[Cli, Client]) -> None:
    cli, api = cli_env
    tag = uuid.uuid4().hex[:6]
    public, private, router = f"public-{tag}", f"private-{tag}", f"r-{tag}"
    net = cli("network", "create", "--external", public, "-f", "json")
    assert net["router:external"] is True
    cli("subnet", "create", "--network", public, "--subnet-range", "203.0.113.0/24",
        f"{public}-v4")
    cli("network", "create", private)
    sub = cli("subnet", "create", "--network", private, "--subnet-range", "10.0.0.0/24",
              f"{private}-v4", "-f", "json")
    created = cli("router", "create", router, "-f", "json")
    assert created["status"] == "ACTIVE" and created["external_gateway_info"] is None

    cli("router", "set", "--external-gateway", public, router)
    cli("router", "add", "subnet", router, f"{private}-v4")
    shown = cli("router", "show", router, "-f", "json")
    assert shown["external_gateway_info"]["network_id"] == net["id"]
    assert shown["external_gateway_info"]["enable_snat"] is True
    assert [i["subnet_id"] for i in shown["interfaces_info"]] == [sub["id"]]
    assert [i["ip_address"] for i in shown["interfaces_info"]] == ["10.0.0.1"]

    port = cli("port", "create", "--network", private, "--device-owner", "compute:nova",
               "--device", "vm-1", f"vm-{tag}", "-f", "json")
    fip = cli("floating", "ip", "create", public, "-f", "json")
    assert fip["floating_ip_address"].startswith("203.0.113.") and fip["status"] == "DOWN"
    cli("floating", "ip", "set", "--port", port["id"], fip["floating_ip_address"])
    assoc = api.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert assoc["port_id"] == port["id"] and assoc["router_id"] == created["id"]
    assert assoc["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    refused = cli.fails("router", "remove", "subnet", router, f"{private}-v4")
    assert "required by one or more floating IPs" in refused
    cli("floating", "ip", "unset", "--port", fip["id"])
    assert api.get(f"/floatingips/{fip['id']}").json()["floatingip"]["port_id"] is None

    cli("router", "remove", "subnet", router, f"{private}-v4")
    cli("router", "unset", "--external-gateway", router)
    assert cli("router", "show", router, "-f", "json")["external_gateway_info"] is None
    cli("floating", "ip", "delete", fip["id"])
    cli("port", "delete", port["id"])
    cli("router", "delete", router)
    cli("network", "delete", private, public)
    assert api.get(f"/routers/{created['id']}").status_code == 404
    assert api.get(f"/networks/{net['id']}").status_code == 404


def test_gateway_address_held_by_an_interface_is_pinned(admin: Client) -> None:
    """Moving or clearing a subnet's gateway is refused while a router interface holds
    the address (GatewayIpInUse), allowed before and after, as upstream."""
    net = admin.create("networks", name="pinned")
    sub = admin.create("subnets", network_id=net["id"], cidr="10.61.0.0/28", ip_version=4,
                       allocation_pools=[{"start": "10.61.0.10", "end": "10.61.0.14"}])
    moved = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.61.0.2"}})
    assert moved.status_code == 200, moved.text  # no router yet: free to move
    router = admin.create("routers", name="r")
    assert add(admin, router["id"], subnet_id=sub["id"]).status_code == 200
    for gateway in ("10.61.0.3", None):
        r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": gateway}})
        assert_error(r, 409, "GatewayIpInUse", "10.61.0.2 already in use")
    assert admin.get(f"/subnets/{sub['id']}").json()["subnet"]["gateway_ip"] == "10.61.0.2"
    assert remove(admin, router["id"], subnet_id=sub["id"]).status_code == 200
    cleared = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": None}})
    assert cleared.status_code == 200, cleared.text
