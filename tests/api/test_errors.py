"""Bad requests get a 4xx in the NeutronError envelope saying what is wrong; never a 500."""

from __future__ import annotations

import pytest
import requests

from tests.conftest import Client, assert_error

MISSING = "5a5a5a5a-0000-4000-8000-000000000000"


def raw(client: Client, method: str, path: str, data: bytes | str,
        content_type: str = "application/json") -> requests.Response:
    return client.session.request(method, f"{client.base}/v2.0{path}", data=data,
                                  headers={"Content-Type": content_type}, timeout=30)


@pytest.fixture
def net(admin: Client) -> tuple[dict, dict]:
    return admin.network_with_subnet("10.90.0.0/24")


@pytest.mark.parametrize("data,message", [
    ("{bad json", "Body contains invalid data"),
    ("[1, 2]", "Body contains invalid data"),
    ('"network"', "Body contains invalid data"),
    ("null", "Body contains invalid data"),
    ("", "Body contains invalid data"),
    (b"\xff\xfe", "Body contains invalid data"),
    ('{"net": {}}', "Unable to find 'network' in request body"),
    ('{"network": []}', "'network' must be an object"),
    ('{"network": "x"}', "'network' must be an object"),
    ('{"networks": []}', "Resources required"),
    ('{"networks": [{}], "extra": 1}', "Unrecognized attribute(s) 'extra'"),
])
def test_malformed_bodies(admin: Client, data: str, message: str) -> None:
    assert_error(raw(admin, "POST", "/networks", data), 400, "HTTPBadRequest", message)


def test_malformed_update_bodies(admin: Client, net: tuple[dict, dict]) -> None:
    network, _ = net
    url = f"/networks/{network['id']}"
    assert_error(raw(admin, "PUT", url, "{"), 400, "HTTPBadRequest", "Body contains invalid")
    assert_error(admin.put(url, {"port": {}}), 400, "HTTPBadRequest",
                 "Unable to find 'network' in request body")
    # bulk updates are not a thing
    assert_error(admin.put(url, {"networks": [{"name": "x"}]}), 400, "HTTPBadRequest",
                 "Unable to find 'network' in request body")
    assert_error(admin.put(url, {"network": {"bogus": 1}}), 400, "HTTPBadRequest",
                 "Unrecognized attribute(s) 'bogus'")


@pytest.mark.parametrize("collection,attrs,type_,message", [
    ("networks", {"bogus": 1, "other": 2}, "HTTPBadRequest",
     "Unrecognized attribute(s) 'bogus, other'"),
    ("networks", {"id": MISSING}, "HTTPBadRequest", "Attribute 'id' not allowed in POST"),
    ("networks", {"status": "DOWN"}, "HTTPBadRequest", "Attribute 'status' not allowed in POST"),
    ("networks", {"subnets": []}, "HTTPBadRequest", "Attribute 'subnets' not allowed in POST"),
    ("networks", {"name": 5}, "HTTPBadRequest",
     "Invalid input for name. Reason: '5' is not a valid string."),
    ("networks", {"name": "x" * 256}, "HTTPBadRequest", "exceeds maximum length of 255"),
    ("networks", {"admin_state_up": "maybe"}, "InvalidInput",
     "Invalid input for operation: 'maybe' cannot be converted to boolean."),
    ("networks", {"admin_state_up": None}, "HTTPBadRequest", "Invalid input for admin_state_up"),
    ("networks", {"mtu": "abc"}, "InvalidInput", "'abc' is not an integer."),
    ("networks", {"mtu": 1.5}, "InvalidInput", "'1.5' is not an integer."),
    ("networks", {"shared": []}, "InvalidInput", "cannot be converted to boolean"),
    ("networks", {"tags": "x"}, "HTTPBadRequest", "Invalid input for tags"),
    ("networks", {"availability_zone_hints": "az"}, "HTTPBadRequest",
     "Invalid input for availability_zone_hints"),
    ("networks", {"project_id": "a", "tenant_id": "b"}, "HTTPBadRequest", "do not match"),
    ("subnets", {"network_id": "x", "cidr": "10.0.0.0/24", "ip_version": 4},
     "HTTPBadRequest", "Invalid input for network_id. Reason: 'x' is not a valid UUID."),
    ("subnets", {"network_id": MISSING, "cidr": "10.0.0.0/24", "ip_version": "four"},
     "HTTPBadRequest", "Invalid input for ip_version"),
    ("subnets", {"network_id": MISSING, "cidr": "300.0.0.0/24", "ip_version": 4},
     "InvalidInput", "300.0.0.0/24 is not in a CIDR format."),
    ("subnets", {"network_id": MISSING, "cidr": 10, "ip_version": 4},
     "InvalidInput", "10 is not in a CIDR format."),
    ("subnets", {"network_id": MISSING, "cidr": "10.0.0.0/24", "ip_version": 4,
                 "gateway_ip": "10.0.0.300"}, "HTTPBadRequest",
     "Invalid input for gateway_ip. Reason: '10.0.0.300' is not a valid IP address."),
    ("subnets", {"network_id": MISSING, "cidr": "10.0.0.0/24", "ip_version": 4,
                 "dns_nameservers": "8.8.8.8"}, "HTTPBadRequest",
     "Invalid input for dns_nameservers"),
    ("subnets", {"network_id": MISSING, "cidr": "10.0.0.0/24", "ip_version": 4,
                 "allocation_pools": [{"start": "10.0.0.5", "end": "nope"}]}, "HTTPBadRequest",
     "Invalid input for allocation_pools. Reason: 'nope' is not a valid IP address."),
    ("subnets", {"network_id": MISSING, "cidr": "10.0.0.0/24", "ip_version": 4,
                 "ipv6_address_mode": "magic"}, "HTTPBadRequest",
     "Invalid input for ipv6_address_mode"),
    ("ports", {"network_id": MISSING, "mac_address": "not-a-mac"}, "HTTPBadRequest",
     "Invalid input for mac_address. Reason: 'not-a-mac' is not a valid MAC address."),
    ("ports", {"network_id": MISSING, "fixed_ips": [{"ip_address": "1.2.3"}]},
     "HTTPBadRequest", "Invalid input for fixed_ips. Reason: '1.2.3' is not a valid IP"),
    ("ports", {"network_id": MISSING, "fixed_ips": [{"subnet_id": "nope"}]}, "HTTPBadRequest",
     "Invalid input for fixed_ips. Reason: 'nope' is not a valid UUID."),
    ("ports", {"network_id": MISSING, "fixed_ips": [{"ip": "1.2.3.4"}]}, "HTTPBadRequest",
     "Invalid input for fixed_ips"),
    ("ports", {"network_id": MISSING, "fixed_ips": "10.0.0.1"}, "HTTPBadRequest",
     "Invalid input for fixed_ips"),
    ("ports", {"network_id": MISSING, "allowed_address_pairs": [{"ip_address": "x"}]},
     "HTTPBadRequest", "Invalid input for allowed_address_pairs"),
    ("ports", {"network_id": MISSING, "extra_dhcp_opts": [{"opt_value": "1"}]},
     "HTTPBadRequest", "Invalid input for extra_dhcp_opts"),
    ("ports", {"network_id": MISSING, "binding:profile": "x"}, "HTTPBadRequest",
     "Invalid input for binding:profile"),
    ("ports", {"network_id": MISSING, "device_owner": None}, "HTTPBadRequest",
     "Invalid input for device_owner"),
    ("ports", {"name": "no network"}, "HTTPBadRequest",
     "Failed to parse request. Required attribute 'network_id' not specified"),
    ("ports", {"network_id": MISSING, "binding:vif_type": "ovs"}, "HTTPBadRequest",
     "Attribute 'binding:vif_type' not allowed in POST"),
])
def test_bad_attributes_on_create(admin: Client, collection: str, attrs: dict, type_: str,
                                  message: str) -> None:
    r = admin.post(f"/{collection}", {collection[:-1]: attrs})
    assert_error(r, 400, type_, message)


@pytest.mark.parametrize("collection,kind", [
    ("networks", "Network"), ("subnets", "Subnet"), ("ports", "Port")])
def test_missing_ids_are_typed_404s(admin: Client, collection: str, kind: str) -> None:
    message = f"{kind} {MISSING} could not be found."
    assert_error(admin.get(f"/{collection}/{MISSING}"), 404, f"{kind}NotFound", message)
    assert_error(admin.put(f"/{collection}/{MISSING}", {collection[:-1]: {"name": "x"}}), 404,
                 f"{kind}NotFound", message)
    assert_error(admin.delete(f"/{collection}/{MISSING}"), 404, f"{kind}NotFound", message)
    # an id that is not even a UUID is simply not found
    assert_error(admin.get(f"/{collection}/not-a-uuid"), 404, f"{kind}NotFound",
                 f"{kind} not-a-uuid could not be found.")


def test_references_to_missing_things(admin: Client, net: tuple[dict, dict]) -> None:
    network, _ = net
    r = admin.post("/ports", {"port": {"network_id": MISSING}})
    assert_error(r, 404, "NetworkNotFound", f"Network {MISSING} could not be found.")
    r = admin.post("/subnets", {"subnet": {"network_id": MISSING, "cidr": "10.0.0.0/24",
                                           "ip_version": 4}})
    assert_error(r, 404, "NetworkNotFound")
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "fixed_ips": [{"subnet_id": MISSING}]}})
    assert_error(r, 404, "SubnetNotFound", f"Subnet {MISSING} could not be found.")


@pytest.mark.parametrize("method,path", [
    ("PATCH", "/networks"), ("PUT", "/networks"), ("DELETE", "/networks"),
    ("PATCH", f"/networks/{MISSING}"), ("POST", f"/networks/{MISSING}"),
    ("POST", f"/subnets/{MISSING}"), ("PATCH", f"/ports/{MISSING}"),
    ("POST", "/quotas/p1"), ("PATCH", "/quotas/p1"), ("DELETE", "/quotas"),
    ("POST", f"/networks/{MISSING}/tags/x"),
])
def test_wrong_methods_are_405(admin: Client, method: str, path: str) -> None:
    assert_error(admin.request(method, path, json={}), 405, "HTTPMethodNotAllowed")


@pytest.mark.parametrize("path", ["/bogus", f"/networks/{MISSING}/bogus", "/extensions/nope",
                                  "/quotas/p1/bogus", f"/bogus/{MISSING}/tags"])
def test_unknown_paths_are_404(admin: Client, path: str) -> None:
    assert_error(admin.get(path), 404, "HTTPNotFound")


def test_nul_characters(admin: Client) -> None:
    """PostgreSQL cannot store or compare them: refused up front on every backend."""
    for path in ("/networks/%00", "/quotas/%00", f"/networks/{MISSING}/tags/%00"):
        assert_error(admin.get(path), 404, "HTTPNotFound")
    assert_error(admin.get("/networks?name=a%00b"), 400, "HTTPBadRequest", "NUL character")
    assert_error(admin.get("/networks?limit=1&marker=%00"), 400, "HTTPBadRequest")
    r = admin.post("/networks", {"network": {"name": "a\x00b"}})
    assert_error(r, 400, "HTTPBadRequest", "contains a NUL character")


def test_unknown_paths_outside_v2(admin: Client) -> None:
    r = admin.session.get(f"{admin.base}/v3/networks", timeout=30)
    assert_error(r, 404)
    # "extensions" is no collection to create things in (upstream: 404 too)
    assert_error(admin.post("/extensions", {}), 404, "HTTPNotFound")


def test_conflicts_say_what_conflicts(admin: Client, net: tuple[dict, dict]) -> None:
    network, sub = net
    port = admin.create("ports", network_id=network["id"],
                        fixed_ips=[{"ip_address": "10.90.0.50"}])
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "fixed_ips": [{"ip_address": "10.90.0.50"}]}})
    assert_error(r, 409, "IpAddressAlreadyAllocated",
                 f"IP address 10.90.0.50 already allocated in subnet {sub['id']}")
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "mac_address": port["mac_address"]}})
    assert_error(r, 409, "MacAddressInUse", port["mac_address"])
    assert_error(admin.delete(f"/networks/{network['id']}"), 409, "NetworkInUse", port["id"])
    assert_error(admin.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse", sub["id"])


WEIRD = [None, True, 0, -1, 2**64, 1.5, "", " ", "x" * 300, [], [None], {}, {"a": [1]},
         "10.0.0.0/8", "::", "ff:ff:ff:ff:ff:ff", MISSING, "\u00e9\u4e2d", "\x00",
         {"k": "\x00"}, ["\x00"]]


@pytest.mark.parametrize("collection,attrs", [
    ("networks", ["name", "admin_state_up", "mtu", "shared", "router:external",
                  "port_security_enabled", "provider:network_type",
                  "provider:physical_network", "provider:segmentation_id",
                  "availability_zone_hints", "tags", "description", "project_id"]),
    ("subnets", ["cidr", "ip_version", "gateway_ip", "allocation_pools", "dns_nameservers",
                 "host_routes", "enable_dhcp", "ipv6_ra_mode", "ipv6_address_mode",
                 "service_types", "subnetpool_id", "tags"]),
    ("ports", ["mac_address", "fixed_ips", "device_id", "device_owner",
               "port_security_enabled", "allowed_address_pairs", "extra_dhcp_opts",
               "binding:host_id", "binding:vnic_type", "binding:profile", "tags"]),
])
def test_never_a_500(admin: Client, net: tuple[dict, dict], collection: str,
                     attrs: list[str]) -> None:
    """Every attribute with every odd value: created (2xx) or refused (4xx), never 500."""
    network, _ = net
    base = {"networks": {}, "ports": {"network_id": network["id"]},
            "subnets": {"network_id": network["id"], "ip_version": 4,
                        "cidr": "10.91.0.0/24"}}[collection]
    target = admin.create(collection, **base)
    kind = collection[:-1]
    for attr in attrs:
        for value in WEIRD:
            body = {**base, attr: value}
            r = admin.post(f"/{collection}", {kind: body})
            assert r.status_code < 500, (attr, value, r.text)
            if r.status_code == 201:
                assert admin.delete(f"/{collection}/{r.json()[kind]['id']}").status_code == 204
            else:
                assert_error(r, r.status_code)
            r = admin.put(f"/{collection}/{target['id']}", {kind: {attr: value}})
            assert r.status_code < 500, (attr, value, r.text)
            if r.status_code >= 400:
                assert_error(r, r.status_code)
    for query in ("limit=x", "marker=x&limit=1", "sort_key=x&sort_dir=y", "fields=\x00",
                  "name=%00", "id=%ff", "tags=,,,", "fixed_ips=ip_address=",
                  "page_reverse=x&limit=1"):
        r = admin.get(f"/{collection}?{query}")
        assert r.status_code < 500, (query, r.text)
