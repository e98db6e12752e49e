"""Networks: defaults, updates, admin-only attributes, sharing, MTU, segments, bulk create.

Every expectation here was checked against the upstream server (see
docs/api-differences.md for the few places where we differ on purpose).
"""

from __future__ import annotations

import re
import uuid

import pytest

from tests.conftest import Client, assert_error

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
NETWORK_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "admin_state_up", "status", "mtu", "shared", "subnets",
    "router:external", "port_security_enabled", "availability_zone_hints",
    "availability_zones", "ipv4_address_scope", "ipv6_address_scope", "is_default",
}


def unique(prefix: str = "net") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_create_fills_upstream_defaults(admin: Client) -> None:
    net = admin.create("networks", name="defaults")
    assert set(net) == NETWORK_KEYS | set(PROVIDER)
    assert net["status"] == "ACTIVE"
    assert net["admin_state_up"] is True
    assert net["shared"] is False and net["router:external"] is False
    assert net["port_security_enabled"] is True
    assert net["mtu"] == 1450  # vxlan on a 1500 fabric
    assert net["subnets"] == [] and net["tags"] == []
    assert net["availability_zone_hints"] == [] and net["availability_zones"] == []
    assert net["ipv4_address_scope"] is None and net["ipv6_address_scope"] is None
    assert net["description"] == ""
    assert net["project_id"] == net["tenant_id"] == "fake_project_id"
    assert net["revision_number"] == 1
    assert TIMESTAMP.match(net["created_at"]) and TIMESTAMP.match(net["updated_at"])
    assert net["provider:network_type"] == "vxlan"
    assert net["provider:physical_network"] is None
    assert isinstance(net["provider:segmentation_id"], int)
    shown = admin.get(f"/networks/{net['id']}").json()["network"]
    assert shown == net
    listed = admin.get("/networks", params={"id": net["id"]}).json()["networks"]
    assert listed == [net]


def test_create_with_every_writable_attribute(admin: Client) -> None:
    net = admin.create("networks", name="full", description="d", admin_state_up=False,
                       mtu=1400, port_security_enabled=False, shared=True,
                       availability_zone_hints=["nova"], tags=["a", "b"])
    assert net["description"] == "d" and net["admin_state_up"] is False
    assert net["mtu"] == 1400 and net["port_security_enabled"] is False
    assert net["shared"] is True and net["availability_zone_hints"] == ["nova"]
    assert net["tags"] == ["a", "b"]
    other = admin.create("networks", name="other-owner", project_id="someone-else")
    assert other["project_id"] == other["tenant_id"] == "someone-else"


def test_update_and_delete(admin: Client) -> None:
    net = admin.create("networks", name="before")
    r = admin.put(f"/networks/{net['id']}", {"network": {
        "name": "after", "description": "x", "admin_state_up": False}})
    assert r.status_code == 200, r.text
    got = r.json()["network"]
    assert (got["name"], got["description"], got["admin_state_up"]) == ("after", "x", False)
    assert got["revision_number"] == net["revision_number"] + 1
    assert got["created_at"] == net["created_at"] and got["updated_at"] >= net["updated_at"]
    # nothing changes: no new revision (as upstream)
    again = admin.put(f"/networks/{net['id']}", {"network": {"name": "after"}}).json()
    assert again["network"]["revision_number"] == got["revision_number"]
    assert admin.put(f"/networks/{net['id']}", {"network": {}}).json()["network"][
        "revision_number"] == got["revision_number"]
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert_error(admin.get(f"/networks/{net['id']}"), 404, "NetworkNotFound",
                 f"Network {net['id']} could not be found.")
    assert_error(admin.delete(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {"name": "z"}}), 404,
                 "NetworkNotFound")


@pytest.mark.parametrize("attr,value", [
    ("id", "5f6c0a6e-0000-4000-8000-000000000000"), ("status", "DOWN"), ("subnets", []),
    ("tenant_id", "x"), ("project_id", "x"), ("tags", ["a"]),
    ("availability_zone_hints", ["a"]),
])
def test_update_read_only_attribute(admin: Client, attr: str, value: object) -> None:
    net = admin.create("networks", name="ro")
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {attr: value}}), 400,
                 "HTTPBadRequest", f"Cannot update read-only attribute {attr}")


def test_mtu_limits_follow_the_segment_type(admin: Client) -> None:
    assert_error(admin.post("/networks", {"network": {"mtu": 1451}}), 400, "InvalidInput",
                 "Requested MTU is too big, maximum is 1450.")
    assert_error(admin.post("/networks", {"network": {"mtu": 9000}}), 400, "InvalidInput",
                 "maximum is 1450")
    assert_error(admin.post("/networks", {"network": {"mtu": -1}}), 400, "HTTPBadRequest",
                 "Invalid input for mtu")
    # as upstream: 0 is the largest the segment allows; below 68 no IPv4 subnet fits
    assert admin.create("networks", mtu=0)["mtu"] == 1450
    tiny = admin.create("networks", mtu=67)
    assert tiny["mtu"] == 67
    r = admin.post("/subnets", {"subnet": {"network_id": tiny["id"], "ip_version": 4,
                                           "cidr": "10.69.0.0/24"}})
    assert_error(r, 409, "NetworkMTUSubnetConflict", "requires a minimum of 68")
    assert_error(admin.post("/networks", {"network": {"mtu": "big"}}), 400, "InvalidInput",
                 "'big' is not an integer")
    vlan = admin.create("networks", **{"provider:network_type": "vlan", "mtu": 1500})
    assert vlan["mtu"] == 1500
    assert_error(admin.put(f"/networks/{vlan['id']}", {"network": {"mtu": 1501}}), 400,
                 "InvalidInput", "maximum is 1500")
    net = admin.create("networks", name="mtu")
    r = admin.put(f"/networks/{net['id']}", {"network": {"mtu": 1300}})
    assert r.status_code == 200 and r.json()["network"]["mtu"] == 1300
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {"mtu": 1451}}), 400,
                 "InvalidInput", "maximum is 1450")
    # IPv6 needs 1280: neither a v6 subnet on a smaller network nor shrinking under one
    small = admin.create("networks", mtu=1200)
    r = admin.post("/subnets", {"subnet": {"network_id": small["id"], "ip_version": 6,
                                           "cidr": "2001:db8:70::/64"}})
    assert_error(r, 409, "NetworkMTUSubnetConflict", "requires a minimum of 1280")
    admin.create("subnets", network_id=net["id"], ip_version=6, cidr="2001:db8:71::/64")
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {"mtu": 1279}}), 409,
                 "NetworkMTUSubnetConflict", f"MTU of {net['id']} is not valid")
    assert admin.put(f"/networks/{net['id']}", {"network": {"mtu": 1280}}).status_code == 200
    v4 = admin.create("networks", mtu=1280)
    admin.create("subnets", network_id=v4["id"], ip_version=4, cidr="10.71.0.0/24")
    assert_error(admin.put(f"/networks/{v4['id']}", {"network": {"mtu": 67}}), 409,
                 "NetworkMTUSubnetConflict", "requires a minimum of 68")
    r = admin.put(f"/networks/{v4['id']}", {"network": {"mtu": 0}})
    assert r.status_code == 200 and r.json()["network"]["mtu"] == 1450


def test_provider_segments_and_conflicts(admin: Client) -> None:
    flat = admin.create("networks", **{"provider:network_type": "flat",
                                       "provider:physical_network": "public"})
    assert (flat["provider:physical_network"], flat["provider:segmentation_id"],
            flat["mtu"]) == ("public", None, 1500)
    r = admin.post("/networks", {"network": {"provider:network_type": "flat",
                                             "provider:physical_network": "public"}})
    assert_error(r, 409, "FlatNetworkInUse", "Physical network public is in use.")

    vlan = admin.create("networks", **{"provider:network_type": "vlan",
                                       "provider:physical_network": "physnet1",
                                       "provider:segmentation_id": 1234})
    assert (vlan["provider:network_type"], vlan["provider:physical_network"],
            vlan["provider:segmentation_id"]) == ("vlan", "physnet1", 1234)
    r = admin.post("/networks", {"network": {"provider:network_type": "vlan",
                                             "provider:physical_network": "physnet1",
                                             "provider:segmentation_id": 1234}})
    assert_error(r, 409, "VlanIdInUse",
                 "The VLAN 1234 on physical network physnet1 is in use.")
    auto = admin.create("networks", **{"provider:network_type": "vlan"})
    assert auto["provider:physical_network"] == "physnet1"
    assert 1000 <= auto["provider:segmentation_id"] <= 2999

    vx = admin.create("networks", **{"provider:network_type": "vxlan",
                                     "provider:segmentation_id": 77777})
    assert vx["provider:segmentation_id"] == 77777 and vx["mtu"] == 1450
    r = admin.post("/networks", {"network": {"provider:network_type": "vxlan",
                                             "provider:segmentation_id": 77777}})
    assert_error(r, 409, "TunnelIdInUse", "The tunnel ID 77777 is in use.")
    # a deleted network frees its segment
    assert admin.delete(f"/networks/{vx['id']}").status_code == 204
    again = admin.create("networks", **{"provider:network_type": "vxlan",
                                        "provider:segmentation_id": 77777})
    assert again["provider:segmentation_id"] == 77777
    assert admin.delete(f"/networks/{flat['id']}").status_code == 204


@pytest.mark.parametrize("attrs,message", [
    ({"provider:network_type": "vlan", "provider:physical_network": "physnet1",
      "provider:segmentation_id": 4095}, "segmentation_id out of range (1 through 4094)."),
    ({"provider:network_type": "vlan", "provider:physical_network": "nope",
      "provider:segmentation_id": 10}, "physical_network 'nope' unknown for VLAN"),
    ({"provider:network_type": "vlan", "provider:segmentation_id": 10},
     "segmentation_id requires physical_network for VLAN provider network."),
    ({"provider:network_type": "flat"}, "physical_network required for flat provider network"),
    ({"provider:network_type": "flat", "provider:physical_network": "physnet1",
      "provider:segmentation_id": 3}, "segmentation_id prohibited for flat provider network"),
    ({"provider:network_type": "flat", "provider:physical_network": "elsewhere"},
     "physical_network 'elsewhere' unknown for flat provider network"),
    ({"provider:network_type": "vxlan", "provider:physical_network": "physnet1"},
     "provider:physical_network specified for vxlan network."),
    ({"provider:network_type": "gre"}, "network_type value 'gre' not supported."),
    ({"provider:segmentation_id": 12}, "network_type required."),
])
def test_provider_attributes_refused(admin: Client, attrs: dict, message: str) -> None:
    assert_error(admin.post("/networks", {"network": attrs}), 400, "InvalidInput", message)


def test_provider_attributes_are_not_updatable(admin: Client) -> None:
    net = admin.create("networks", **{"provider:network_type": "vlan",
                                      "provider:physical_network": "physnet1",
                                      "provider:segmentation_id": 2222})
    r = admin.put(f"/networks/{net['id']}", {"network": {"provider:segmentation_id": 2223}})
    assert_error(r, 400, "InvalidInput", "does not support updating the following provider "
                 "network attributes: provider:segmentation_id.")
    # the values it already has are no change
    r = admin.put(f"/networks/{net['id']}", {"network": {
        "provider:network_type": "vlan", "provider:segmentation_id": 2222}})
    assert r.status_code == 200 and r.json()["network"]["revision_number"] == 1


def test_admin_only_attributes_invisible_and_refused(admin: Client, project_client) -> None:
    member = project_client()
    net = member.create("networks", name="mine")
    assert not set(PROVIDER) & set(net)
    assert not set(PROVIDER) & set(member.get(f"/networks/{net['id']}").json()["network"])
    for item in member.get("/networks").json()["networks"]:
        assert not set(PROVIDER) & set(item)
    fields = member.get(f"/networks/{net['id']}",
                        params={"fields": ["id", "provider:network_type"]}).json()
    assert fields["network"] == {"id": net["id"]}
    # the admin sees them on the same network
    assert admin.get(f"/networks/{net['id']}").json()["network"][
        "provider:network_type"] == "vxlan"
    for attr, value in [("provider:network_type", "vxlan"), ("provider:segmentation_id", 5),
                        ("provider:physical_network", "physnet1"), ("shared", True),
                        ("router:external", True)]:
        assert_error(member.post("/networks", {"network": {attr: value}}), 403,
                     "PolicyNotAuthorized", f"rule:create_network:{attr} is disallowed")
        assert_error(member.put(f"/networks/{net['id']}", {"network": {attr: value}}), 403,
                     "PolicyNotAuthorized", f"rule:update_network:{attr} is disallowed")
    assert_error(member.post("/networks", {"network": {"project_id": "another"}}), 400,
                 "HTTPBadRequest", "Specifying 'project_id' other than the authenticated")
    # a member may still set what is not admin-only
    r = member.put(f"/networks/{net['id']}", {"network": {"mtu": 1400,
                                                          "port_security_enabled": False}})
    assert r.status_code == 200, r.text


def test_a_create_may_name_an_admin_only_attributes_default(admin: Client,
                                                            project_client) -> None:
    """As upstream's policy: saying the default on a create is not setting it (clients
    send ``shared: false`` for ``--no-share``); on an update, saying it is refused."""
    member = project_client()
    net = member.create("networks", name="plain", shared=False, **{"router:external": False})
    assert net["shared"] is False and net["router:external"] is False
    assert_error(member.put(f"/networks/{net['id']}", {"network": {"shared": False}}), 403,
                 "PolicyNotAuthorized", "rule:update_network:shared is disallowed")
    assert_error(member.post("/networks", {"network": {"shared": True}}), 403,
                 "PolicyNotAuthorized", "rule:create_network:shared is disallowed")


def test_shared_network_is_usable_by_other_projects(admin: Client, project_client) -> None:
    name = unique("shared")
    shared = admin.create("networks", name=name, shared=True)
    sub = admin.create("subnets", network_id=shared["id"], cidr="10.40.0.0/24", ip_version=4)
    member = project_client()
    seen = member.get("/networks", params={"name": name}).json()["networks"]
    assert [n["id"] for n in seen] == [shared["id"]] and seen[0]["shared"] is True
    assert member.get(f"/subnets/{sub['id']}").status_code == 200
    port = member.create("ports", network_id=shared["id"])
    assert port["project_id"] != shared["project_id"]
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    by_subnet = member.create("ports", network_id=shared["id"],
                              fixed_ips=[{"subnet_id": sub["id"]}])
    assert by_subnet["fixed_ips"][0]["subnet_id"] == sub["id"]
    # the network stays its owner's
    r = member.post("/subnets", {"subnet": {"network_id": shared["id"], "ip_version": 4,
                                            "cidr": "10.41.0.0/24"}})
    assert_error(r, 403, "PolicyNotAuthorized", "create_subnet")
    assert_error(member.put(f"/networks/{shared['id']}", {"network": {"name": "x"}}), 403,
                 "PolicyNotAuthorized", "update_network")
    assert_error(member.delete(f"/networks/{shared['id']}"), 403, "PolicyNotAuthorized")
    r = member.post("/ports", {"port": {"network_id": shared["id"],
                                        "fixed_ips": [{"ip_address": "10.40.0.99"}]}})
    assert_error(r, 403, "PolicyNotAuthorized", "create_port:fixed_ips:ip_address")
    r = member.post("/ports", {"port": {"network_id": shared["id"],
                                        "mac_address": "fa:16:3e:00:00:42"}})
    assert_error(r, 403, "PolicyNotAuthorized", "create_port:mac_address")
    # unsharing is refused while another project uses it
    r = admin.put(f"/networks/{shared['id']}", {"network": {"shared": False}})
    assert_error(r, 409, "InvalidSharedSetting", f"Unable to reconfigure sharing settings for "
                 f"network {name}. Multiple projects are using it.")
    for p in (port, by_subnet):
        assert member.delete(f"/ports/{p['id']}").status_code == 204
    r = admin.put(f"/networks/{shared['id']}", {"network": {"shared": False}})
    assert r.status_code == 200 and r.json()["network"]["shared"] is False
    assert_error(member.get(f"/networks/{shared['id']}"), 404, "NetworkNotFound")
    assert member.get("/networks", params={"name": name}).json()["networks"] == []


def test_external_network_is_visible_but_not_usable(admin: Client, project_client) -> None:
    ext = admin.create("networks", name=unique("ext"), **{"router:external": True})
    member = project_client()
    got = member.get(f"/networks/{ext['id']}").json()["network"]
    assert got["router:external"] is True and got["shared"] is False
    r = member.post("/ports", {"port": {"network_id": ext["id"]}})
    assert_error(r, 403, "PolicyNotAuthorized", "create_port")


def test_bulk_create_is_all_or_nothing(admin: Client, project_client) -> None:
    names = [unique("bulk") for _ in range(3)]
    r = admin.post("/networks", {"networks": [{"name": n} for n in names]})
    assert r.status_code == 201, r.text
    created = r.json()["networks"]
    assert [n["name"] for n in created] == names
    assert all(n["provider:network_type"] == "vxlan" for n in created)

    def count(name: str) -> int:
        return len(admin.get("/networks", params={"name": name}).json()["networks"])

    # one bad item: nothing is created, whichever step finds the fault
    bad = [unique("bulk"), unique("bulk")]
    r = admin.post("/networks", {"networks": [{"name": bad[0]}, {"name": bad[1], "mtu": 9000}]})
    assert_error(r, 400, "InvalidInput", "maximum is 1450")
    r = admin.post("/networks", {"networks": [{"name": bad[0]}, {"name": bad[1], "foo": 1}]})
    assert_error(r, 400, "HTTPBadRequest", "Unrecognized attribute(s) 'foo'")
    admin.create("networks", **{"provider:network_type": "vxlan",
                                "provider:segmentation_id": 60001})
    r = admin.post("/networks", {"networks": [
        {"name": bad[0]},
        {"name": bad[1], "provider:network_type": "vxlan", "provider:segmentation_id": 60001}]})
    assert_error(r, 409, "TunnelIdInUse")
    assert count(bad[0]) == 0 and count(bad[1]) == 0
    member = project_client()
    r = member.post("/networks", {"networks": [{"name": bad[0]}, {"name": bad[1],
                                                                  "shared": True}]})
    assert_error(r, 403, "PolicyNotAuthorized")
    assert count(bad[0]) == 0
    for body in ({"networks": []}, {"networks": {}}, {"networks": ["x"]},
                 {"networks": [{}], "network": {}}):
        assert_error(admin.post("/networks", body), 400, "HTTPBadRequest")


def test_network_in_use_cannot_be_deleted(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.42.0.0/24")
    port = admin.create("ports", network_id=net["id"])
    dhcp = admin.create("ports", network_id=net["id"], device_owner="network:dhcp")
    assert_error(admin.delete(f"/networks/{net['id']}"), 409, "NetworkInUse",
                 f"id for these ports is: {port['id']}.")
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    # the DHCP port is the network's own: it goes with it
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert_error(admin.get(f"/ports/{dhcp['id']}"), 404, "PortNotFound")
    assert_error(admin.get(f"/subnets/{sub['id']}"), 404, "SubnetNotFound")
