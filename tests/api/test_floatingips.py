"""Floating IPs: creation on external networks, association through a router, the
guards on the ports involved, visibility and quotas.

Expectations match the upstream server (checked request by request); deliberate
differences are listed in docs/api-differences.md.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass

import pytest

from tests.conftest import Client, Server, assert_error

FIP_KEYS = {
    "id", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "floating_ip_address", "floating_network_id", "router_id",
    "port_id", "fixed_ip_address", "status", "port_details",
}
DETAIL_KEYS = {"name", "network_id", "mac_address", "admin_state_up", "status", "device_id",
               "device_owner"}
MISSING = "6f2b1c5e-8a4d-4c1e-9f00-000000000000"


@dataclass
class Topology:
    """An external network and a project's network joined to it by the project's router."""

    member: Client
    public: dict
    public_subnet: dict
    network: dict
    subnet: dict
    router: dict

    def port(self, **attrs: object) -> dict:
        """An instance's port (pass ``device_owner=""`` for one the member may delete)."""
        attrs.setdefault("device_owner", "compute:nova")
        attrs.setdefault("device_id", f"vm-{uuid.uuid4()}")
        return self.member.create("ports", network_id=self.network["id"], **attrs)

    def fip(self, **attrs: object) -> dict:
        return self.member.create("floatingips", floating_network_id=self.public["id"],
                                  **attrs)


_cidrs = iter(range(1, 250))


@pytest.fixture
def topo(admin: Client, project_client) -> Topology:
    n = next(_cidrs)
    public = admin.create("networks", name="public", **{"router:external": True})
    public_subnet = admin.create("subnets", network_id=public["id"], ip_version=4,
                                 cidr=f"172.16.{n}.0/24")
    member = project_client()
    network = member.create("networks", name="private")
    subnet = member.create("subnets", network_id=network["id"], ip_version=4,
                           cidr="10.0.0.0/24")
    router = member.create("routers", name="edge",
                           external_gateway_info={"network_id": public["id"]})
    r = member.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": subnet["id"]})
    assert r.status_code == 200, r.text
    return Topology(member, public, public_subnet, network, subnet, router)


def test_create_defaults_and_the_address_port(admin: Client, topo: Topology) -> None:
    fip = topo.fip(description="web")
    assert set(fip) == FIP_KEYS
    assert ipaddress.ip_address(fip["floating_ip_address"]) in \
        ipaddress.ip_network(topo.public_subnet["cidr"])
    assert fip["floating_network_id"] == topo.public["id"] and fip["description"] == "web"
    assert fip["status"] == "DOWN"  # nothing realises it yet (upstream without an L3 agent)
    assert fip["router_id"] is None and fip["port_id"] is None
    assert fip["fixed_ip_address"] is None and fip["port_details"] is None
    assert fip["revision_number"] == 0 and fip["tenant_id"] == fip["project_id"]
    assert topo.member.get(f"/floatingips/{fip['id']}").json()["floatingip"] == fip
    [port] = admin.get("/ports", params={"device_id": fip["id"]}).json()["ports"]
    assert port["device_owner"] == "network:floatingip" and port["project_id"] == ""
    assert port["network_id"] == topo.public["id"] and port["status"] == "N/A"
    assert port["fixed_ips"] == [{"subnet_id": topo.public_subnet["id"],
                                  "ip_address": fip["floating_ip_address"]}]
    # the member sees its floating IP, not the port behind it
    assert topo.member.get("/ports", params={"device_id": fip["id"]}).json()["ports"] == []
    assert_error(admin.delete(f"/ports/{port['id']}"), 409, "ServicePortInUse",
                 f"Port {port['id']} cannot be deleted directly via the port API: has device "
                 f"owner network:floatingip.")
    assert topo.member.delete(f"/floatingips/{fip['id']}").status_code == 204
    assert admin.get(f"/ports/{port['id']}").status_code == 404
    assert_error(topo.member.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound",
                 f"Floating IP {fip['id']} could not be found")


def test_chosen_address_and_subnet(admin: Client, topo: Topology) -> None:
    base = topo.public_subnet["cidr"].rsplit(".", 1)[0]
    chosen = f"{base}.77"
    assert_error(topo.member.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"], "floating_ip_address": chosen}}), 403,
        "PolicyNotAuthorized", "rule:create_floatingip:floating_ip_address is disallowed")
    fip = admin.create("floatingips", floating_network_id=topo.public["id"],
                       floating_ip_address=chosen, subnet_id=topo.public_subnet["id"],
                       project_id=topo.member.session.headers["X-Project-Id"])
    assert fip["floating_ip_address"] == chosen
    assert topo.member.get(f"/floatingips/{fip['id']}").status_code == 200
    assert_error(admin.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"], "floating_ip_address": chosen}}), 409,
        "IpAddressAlreadyAllocated")
    assert_error(admin.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"], "floating_ip_address": "10.99.0.1"}}), 400,
        "InvalidIpForNetwork")
    assert_error(admin.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"], "subnet_id": topo.subnet["id"]}}), 400,
        "InvalidInput", f"fixed_ips included invalid subnet {topo.subnet['id']}")
    # project managers may choose an address too (upstream's policy)
    manager = Client(topo.member.base, project=topo.member.session.headers["X-Project-Id"],
                     roles="manager,member")
    other = manager.create("floatingips", floating_network_id=topo.public["id"],
                           floating_ip_address=f"{base}.78")
    assert other["floating_ip_address"] == f"{base}.78"


def test_create_errors(admin: Client, topo: Topology) -> None:
    m = topo.member

    def post(**attrs: object):
        return m.post("/floatingips", {"floatingip": attrs})

    assert_error(post(floating_network_id=topo.network["id"]), 400, "BadRequest",
                 f"Bad floatingip request: Network {topo.network['id']} is not a valid external "
                 f"network.")
    assert_error(post(floating_network_id=MISSING), 404, "NetworkNotFound")
    assert_error(post(), 400, "HTTPBadRequest", "'floating_network_id' not specified")
    assert_error(post(floating_network_id=topo.public["id"], fixed_ip_address="10.0.0.5"),
                 400, "BadRequest", "fixed_ip_address cannot be specified without a port_id")
    assert_error(post(floating_network_id=topo.public["id"], name="x"), 400,
                 "HTTPBadRequest", "Unrecognized attribute(s) 'name'")
    assert_error(post(floating_network_id=topo.public["id"], port_id=MISSING), 404,
                 "PortNotFound")
    assert_error(post(floating_network_id=topo.public["id"], router_id=MISSING), 400,
                 "HTTPBadRequest", "Attribute 'router_id' not allowed in POST")
    v6only = admin.create("networks", name="v6-public", **{"router:external": True})
    admin.create("subnets", network_id=v6only["id"], ip_version=6, cidr="2001:db8:f1::/64")
    assert_error(post(floating_network_id=v6only["id"]), 400, "BadRequest",
                 f"Network {v6only['id']} does not contain any IPv4 subnet")
    # nothing was left behind on the external network
    assert admin.get("/ports", params={"network_id": topo.public["id"],
                                       "device_owner": "network:floatingip"}).json()[
        "ports"] == []
    assert admin.delete(f"/networks/{v6only['id']}").status_code == 204


def test_associate_and_disassociate(topo: Topology) -> None:
    port = topo.port(name="web")
    fip = topo.fip()
    path = f"/floatingips/{fip['id']}"
    r = topo.member.put(path, {"floatingip": {"port_id": port["id"]}})
    assert r.status_code == 200, r.text
    got = r.json()["floatingip"]
    assert got["port_id"] == port["id"] and got["router_id"] == topo.router["id"]
    assert got["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    assert got["status"] == "DOWN" and got["revision_number"] == 1
    assert set(got["port_details"]) == DETAIL_KEYS
    assert got["port_details"]["name"] == "web"
    assert got["port_details"]["device_owner"] == "compute:nova"
    assert got["port_details"]["mac_address"] == port["mac_address"]
    # an update without port_id keeps the association
    kept = topo.member.put(path, {"floatingip": {"description": "d"}}).json()["floatingip"]
    assert kept["port_id"] == port["id"] and kept["description"] == "d"
    # filters
    for key, value in (("port_id", port["id"]), ("router_id", topo.router["id"]),
                       ("fixed_ip_address", got["fixed_ip_address"]),
                       ("floating_ip_address", fip["floating_ip_address"]),
                       ("floating_network_id", topo.public["id"]), ("status", "DOWN")):
        listed = topo.member.get("/floatingips", params={key: value}).json()["floatingips"]
        assert [x["id"] for x in listed] == [fip["id"]], key
    assert_error(topo.member.get("/floatingips", params={"subnet_id": topo.subnet["id"]}),
                 400, "HTTPBadRequest", "['subnet_id'] is invalid attribute for filtering")
    assert_error(topo.member.get("/floatingips", params={"sort_key": "port_id"}), 400)

    r = topo.member.put(path, {"floatingip": {"port_id": None}})
    cleared = r.json()["floatingip"]
    assert cleared["port_id"] is None and cleared["router_id"] is None
    assert cleared["fixed_ip_address"] is None and cleared["port_details"] is None
    # created associated in one go
    direct = topo.fip(port_id=port["id"])
    assert direct["port_id"] == port["id"] and direct["router_id"] == topo.router["id"]
    # an update with no attributes at all disassociates, as the original API did
    blank = topo.member.put(f"/floatingips/{direct['id']}", {"floatingip": {}})
    assert blank.status_code == 200, blank.text
    assert blank.json()["floatingip"]["port_id"] is None


def test_association_needs_a_router_to_the_external_network(admin: Client,
                                                           topo: Topology) -> None:
    m = topo.member
    lonely_net = m.create("networks", name="lonely")
    lonely_sub = m.create("subnets", network_id=lonely_net["id"], cidr="10.1.0.0/24",
                          ip_version=4)
    port = m.create("ports", network_id=lonely_net["id"])
    fip = topo.fip()
    path = f"/floatingips/{fip['id']}"
    assert_error(m.put(path, {"floatingip": {"port_id": port["id"]}}), 404,
                 "ExternalGatewayForFloatingIPNotFound",
                 f"External network {topo.public['id']} is not reachable from subnet "
                 f"{lonely_sub['id']}.  Therefore, cannot associate Port {port['id']} with a "
                 f"Floating IP.")
    # a router on the subnet whose gateway is elsewhere does not do
    other_public = admin.create("networks", name="other", **{"router:external": True})
    admin.create("subnets", network_id=other_public["id"], cidr="192.0.2.0/24", ip_version=4)
    router = m.create("routers", name="elsewhere",
                      external_gateway_info={"network_id": other_public["id"]})
    m.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": lonely_sub["id"]})
    assert_error(m.put(path, {"floatingip": {"port_id": port["id"]}}), 404,
                 "ExternalGatewayForFloatingIPNotFound")
    # its gateway moved to the floating IP's network: now it does
    m.put(f"/routers/{router['id']}", {"router": {
        "external_gateway_info": {"network_id": topo.public["id"]}}})
    r = m.put(path, {"floatingip": {"port_id": port["id"]}})
    assert r.status_code == 200 and r.json()["floatingip"]["router_id"] == router["id"]


def test_ports_with_several_addresses(topo: Topology) -> None:
    m = topo.member
    second = m.create("subnets", network_id=topo.network["id"], cidr="10.2.0.0/24",
                      ip_version=4)
    v6 = m.create("subnets", network_id=topo.network["id"], cidr="2001:db8:f2::/64",
                  ip_version=6)
    port = topo.port(fixed_ips=[{"subnet_id": topo.subnet["id"]}, {"subnet_id": second["id"]},
                                {"subnet_id": v6["id"]}])
    by_subnet = {f["subnet_id"]: f["ip_address"] for f in port["fixed_ips"]}
    fip = topo.fip()
    path = f"/floatingips/{fip['id']}"

    def associate(**attrs: object):
        return m.put(path, {"floatingip": {"port_id": port["id"], **attrs}})

    assert_error(associate(), 400, "BadRequest",
                 f"Port {port['id']} has multiple fixed IPv4 addresses.  Must provide a "
                 f"specific IPv4 address when assigning a floating IP")
    assert_error(associate(fixed_ip_address="10.0.0.222"), 400, "BadRequest",
                 f"Port {port['id']} does not have fixed ip 10.0.0.222")
    assert_error(associate(fixed_ip_address=by_subnet[v6["id"]]), 400, "BadRequest",
                 "since that is not an IPv4 address")
    # the second subnet has no router yet
    assert_error(associate(fixed_ip_address=by_subnet[second["id"]]), 404,
                 "ExternalGatewayForFloatingIPNotFound")
    r = associate(fixed_ip_address=by_subnet[topo.subnet["id"]])
    assert r.status_code == 200 and r.json()["floatingip"]["fixed_ip_address"] == \
        by_subnet[topo.subnet["id"]]
    # one floating IP per fixed IP
    other = topo.fip()
    r = m.put(f"/floatingips/{other['id']}", {"floatingip": {
        "port_id": port["id"], "fixed_ip_address": by_subnet[topo.subnet["id"]]}})
    assert_error(r, 409, "FloatingIPPortAlreadyAssociated",
                 f"Cannot associate floating IP {other['floating_ip_address']} ({other['id']}) "
                 f"with port {port['id']} using fixed IP {by_subnet[topo.subnet['id']]}, as "
                 f"that fixed IP already has a floating IP on external network "
                 f"{topo.public['id']}.")
    assert_error(m.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"], "port_id": port["id"],
        "fixed_ip_address": by_subnet[topo.subnet["id"]]}}), 409,
        "FloatingIPPortAlreadyAssociated")
    # the port's other address may have one
    m.put(f"/routers/{topo.router['id']}/add_router_interface", {"subnet_id": second["id"]})
    r = m.put(f"/floatingips/{other['id']}", {"floatingip": {
        "port_id": port["id"], "fixed_ip_address": by_subnet[second["id"]]}})
    assert r.status_code == 200, r.text
    # re-associating a floating IP with its own fixed IP is no conflict
    r = associate(fixed_ip_address=by_subnet[topo.subnet["id"]])
    assert r.status_code == 200 and r.json()["floatingip"]["revision_number"] == 1


def test_ports_that_cannot_have_one(admin: Client, topo: Topology) -> None:
    fip = topo.fip()
    path = f"/floatingips/{fip['id']}"
    dhcp = admin.create("ports", network_id=topo.network["id"], device_owner="network:dhcp",
                        project_id=topo.member.session.headers["X-Project-Id"])
    assert_error(topo.member.put(path, {"floatingip": {"port_id": dhcp["id"]}}), 400,
                 "BadRequest", f"Port {dhcp['id']} is unable to be assigned a floating IP")
    bare = topo.port(fixed_ips=[])
    assert_error(topo.member.put(path, {"floatingip": {"port_id": bare["id"]}}), 400,
                 "BadRequest", f"Cannot add floating IP to port {bare['id']} that has no fixed "
                 f"IPv4 addresses")
    # another project's port on the member's network: visible, but not the member's
    stranger_port = admin.create("ports", network_id=topo.network["id"], project_id="other")
    assert_error(topo.member.put(path, {"floatingip": {"port_id": stranger_port["id"]}}), 400,
                 "BadRequest", f"Cannot process floating IP association with Port "
                 f"{stranger_port['id']}, since that port is owned by a different project")
    # a port the member cannot see does not exist
    elsewhere, _ = admin.network_with_subnet("10.3.0.0/24")
    hidden = admin.create("ports", network_id=elsewhere["id"])
    assert_error(topo.member.put(path, {"floatingip": {"port_id": hidden["id"]}}), 404,
                 "PortNotFound")
    assert topo.member.get(path).json()["floatingip"]["port_id"] is None


def test_deleting_the_port_disassociates(admin: Client, topo: Topology) -> None:
    port = topo.port(device_owner="", device_id="")
    fip = topo.fip(port_id=port["id"])
    assert topo.member.delete(f"/ports/{port['id']}").status_code == 204
    got = topo.member.get(f"/floatingips/{fip['id']}").json()["floatingip"]
    assert got["port_id"] is None and got["router_id"] is None
    assert got["fixed_ip_address"] is None and got["port_details"] is None
    assert got["revision_number"] == fip["revision_number"] + 1
    # an admin's floating IP on a member's port: the member may not silently drop it
    port = topo.port(device_owner="", device_id="")
    admin.create("floatingips", floating_network_id=topo.public["id"], port_id=port["id"])
    assert_error(topo.member.delete(f"/ports/{port['id']}"), 409, "FipAssociated",
                 f"Unable to complete the operation on port {port['id']} because the port still "
                 f"has an associated floating IP.")
    assert admin.delete(f"/ports/{port['id']}").status_code == 204


def test_what_a_floating_ip_keeps_in_place(admin: Client, topo: Topology) -> None:
    m = topo.member
    port = topo.port()
    fixed = port["fixed_ips"][0]["ip_address"]
    fip = topo.fip(port_id=port["id"])
    # its fixed IP stays on the port
    assert_error(m.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": topo.subnet["id"], "ip_address": "10.0.0.201"}]}}), 400, "BadRequest",
        f"Bad port request: Cannot update the fixed_ips of the port {port['id']}, because its "
        f"original fixed_ip has been associated to a floating ip.")
    r = m.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": topo.subnet["id"], "ip_address": fixed}]}})
    assert r.status_code == 200
    # the router interface and the gateway it goes through stay
    rpath = f"/routers/{topo.router['id']}"
    assert_error(m.put(f"{rpath}/remove_router_interface", {"subnet_id": topo.subnet["id"]}),
                 409, "RouterInterfaceInUseByFloatingIP",
                 f"Router interface for subnet {topo.subnet['id']} on router "
                 f"{topo.router['id']} cannot be deleted, as it is required by one or more "
                 f"floating IPs.")
    for gateway in (None, {}):
        assert_error(m.put(rpath, {"router": {"external_gateway_info": gateway}}), 409,
                     "RouterExternalGatewayInUseByFloatingIp",
                     f"Gateway cannot be updated for router {topo.router['id']}, since a "
                     f"gateway to external network {topo.public['id']} is required by one or "
                     f"more floating IPs.")
    # the external subnet and network stay
    assert_error(admin.delete(f"/subnets/{topo.public_subnet['id']}"), 409, "SubnetInUse")
    assert_error(admin.delete(f"/networks/{topo.public['id']}"), 409, "NetworkInUse")
    # once disassociated, all of it can go
    m.put(f"/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    r = m.put(f"{rpath}/remove_router_interface", {"subnet_id": topo.subnet["id"]})
    assert r.status_code == 200, r.text
    assert m.put(rpath, {"router": {"external_gateway_info": None}}).status_code == 200
    assert m.delete(rpath).status_code == 204
    # deleting the external network takes its unused floating IPs along (as upstream)
    assert admin.delete(f"/networks/{topo.public['id']}").status_code == 204
    assert_error(m.get(f"/floatingips/{fip['id']}"), 404, "FloatingIPNotFound")


def test_visibility_ownership_and_policy(admin: Client, topo: Topology,
                                         project_client) -> None:
    fip = topo.fip()
    stranger = project_client()
    path = f"/floatingips/{fip['id']}"
    assert_error(stranger.get(path), 404, "FloatingIPNotFound")
    assert_error(stranger.put(path, {"floatingip": {"description": "x"}}), 404)
    assert_error(stranger.delete(path), 404)
    assert stranger.get("/floatingips").json()["floatingips"] == []
    assert fip["id"] in {f["id"] for f in admin.get("/floatingips").json()["floatingips"]}
    reader = Client(topo.member.base, project=topo.member.session.headers["X-Project-Id"],
                    roles="reader")
    assert reader.get(path).status_code == 200
    assert_error(reader.put(path, {"floatingip": {"description": "x"}}), 403,
                 "PolicyNotAuthorized")
    assert_error(reader.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"]}}), 403, "PolicyNotAuthorized")
    assert_error(topo.member.put(path, {"floatingip": {"floating_ip_address": "1.2.3.4"}}),
                 400, "HTTPBadRequest", "Cannot update read-only attribute floating_ip_address")
    assert_error(topo.member.put(path, {"floatingip": {"port_id": "x"}}), 400,
                 "HTTPBadRequest", "Invalid input for port_id")
    assert_error(topo.member.put(path, {"floatingip": {"fixed_ip_address": "10.0.0.9"}}), 400,
                 "BadRequest", "fixed_ip_address cannot be specified without a port_id")
    assert_error(topo.member.put(path, {"floatingip": {"description": "x"}},
                                 headers={"If-Match": "revision_number=7"}), 412)
    tagged = topo.fip(tags=["blue"])
    listed = topo.member.get("/floatingips", params={"tags": "blue"}).json()["floatingips"]
    assert [f["id"] for f in listed] == [tagged["id"]]


def test_floating_ip_quota(admin: Client, topo: Topology) -> None:
    project = topo.member.session.headers["X-Project-Id"]
    assert topo.member.get(f"/quotas/{project}").json()["quota"]["floatingip"] == 50
    assert admin.put(f"/quotas/{project}", {"quota": {"floatingip": 1, "port": 2}}
                     ).status_code == 200
    topo.fip()
    assert_error(topo.member.post("/floatingips", {"floatingip": {
        "floating_network_id": topo.public["id"]}}), 409, "OverQuota", "['floatingip']")
    used = topo.member.get(f"/quotas/{project}/details").json()["quota"]
    assert used["floatingip"] == {"limit": 1, "used": 1, "reserved": 0}
    # the address-holding ports belong to no project: they use none of its port quota
    assert used["port"]["used"] == 1  # the router interface
    topo.port()


@pytest.fixture
def admin(server: Server) -> Client:
    """The admin, whose project makes more floating IPs here than its quota allows."""
    client = Client(server.url)
    r = client.put("/quotas/fake_project_id", {"quota": {"router": -1, "floatingip": -1}})
    assert r.status_code == 200, r.text
    return client
