"""The basic life of networks, subnets and ports over HTTP."""

from tests.conftest import Client, assert_error


def test_versions_and_extensions(admin: Client) -> None:
    r = admin.session.get(admin.base + "/")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v2.0"
    r = admin.get("/extensions")
    aliases = {e["alias"] for e in r.json()["extensions"]}
    assert {"binding", "provider", "quotas", "standard-attr-tag"} <= aliases
    assert admin.get("/extensions/binding").json()["extension"]["alias"] == "binding"
    assert_error(admin.get("/extensions/nope"), 404)


def test_network_subnet_port_lifecycle(admin: Client) -> None:
    net, sub = admin.network_with_subnet("10.0.0.0/24")
    assert net["status"] == "ACTIVE" and net["mtu"] == 1450
    assert net["provider:network_type"] == "vxlan"
    port = admin.create("ports", network_id=net["id"], name="p1")
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.0.0.2"}]
    assert port["mac_address"].startswith("fa:16:3e:")
    assert port["status"] == "DOWN"
    got = admin.get(f"/networks/{net['id']}").json()["network"]
    assert got["subnets"] == [sub["id"]]
    assert_error(admin.delete(f"/networks/{net['id']}"), 409, "NetworkInUse")
    assert_error(admin.delete(f"/subnets/{sub['id']}"), 409, "SubnetInUse")
    r = admin.put(f"/ports/{port['id']}", {"port": {"name": "renamed"}})
    assert r.status_code == 200 and r.json()["port"]["name"] == "renamed"
    assert r.json()["port"]["revision_number"] > port["revision_number"]
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    assert_error(admin.get(f"/subnets/{sub['id']}"), 404, "SubnetNotFound")
