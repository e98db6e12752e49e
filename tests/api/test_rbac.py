"""Sharing networks and security groups with RBAC policies (``/v2.0/rbac-policies``)."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import Client, Server, assert_error

MISSING = "5a5a5a5a-0000-4000-8000-000000000000"
KEYS = {"id", "project_id", "tenant_id", "object_type", "object_id", "action",
        "target_tenant"}


def new_project(server: Server) -> Client:
    # RBAC policies name projects by id, which must look like a UUID (as upstream)
    return Client(server.url, project=uuid.uuid4().hex)


def project_of(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


def post_policy(client: Client, object_id: str, target: str, *,
                object_type: str = "network", action: str = "access_as_shared",
                **extra: object) -> requests.Response:
    return client.post("/rbac-policies", {"rbac_policy": {
        "object_type": object_type, "object_id": object_id, "action": action,
        "target_tenant": target, **extra}})


def share(client: Client, object_id: str, target: str, **kw: object) -> dict:
    r = post_policy(client, object_id, target, **kw)
    assert r.status_code == 201, r.text
    return r.json()["rbac_policy"]


def visible_networks(client: Client) -> set[str]:
    return {n["id"] for n in client.get("/networks").json()["networks"]}


@pytest.fixture
def owner(server: Server) -> Client:
    return new_project(server)


@pytest.fixture
def other(server: Server) -> Client:
    return new_project(server)


def test_network_shared_with_one_project(server: Server, owner: Client,
                                         other: Client) -> None:
    net, sub = owner.network_with_subnet("10.80.0.0/24")
    third = new_project(server)
    assert net["id"] not in visible_networks(other)
    policy = share(owner, net["id"], project_of(other))
    assert set(policy) == KEYS
    assert policy["project_id"] == policy["tenant_id"] == project_of(owner)
    assert (policy["object_type"], policy["action"], policy["target_tenant"]) == (
        "network", "access_as_shared", project_of(other))
    # visible and usable by the target, as if its own; shared as the target sees it
    seen = other.get(f"/networks/{net['id']}").json()["network"]
    assert seen["shared"] is True and seen["subnets"] == [sub["id"]]
    assert other.get(f"/subnets/{sub['id']}").status_code == 200
    port = other.create("ports", network_id=net["id"])
    assert port["fixed_ips"][0]["subnet_id"] == sub["id"]
    assert owner.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    assert net["id"] not in visible_networks(third)
    assert third.post("/ports", {"port": {"network_id": net["id"]}}).status_code == 404
    # the policy is its creator's to see: not the target's, not a third project's
    assert owner.get(f"/rbac-policies/{policy['id']}").json()["rbac_policy"] == policy
    for client in (other, third):
        assert_error(client.get(f"/rbac-policies/{policy['id']}"), 404, "RbacPolicyNotFound")
        assert client.get("/rbac-policies").json()["rbac_policies"] == []
    # a share that a port depends on stays
    assert_error(owner.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse",
                 f"RBAC policy on object {net['id']} cannot be removed because other objects "
                 f"depend on it.")
    assert_error(owner.put(f"/rbac-policies/{policy['id']}", {"rbac_policy": {
        "target_tenant": project_of(third)}}), 409, "RbacPolicyInUse")
    assert other.delete(f"/ports/{port['id']}").status_code == 204
    moved = owner.put(f"/rbac-policies/{policy['id']}",
                      {"rbac_policy": {"target_tenant": project_of(third)}})
    assert moved.status_code == 200 and moved.json()["rbac_policy"]["target_tenant"] == \
        project_of(third)
    assert net["id"] not in visible_networks(other)
    assert net["id"] in visible_networks(third)
    assert owner.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert net["id"] not in visible_networks(third)
    assert_error(owner.delete(f"/rbac-policies/{policy['id']}"), 404, "RbacPolicyNotFound")


def test_sharing_with_everyone_is_for_admins(admin: Client, owner: Client,
                                             other: Client) -> None:
    net = owner.create("networks", name="everyone")
    assert_error(post_policy(owner, net["id"], "*"), 403, "PolicyNotAuthorized",
                 "rule:create_rbac_policy:target_tenant is disallowed by policy")
    policy = share(admin, net["id"], "*")
    assert policy["project_id"] == "fake_project_id"  # the admin's, who made it
    assert owner.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    assert other.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    assert_error(post_policy(admin, net["id"], "*"), 409, "DuplicateRbacPolicy",
                 "An RBAC policy already exists with those values.")
    # the network's own shared flag and the policy are one thing
    r = owner.put(f"/networks/{net['id']}", {"network": {"name": "x"}})
    assert r.json()["network"]["shared"] is True
    port = other.create("ports", network_id=net["id"])
    # a project's own policy keeps its port's access when "*" goes
    mine = share(owner, net["id"], project_of(other))
    # (shared: false through the networks API is the "*" policy's removal)
    r = admin.put(f"/networks/{net['id']}", {"network": {"shared": False}})
    assert r.status_code == 200, r.text
    assert admin.get(f"/rbac-policies/{policy['id']}").status_code == 404
    assert owner.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    assert_error(owner.delete(f"/rbac-policies/{mine['id']}"), 409, "RbacPolicyInUse")
    policy = share(admin, net["id"], "*")
    # with "*" there, the specific one may go; then "*" may not
    assert owner.delete(f"/rbac-policies/{mine['id']}").status_code == 204
    assert_error(admin.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    assert_error(admin.put(f"/networks/{net['id']}", {"network": {"shared": False}}), 409,
                 "InvalidSharedSetting")
    assert other.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    # if-match means nothing to a policy (it has no revision), as upstream
    again = share(admin, net["id"], "*")
    r = admin.delete(f"/rbac-policies/{again['id']}", headers={"If-Match": "revision_number=9"})
    assert r.status_code == 204


@pytest.mark.parametrize("body,status,type_,message", [
    ({"object_type": "router"}, 400, "InvalidInput", "'router' is not a valid RBAC object "
                                                     "type."),
    ({"action": "bogus"}, 400, "InvalidActionForType", "Invalid action 'bogus' for object "
     "type 'network'. Valid actions: ('access_as_shared', 'access_as_external')"),
    ({"target_tenant": "not-a-project-id"}, 400, "InvalidInput",
     "'not-a-project-id' is not a valid target project ID; expected a UUID or '*'."),
    ({"target_tenant": None}, 400, "HTTPBadRequest", "Invalid input for target_tenant"),
    ({"object_id": "nope"}, 400, "HTTPBadRequest", "Invalid input for object_id"),
    ({"object_id": MISSING}, 404, "NetworkNotFound", None),
    ({"object_type": "security_group", "object_id": MISSING}, 404, "SecurityGroupNotFound",
     None),
    ({"object_type": "security_group", "action": "access_as_external"}, 400,
     "InvalidActionForType", "Valid actions: ('access_as_shared',)"),
    ({"project_id": "someone"}, 400, "HTTPBadRequest", "Specifying 'project_id' other than"),
    ({"shared": True}, 400, "HTTPBadRequest", "Unrecognized attribute"),
])
def test_policy_errors(owner: Client, body: dict, status: int, type_: str,
                       message: str | None) -> None:
    net = owner.create("networks", name="errors")
    fields = {"object_type": "network", "object_id": net["id"], "action": "access_as_shared",
              "target_tenant": uuid.uuid4().hex, **body}
    r = owner.post("/rbac-policies", {"rbac_policy": fields})
    assert_error(r, status, type_, message)
    assert owner.get("/rbac-policies").json()["rbac_policies"] == []


def test_required_attributes_and_read_only_ones(owner: Client) -> None:
    net = owner.create("networks", name="required")
    for missing in ("object_type", "object_id", "action", "target_tenant"):
        fields = {"object_type": "network", "object_id": net["id"],
                  "action": "access_as_shared", "target_tenant": uuid.uuid4().hex}
        del fields[missing]
        assert_error(owner.post("/rbac-policies", {"rbac_policy": fields}), 400,
                     "HTTPBadRequest", f"Required attribute '{missing}' not specified")
    policy = share(owner, net["id"], uuid.uuid4().hex)
    assert_error(owner.put(f"/rbac-policies/{policy['id']}",
                           {"rbac_policy": {"object_id": MISSING}}), 400, "HTTPBadRequest",
                 "Cannot update read-only attribute object_id")
    assert owner.get(f"/rbac-policies/{policy['id']}/tags").status_code == 404


def test_only_the_owner_shares(server: Server, admin: Client, owner: Client,
                               other: Client) -> None:
    net = owner.create("networks", name="mine")
    share(owner, net["id"], project_of(other))
    # the target sees the network but may not share it on
    r = post_policy(other, net["id"], uuid.uuid4().hex)
    assert_error(r, 400, "InvalidInput", "Only admins can manipulate policies on networks "
                                         "they do not own")
    # nor can a project share what it cannot see
    assert_error(post_policy(new_project(server), net["id"], uuid.uuid4().hex), 404,
                 "NetworkNotFound")
    # admins can, for anyone's
    assert post_policy(admin, net["id"], uuid.uuid4().hex).status_code == 201
    readers = Client(server.url, project=project_of(owner), roles="reader")
    assert_error(post_policy(readers, net["id"], uuid.uuid4().hex), 403, "PolicyNotAuthorized")


def test_network_external_to_one_project(admin: Client, owner: Client,
                                         other: Client) -> None:
    net = owner.create("networks", name="uplink")
    assert net["router:external"] is False
    policy = share(owner, net["id"], project_of(other), action="access_as_external")
    # the first external policy makes the network external; to that project only
    shown = owner.get(f"/networks/{net['id']}").json()["network"]
    assert shown["router:external"] is True and shown["shared"] is False
    seen = other.get(f"/networks/{net['id']}").json()["network"]
    assert seen["router:external"] is True and seen["shared"] is False
    assert net["id"] in {n["id"] for n in other.get(
        "/networks?router:external=true").json()["networks"]}
    # visible, not usable for ports (external networks are for gateways)
    assert_error(other.post("/ports", {"port": {"network_id": net["id"]}}), 403,
                 "PolicyNotAuthorized")
    assert owner.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert owner.get(f"/networks/{net['id']}").json()["network"]["router:external"] is False
    assert other.get(f"/networks/{net['id']}").status_code == 404
    # router:external through the networks API is a policy to everyone (admins set it)
    r = admin.put(f"/networks/{net['id']}", {"network": {"router:external": True}})
    assert r.status_code == 200, r.text
    (wildcard,) = admin.get(f"/rbac-policies?object_id={net['id']}").json()["rbac_policies"]
    assert (wildcard["action"], wildcard["target_tenant"], wildcard["project_id"]) == (
        "access_as_external", "*", project_of(owner))
    assert other.get(f"/networks/{net['id']}").status_code == 200
    assert owner.get("/rbac-policies").json()["rbac_policies"] == [wildcard]
    admin.put(f"/networks/{net['id']}", {"network": {"router:external": False}})
    assert admin.get(f"/rbac-policies?object_id={net['id']}").json()["rbac_policies"] == []
    assert other.get(f"/networks/{net['id']}").status_code == 404
    made = admin.create("networks", name="public", **{"router:external": True})
    assert other.get(f"/networks/{made['id']}").status_code == 200
    assert [p["action"] for p in admin.get(
        f"/rbac-policies?object_id={made['id']}").json()["rbac_policies"]] == [
        "access_as_external"]


def test_security_group_shared_with_a_project(admin: Client, owner: Client,
                                              other: Client) -> None:
    group = owner.post("/security-groups", {"security_group": {"name": "shared-web"}}).json()[
        "security_group"]
    assert other.get(f"/security-groups/{group['id']}").status_code == 404
    policy = share(owner, group["id"], project_of(other), object_type="security_group")
    assert policy["object_type"] == "security_group"
    seen = other.get(f"/security-groups/{group['id']}").json()["security_group"]
    assert seen["shared"] is True and seen["name"] == "shared-web"
    assert owner.get(f"/security-groups/{group['id']}").json()["security_group"][
        "shared"] is False
    assert [g["id"] for g in other.get("/security-groups?shared=true").json()[
        "security_groups"]] == [group["id"]]
    assert group["id"] not in {g["id"] for g in other.get(
        "/security-groups?shared=false").json()["security_groups"]}
    # used by its ports, not changed by it
    net, _ = other.network_with_subnet("10.81.0.0/24")
    port = other.create("ports", network_id=net["id"], security_groups=[group["id"]])
    assert port["security_groups"] == [group["id"]]
    assert_error(other.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress"}}), 403,
        "PolicyNotAuthorized")
    assert_error(other.delete(f"/security-groups/{group['id']}"), 403, "PolicyNotAuthorized")
    # a rule of the target's own group may name it as its remote group
    mine = other.post("/security-groups", {"security_group": {"name": "mine"}}).json()[
        "security_group"]
    r = other.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": mine["id"], "direction": "ingress",
        "remote_group_id": group["id"]}})
    assert r.status_code == 201, r.text
    # the group's rules stay its owner's to list
    listed = {r["id"] for r in other.get("/security-group-rules").json()[
        "security_group_rules"]}
    assert not listed & {r["id"] for r in group["security_group_rules"]}
    assert_error(owner.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse",
                 f"project_id={project_of(other)}")
    assert other.delete(f"/ports/{port['id']}").status_code == 204
    assert owner.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    assert other.get(f"/security-groups/{group['id']}").status_code == 404
    # everyone: admins only
    assert_error(post_policy(owner, group["id"], "*", object_type="security_group"), 403,
                 "PolicyNotAuthorized")
    wildcard = share(admin, group["id"], "*", object_type="security_group")
    assert other.get(f"/security-groups/{group['id']}").json()["security_group"]["shared"]
    assert owner.get("/rbac-policies?object_type=security_group").json()[
        "rbac_policies"] == []  # the admin's policy
    assert [p["id"] for p in admin.get(
        f"/rbac-policies?object_id={group['id']}").json()["rbac_policies"]] == [wildcard["id"]]
    # deleting the group takes its policies with it
    assert owner.delete(f"/security-groups/{group['id']}").status_code == 204
    assert admin.get(f"/rbac-policies/{wildcard['id']}").status_code == 404


def test_policy_list_filters_and_quota(admin: Client, owner: Client) -> None:
    net = owner.create("networks", name="many")
    group = owner.post("/security-groups", {"security_group": {"name": "g"}}).json()[
        "security_group"]
    targets = sorted(uuid.uuid4().hex for _ in range(3))
    made = [share(owner, net["id"], t) for t in targets]
    made.append(share(owner, group["id"], targets[0], object_type="security_group"))
    listed = owner.get("/rbac-policies").json()["rbac_policies"]
    assert {p["id"] for p in listed} == {p["id"] for p in made}
    assert [p["object_type"] for p in owner.get(
        "/rbac-policies?object_type=security_group").json()["rbac_policies"]] == [
        "security_group"]
    assert len(owner.get(f"/rbac-policies?target_tenant={targets[0]}").json()[
        "rbac_policies"]) == 2
    by_target = owner.get("/rbac-policies?object_type=network&sort_key=target_tenant"
                          "&sort_dir=desc").json()["rbac_policies"]
    assert [p["target_tenant"] for p in by_target] == targets[::-1]
    page = owner.get("/rbac-policies?limit=3").json()
    assert len(page["rbac_policies"]) == 3
    assert "/v2.0/rbac-policies?" in page["rbac_policies_links"][0]["href"]
    project = project_of(owner)
    details = owner.get(f"/quotas/{project}/details").json()["quota"]["rbac_policy"]
    assert details == {"limit": 10, "used": 4, "reserved": 0}
    admin.put(f"/quotas/{project}", {"quota": {"rbac_policy": 4}})
    assert_error(post_policy(owner, net["id"], uuid.uuid4().hex), 409, "OverQuota",
                 "['rbac_policy']")
