"""Caps on the lists one object holds, with upstream's options, defaults and errors.

A list on a port, subnet or router becomes rules, routes and daemon options in the
data plane, so an unbounded one is a denial of service (a port with 10,000 allowed
address pairs was accepted; upstream's CVE-2014-3555 was the same).  Each cap is a
setting (upstream's option name) except tags, whose 50 per resource upstream fixes.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Client, assert_error, start_server


def pairs(n: int) -> list[dict]:
    return [{"ip_address": f"10.9.{i // 250}.{i % 250 + 1}"} for i in range(n)]


def test_allowed_address_pairs_are_capped_at_ten(admin: Client) -> None:
    net, _ = admin.network_with_subnet("10.31.0.0/24")
    r = admin.post("/ports", {"port": {"network_id": net["id"],
                                       "allowed_address_pairs": pairs(11)}})
    assert_error(r, 400, "AllowedAddressPairExhausted",
                 "The number of allowed address pair exceeds the maximum 10.")
    # the report's attack, scaled to fit the request body limit
    r = admin.post("/ports", {"port": {"network_id": net["id"],
                                       "allowed_address_pairs": pairs(1000)}})
    assert_error(r, 400, "AllowedAddressPairExhausted")
    port = admin.create("ports", network_id=net["id"], allowed_address_pairs=pairs(10))
    assert len(port["allowed_address_pairs"]) == 10
    r = admin.put(f"/ports/{port['id']}", {"port": {"allowed_address_pairs": pairs(11)}})
    assert_error(r, 400, "AllowedAddressPairExhausted")
    shown = admin.get(f"/ports/{port['id']}").json()["port"]
    assert shown["allowed_address_pairs"] == port["allowed_address_pairs"]  # unchanged
    assert shown["revision_number"] == port["revision_number"]


def test_fixed_ips_are_capped_at_five(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.32.0.0/24")
    r = admin.post("/ports", {"port": {"network_id": net["id"],
                                       "fixed_ips": [{"subnet_id": sub["id"]}] * 6}})
    assert_error(r, 400, "InvalidInput", "fixed ips per port (5)")
    port = admin.create("ports", network_id=net["id"], fixed_ips=[{"subnet_id": sub["id"]}] * 5)
    assert len(port["fixed_ips"]) == 5
    r = admin.put(f"/ports/{port['id']}",
                  {"port": {"fixed_ips": [{"subnet_id": sub["id"]}] * 6}})
    assert_error(r, 400, "InvalidInput", "fixed ips per port (5)")


def tags(n: int) -> list[str]:
    return [f"t{i}" for i in range(n)]


def test_tags_are_capped_at_fifty_per_resource(admin: Client) -> None:
    r = admin.post("/networks", {"network": {"name": "tagged", "tags": tags(51)}})
    assert_error(r, 400, None, "51 items exceed the maximum of 50")
    net = admin.create("networks", name="tagged", tags=tags(50))
    assert len(net["tags"]) == 50
    path = f"/networks/{net['id']}/tags"
    # upstream's words on the tag API
    words = "Bad networks request: The number of tags exceed the per-resource limit of 50."
    assert_error(admin.put(path, {"tags": tags(51)}), 400, "BadRequest", words)
    assert_error(admin.post(path, {"tags": ["one-more"]}), 400, "BadRequest", words)
    assert_error(admin.put(f"{path}/one-more"), 400, "BadRequest", words)
    assert admin.put(f"{path}/t7").status_code == 201  # already there: no new tag
    assert sorted(admin.get(path).json()["tags"]) == sorted(tags(50))
    # the other resources have the same cap
    port = admin.create("ports", network_id=net["id"])
    r = admin.put(f"/ports/{port['id']}/tags", {"tags": tags(51)})
    assert_error(r, 400, "BadRequest", "Bad ports request")


@pytest.fixture(scope="module")
def tight(database_factory, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """A server with every cap set low (upstream's option names)."""
    srv = start_server(tmp_path_factory.mktemp("tight"), database_factory("sqlite"),
                       max_allowed_address_pair=2, max_subnet_host_routes=1,
                       max_dns_nameservers=1, max_routes=1, max_fixed_ips_per_port=1)
    yield Client(srv.url)
    srv.stop()


def test_caps_follow_their_settings(tight: Client) -> None:
    net, sub = tight.network_with_subnet("10.33.0.0/24")
    r = tight.post("/ports", {"port": {"network_id": net["id"],
                                       "allowed_address_pairs": pairs(3)}})
    assert_error(r, 400, "AllowedAddressPairExhausted", "exceeds the maximum 2.")
    assert len(tight.create("ports", network_id=net["id"],
                            allowed_address_pairs=pairs(2))["allowed_address_pairs"]) == 2
    r = tight.post("/ports", {"port": {"network_id": net["id"],
                                       "fixed_ips": [{"subnet_id": sub["id"]}] * 2}})
    assert_error(r, 400, "InvalidInput", "fixed ips per port (1)")
    route = {"destination": "10.50.0.0/16", "nexthop": "10.33.0.9"}
    r = tight.put(f"/subnets/{sub['id']}", {"subnet": {"host_routes": [
        route, {**route, "destination": "10.51.0.0/16"}]}})
    assert_error(r, 400, "HostRoutesExhausted", "exceeds the limit 1.")
    r = tight.put(f"/subnets/{sub['id']}", {"subnet": {"dns_nameservers": ["10.0.0.1",
                                                                           "10.0.0.2"]}})
    assert_error(r, 400, "DNSNameServersExhausted", "exceeds the limit 1.")
    router = tight.create("routers", name="r")
    r = tight.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    r = tight.put(f"/routers/{router['id']}", {"router": {"routes": [
        route, {**route, "destination": "10.51.0.0/16"}]}})
    assert_error(r, 400, "RoutesExhausted", "exceeds the maximum 1.")
    r = tight.put(f"/routers/{router['id']}/add_extraroutes",
                  {"router": {"routes": [route, {**route, "destination": "10.52.0.0/16"}]}})
    assert_error(r, 400, "RoutesExhausted")
