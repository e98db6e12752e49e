"""Subnets: defaults, validation of every attribute, updates and deletion.

Expectations match the upstream server; deliberate differences are listed in
docs/api-differences.md.
"""

from __future__ import annotations

import pytest
import requests

from tests.conftest import Client, assert_error

SUBNET_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "network_id", "ip_version", "cidr", "gateway_ip",
    "allocation_pools", "dns_nameservers", "host_routes", "enable_dhcp", "ipv6_ra_mode",
    "ipv6_address_mode", "subnetpool_id", "service_types", "router:external",
}


def post_subnet(client: Client, network_id: str, **attrs: object) -> requests.Response:
    return client.post("/subnets", {"subnet": {"network_id": network_id, **attrs}})


@pytest.fixture
def net(admin: Client) -> dict:
    return admin.create("networks", name="subnets")


def test_ipv4_defaults(admin: Client, net: dict) -> None:
    sub = admin.create("subnets", network_id=net["id"], cidr="10.1.0.5/24", ip_version=4)
    assert set(sub) == SUBNET_KEYS
    assert sub["cidr"] == "10.1.0.0/24"  # host bits dropped
    assert sub["gateway_ip"] == "10.1.0.1"
    assert sub["allocation_pools"] == [{"start": "10.1.0.2", "end": "10.1.0.254"}]
    assert sub["enable_dhcp"] is True and sub["ip_version"] == 4
    assert sub["dns_nameservers"] == [] and sub["host_routes"] == []
    assert sub["service_types"] == [] and sub["tags"] == []
    assert sub["ipv6_ra_mode"] is None and sub["ipv6_address_mode"] is None
    assert sub["subnetpool_id"] is None and sub["router:external"] is False
    assert sub["revision_number"] == 0 and sub["project_id"] == net["project_id"]
    got = admin.get(f"/networks/{net['id']}").json()["network"]
    assert got["subnets"] == [sub["id"]]
    assert got["revision_number"] == net["revision_number"] + 1  # a subnet changes it
    assert admin.get(f"/subnets/{sub['id']}").json()["subnet"] == sub


def test_ipv6_defaults(admin: Client, net: dict) -> None:
    sub = admin.create("subnets", network_id=net["id"], cidr="2001:DB8:1::/64", ip_version=6)
    assert sub["cidr"] == "2001:db8:1::/64"
    assert sub["gateway_ip"] == "2001:db8:1::"  # the subnet-router anycast address
    assert sub["allocation_pools"] == [{"start": "2001:db8:1::1",
                                        "end": "2001:db8:1:0:ffff:ffff:ffff:ffff"}]
    slaac = admin.create("subnets", network_id=net["id"], cidr="2001:db8:2::/64", ip_version=6,
                         ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert (slaac["ipv6_ra_mode"], slaac["ipv6_address_mode"]) == ("slaac", "slaac")
    small = admin.create("subnets", network_id=net["id"], cidr="2001:db8:3::/120", ip_version=6)
    assert small["allocation_pools"] == [{"start": "2001:db8:3::1", "end": "2001:db8:3::ff"}]


def test_gateway_and_pool_choices(admin: Client, net: dict) -> None:
    none = admin.create("subnets", network_id=net["id"], cidr="10.2.0.0/24", ip_version=4,
                        gateway_ip=None)
    assert none["gateway_ip"] is None
    assert none["allocation_pools"] == [{"start": "10.2.0.1", "end": "10.2.0.254"}]
    middle = admin.create("subnets", network_id=net["id"], cidr="10.3.0.0/24", ip_version=4,
                          gateway_ip="10.3.0.100")
    assert middle["allocation_pools"] == [{"start": "10.3.0.1", "end": "10.3.0.99"},
                                          {"start": "10.3.0.101", "end": "10.3.0.254"}]
    outside = admin.create("subnets", network_id=net["id"], cidr="10.4.0.0/24", ip_version=4,
                           gateway_ip="10.99.0.1")
    assert outside["gateway_ip"] == "10.99.0.1"
    pools = admin.create("subnets", network_id=net["id"], cidr="10.5.0.0/24", ip_version=4,
                         allocation_pools=[{"start": "10.5.0.50", "end": "10.5.0.60"},
                                           {"start": "10.5.0.10", "end": "10.5.0.10"}])
    assert pools["allocation_pools"] == [{"start": "10.5.0.10", "end": "10.5.0.10"},
                                         {"start": "10.5.0.50", "end": "10.5.0.60"}]
    tiny = admin.create("subnets", network_id=net["id"], cidr="10.6.0.0/31", ip_version=4,
                        enable_dhcp=False)
    assert tiny["allocation_pools"] == [{"start": "10.6.0.0", "end": "10.6.0.0"}]


def test_dns_host_routes_and_service_types(admin: Client, net: dict) -> None:
    sub = admin.create("subnets", network_id=net["id"], cidr="10.7.0.0/24", ip_version=4,
                       dns_nameservers=["8.8.8.8", "1.1.1.1"],
                       host_routes=[{"destination": "192.168.0.0/16", "nexthop": "10.7.0.9"}],
                       service_types=["compute:nova"])
    assert sub["dns_nameservers"] == ["8.8.8.8", "1.1.1.1"]  # order kept
    assert sub["host_routes"] == [{"destination": "192.168.0.0/16", "nexthop": "10.7.0.9"}]
    assert sub["service_types"] == ["compute:nova"]
    r = post_subnet(admin, net["id"], cidr="10.8.0.0/24", ip_version=4,
                    dns_nameservers=[f"1.1.1.{i}" for i in range(6)])
    assert_error(r, 400, "DNSNameServersExhausted",
                 "Unable to complete operation for new subnet. The number of DNS nameservers "
                 "exceeds the limit 5.")
    r = post_subnet(admin, net["id"], cidr="10.8.0.0/24", ip_version=4,
                    host_routes=[{"destination": f"10.{i}.0.0/16", "nexthop": "10.8.0.1"}
                                 for i in range(21)])
    assert_error(r, 400, "HostRoutesExhausted", "exceeds the limit 20")
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {
        "dns_nameservers": [f"1.1.1.{i}" for i in range(6)]}})
    assert_error(r, 400, "DNSNameServersExhausted", f"operation for {sub['id']}.")
    r = post_subnet(admin, net["id"], cidr="10.8.0.0/24", ip_version=4, service_types=["foo"])
    assert_error(r, 400, "InvalidSubnetServiceType",
                 "Subnet service type foo does not correspond to a valid device owner.")
    r = post_subnet(admin, net["id"], cidr="10.8.0.0/24", ip_version=4,
                    dns_nameservers=["1.1.1.1", "1.1.1.1"])
    assert_error(r, 400, "HTTPBadRequest", "Invalid input for dns_nameservers")


@pytest.mark.parametrize("attrs,type_,message", [
    ({"cidr": "10.9.0.0/24", "ip_version": 6}, "InvalidInput",
     "cidr '10.9.0.0/24' does not match the ip_version '6'."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": "2001:db8::1"}, "InvalidInput",
     "gateway_ip '2001:db8::1' does not match the ip_version '4'."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "dns_nameservers": ["2001:db8::53"]},
     "InvalidInput", "dns_nameserver '2001:db8::53' does not match the ip_version '4'."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4,
      "host_routes": [{"destination": "::/0", "nexthop": "10.9.0.1"}]},
     "InvalidInput", "destination '::/0' does not match the ip_version '4'."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": "10.9.0.255"}, "InvalidInput",
     "Gateway is not valid on subnet."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": "10.9.0.0"}, "InvalidInput",
     "Gateway is not valid on subnet."),
    ({"cidr": "10.9.0.0/31", "ip_version": 4}, "InvalidInput",
     "prefix length that is incompatible with DHCP service enabled."),
    ({"cidr": "2001:db8:9::/127", "ip_version": 6}, "InvalidInput",
     "prefix length that is incompatible with DHCP service enabled."),
    ({"cidr": "224.0.0.0/24", "ip_version": 4}, "InvalidInput",
     "Multicast IP subnet is not supported if enable_dhcp is True."),
    ({"cidr": "127.0.0.0/24", "ip_version": 4}, "InvalidInput",
     "Loopback IP subnet is not supported if enable_dhcp is True."),
    ({"cidr": "0.0.0.0/24", "ip_version": 4}, "InvalidInput",
     "First IP '0.0.0.0' of network is not supported if enable_dhcp is True."),
    ({"cidr": "::/64", "ip_version": 6}, "InvalidInput", "IPv6 subnet '::' is not supported."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "ipv6_address_mode": "slaac"}, "InvalidInput",
     "ipv6_address_mode is not valid when ip_version is 4."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "ipv6_ra_mode": "slaac"}, "InvalidInput",
     "ipv6_ra_mode is not valid when ip_version is 4."),
    ({"cidr": "2001:db8:9::/64", "ip_version": 6, "ipv6_ra_mode": "dhcpv6-stateful",
      "ipv6_address_mode": "slaac"}, "InvalidInput",
     "ipv6_ra_mode set to 'dhcpv6-stateful' with ipv6_address_mode set to 'slaac' is not "
     "valid. If both attributes are set, they must be the same value."),
    ({"cidr": "2001:db8:9::/80", "ip_version": 6, "ipv6_address_mode": "slaac"},
     "InvalidInput", "Invalid CIDR 2001:db8:9::/80 for IPv6 address mode. OpenStack uses the "
     "EUI-64 address format, which requires the prefix to be /64."),
    ({"cidr": "2001:db8:9::/64", "ip_version": 6, "ipv6_address_mode": "slaac",
      "enable_dhcp": False}, "InvalidInput",
     "ipv6_ra_mode or ipv6_address_mode cannot be set when enable_dhcp is set to False."),
    ({"cidr": "bad", "ip_version": 4}, "InvalidInput", "bad is not in a CIDR format."),
    ({"cidr": "10.9.0.0/33", "ip_version": 4}, "InvalidInput", "is not in a CIDR format"),
    ({"cidr": "10.9.0.0/24", "ip_version": 5}, "HTTPBadRequest",
     "Invalid input for ip_version."),
    ({"cidr": "10.9.0.0/24"}, "HTTPBadRequest",
     "Failed to parse request. Required attribute 'ip_version' not specified"),
    ({"ip_version": 4}, "BadRequest", "a subnetpool must be specified in the absence of a cidr"),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "enable_dhcp": "sometimes"}, "InvalidInput",
     "'sometimes' cannot be converted to boolean."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "gateway_ip": ""}, "HTTPBadRequest",
     "Invalid input for gateway_ip. Reason: '' is not a valid IP address."),
    ({"cidr": "10.9.0.0/24", "ip_version": 4, "allocation_pools": {"start": "10.9.0.2"}},
     "HTTPBadRequest", "Invalid input for allocation_pools"),
    ({"cidr": "10.9.0.0/24", "ip_version": 4,
      "allocation_pools": [{"start": "10.9.0.2"}]}, "HTTPBadRequest",
     "Validation of dictionary's keys failed"),
    ({"cidr": "10.9.0.0/24", "ip_version": 4,
      "host_routes": [{"destination": "x", "nexthop": "10.9.0.1"}]}, "HTTPBadRequest",
     "Invalid input for host_routes"),
])
def test_invalid_subnets_refused(admin: Client, net: dict, attrs: dict, type_: str,
                                 message: str) -> None:
    assert_error(post_subnet(admin, net["id"], **attrs), 400, type_, message)
    assert admin.get("/subnets", params={"network_id": net["id"]}).json()["subnets"] == []


def test_bulk_subnets_are_all_or_nothing(admin: Client, net: dict) -> None:
    r = admin.post("/subnets", {"subnets": [
        {"network_id": net["id"], "cidr": "10.17.0.0/24", "ip_version": 4},
        {"network_id": net["id"], "cidr": "10.17.0.0/25", "ip_version": 4}]})
    assert_error(r, 400, "InvalidInput", "overlaps with another subnet")
    assert admin.get("/subnets", params={"network_id": net["id"]}).json()["subnets"] == []
    r = admin.post("/subnets", {"subnets": [
        {"network_id": net["id"], "cidr": "10.17.0.0/24", "ip_version": 4},
        {"network_id": net["id"], "cidr": "2001:db8:17::/64", "ip_version": 6}]})
    assert r.status_code == 201, r.text
    assert [s["cidr"] for s in r.json()["subnets"]] == ["10.17.0.0/24", "2001:db8:17::/64"]
    assert len(admin.get(f"/networks/{net['id']}").json()["network"]["subnets"]) == 2


def test_subnet_references(admin: Client, net: dict) -> None:
    missing = "6a1e3b1e-0000-4000-8000-000000000000"
    assert_error(post_subnet(admin, missing, cidr="10.10.0.0/24", ip_version=4), 404,
                 "NetworkNotFound", f"Network {missing} could not be found.")
    r = post_subnet(admin, net["id"], cidr="10.10.0.0/24", ip_version=4, subnetpool_id=missing)
    assert_error(r, 404, "SubnetPoolNotFound", f"Subnet pool {missing} could not be found.")
    assert_error(post_subnet(admin, "not-a-uuid", cidr="10.10.0.0/24", ip_version=4), 400,
                 "HTTPBadRequest", "'not-a-uuid' is not a valid UUID")


def test_update_subnet(admin: Client, net: dict) -> None:
    sub = admin.create("subnets", network_id=net["id"], cidr="10.11.0.0/24", ip_version=4)
    changes = {"name": "renamed", "description": "d", "enable_dhcp": False,
               "dns_nameservers": ["9.9.9.9"],
               "allocation_pools": [{"start": "10.11.0.10", "end": "10.11.0.20"}],
               "gateway_ip": "10.11.0.254",
               "host_routes": [{"destination": "0.0.0.0/0", "nexthop": "10.11.0.254"}]}
    revision = sub["revision_number"]
    for attr, value in changes.items():
        r = admin.put(f"/subnets/{sub['id']}", {"subnet": {attr: value}})
        assert r.status_code == 200, r.text
        got = r.json()["subnet"]
        assert got[attr] == value
        assert got["revision_number"] == revision + 1, attr  # every change is a revision
        revision = got["revision_number"]
        # the same value again changes nothing
        same = admin.put(f"/subnets/{sub['id']}", {"subnet": {attr: value}}).json()["subnet"]
        assert same["revision_number"] == revision, attr
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": None}})
    assert r.json()["subnet"]["gateway_ip"] is None
    for attr, value in [("cidr", "10.11.0.0/23"), ("ip_version", 6), ("network_id", net["id"]),
                        ("ipv6_ra_mode", "slaac"), ("subnetpool_id", None)]:
        assert_error(admin.put(f"/subnets/{sub['id']}", {"subnet": {attr: value}}), 400,
                     "HTTPBadRequest", f"Cannot update read-only attribute {attr}")
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "2001:db8::1"}})
    assert_error(r, 400, "InvalidInput", "does not match the ip_version '4'")
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"service_types": ["bogus"]}})
    assert_error(r, 400, "InvalidSubnetServiceType")


def test_enable_dhcp_rules_on_update(admin: Client, net: dict) -> None:
    tiny = admin.create("subnets", network_id=net["id"], cidr="10.12.0.0/31", ip_version=4,
                        enable_dhcp=False)
    r = admin.put(f"/subnets/{tiny['id']}", {"subnet": {"enable_dhcp": True}})
    assert_error(r, 400, "InvalidInput", "incompatible with DHCP service enabled")
    v6 = admin.create("subnets", network_id=net["id"], cidr="2001:db8:12::/64", ip_version=6,
                      ipv6_address_mode="dhcpv6-stateful")
    r = admin.put(f"/subnets/{v6['id']}", {"subnet": {"enable_dhcp": False}})
    assert_error(r, 400, "InvalidInput", "Cannot disable enable_dhcp with ipv6 attributes set.")


def test_delete_subnet(admin: Client, net: dict) -> None:
    sub = admin.create("subnets", network_id=net["id"], cidr="10.13.0.0/24", ip_version=4)
    port = admin.create("ports", network_id=net["id"])
    admin.create("ports", network_id=net["id"], device_owner="network:dhcp")
    assert_error(admin.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse",
                 f"Unable to complete operation on subnet {sub['id']}: One or more ports have "
                 f"an IP allocation from this subnet.")
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    before = admin.get(f"/networks/{net['id']}").json()["network"]
    assert admin.delete(f"/subnets/{sub['id']}").status_code == 204  # the DHCP port is no user
    assert_error(admin.get(f"/subnets/{sub['id']}"), 404, "SubnetNotFound",
                 f"Subnet {sub['id']} could not be found.")
    after = admin.get(f"/networks/{net['id']}").json()["network"]
    assert after["subnets"] == [] and after["revision_number"] == before["revision_number"] + 1
    assert_error(admin.delete(f"/subnets/{sub['id']}"), 404, "SubnetNotFound")


def test_deleting_a_slaac_subnet_takes_its_addresses(admin: Client, net: dict) -> None:
    admin.create("subnets", network_id=net["id"], cidr="10.14.0.0/24", ip_version=4)
    v6 = admin.create("subnets", network_id=net["id"], cidr="2001:db8:14::/64", ip_version=6,
                      ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    port = admin.create("ports", network_id=net["id"])
    assert v6["id"] in {f["subnet_id"] for f in port["fixed_ips"]}
    assert admin.delete(f"/subnets/{v6['id']}").status_code == 204
    left = admin.get(f"/ports/{port['id']}").json()["port"]["fixed_ips"]
    assert [f["ip_address"] for f in left] == ["10.14.0.2"]


def test_subnets_of_others(admin: Client, project_client) -> None:
    owner, other = project_client(), project_client()
    net = owner.create("networks", name="theirs")
    r = post_subnet(other, net["id"], cidr="10.15.0.0/24", ip_version=4)
    assert_error(r, 404, "NetworkNotFound")  # not even its existence shows
    sub = owner.create("subnets", network_id=net["id"], cidr="10.15.0.0/24", ip_version=4)
    assert sub["project_id"] != "fake_project_id"
    assert_error(other.put(f"/subnets/{sub['id']}", {"subnet": {"name": "x"}}), 404,
                 "SubnetNotFound")
    assert_error(other.delete(f"/subnets/{sub['id']}"), 404, "SubnetNotFound")
    # the admin may put a subnet on anyone's network, for anyone
    theirs = admin.create("subnets", network_id=net["id"], cidr="10.16.0.0/24", ip_version=4,
                          project_id="elsewhere")
    assert theirs["project_id"] == "elsewhere"


def test_shared_filter_follows_the_network(admin: Client, project_client) -> None:
    """``shared`` is never shown on a subnet, but filters by its network (as upstream)."""
    shared = admin.create("networks", name="shared-subnets", shared=True)
    mine = admin.create("networks", name="private-subnets")
    on_shared = admin.create("subnets", network_id=shared["id"], cidr="10.17.0.0/24",
                             ip_version=4)
    on_mine = admin.create("subnets", network_id=mine["id"], cidr="10.18.0.0/24",
                           ip_version=4)
    assert "shared" not in on_shared

    def ids(query: str) -> set[str]:
        r = admin.get(f"/subnets?{query}")
        assert r.status_code == 200, r.text
        return {s["id"] for s in r.json()["subnets"]} & {on_shared["id"], on_mine["id"]}

    assert ids("shared=true") == {on_shared["id"]}
    assert ids("shared=False") == {on_mine["id"]}
    assert ids("shared=true&shared=false") == {on_shared["id"], on_mine["id"]}
    assert_error(admin.get("/subnets?shared=sometimes"), 400, "InvalidInput",
                 "'sometimes' cannot be converted to boolean")
    assert_error(admin.get("/subnets?sort_key=shared&sort_dir=asc"), 400, "HTTPBadRequest")
    r = post_subnet(admin, mine["id"], cidr="10.19.0.0/24", ip_version=4, shared=True)
    assert_error(r, 400, "HTTPBadRequest", "Attribute 'shared' not allowed in POST")
    member = project_client()
    assert {s["id"] for s in member.get("/subnets?shared=true").json()["subnets"]} >= \
        {on_shared["id"]}
