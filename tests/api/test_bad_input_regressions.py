"""Regressions for what the fuzzer, the CLI and the SDK found, on every backend.

Each test names the request that used to fail and how.
"""

from __future__ import annotations

from tests.conftest import Client, assert_error


def test_null_quota_limit_is_a_400_not_a_500(admin: Client) -> None:
    # PUT /quotas/{p} {"quota": {"subnet": null}} raised TypeError (500)
    r = admin.put("/quotas/regress-null", {"quota": {"network": 0, "subnet": None}})
    assert_error(r, 400, "InvalidInput", "'None' is not an integer")
    assert admin.get("/quotas/regress-null").json()["quota"]["network"] != 0  # nothing written


def test_huge_limit_is_no_limit(admin: Client) -> None:
    # limit=2**63-1 overflowed SQLite's integer when the server asked for limit + 1 rows
    net = admin.create("networks", name="regress-limit")
    for limit in (2**63 - 1, 2**64, 10**30):
        r = admin.get(f"/networks?limit={limit}&name=regress-limit")
        assert r.status_code == 200, r.text
        assert [n["id"] for n in r.json()["networks"]] == [net["id"]]
    admin.delete(f"/networks/{net['id']}")


def test_integer_filters_beyond_the_columns_match_nothing(admin: Client) -> None:
    # revision_number=2**63 overflowed SQLite; mtu=2**40 overflowed PostgreSQL's INTEGER
    net = admin.create("networks", name="regress-int")
    admin.create("subnets", network_id=net["id"], cidr="10.123.0.0/24", ip_version=4)
    for query in ("/networks?revision_number=9223372036854775808",
                  "/networks?mtu=1099511627776", "/networks?mtu=-99999999999999999999",
                  "/networks?provider:segmentation_id=-328967236037629",
                  "/subnets?ip_version=99999999999", "/subnets?revision_number=4294967296"):
        r = admin.get(query)
        assert r.status_code == 200, f"{query}: {r.text}"
        assert r.json()[query[1:].split("?")[0]] == [], query
    # an integer in range still filters
    got = admin.get(f"/networks?mtu={net['mtu']}&name=regress-int").json()["networks"]
    assert [n["id"] for n in got] == [net["id"]]
    admin.delete(f"/networks/{net['id']}")


def test_null_binding_host_unbinds(admin: Client) -> None:
    # `openstack port unset --host` sends "binding:host_id": null; it was a 400
    net = admin.create("networks", name="regress-host")
    port = admin.create("ports", network_id=net["id"], **{"binding:host_id": "compute-1"})
    assert port["binding:vif_type"] == "binding_failed"  # no agent lives there
    r = admin.put(f"/ports/{port['id']}", {"port": {"binding:host_id": None}})
    assert r.status_code == 200, r.text
    assert r.json()["port"]["binding:host_id"] == ""
    assert r.json()["port"]["binding:vif_type"] == "unbound"
    created = admin.create("ports", network_id=net["id"], **{"binding:host_id": None})
    assert created["binding:host_id"] == ""
    for p in (port, created):
        admin.delete(f"/ports/{p['id']}")
    admin.delete(f"/networks/{net['id']}")


def test_if_match_guards_delete(admin: Client) -> None:
    # DELETE ignored If-Match; upstream (and openstacksdk's if_revision=) expect a 412
    net = admin.create("networks", name="regress-if-match")
    for collection, item in (("networks", net),
                             ("subnets", admin.create("subnets", network_id=net["id"],
                                                      cidr="10.124.0.0/24", ip_version=4)),
                             ("ports", admin.create("ports", network_id=net["id"]))):
        rev = admin.get(f"/{collection}/{item['id']}").json()[collection[:-1]]["revision_number"]
        stale = {"If-Match": f"revision_number={rev + 1}"}
        assert_error(admin.delete(f"/{collection}/{item['id']}", headers=stale), 412,
                     "RevisionNumberConstraintFailed")
        assert admin.get(f"/{collection}/{item['id']}").status_code == 200  # still there
        assert_error(admin.delete(f"/{collection}/{item['id']}",
                                  headers={"If-Match": "revision_number=abc"}), 400)
    port = admin.get(f"/ports?network_id={net['id']}").json()["ports"][0]
    current = {"If-Match": f"revision_number={port['revision_number']}"}
    assert admin.delete(f"/ports/{port['id']}", headers=current).status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_integers_written_as_whole_floats_are_integers(admin: Client) -> None:
    # the stateful fuzzer's valid bodies: JSON Schema's integer includes 1400.0, and
    # upstream converts it; Neutrino answered "'1400.0' is not an integer"
    net = admin.create("networks", name="regress-float", mtu=1400.0)
    assert net["mtu"] == 1400 and isinstance(net["mtu"], int)
    sub = admin.create("subnets", network_id=net["id"], cidr="10.124.0.0/24", ip_version=4.0)
    assert sub["ip_version"] == 4
    group = admin.create("security-groups", name="regress-float")
    rule = admin.create("security-group-rules", security_group_id=group["id"],
                        direction="ingress", protocol=6.0, port_range_min=22.0,
                        port_range_max=22.0)
    assert (rule["protocol"], rule["port_range_min"], rule["port_range_max"]) == ("6", 22, 22)
    r = admin.put("/quotas/regress-float", {"quota": {"network": 7.0}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 7, r.text
    # a fraction is still no integer
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {"mtu": 1400.5}}), 400,
                 "InvalidInput", "'1400.5' is not an integer")
