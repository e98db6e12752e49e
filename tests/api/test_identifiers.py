"""Identifiers from paths, headers and queries never reach a bounded column unchecked.

Project ids are stored in 255-character columns.  Before the fix a 300-character
``PUT /v2.0/quotas/<id>`` (admin) and a 256-character ``X-Project-Id`` (noauth) were
500s on PostgreSQL and MariaDB and stored silently on SQLite; now they are 400s in
the envelope on every backend.  Ids and filter values that are only compared (a
path id, a filter on ``project_id``) match nothing: a 404 or an empty list.
"""

from __future__ import annotations

import re

import pytest
import requests

from tests.conftest import Client, Server, assert_error

LONG = "x" * 300
LONGEST = "p" * 255  # what the columns hold


@pytest.mark.parametrize("method,suffix", [("PUT", ""), ("GET", ""), ("DELETE", ""),
                                           ("GET", "/default"), ("GET", "/details")])
def test_quota_paths_refuse_project_ids_longer_than_stored(admin: Client, method: str,
                                                           suffix: str) -> None:
    body = {"quota": {"network": 5}} if method == "PUT" else None
    r = admin.request(method, f"/quotas/{LONG}{suffix}", json=body)
    assert_error(r, 400, "InvalidInput", "exceeds maximum length of 255")
    assert LONG not in [q["project_id"] for q in admin.get("/quotas").json()["quotas"]]


def test_quota_of_the_longest_project_id_is_stored(admin: Client) -> None:
    r = admin.put(f"/quotas/{LONGEST}", {"quota": {"network": 5}})
    assert r.status_code == 200, r.text
    assert admin.get(f"/quotas/{LONGEST}").json()["quota"]["network"] == 5
    assert admin.delete(f"/quotas/{LONGEST}").status_code == 204


@pytest.mark.parametrize("header", ["X-Project-Id", "X-Tenant-Id"])
@pytest.mark.parametrize("roles", ["member", "admin"])
def test_noauth_refuses_project_headers_longer_than_stored(server: Server, header: str,
                                                           roles: str) -> None:
    headers = {header: "p" * 256, "X-Roles": roles}
    url = f"{server.url}/v2.0"
    for method, path, body in (("POST", "/networks", {"network": {"name": "n"}}),
                               ("GET", "/networks", None),
                               # a list of security groups makes the default group
                               ("GET", "/security-groups", None),
                               ("POST", "/routers", {"router": {"name": "r"}})):
        r = requests.request(method, url + path, json=body, headers=headers, timeout=30)
        assert_error(r, 400, "HTTPBadRequest", "Invalid X-Project-Id header")
    # the longest id that fits works as any other
    ok = {header: LONGEST, "X-Roles": roles}
    r = requests.post(url + "/networks", json={"network": {"name": "n"}}, headers=ok,
                      timeout=30)
    assert r.status_code == 201, r.text
    assert r.json()["network"]["project_id"] == LONGEST
    r = requests.get(url + "/security-groups", headers=ok, timeout=30)
    assert r.status_code == 200 and r.json()["security_groups"], r.text


@pytest.mark.parametrize("collection", ["networks", "subnets", "ports", "routers",
                                        "security-groups", "floatingips", "subnetpools",
                                        "rbac-policies"])
def test_long_path_ids_are_not_found(admin: Client, collection: str) -> None:
    for method, path, body in (("GET", "", None), ("PUT", "", {"x": {}}), ("DELETE", "", None),
                               ("GET", "/tags", None), ("PUT", "/tags/a", None)):
        r = admin.request(method, f"/{collection}/{LONG}{path}", json=body)
        assert r.status_code in (400, 404), f"{method} {path}: {r.status_code} {r.text}"
        assert_error(r, r.status_code)


@pytest.mark.parametrize("query", [
    f"/networks?project_id={LONG}", f"/networks?tenant_id={LONG}", f"/networks?id={LONG}",
    f"/networks?name={LONG}", f"/networks?tags={LONG}", f"/networks?tags-any={LONG}",
    f"/ports?network_id={LONG}", f"/ports?device_id={LONG}", f"/ports?mac_address={LONG}",
    f"/ports?fixed_ips=subnet_id={LONG}", f"/ports?security_groups={LONG}",
    f"/ports?binding:host_id={LONG}", f"/subnets?network_id={LONG}",
    f"/security-group-rules?security_group_id={LONG}", f"/rbac-policies?target_tenant={LONG}",
    f"/routers?project_id={LONG}", f"/floatingips?port_id={LONG}",
])
def test_long_filter_values_match_nothing(admin: Client, query: str) -> None:
    admin.create("networks", name="present")
    r = admin.get(query)
    assert r.status_code == 200, r.text
    (items,) = [v for k, v in r.json().items() if not k.endswith("_links")]
    assert items == []


def test_long_marker_is_not_found(admin: Client) -> None:
    assert_error(admin.get(f"/networks?limit=1&marker={LONG}"), 404, "NetworkNotFound")


def test_request_ids_are_the_servers_own(server: Server) -> None:
    # a client's X-Openstack-Request-Id was echoed back as given, whatever it held
    # (upstream names each request itself and never echoes one)
    sent = "req-not-a-uuid<script>" + "x" * 2000
    r = requests.get(f"{server.url}/v2.0/networks", timeout=30,
                     headers={"X-Openstack-Request-Id": sent})
    assert r.status_code == 200
    got = r.headers["X-Openstack-Request-Id"]
    assert got != sent and re.fullmatch(r"req-[0-9a-f-]{36}", got), got
