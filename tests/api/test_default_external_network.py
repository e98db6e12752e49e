"""`is_default` on networks: one default external network, and its `*` external
RBAC policy cannot be taken away."""

from tests.conftest import Client, assert_error


def _external(admin: Client, name: str, **extra: object) -> dict:
    return admin.create("networks", name=name, **{"router:external": True}, **extra)


def test_default_external_network(admin: Client, project_client) -> None:
    net = _external(admin, "pub-a")
    assert net["is_default"] is False
    r = admin.put(f"/networks/{net['id']}", {"network": {"is_default": True}})
    assert r.status_code == 200 and r.json()["network"]["is_default"] is True
    # a second default external network is refused, at create and at update
    assert_error(admin.post("/networks", {"network": {
        "name": "pub-b", "router:external": True, "is_default": True}}), 409,
        "DefaultExternalNetworkExists")
    other = _external(admin, "pub-c")
    assert_error(admin.put(f"/networks/{other['id']}", {"network": {"is_default": True}}),
                 409, "DefaultExternalNetworkExists")
    # members may not set it
    member = project_client()
    assert_error(member.post("/networks", {"network": {"name": "x", "is_default": True}}),
                 403, "PolicyNotAuthorized")
    # the wildcard external policy of the default network stays
    [policy] = admin.get("/rbac-policies", params={
        "object_id": net["id"], "action": "access_as_external",
        "target_tenant": "*"}).json()["rbac_policies"]
    assert_error(admin.delete(f"/rbac-policies/{policy['id']}"), 409, "RbacPolicyInUse")
    # once it is no longer the default, it can go
    admin.put(f"/networks/{net['id']}", {"network": {"is_default": False}})
    assert admin.delete(f"/rbac-policies/{policy['id']}").status_code == 204
    for ident in (net["id"], other["id"]):
        assert admin.delete(f"/networks/{ident}").status_code == 204
