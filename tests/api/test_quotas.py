"""Quotas: limits per project over upstream's defaults, usage, and enforcement."""

from __future__ import annotations

import pytest

from neutrino.services import QUOTA_COUNTERS
from tests.conftest import Client, assert_error

#: upstream's default limits (shared/peer/README.md); a resource it gives none is unlimited
UPSTREAM = {"network": 100, "subnet": 100, "port": 500, "router": 10, "floatingip": 50,
            "security_group": 10, "security_group_rule": 100, "rbac_policy": 10,
            # neutron-fwaas'
            "firewall_group": 10, "firewall_policy": 10, "firewall_rule": 100}
DEFAULTS = {c.resource: UPSTREAM.get(c.resource, -1) for c in QUOTA_COUNTERS}


def project_of(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


@pytest.fixture
def member(project_client) -> Client:
    return project_client()


def test_defaults_are_upstreams(admin: Client, member: Client) -> None:
    project = project_of(member)
    assert admin.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}
    assert admin.get(f"/quotas/{project}/default").json() == {"quota": DEFAULTS}
    details = admin.get(f"/quotas/{project}/details").json()["quota"]
    assert details == {k: {"limit": v, "used": 0, "reserved": 0} for k, v in DEFAULTS.items()}
    # a project reads its own
    assert member.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}
    assert member.get(f"/quotas/{project}/default").json() == {"quota": DEFAULTS}


def test_details_count_what_is_used(admin: Client, member: Client) -> None:
    project = project_of(member)
    net = member.create("networks", name="q")
    member.create("subnets", network_id=net["id"], cidr="10.80.0.0/24", ip_version=4)
    for _ in range(3):
        member.create("ports", network_id=net["id"])
    # another project's objects on this project's network count for their owner
    other = admin.create("ports", network_id=net["id"], project_id="someone-else")
    used = {k: v["used"] for k, v in member.get(
        f"/quotas/{project}/details").json()["quota"].items()}
    # the first port made the project's default security group, with its 4 rules
    assert used == {**dict.fromkeys(DEFAULTS, 0), "network": 1, "subnet": 1, "port": 3,
                    "security_group": 1, "security_group_rule": 4}
    assert admin.get("/quotas/someone-else/details").json()["quota"]["port"]["used"] == 1
    assert admin.delete(f"/ports/{other['id']}").status_code == 204


def test_update_list_and_reset(admin: Client, member: Client) -> None:
    project = project_of(member)
    r = admin.put(f"/quotas/{project}", {"quota": {"network": 5, "port": "7"}})
    assert r.status_code == 200, r.text
    assert r.json() == {"quota": {**DEFAULTS, "network": 5, "port": 7}}
    assert member.get(f"/quotas/{project}").json() == {"quota": {**DEFAULTS, "network": 5,
                                                                 "port": 7}}
    assert admin.get(f"/quotas/{project}/default").json() == {"quota": DEFAULTS}
    listed = admin.get("/quotas").json()["quotas"]
    mine = [q for q in listed if q["project_id"] == project]
    assert mine == [{**DEFAULTS, "network": 5, "port": 7, "project_id": project,
                     "tenant_id": project}]
    assert admin.put(f"/quotas/{project}", {"quota": {"network": -1}}).json()["quota"][
        "network"] == -1  # unlimited
    assert admin.put(f"/quotas/{project}", {"quota": {}}).json()["quota"]["network"] == -1
    assert admin.delete(f"/quotas/{project}").status_code == 204
    assert admin.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}
    assert project not in {q["project_id"] for q in admin.get("/quotas").json()["quotas"]}
    assert_error(admin.delete(f"/quotas/{project}"), 404, "TenantQuotaNotFound",
                 f"Quota for project {project} could not be found.")


@pytest.mark.parametrize("body,type_,message", [
    ({"quota": {"network": -2}}, "HTTPBadRequest",
     "Invalid input for network. Reason: '-2' is too small - must be at least '-1'."),
    ({"quota": {"network": "many"}}, "InvalidInput", "'many' is not an integer."),
    ({"quota": {"network": True}}, "InvalidInput", "'True' is not an integer."),
    ({"quota": {"routers": 5}}, "HTTPBadRequest", "Unrecognized attribute(s) 'routers'"),
    ({"quotas": {"network": 5}}, "HTTPBadRequest", "Unable to find 'quota' in request body"),
    ({"quota": [1]}, "HTTPBadRequest", "Unable to find 'quota' in request body"),
])
def test_invalid_quota_updates(admin: Client, member: Client, body: object, type_: str,
                               message: str) -> None:
    project = project_of(member)
    assert_error(admin.put(f"/quotas/{project}", body), 400, type_, message)
    assert admin.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}


def test_limit_below_usage_needs_force(admin: Client, member: Client) -> None:
    project = project_of(member)
    for _ in range(2):
        member.create("networks")
    r = admin.put(f"/quotas/{project}", {"quota": {"network": 1, "subnet": 3}})
    assert_error(r, 400, "HTTPBadRequest", "Quota limit 1 for network must be greater than or "
                 "equal to already used 2")
    assert admin.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}  # all or nothing
    r = admin.put(f"/quotas/{project}", {"quota": {"network": 2, "check_limit": True}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 2
    r = admin.put(f"/quotas/{project}", {"quota": {"network": 1, "force": True}})
    assert r.status_code == 200 and r.json()["quota"]["network"] == 1
    assert_error(member.post("/networks", {"network": {}}), 409, "OverQuota")


def test_over_quota(admin: Client, member: Client) -> None:
    project = project_of(member)
    admin.put(f"/quotas/{project}", {"quota": {"network": 2, "subnet": 1, "port": 2}})
    net = member.create("networks")
    # a bulk request that would cross the limit creates nothing
    r = member.post("/networks", {"networks": [{"name": "b1"}, {"name": "b2"}]})
    assert_error(r, 409, "OverQuota", "Quota exceeded for resources: ['network'].")
    assert len(member.get("/networks", params={"project_id": project}).json()["networks"]) == 1
    member.create("networks")
    assert_error(member.post("/networks", {"network": {}}), 409, "OverQuota",
                 "Quota exceeded for resources: ['network'].")
    member.create("subnets", network_id=net["id"], cidr="10.81.0.0/24", ip_version=4)
    r = member.post("/subnets", {"subnet": {"network_id": net["id"], "cidr": "10.82.0.0/24",
                                            "ip_version": 4}})
    assert_error(r, 409, "OverQuota", "Quota exceeded for resources: ['subnet'].")
    ports = [member.create("ports", network_id=net["id"]) for _ in range(2)]
    assert_error(member.post("/ports", {"port": {"network_id": net["id"]}}), 409, "OverQuota",
                 "Quota exceeded for resources: ['port'].")
    # the refused port took no address
    assert member.delete(f"/ports/{ports[1]['id']}").status_code == 204
    assert member.create("ports", network_id=net["id"])["fixed_ips"][0][
        "ip_address"] == ports[1]["fixed_ips"][0]["ip_address"]
    # an admin creating for the project is held to the project's limits too
    r = admin.post("/networks", {"network": {"project_id": project}})
    assert_error(r, 409, "OverQuota")
    # unlimited again
    admin.put(f"/quotas/{project}", {"quota": {"network": -1}})
    assert member.post("/networks", {"network": {}}).status_code == 201


def test_members_cannot_manage_quotas(admin: Client, member: Client, project_client) -> None:
    project = project_of(member)
    other = project_of(project_client())
    assert_error(member.put(f"/quotas/{project}", {"quota": {"network": 1000}}), 403,
                 "PolicyNotAuthorized", "rule:update_quota is disallowed by policy")
    assert_error(member.delete(f"/quotas/{project}"), 403, "PolicyNotAuthorized",
                 "rule:delete_quota is disallowed by policy")
    assert_error(member.get("/quotas"), 403, "PolicyNotAuthorized",
                 "rule:get_quota is disallowed by policy")
    assert_error(member.get(f"/quotas/{other}"), 403, "PolicyNotAuthorized",
                 "rule:get_quota is disallowed by policy")
    assert_error(member.get(f"/quotas/{other}/default"), 403, "PolicyNotAuthorized")
    assert_error(member.get(f"/quotas/{other}/details"), 403, "AdminRequired",
                 "Only admin is authorized to access quotas for another project.")
    assert admin.get(f"/quotas/{project}").json() == {"quota": DEFAULTS}
