"""Projects are isolated: what belongs to another project does not exist for you.

With noauth, ``X-Project-Id: P`` and ``X-Roles: member`` make a request act as a
member of project P (``project_client()``); without them it acts as an admin.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import Client, assert_error


def project_of(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


@dataclass
class Estate:
    client: Client
    network: dict
    subnet: dict
    port: dict


def estate(client: Client, cidr: str) -> Estate:
    network = client.create("networks", name="private")
    subnet = client.create("subnets", network_id=network["id"], cidr=cidr, ip_version=4)
    port = client.create("ports", network_id=network["id"], name="vm")
    return Estate(client, network, subnet, port)


@pytest.fixture
def two(project_client) -> tuple[Estate, Estate]:
    return estate(project_client(), "10.100.0.0/24"), estate(project_client(), "10.100.0.0/24")


def test_others_objects_do_not_exist(two: tuple[Estate, Estate]) -> None:
    a, b = two
    for collection, item, kind in (("networks", a.network, "Network"),
                                   ("subnets", a.subnet, "Subnet"), ("ports", a.port, "Port")):
        url = f"/{collection}/{item['id']}"
        message = f"{kind} {item['id']} could not be found."
        assert_error(b.client.get(url), 404, f"{kind}NotFound", message)
        assert_error(b.client.put(url, {collection[:-1]: {"name": "mine now"}}), 404,
                     f"{kind}NotFound", message)
        assert_error(b.client.delete(url), 404, f"{kind}NotFound", message)
        assert_error(b.client.get(f"{url}/tags"), 404, f"{kind}NotFound")
        assert_error(b.client.put(f"{url}/tags/x"), 404, f"{kind}NotFound")
        # and it is all still there, unchanged
        assert a.client.get(url).json()[collection[:-1]]["name"] == item["name"]


def test_lists_show_only_ones_own(two: tuple[Estate, Estate]) -> None:
    a, b = two
    for collection, mine, theirs in (("networks", b.network, a.network),
                                     ("subnets", b.subnet, a.subnet),
                                     ("ports", b.port, a.port)):
        listed = {i["id"] for i in b.client.get(f"/{collection}").json()[collection]}
        assert mine["id"] in listed and theirs["id"] not in listed
        for query in (f"project_id={project_of(a.client)}",
                      f"tenant_id={project_of(a.client)}", f"id={theirs['id']}",
                      f"name={theirs['name']}&project_id={project_of(a.client)}"):
            assert b.client.get(f"/{collection}?{query}").json()[collection] == [], query
        paged = b.client.get(f"/{collection}?limit=100").json()[collection]
        assert theirs["id"] not in {i["id"] for i in paged}
        # a marker of theirs is no way in either
        r = b.client.get(f"/{collection}?limit=1&marker={theirs['id']}")
        assert_error(r, 404, f"{collection[:-1].capitalize()}NotFound")
    ports = b.client.get(f"/ports?fixed_ips=subnet_id={a.subnet['id']}").json()["ports"]
    assert ports == []
    ip = a.port["fixed_ips"][0]["ip_address"]
    assert b.port["fixed_ips"][0]["ip_address"] == ip  # overlapping ranges, own addresses
    assert [p["id"] for p in b.client.get(
        f"/ports?fixed_ips=ip_address={ip}").json()["ports"]] == [b.port["id"]]


def test_cannot_build_on_anothers_network(two: tuple[Estate, Estate]) -> None:
    a, b = two
    r = b.client.post("/ports", {"port": {"network_id": a.network["id"]}})
    assert_error(r, 404, "NetworkNotFound", f"Network {a.network['id']} could not be found.")
    r = b.client.post("/subnets", {"subnet": {"network_id": a.network["id"],
                                              "cidr": "10.101.0.0/24", "ip_version": 4}})
    assert_error(r, 404, "NetworkNotFound")
    r = b.client.post("/ports", {"port": {"network_id": b.network["id"],
                                          "fixed_ips": [{"subnet_id": a.subnet["id"]}]}})
    assert_error(r, 404, "SubnetNotFound")
    r = b.client.post("/networks", {"network": {"project_id": project_of(a.client)}})
    assert_error(r, 400, "HTTPBadRequest", "Specifying 'project_id' other than the "
                 "authenticated project in request is not allowed for the current user.")
    r = b.client.post("/ports", {"port": {"network_id": b.network["id"],
                                          "project_id": project_of(a.client)}})
    assert_error(r, 400, "HTTPBadRequest", "Specifying 'project_id'")
    # naming itself explicitly is fine
    mine = b.client.create("networks", project_id=project_of(b.client),
                           tenant_id=project_of(b.client))
    assert mine["project_id"] == project_of(b.client)


def test_admin_sees_and_filters_everyone(admin: Client, two: tuple[Estate, Estate]) -> None:
    a, b = two
    listed = {n["id"] for n in admin.get("/networks").json()["networks"]}
    assert {a.network["id"], b.network["id"]} <= listed
    only_a = admin.get(f"/networks?project_id={project_of(a.client)}").json()["networks"]
    assert [n["id"] for n in only_a] == [a.network["id"]]
    assert admin.get(f"/ports/{a.port['id']}").status_code == 200
    r = admin.put(f"/networks/{a.network['id']}", {"network": {"name": "by admin"}})
    assert r.status_code == 200 and r.json()["network"]["project_id"] == project_of(a.client)


def test_reader_role_reads_but_does_not_write(project_client) -> None:
    owner = estate(project_client(), "10.102.0.0/24")
    reader = project_client(roles="reader")
    reader.session.headers["X-Project-Id"] = project_of(owner.client)
    assert reader.get(f"/networks/{owner.network['id']}").status_code == 200
    assert {p["id"] for p in reader.get("/ports").json()["ports"]} == {owner.port["id"]}
    for r, rule in (
            (reader.post("/networks", {"network": {}}), "create_network"),
            (reader.put(f"/networks/{owner.network['id']}", {"network": {"name": "x"}}),
             "update_network"),
            (reader.delete(f"/ports/{owner.port['id']}"), "delete_port"),
            (reader.post("/subnets", {"subnet": {"network_id": owner.network["id"],
                                                 "cidr": "10.103.0.0/24", "ip_version": 4}}),
             "create_subnet")):
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:{rule} is disallowed by policy")


def test_ports_of_others_on_ones_network(admin: Client, project_client) -> None:
    owner, tenant = project_client(), project_client()
    network = owner.create("networks", name="hosting")
    owner.create("subnets", network_id=network["id"], cidr="10.104.0.0/24", ip_version=4)
    guest = admin.create("ports", network_id=network["id"], project_id=project_of(tenant))
    # the network's owner sees ports on its network; the port's owner sees its port
    assert guest["id"] in {p["id"] for p in owner.get("/ports").json()["ports"]}
    assert tenant.get(f"/ports/{guest['id']}").status_code == 200
    # but the port's owner does not see the network
    assert_error(tenant.get(f"/networks/{network['id']}"), 404, "NetworkNotFound")
    stranger = project_client()
    assert_error(stranger.get(f"/ports/{guest['id']}"), 404, "PortNotFound")
    assert stranger.get(f"/ports?network_id={network['id']}").json()["ports"] == []


def test_shared_network_ports_stay_private(admin: Client, project_client) -> None:
    shared = admin.create("networks", name="commons", shared=True)
    admin.create("subnets", network_id=shared["id"], cidr="10.105.0.0/24", ip_version=4)
    a, b = project_client(), project_client()
    pa = a.create("ports", network_id=shared["id"])
    pb = b.create("ports", network_id=shared["id"])
    assert [p["id"] for p in a.get(f"/ports?network_id={shared['id']}").json()["ports"]] == [
        pa["id"]]
    assert_error(a.get(f"/ports/{pb['id']}"), 404, "PortNotFound")
    assert_error(a.delete(f"/ports/{pb['id']}"), 404, "PortNotFound")
    # the network's owner (the admin here) sees both
    both = {p["id"] for p in admin.get(f"/ports?network_id={shared['id']}").json()["ports"]}
    assert both == {pa["id"], pb["id"]}


def test_quotas_of_others_are_closed(two: tuple[Estate, Estate]) -> None:
    a, b = two
    other = project_of(a.client)
    assert_error(b.client.get(f"/quotas/{other}"), 403, "PolicyNotAuthorized")
    assert_error(b.client.get(f"/quotas/{other}/details"), 403, "AdminRequired")
    details = b.client.get(f"/quotas/{project_of(b.client)}/details").json()["quota"]
    used = {k: v["used"] for k, v in details.items()}
    # the first port made the project's default security group, with its 4 rules
    assert used == {**dict.fromkeys(used, 0), "network": 1, "subnet": 1, "port": 1,
                    "security_group": 1, "security_group_rule": 4}
