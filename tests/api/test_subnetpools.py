"""Subnet pools: the pool's contract, and subnets allocated from it.

Expectations match the upstream server (neutron 29.0.0, asked request by request);
deliberate differences are listed in docs/api-differences.md.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import requests

from tests.conftest import Client, assert_error

POOL_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "prefixes", "default_prefixlen", "min_prefixlen",
    "max_prefixlen", "ip_version", "shared", "is_default", "default_quota", "address_scope_id",
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def post_pool(client: Client, **attrs: object) -> requests.Response:
    return client.post("/subnetpools", {"subnetpool": {"name": unique("pool"), **attrs}})


def pool(client: Client, **attrs: object) -> dict:
    r = post_pool(client, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["subnetpool"]


def post_subnet(client: Client, network_id: str, **attrs: object) -> requests.Response:
    attrs.setdefault("ip_version", 4)
    return client.post("/subnets", {"subnet": {"network_id": network_id, **attrs}})


def subnet(client: Client, network_id: str, **attrs: object) -> dict:
    r = post_subnet(client, network_id, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["subnet"]


def network(client: Client) -> dict:
    return client.create("networks", name=unique("net"))


# -- the pool itself ----------------------------------------------------------------


def test_create_defaults_and_merged_prefixes(admin: Client) -> None:
    p = pool(admin, prefixes=["10.20.0.0/16", "10.20.1.0/24", "10.21.0.0/16", "10.30.0.0/24",
                              "10.30.1.0/24", "10.30.3.7/24"])
    assert set(p) == POOL_KEYS
    # merged into the fewest networks; host bits masked; sorted by address
    assert p["prefixes"] == ["10.20.0.0/15", "10.30.0.0/23", "10.30.3.0/24"]
    assert p["ip_version"] == 4
    # lengths are strings, as upstream answers them
    assert (p["min_prefixlen"], p["default_prefixlen"], p["max_prefixlen"]) == ("8", "8", "32")
    assert p["shared"] is False and p["is_default"] is False
    assert p["default_quota"] is None and p["address_scope_id"] is None
    assert p["revision_number"] == 0 and p["tags"] == [] and p["description"] == ""
    assert admin.get(f"/subnetpools/{p['id']}").json()["subnetpool"] == p
    listed = admin.get("/subnetpools", params={"id": p["id"]}).json()["subnetpools"]
    assert listed == [p]

    v6 = pool(admin, prefixes=["2001:DB8:100::/48"], description="six", default_quota=5)
    assert v6["prefixes"] == ["2001:db8:100::/48"] and v6["ip_version"] == 6
    assert (v6["min_prefixlen"], v6["default_prefixlen"], v6["max_prefixlen"]) == \
        ("64", "64", "128")
    assert v6["description"] == "six" and v6["default_quota"] == 5
    # the default length follows the minimum; integers or their strings are accepted
    sized = pool(admin, prefixes=["10.40.0.0/16"], min_prefixlen="20", max_prefixlen=28)
    assert (sized["min_prefixlen"], sized["default_prefixlen"], sized["max_prefixlen"]) == \
        ("20", "20", "28")


@pytest.mark.parametrize("attrs,status,type_,message", [
    ({}, 400, "HTTPBadRequest", "Required attribute 'prefixes' not specified"),
    ({"prefixes": []}, 400, "EmptySubnetPoolPrefixList", "Empty subnet pool prefix list."),
    ({"prefixes": ["10.0.0.0/8", "2001:db8::/32"]}, 400, "PrefixVersionMismatch",
     "Cannot mix IPv4 and IPv6 prefixes in a subnet pool."),
    ({"prefixes": ["foo"]}, 400, "HTTPBadRequest",
     "Invalid input for prefixes. Reason: 'foo' is not a valid IP subnet."),
    ({"prefixes": "10.0.0.0/8"}, 400, "HTTPBadRequest", "Invalid input for prefixes."),
    ({"prefixes": ["10.0.0.0/16", "10.0.0.0/16"]}, 400, "HTTPBadRequest",
     "Duplicate items in the list: '10.0.0.0/16'"),
    ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": 30, "default_prefixlen": 24}, 400,
     "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: default_prefixlen=24, "
     "min_prefixlen=30."),
    ({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 20, "default_prefixlen": 24}, 400,
     "IllegalSubnetPoolPrefixBounds", "Illegal prefix bounds: default_prefixlen=24, "
     "max_prefixlen=20."),
    ({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 33}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: max_prefixlen=33, ip_version_max=32."),
    ({"prefixes": ["10.0.0.0/8"], "max_prefixlen": 4}, 400, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: min_prefixlen=8, max_prefixlen=4."),
    ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": -1}, 400, "HTTPBadRequest",
     "Invalid input for min_prefixlen."),
    ({"prefixes": ["10.0.0.0/8"], "min_prefixlen": "abc"}, 400, "InvalidInput",
     "'abc' is not an integer."),
    ({"prefixes": ["10.0.0.0/8"], "default_quota": -1}, 400, "HTTPBadRequest",
     "Invalid input for default_quota."),
    ({"prefixes": ["10.0.0.0/8"], "address_scope_id": "foo"}, 400, "HTTPBadRequest",
     "'foo' is not a valid UUID"),
    ({"prefixes": ["10.0.0.0/8"], "address_scope_id": "3a1f8d06-a8d0-4a36-8b2e-e0d5a4b2f4e3"},
     404, "AddressScopeNotFound",
     "Address scope 3a1f8d06-a8d0-4a36-8b2e-e0d5a4b2f4e3 could not be found."),
    ({"prefixes": ["10.0.0.0/8"], "ip_version": 4}, 400, "HTTPBadRequest",
     "Attribute 'ip_version' not allowed in POST"),
    ({"prefixes": ["10.0.0.0/8"], "foo": 1}, 400, "HTTPBadRequest",
     "Unrecognized attribute(s) 'foo'"),
])
def test_invalid_pools_refused(admin: Client, attrs: dict, status: int, type_: str,
                               message: str) -> None:
    name = unique("bad")
    r = admin.post("/subnetpools", {"subnetpool": {"name": name, **attrs}})
    assert_error(r, status, type_, message)
    assert admin.get("/subnetpools", params={"name": name}).json()["subnetpools"] == []


def test_name_is_required(admin: Client) -> None:
    r = admin.post("/subnetpools", {"subnetpool": {"prefixes": ["10.0.0.0/8"]}})
    assert_error(r, 400, "HTTPBadRequest", "Required attribute 'name' not specified")


def test_update(admin: Client) -> None:
    p = pool(admin, prefixes=["10.50.0.0/24"], min_prefixlen=26, max_prefixlen=28)
    pid, revision = p["id"], p["revision_number"]

    def put(**attrs: object) -> requests.Response:
        return admin.put(f"/subnetpools/{pid}", {"subnetpool": attrs})

    for attrs, expected in [
        ({"name": "renamed", "description": "d"}, {"name": "renamed", "description": "d"}),
        ({"prefixes": ["10.50.0.0/23"]}, {"prefixes": ["10.50.0.0/23"]}),  # extended
        ({"min_prefixlen": 20}, {"min_prefixlen": "20"}),
        ({"max_prefixlen": 29, "default_prefixlen": "28"},
         {"max_prefixlen": "29", "default_prefixlen": "28"}),
        ({"default_quota": 10}, {"default_quota": 10}),
        ({"default_quota": None}, {"default_quota": None}),  # no limit again
    ]:
        r = put(**attrs)
        assert r.status_code == 200, r.text
        got = r.json()["subnetpool"]
        assert {k: got[k] for k in expected} == expected
        assert got["revision_number"] == revision + 1, attrs
        revision = got["revision_number"]
    # the same values again change nothing
    assert put(name="renamed", prefixes=["10.50.0.0/23"]).json()["subnetpool"][
        "revision_number"] == revision
    # a larger prefix replacing the old one, merged
    got = put(prefixes=["10.50.0.0/23", "10.50.2.0/23"]).json()["subnetpool"]
    assert got["prefixes"] == ["10.50.0.0/22"]
    assert put(address_scope_id=None).status_code == 200
    assert admin.get(f"/subnetpools/{pid}").json()["subnetpool"]["updated_at"] >= \
        p["updated_at"]


@pytest.mark.parametrize("attrs,type_,message", [
    ({"prefixes": ["10.51.0.0/25"]}, "IllegalSubnetPoolPrefixUpdate",
     "Existing prefixes must be a subset of the new prefixes."),
    ({"prefixes": ["10.52.0.0/24"]}, "IllegalSubnetPoolPrefixUpdate",
     "Existing prefixes must be a subset of the new prefixes."),
    ({"prefixes": []}, "IllegalSubnetPoolPrefixUpdate",
     "Existing prefixes must be a subset of the new prefixes."),
    ({"prefixes": ["10.51.0.0/23", "2001:db8::/64"]}, "PrefixVersionMismatch",
     "Cannot mix IPv4 and IPv6 prefixes"),
    ({"prefixes": ["2001:db8::/32"]}, "PrefixVersionMismatch",
     "Cannot mix IPv4 and IPv6 prefixes"),
    ({"min_prefixlen": 27}, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: default_prefixlen=26, min_prefixlen=27."),
    ({"default_prefixlen": 30}, "IllegalSubnetPoolPrefixBounds",
     "Illegal prefix bounds: default_prefixlen=30, max_prefixlen=28."),
    ({"shared": True}, "HTTPBadRequest", "Cannot update read-only attribute shared"),
    ({"ip_version": 6}, "HTTPBadRequest", "Cannot update read-only attribute ip_version"),
    ({"project_id": "someone"}, "HTTPBadRequest",
     "Cannot update read-only attribute project_id"),
])
def test_invalid_updates_refused(admin: Client, attrs: dict, type_: str, message: str) -> None:
    p = pool(admin, prefixes=["10.51.0.0/24"], min_prefixlen=26, max_prefixlen=28)
    assert_error(admin.put(f"/subnetpools/{p['id']}", {"subnetpool": attrs}), 400, type_,
                 message)
    assert admin.get(f"/subnetpools/{p['id']}").json()["subnetpool"] == p


def test_if_match_and_missing_pools(admin: Client) -> None:
    p = pool(admin, prefixes=["10.53.0.0/24"])
    r = admin.put(f"/subnetpools/{p['id']}", {"subnetpool": {"name": "x"}},
                  headers={"If-Match": "revision_number=7"})
    assert_error(r, 412, "RevisionNumberConstraintFailed")
    r = admin.put(f"/subnetpools/{p['id']}", {"subnetpool": {"name": "x"}},
                  headers={"If-Match": "revision_number=0"})
    assert r.status_code == 200
    missing = "0a0a0a0a-0000-4000-8000-000000000000"
    for r in (admin.get(f"/subnetpools/{missing}"), admin.delete(f"/subnetpools/{missing}"),
              admin.put(f"/subnetpools/{missing}", {"subnetpool": {"name": "n"}})):
        assert_error(r, 404, "SubnetPoolNotFound", f"{missing} could not be found.")
    assert admin.delete(f"/subnetpools/{p['id']}").status_code == 204
    assert_error(admin.get(f"/subnetpools/{p['id']}"), 404)


def test_one_default_pool_per_ip_version(admin: Client, project_client) -> None:
    member = project_client()
    assert_error(post_pool(member, prefixes=["10.60.0.0/16"], is_default=True), 403,
                 "PolicyNotAuthorized", "create_subnetpool:is_default")
    v4 = pool(admin, prefixes=["10.60.0.0/16"], is_default=True, shared=True,
              default_prefixlen=24)
    try:
        assert v4["is_default"] is True
        assert_error(post_pool(admin, prefixes=["10.61.0.0/16"], is_default=True), 400,
                     "InvalidInput", "A default subnetpool for this IP family has already "
                     "been set. Only one default may exist per IP family.")
        other = pool(admin, prefixes=["10.62.0.0/16"])
        r = admin.put(f"/subnetpools/{other['id']}", {"subnetpool": {"is_default": True}})
        assert_error(r, 400, "InvalidInput", "Only one default may exist per IP family.")
        v6 = pool(admin, prefixes=["2001:db8:60::/48"], is_default=True)  # another family
        admin.put(f"/subnetpools/{v6['id']}", {"subnetpool": {"is_default": False}})

        # use_default_subnetpool: the default of the subnet's IP version, for anyone
        net = network(member)
        sub = subnet(member, net["id"], use_default_subnetpool=True)
        assert sub["subnetpool_id"] == v4["id"] and sub["cidr"] == "10.60.0.0/24"
        assert "use_default_subnetpool" not in sub
        r = post_subnet(member, net["id"], ip_version=6, use_default_subnetpool=True)
        assert_error(r, 400, "BadRequest", "No default subnetpool found for IPv6.")
        r = post_subnet(member, net["id"], use_default_subnetpool=True,
                        subnetpool_id=v4["id"])
        assert_error(r, 400, "BadRequest",
                     "subnetpool_id and use_default_subnetpool cannot both be specified.")
        assert member.delete(f"/subnets/{sub['id']}").status_code == 204
    finally:
        admin.put(f"/subnetpools/{v4['id']}", {"subnetpool": {"is_default": False}})


def test_sharing_and_ownership(admin: Client, project_client) -> None:
    member, other = project_client(), project_client()
    assert_error(post_pool(member, prefixes=["10.70.0.0/16"], shared=True), 403,
                 "PolicyNotAuthorized", "create_subnetpool:shared")
    private = pool(admin, prefixes=["10.71.0.0/16"])
    shared = pool(admin, prefixes=["10.72.0.0/16"], shared=True, default_prefixlen=24)
    mine = pool(member, prefixes=["10.73.0.0/16"])
    assert mine["project_id"] == member.session.headers["X-Project-Id"]
    # another project's private pool does not exist for a member; a shared one does
    assert_error(member.get(f"/subnetpools/{private['id']}"), 404, "SubnetPoolNotFound")
    assert member.get(f"/subnetpools/{shared['id']}").json()["subnetpool"]["shared"] is True
    seen = {p["id"] for p in member.get("/subnetpools").json()["subnetpools"]}
    assert {shared["id"], mine["id"]} <= seen and private["id"] not in seen
    assert mine["id"] not in {p["id"] for p in other.get("/subnetpools").json()["subnetpools"]}
    # visible is not writable
    r = member.put(f"/subnetpools/{shared['id']}", {"subnetpool": {"name": "mine now"}})
    assert_error(r, 403, "PolicyNotAuthorized", "update_subnetpool")
    assert_error(member.delete(f"/subnetpools/{shared['id']}"), 403, "PolicyNotAuthorized")
    r = member.put(f"/subnetpools/{shared['id']}/add_prefixes", {"prefixes": ["10.74.0.0/16"]})
    assert_error(r, 403, "PolicyNotAuthorized")
    assert member.put(f"/subnetpools/{mine['id']}", {"subnetpool": {"name": "m"}}).ok
    # subnets from a shared pool, not from an invisible one
    net = network(member)
    sub = subnet(member, net["id"], subnetpool_id=shared["id"])
    assert sub["cidr"] == "10.72.0.0/24" and sub["subnetpool_id"] == shared["id"]
    r = post_subnet(member, net["id"], subnetpool_id=private["id"])
    assert_error(r, 404, "SubnetPoolNotFound",
                 f"Subnet pool {private['id']} could not be found.")
    assert member.delete(f"/subnets/{sub['id']}").status_code == 204
    assert member.delete(f"/subnetpools/{mine['id']}").status_code == 204


def test_list_filters_sorting_and_tags(admin: Client) -> None:
    tag = unique("t")
    made = [pool(admin, prefixes=[f"10.80.{i}.0/24"], min_prefixlen=m, default_prefixlen=m,
                 shared=s) for i, (m, s) in enumerate([(28, False), (9, True), (30, False)])]
    v6 = pool(admin, prefixes=["2001:db8:80::/48"])
    for p in (*made, v6):
        assert admin.put(f"/subnetpools/{p['id']}/tags/{tag}").status_code == 201

    def names(query: str) -> list[str]:
        got = admin.get(f"/subnetpools?tags={tag}&{query}").json()["subnetpools"]
        return [p["name"] for p in got]

    by_min = [made[1]["name"], made[0]["name"], made[2]["name"], v6["name"]]
    assert names("sort_key=min_prefixlen&sort_dir=asc") == by_min  # numerically
    assert names("sort_key=min_prefixlen&sort_dir=desc") == by_min[::-1]
    assert names("ip_version=6") == [v6["name"]]
    assert names("shared=true") == [made[1]["name"]]
    assert set(names("shared=false")) == {made[0]["name"], made[2]["name"], v6["name"]}
    assert names("min_prefixlen=30") == [made[2]["name"]]
    assert names("is_default=true") == []
    assert names(f"name={made[0]['name']}") == [made[0]["name"]]
    page = admin.get(f"/subnetpools?tags={tag}&limit=2&sort_key=min_prefixlen"
                     f"&sort_dir=asc").json()
    assert [p["name"] for p in page["subnetpools"]] == by_min[:2]
    assert page["subnetpools_links"][0]["rel"] == "next"
    assert_error(admin.get("/subnetpools?prefixes=10.80.0.0/24"), 400, "HTTPBadRequest",
                 "['prefixes'] is invalid attribute for filtering")
    assert_error(admin.get("/subnetpools?sort_key=shared&sort_dir=asc"), 400,
                 "HTTPBadRequest", "['shared'] is invalid attribute for sort_keys")
    assert_error(admin.get("/subnetpools?bogus=1"), 400, "HTTPBadRequest")
    # tags bump the revision and are shown
    got = admin.get(f"/subnetpools/{v6['id']}").json()["subnetpool"]
    assert got["tags"] == [tag] and got["revision_number"] == 1
    # tags given at creation (upstream refuses them on pools: see api-differences)
    assert pool(admin, prefixes=["10.81.0.0/24"], tags=["a", "b"])["tags"] == ["a", "b"]


# -- subnets from a pool ------------------------------------------------------------


def test_allocation_from_a_pool(admin: Client) -> None:
    p = pool(admin, prefixes=["10.90.0.0/23"], min_prefixlen=24, max_prefixlen=29,
             default_prefixlen=25)
    net = network(admin)
    first = subnet(admin, net["id"], subnetpool_id=p["id"])
    assert first["cidr"] == "10.90.0.0/25" and first["subnetpool_id"] == p["id"]
    assert first["gateway_ip"] == "10.90.0.1"
    assert first["allocation_pools"] == [{"start": "10.90.0.2", "end": "10.90.0.126"}]
    # the lowest free prefix of the asked length
    small = subnet(admin, net["id"], subnetpool_id=p["id"], prefixlen=29)
    assert small["cidr"] == "10.90.0.128/29"
    explicit = subnet(admin, net["id"], subnetpool_id=p["id"], cidr="10.90.1.0/24",
                      gateway_ip="10.90.1.9",
                      allocation_pools=[{"start": "10.90.1.20", "end": "10.90.1.30"}])
    assert explicit["cidr"] == "10.90.1.0/24" and explicit["gateway_ip"] == "10.90.1.9"
    assert explicit["allocation_pools"] == [{"start": "10.90.1.20", "end": "10.90.1.30"}]
    after = subnet(admin, net["id"], subnetpool_id=p["id"], prefixlen=29, gateway_ip=None)
    assert after["cidr"] == "10.90.0.136/29" and after["gateway_ip"] is None
    listed = admin.get("/subnets", params={"subnetpool_id": p["id"]}).json()["subnets"]
    assert {s["id"] for s in listed} == {first["id"], small["id"], explicit["id"], after["id"]}
    assert admin.get(f"/subnets/{first['id']}").json()["subnet"]["subnetpool_id"] == p["id"]

    for attrs, status, type_, message in [
        ({"cidr": "10.90.0.0/25"}, 409, "SubnetAllocationError",
         "Cannot allocate requested subnet from the available set of prefixes."),
        ({"cidr": "10.99.0.0/24"}, 400, "SubnetAllocationError",
         "Cannot allocate requested subnet from the available set of prefixes."),
        ({"prefixlen": 23}, 400, "MinPrefixSubnetAllocationError",
         "Unable to allocate subnet with prefix length 23, minimum allowed prefix is 24."),
        ({"prefixlen": 30}, 400, "MaxPrefixSubnetAllocationError",
         "Unable to allocate subnet with prefix length 30, maximum allowed prefix is 29."),
        ({"cidr": "10.90.1.0/24", "prefixlen": 24}, 400, "BadRequest",
         "cidr and prefixlen must not be supplied together."),
        ({"ip_version": 6}, 400, "BadRequest",
         "Cannot allocate IPv6 subnet from IPv4 subnet pool."),
        ({"allocation_pools": [{"start": "10.90.0.2", "end": "10.90.0.3"}]}, 400,
         "BadRequest", "allocation_pools allowed only for specific subnet requests."),
        ({"prefixlen": -1}, 400, "HTTPBadRequest", "Invalid input for prefixlen."),
        ({"prefixlen": "x"}, 400, "InvalidInput", "'x' is not an integer."),
        ({"prefixlen": 24}, 409, "SubnetAllocationError",
         "Insufficient prefix space to allocate subnet size /24."),
    ]:
        r = post_subnet(admin, net["id"], subnetpool_id=p["id"], **attrs)
        assert_error(r, status, type_, message)
    # neither a cidr nor a pool
    assert_error(post_subnet(admin, net["id"]), 400, "BadRequest",
                 "a subnetpool must be specified in the absence of a cidr.")
    assert_error(post_subnet(admin, net["id"], prefixlen=24), 400, "BadRequest",
                 "a subnetpool must be specified in the absence of a cidr.")
    assert len(admin.get("/subnets", params={"network_id": net["id"]}).json()["subnets"]) == 4

    # a deleted subnet's range is free again; the pool cannot go while subnets use it
    assert admin.delete(f"/subnets/{small['id']}").status_code == 204
    again = subnet(admin, net["id"], subnetpool_id=p["id"], prefixlen=29)
    assert again["cidr"] == "10.90.0.128/29"
    assert_error(admin.delete(f"/subnetpools/{p['id']}"), 400, "SubnetPoolDeleteError",
                 "Unable to delete subnet pool: Subnet pool has existing allocations.")
    # deleting the network releases its subnets' ranges
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert admin.delete(f"/subnetpools/{p['id']}").status_code == 204


def test_ipv6_and_dual_stack(admin: Client) -> None:
    v6 = pool(admin, prefixes=["2001:db8:3::/48"], min_prefixlen=64)
    v4 = pool(admin, prefixes=["192.168.0.0/16"], min_prefixlen=21, max_prefixlen=32)
    net = network(admin)
    s6 = subnet(admin, net["id"], ip_version=6, subnetpool_id=v6["id"])
    assert s6["cidr"] == "2001:db8:3::/64" and s6["gateway_ip"] == "2001:db8:3::"
    slaac = subnet(admin, net["id"], ip_version=6, subnetpool_id=v6["id"],
                   ipv6_ra_mode="slaac", ipv6_address_mode="slaac")
    assert slaac["cidr"] == "2001:db8:3:1::/64"
    s4 = subnet(admin, net["id"], subnetpool_id=v4["id"])
    assert s4["cidr"] == "192.168.0.0/21" and s4["network_id"] == s6["network_id"]


def test_one_pool_per_network_and_ip_version(admin: Client) -> None:
    p = pool(admin, prefixes=["192.169.0.0/16"], default_prefixlen=24)
    q = pool(admin, prefixes=["192.170.0.0/16"], default_prefixlen=24)
    plain = network(admin)
    subnet(admin, plain["id"], cidr="10.10.10.0/24", gateway_ip=None)
    message = "Subnets hosted on the same network must be allocated from the same subnet pool."
    assert_error(post_subnet(admin, plain["id"], subnetpool_id=p["id"]), 400,
                 "NetworkSubnetPoolAffinityError", message)
    pooled = network(admin)
    subnet(admin, pooled["id"], subnetpool_id=p["id"])
    assert_error(post_subnet(admin, pooled["id"], subnetpool_id=q["id"]), 400,
                 "NetworkSubnetPoolAffinityError", message)
    assert_error(post_subnet(admin, pooled["id"], cidr="10.11.0.0/24"), 400,
                 "NetworkSubnetPoolAffinityError", message)
    # the same pool again is fine, and IPv6 is another family
    assert subnet(admin, pooled["id"], subnetpool_id=p["id"])["cidr"] == "192.169.1.0/24"
    assert subnet(admin, pooled["id"], ip_version=6, cidr="2001:db8:9::/64")


def test_per_project_pool_quota(admin: Client, project_client) -> None:
    member = project_client()
    p = pool(admin, prefixes=["10.95.0.0/24"], min_prefixlen=27, max_prefixlen=29,
             default_prefixlen=28, default_quota=24, shared=True)
    net = network(member)
    # 24 addresses each: /28 (16) + /29 (8) fit, one more /29 does not
    subnet(member, net["id"], subnetpool_id=p["id"])
    subnet(member, net["id"], subnetpool_id=p["id"], prefixlen=29)
    r = post_subnet(member, net["id"], subnetpool_id=p["id"], prefixlen=29)
    assert_error(r, 409, "SubnetPoolQuotaExceeded",
                 "Per-project subnet pool prefix quota exceeded.")
    r = post_subnet(member, net["id"], subnetpool_id=p["id"], cidr="10.95.0.128/29")
    assert_error(r, 409, "SubnetPoolQuotaExceeded")
    # the quota is per project: the admin's own subnets count apart
    other = network(admin)
    assert subnet(admin, other["id"], subnetpool_id=p["id"], prefixlen=28)


def test_prefix_operations(admin: Client) -> None:
    p = pool(admin, prefixes=["10.100.0.0/23"], min_prefixlen=24)
    url = f"/subnetpools/{p['id']}"
    r = admin.put(f"{url}/add_prefixes", {"prefixes": ["10.102.0.0/24", "10.100.2.0/23"]})
    assert r.status_code == 200, r.text
    assert r.json() == {"prefixes": ["10.100.0.0/22", "10.102.0.0/24"]}
    # overlapping a prefix changes nothing
    assert admin.put(f"{url}/add_prefixes", {"prefixes": ["10.100.1.0/24"]}).json() == \
        {"prefixes": ["10.100.0.0/22", "10.102.0.0/24"]}
    sub = subnet(admin, network(admin)["id"], subnetpool_id=p["id"], cidr="10.100.0.0/24")
    r = admin.put(f"{url}/remove_prefixes", {"prefixes": ["10.100.0.0/23"]})
    assert_error(r, 400, "IllegalSubnetPoolPrefixUpdate",
                 "One or more of the prefixes to be removed is in use by a subnet.")
    r = admin.put(f"{url}/remove_prefixes", {"prefixes": ["10.100.1.0/24", "10.102.0.0/24",
                                                          "10.200.0.0/16"]})
    assert r.json() == {"prefixes": ["10.100.0.0/24", "10.100.2.0/23"]}
    got = admin.get(url).json()["subnetpool"]
    assert got["prefixes"] == ["10.100.0.0/24", "10.100.2.0/23"]
    assert got["revision_number"] == p["revision_number"] + 2
    for body, type_ in [({"prefixes": []}, "HTTPBadRequest"), ({"foo": []}, "HTTPBadRequest"),
                        ({"prefixes": ["x"]}, "HTTPBadRequest"),
                        ({"prefixes": ["2001:db8::/64"]}, "PrefixVersionMismatch")]:
        assert_error(admin.put(f"{url}/add_prefixes", body), 400, type_)
    assert_error(admin.put(f"{url}/bogus", {"prefixes": []}), 404)
    missing = "0a0a0a0a-0000-4000-8000-000000000000"
    assert_error(admin.put(f"/subnetpools/{missing}/add_prefixes",
                           {"prefixes": ["10.0.0.0/8"]}), 404, "SubnetPoolNotFound")
    assert admin.delete(f"/subnets/{sub['id']}").status_code == 204


def test_subnetpool_quota(admin: Client, project_client) -> None:
    member = project_client()
    project = member.session.headers["X-Project-Id"]
    assert admin.get(f"/quotas/{project}/default").json()["quota"]["subnetpool"] == -1
    assert admin.put(f"/quotas/{project}", {"quota": {"subnetpool": 1}}).status_code == 200
    pool(member, prefixes=["10.110.0.0/16"])
    assert_error(post_pool(member, prefixes=["10.111.0.0/16"]), 409, "OverQuota",
                 "Quota exceeded for resources: ['subnetpool'].")
    details = admin.get(f"/quotas/{project}/details").json()["quota"]
    assert details["subnetpool"] == {"limit": 1, "used": 1, "reserved": 0}


def test_concurrent_allocations_get_distinct_prefixes(admin: Client) -> None:
    p = pool(admin, prefixes=["10.120.0.0/20"], default_prefixlen=24)
    nets = [network(admin) for _ in range(6)]
    got: list[str] = []

    def allocate(net: dict) -> None:
        client = Client(admin.base)  # a session of its own per thread
        got.append(subnet(client, net["id"], subnetpool_id=p["id"])["cidr"])

    threads = [threading.Thread(target=allocate, args=(n,)) for n in nets]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(got) == [f"10.120.{i}.0/24" for i in range(6)]
