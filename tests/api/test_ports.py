"""Ports: defaults, binding (admin-only), MAC addresses, security, updates, ownership.

Expectations match the upstream server; deliberate differences are listed in
docs/api-differences.md.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import Client, assert_error

BINDING_ADMIN = ("binding:host_id", "binding:profile", "binding:vif_type", "binding:vif_details")
PORT_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "network_id", "mac_address", "admin_state_up", "status",
    "device_id", "device_owner", "fixed_ips", "port_security_enabled",
    "allowed_address_pairs", "extra_dhcp_opts", "binding:vnic_type",
    # security-group, and Neutrino's port-security-split
    "security_groups", "anti_spoofing_enabled", "security_groups_enabled",
}
MAC = re.compile(r"^fa:16:3e(:[0-9a-f]{2}){3}$")


@pytest.fixture
def net(admin: Client) -> tuple[dict, dict]:
    return admin.network_with_subnet("10.20.0.0/24")


def test_port_defaults(admin: Client, net: tuple[dict, dict]) -> None:
    network, sub = net
    port = admin.create("ports", network_id=network["id"])
    assert set(port) == PORT_KEYS | set(BINDING_ADMIN)
    assert MAC.match(port["mac_address"])
    assert port["status"] == "DOWN" and port["admin_state_up"] is True
    assert port["device_id"] == "" and port["device_owner"] == "" and port["name"] == ""
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.20.0.2"}]
    assert port["port_security_enabled"] is True
    assert port["allowed_address_pairs"] == [] and port["extra_dhcp_opts"] == []
    assert port["binding:vnic_type"] == "normal" and port["binding:host_id"] == ""
    assert port["binding:profile"] == {} and port["binding:vif_details"] == {}
    assert port["binding:vif_type"] == "unbound"
    assert port["revision_number"] == 1 and port["project_id"] == network["project_id"]
    assert admin.get(f"/ports/{port['id']}").json()["port"] == port
    # the network's port security is the port's default
    open_net = admin.create("networks", port_security_enabled=False)
    assert admin.create("ports", network_id=open_net["id"])["port_security_enabled"] is False


def test_port_on_network_without_subnets(admin: Client) -> None:
    bare = admin.create("networks", name="bare")
    assert admin.create("ports", network_id=bare["id"])["fixed_ips"] == []
    r = admin.post("/ports", {"port": {"network_id": bare["id"],
                                       "fixed_ips": [{"ip_address": "10.0.0.5"}]}})
    assert_error(r, 400, "InvalidInput", "IP allocation requires subnets for network.")


def test_dual_stack_port_gets_one_address_per_version(admin: Client) -> None:
    network, v4 = admin.network_with_subnet("10.21.0.0/24")
    v6 = admin.create("subnets", network_id=network["id"], cidr="2001:db8:21::/64",
                      ip_version=6)
    port = admin.create("ports", network_id=network["id"])
    assert sorted((f["subnet_id"], f["ip_address"]) for f in port["fixed_ips"]) == sorted(
        [(v4["id"], "10.21.0.2"), (v6["id"], "2001:db8:21::1")])


def test_binding_attributes_are_admin_only(admin: Client, project_client) -> None:
    member = project_client()
    network = member.create("networks", name="own")
    member.create("subnets", network_id=network["id"], cidr="10.22.0.0/24", ip_version=4)
    port = member.create("ports", network_id=network["id"], **{"binding:vnic_type": "direct"})
    assert set(port) == PORT_KEYS and port["binding:vnic_type"] == "direct"
    assert not set(BINDING_ADMIN) & set(member.get(f"/ports/{port['id']}").json()["port"])
    assert not set(BINDING_ADMIN) & set(member.get("/ports").json()["ports"][0])
    got = member.get(f"/ports/{port['id']}", params={"fields": ["id", "binding:host_id"]})
    assert got.json()["port"] == {"id": port["id"]}
    for attr, value in [("binding:host_id", "compute-1"), ("binding:profile", {"a": 1})]:
        r = member.post("/ports", {"port": {"network_id": network["id"], attr: value}})
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:create_port:{attr} is disallowed")
        r = member.put(f"/ports/{port['id']}", {"port": {attr: value}})
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:update_port:{attr} is disallowed")
    # the admin binds it; nothing can bind here, so it fails to bind, as upstream without agents
    r = admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": "compute-1",
                                                    "binding:profile": {"pci": "0000:01:00.1"}}})
    assert r.status_code == 200, r.text
    bound = r.json()["port"]
    assert bound["binding:host_id"] == "compute-1"
    assert bound["binding:profile"] == {"pci": "0000:01:00.1"}
    assert bound["binding:vif_type"] == "binding_failed"
    assert not set(BINDING_ADMIN) & set(member.get(f"/ports/{port['id']}").json()["port"])
    r = admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": ""}})
    assert r.json()["port"]["binding:vif_type"] == "unbound"
    r = admin.put(f"/ports/{port['id']}", {"port": {"binding:vif_type": "ovs"}})
    assert_error(r, 400, "HTTPBadRequest", "Cannot update read-only attribute binding:vif_type")
    r = member.post("/ports", {"port": {"network_id": network["id"],
                                        "binding:vnic_type": "warp"}})
    assert_error(r, 400, "HTTPBadRequest", "Invalid input for binding:vnic_type")


def test_update_port(admin: Client, net: tuple[dict, dict]) -> None:
    network, _ = net
    port = admin.create("ports", network_id=network["id"])
    changes = {"name": "p", "description": "d", "admin_state_up": False, "device_id": "vm-1",
               "device_owner": "compute:nova", "binding:vnic_type": "macvtap",
               "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": "1400", "ip_version": 4}],
               "allowed_address_pairs": [{"ip_address": "10.99.0.0/24",
                                          "mac_address": "fa:16:3e:00:00:01"}]}
    revision = port["revision_number"]
    for attr, value in changes.items():
        r = admin.put(f"/ports/{port['id']}", {"port": {attr: value}})
        assert r.status_code == 200, r.text
        assert r.json()["port"][attr] == value
        assert r.json()["port"]["revision_number"] == revision + 1, attr
        revision += 1
        again = admin.put(f"/ports/{port['id']}", {"port": {attr: value}}).json()["port"]
        assert again["revision_number"] == revision, attr  # no change, no revision
    for attr, value in [("network_id", network["id"]), ("status", "ACTIVE"),
                        ("id", port["id"]), ("tenant_id", "x")]:
        assert_error(admin.put(f"/ports/{port['id']}", {"port": {attr: value}}), 400,
                     "HTTPBadRequest", f"Cannot update read-only attribute {attr}")
    r = admin.put(f"/ports/{port['id']}", {"port": {
        "extra_dhcp_opts": [{"opt_name": "mtu", "opt_value": None}]}})
    assert r.json()["port"]["extra_dhcp_opts"] == []
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    assert_error(admin.get(f"/ports/{port['id']}"), 404, "PortNotFound",
                 f"Port {port['id']} could not be found.")
    assert_error(admin.delete(f"/ports/{port['id']}"), 404, "PortNotFound")


def test_mac_addresses(admin: Client, net: tuple[dict, dict], project_client) -> None:
    network, _ = net
    port = admin.create("ports", network_id=network["id"], mac_address="FA:16:3E:AA:BB:CC")
    assert port["mac_address"] == "fa:16:3e:aa:bb:cc"
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "mac_address": "fa:16:3e:aa:bb:cc"}})
    assert_error(r, 409, "MacAddressInUse", "The mac address fa:16:3e:aa:bb:cc is in use.")
    other = admin.create("networks", name="other")
    assert admin.create("ports", network_id=other["id"],
                        mac_address="fa:16:3e:aa:bb:cc")["mac_address"] == "fa:16:3e:aa:bb:cc"
    second = admin.create("ports", network_id=network["id"])
    r = admin.put(f"/ports/{second['id']}", {"port": {"mac_address": "fa:16:3e:aa:bb:cc"}})
    assert_error(r, 409, "MacAddressInUse")
    r = admin.put(f"/ports/{second['id']}", {"port": {"mac_address": "fa:16:3e:aa:bb:cd"}})
    assert r.status_code == 200 and r.json()["port"]["mac_address"] == "fa:16:3e:aa:bb:cd"
    for bad in ("00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff", "zz:16:3e:aa:bb:cc", "fa:16:3e"):
        r = admin.post("/ports", {"port": {"network_id": network["id"], "mac_address": bad}})
        assert_error(r, 400, "HTTPBadRequest", "Invalid input for mac_address")
    # the owner of a network chooses MACs on it; only admins change one afterwards
    member = project_client()
    own = member.create("networks", name="own")
    mine = member.create("ports", network_id=own["id"], mac_address="fa:16:3e:12:34:56")
    assert mine["mac_address"] == "fa:16:3e:12:34:56"
    r = member.put(f"/ports/{mine['id']}", {"port": {"mac_address": "fa:16:3e:12:34:57"}})
    assert_error(r, 403, "PolicyNotAuthorized", "update_port:mac_address")
    r = member.put(f"/ports/{mine['id']}", {"port": {"mac_address": "fa:16:3e:12:34:56"}})
    assert_error(r, 403, "PolicyNotAuthorized", "update_port:mac_address")  # even unchanged


def test_port_security_and_address_pairs(admin: Client, net: tuple[dict, dict]) -> None:
    network, _ = net
    port = admin.create("ports", network_id=network["id"],
                        allowed_address_pairs=[{"ip_address": "10.20.0.200"}])
    assert port["allowed_address_pairs"] == [{"ip_address": "10.20.0.200",
                                              "mac_address": port["mac_address"]}]
    r = admin.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False}})
    assert_error(r, 409, "AddressPairAndPortSecurityRequired",
                 "Port Security must be enabled in order to have allowed address pairs")
    # the port's (default) security group must go too, as upstream
    r = admin.put(f"/ports/{port['id']}", {"port": {"port_security_enabled": False,
                                                    "allowed_address_pairs": [],
                                                    "security_groups": []}})
    assert r.status_code == 200 and r.json()["port"]["port_security_enabled"] is False
    r = admin.put(f"/ports/{port['id']}", {"port": {
        "allowed_address_pairs": [{"ip_address": "10.20.0.201"}]}})
    assert_error(r, 409, "AddressPairAndPortSecurityRequired")
    r = admin.post("/ports", {"port": {"network_id": network["id"], "allowed_address_pairs": [
        {"ip_address": "10.20.0.9"}, {"ip_address": "10.20.0.9"}]}})
    assert_error(r, 400, "DuplicateAddressPairInRequest", "duplicate address pair")
    r = admin.post("/ports", {"port": {"network_id": network["id"], "allowed_address_pairs": [
        {"mac_address": "fa:16:3e:00:00:01"}]}})
    assert_error(r, 400, "HTTPBadRequest", "Invalid input for allowed_address_pairs")


def test_policy_on_shared_networks(admin: Client, project_client) -> None:
    shared = admin.create("networks", name="shared-ports", shared=True)
    sub = admin.create("subnets", network_id=shared["id"], cidr="10.23.0.0/24", ip_version=4)
    member = project_client()
    for attrs, rule in [({"port_security_enabled": False}, "port_security_enabled"),
                        ({"allowed_address_pairs": [{"ip_address": "1.2.3.4"}]},
                         "allowed_address_pairs"),
                        ({"device_owner": "network:dhcp"}, "device_owner"),
                        ({"mac_address": "fa:16:3e:00:00:07"}, "mac_address"),
                        ({"fixed_ips": [{"ip_address": "10.23.0.7"}]}, "fixed_ips:ip_address")]:
        r = member.post("/ports", {"port": {"network_id": shared["id"], **attrs}})
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:create_port:{rule} is disallowed")
    port = member.create("ports", network_id=shared["id"], device_owner="compute:nova")
    for attrs, rule in [({"port_security_enabled": False}, "port_security_enabled"),
                        ({"device_owner": "network:router_interface"}, "device_owner"),
                        ({"fixed_ips": [{"subnet_id": sub["id"]}]}, "fixed_ips")]:
        r = member.put(f"/ports/{port['id']}", {"port": attrs})
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:update_port:{rule} is disallowed")
    assert member.put(f"/ports/{port['id']}", {"port": {"name": "vm"}}).status_code == 200
    # an instance's port is its compute service's to remove
    assert_error(member.delete(f"/ports/{port['id']}"), 403, "PolicyNotAuthorized",
                 "rule:delete_port is disallowed")
    assert member.put(f"/ports/{port['id']}", {"port": {"device_owner": ""}}).status_code == 200
    assert member.delete(f"/ports/{port['id']}").status_code == 204


def test_network_owner_and_port_owner(admin: Client, project_client) -> None:
    owner, tenant = project_client(), project_client()
    network = owner.create("networks", name="owned")
    owner.create("subnets", network_id=network["id"], cidr="10.24.0.0/24", ip_version=4)
    theirs = admin.create("ports", network_id=network["id"],
                          project_id=tenant.session.headers["X-Project-Id"])
    # the network's owner sees others' ports on its network but does not change them...
    assert owner.get(f"/ports/{theirs['id']}").status_code == 200
    assert theirs["id"] in {p["id"] for p in owner.get("/ports").json()["ports"]}
    assert_error(owner.put(f"/ports/{theirs['id']}", {"port": {"name": "x"}}), 403,
                 "PolicyNotAuthorized", "rule:update_port is disallowed")
    # ...though it may remove them from its network (not an instance's, though)
    assert owner.delete(f"/ports/{theirs['id']}").status_code == 204
    vm = admin.create("ports", network_id=network["id"], device_owner="compute:nova",
                      project_id=tenant.session.headers["X-Project-Id"])
    assert_error(owner.delete(f"/ports/{vm['id']}"), 403, "PolicyNotAuthorized")
    assert admin.delete(f"/ports/{vm['id']}").status_code == 204


def test_bulk_ports_are_all_or_nothing(admin: Client, net: tuple[dict, dict]) -> None:
    network, sub = net
    taken = admin.create("ports", network_id=network["id"],
                         fixed_ips=[{"ip_address": "10.20.0.100"}])
    r = admin.post("/ports", {"ports": [
        {"network_id": network["id"], "name": "bulk-a"},
        {"network_id": network["id"], "name": "bulk-b",
         "fixed_ips": [{"ip_address": "10.20.0.100"}]}]})
    assert_error(r, 409, "IpAddressAlreadyAllocated",
                 f"IP address 10.20.0.100 already allocated in subnet {sub['id']}")
    assert admin.get("/ports", params={"name": "bulk-a"}).json()["ports"] == []
    r = admin.post("/ports", {"ports": [{"network_id": network["id"], "name": "bulk-a"},
                                        {"network_id": network["id"], "name": "bulk-b"}]})
    assert r.status_code == 201, r.text
    ports = r.json()["ports"]
    assert [p["name"] for p in ports] == ["bulk-a", "bulk-b"]
    addresses = {p["fixed_ips"][0]["ip_address"] for p in ports}
    assert len(addresses) == 2 and "10.20.0.100" not in addresses
    assert admin.delete(f"/ports/{taken['id']}").status_code == 204
