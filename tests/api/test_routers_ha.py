"""HA routers (l3-ha): each project's hidden HA network, shared by its HA routers.

What an admin sees matches the upstream server (checked request by request: names,
owner, segment, subnet).  Upstream keeps the network while HA ports of its L3 agents
are on it; Neutrino keeps it while the project has an HA router (docs/routers.md and
docs/api-differences.md).  The races run on every backend: however many HA routers a
project makes at once, it gets one HA network.
"""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.backends.test_concurrency import no_server_errors, race
from tests.conftest import Client, Server, assert_error

HA_NETWORK_KEYS = {
    "id", "name", "description", "project_id", "tenant_id", "created_at", "updated_at",
    "revision_number", "tags", "admin_state_up", "status", "mtu", "shared", "subnets",
    "router:external", "port_security_enabled", "availability_zone_hints",
    "availability_zones", "ipv4_address_scope", "ipv6_address_scope", "is_default",
    "provider:network_type", "provider:physical_network", "provider:segmentation_id",
}


@pytest.fixture
def project() -> str:
    """A fresh project the admin makes routers for (no HA network yet)."""
    return uuid.uuid4().hex


@pytest.fixture
def admin(server: Server, project: str) -> Client:
    client = Client(server.url)
    r = client.put(f"/quotas/{project}", {"quota": {"router": -1}})
    assert r.status_code == 200, r.text
    return client


def ha_router(admin: Client, project: str, **attrs: object) -> dict:
    attrs.setdefault("ha", True)
    return admin.create("routers", name="ha", project_id=project, **attrs)


def ha_networks(admin: Client, project: str) -> list[dict]:
    return admin.get("/networks", params={"name": f"HA network project {project}"}).json()[
        "networks"]


def test_ha_router_makes_the_project_ha_network(admin: Client, project: str) -> None:
    router = ha_router(admin, project)
    assert router["ha"] is True and router["project_id"] == project
    [net] = ha_networks(admin, project)
    assert set(net) == HA_NETWORK_KEYS
    # as upstream: owned by no project, on a tenant-type segment, one link-local subnet
    assert net["project_id"] == net["tenant_id"] == ""
    assert net["name"] == f"HA network project {project}" and net["description"] == ""
    assert net["provider:network_type"] == "vxlan"
    assert net["provider:physical_network"] is None
    assert isinstance(net["provider:segmentation_id"], int)
    assert net["mtu"] == 1450 and net["status"] == "ACTIVE" and net["admin_state_up"] is True
    assert net["shared"] is False and net["router:external"] is False
    assert net["port_security_enabled"] is True and net["revision_number"] == 2
    [sub] = admin.get("/subnets", params={"network_id": net["id"]}).json()["subnets"]
    assert sub["name"] == f"HA subnet project {project}"
    assert sub["project_id"] == sub["tenant_id"] == "" and sub["ip_version"] == 4
    assert sub["cidr"] == "169.254.192.0/18" and sub["gateway_ip"] is None
    assert sub["enable_dhcp"] is False
    assert sub["allocation_pools"] == [{"start": "169.254.192.1", "end": "169.254.255.254"}]
    assert net["subnets"] == [sub["id"]]
    # nothing of it is the project's: hidden from its members, on no quota of its own
    member = Client(admin.base, project=project)
    assert member.get("/networks").json()["networks"] == []
    assert member.get("/subnets").json()["subnets"] == []
    assert_error(member.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    usage = admin.get(f"/quotas/{project}/details").json()["quota"]
    assert usage["network"]["used"] == 0 and usage["subnet"]["used"] == 0
    assert admin.delete(f"/routers/{router['id']}").status_code == 204


def test_legacy_routers_make_none(admin: Client, project: str) -> None:
    router = ha_router(admin, project, ha=False)
    plain = ha_router(admin, project, ha=None)
    assert ha_networks(admin, project) == []
    for rid in (router["id"], plain["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204


def test_ha_routers_share_it_and_the_last_one_takes_it(admin: Client, project: str) -> None:
    """neutron-tempest-plugin's test_delete_ha_router_keeps_ha_network_segment_data, and
    what follows it."""
    first, second = ha_router(admin, project), ha_router(admin, project)
    [net] = ha_networks(admin, project)
    assert admin.delete(f"/routers/{first['id']}").status_code == 204
    kept = admin.get(f"/networks/{net['id']}").json()["network"]
    assert kept["provider:segmentation_id"] == net["provider:segmentation_id"]
    assert kept["revision_number"] == net["revision_number"]
    # another project's HA routers have a network of their own
    other = uuid.uuid4().hex
    theirs = ha_router(admin, other)
    [their_net] = ha_networks(admin, other)
    assert their_net["id"] != net["id"]
    assert their_net["provider:segmentation_id"] != net["provider:segmentation_id"]

    assert admin.delete(f"/routers/{second['id']}").status_code == 204
    assert_error(admin.get(f"/networks/{net['id']}"), 404, "NetworkNotFound")
    assert_error(admin.get(f"/subnets/{net['subnets'][0]}"), 404, "SubnetNotFound")
    assert ha_networks(admin, project) == []
    assert [n["id"] for n in ha_networks(admin, other)] == [their_net["id"]]
    # a new HA router makes a new one (its segment is free again)
    again = ha_router(admin, project)
    [fresh] = ha_networks(admin, project)
    assert fresh["id"] != net["id"]
    for rid in (again["id"], theirs["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204
    assert ha_networks(admin, other) == []


def test_updating_ha_makes_or_removes_it(admin: Client, project: str) -> None:
    router = ha_router(admin, project, ha=False, admin_state_up=False)
    path = f"/routers/{router['id']}"
    r = admin.put(path, {"router": {"ha": True}})
    assert r.status_code == 200 and r.json()["router"]["ha"] is True
    [net] = ha_networks(admin, project)
    # the same value again changes nothing
    assert admin.put(path, {"router": {"ha": True}}).status_code == 200
    assert [n["id"] for n in ha_networks(admin, project)] == [net["id"]]
    r = admin.put(path, {"router": {"ha": False}})
    assert r.status_code == 200 and r.json()["router"]["ha"] is False
    assert ha_networks(admin, project) == []
    # while another HA router is left, it stays
    other = ha_router(admin, project)
    assert admin.put(path, {"router": {"ha": True}}).status_code == 200
    [net] = ha_networks(admin, project)
    assert admin.put(path, {"router": {"ha": False}}).status_code == 200
    assert [n["id"] for n in ha_networks(admin, project)] == [net["id"]]
    for rid in (router["id"], other["id"]):
        assert admin.delete(f"/routers/{rid}").status_code == 204
    assert ha_networks(admin, project) == []


def test_an_admin_may_remove_it_or_keep_it(admin: Client, project: str) -> None:
    """Deleted by hand (upstream allows it while nothing is on it), it is made anew for
    the next HA router; a port an admin put on it keeps it past the last router."""
    first = ha_router(admin, project)
    [net] = ha_networks(admin, project)
    assert admin.delete(f"/networks/{net['id']}").status_code == 204
    second = ha_router(admin, project)
    [net] = ha_networks(admin, project)
    assert admin.delete(f"/routers/{first['id']}").status_code == 204
    port = admin.create("ports", network_id=net["id"], name="kept")
    assert admin.delete(f"/routers/{second['id']}").status_code == 204
    assert [n["id"] for n in ha_networks(admin, project)] == [net["id"]]
    assert admin.delete(f"/ports/{port['id']}").status_code == 204
    assert admin.delete(f"/networks/{net['id']}").status_code == 204


def test_concurrent_ha_routers_make_one_network(server: Server, admin: Client,
                                                project: str) -> None:
    url = f"{server.url}/v2.0/routers"

    def create(session: requests.Session, n: int) -> requests.Response:
        return session.post(url, json={"router": {"name": f"ha{n}", "ha": True,
                                                  "project_id": project}}, timeout=120)

    made = race(16, create)
    assert no_server_errors(made) == {201: 16}
    [net] = ha_networks(admin, project)
    # creates and deletes at once: whatever the order, the network is there exactly
    # while an HA router is
    ids = [r.json()["router"]["id"] for r in made]

    def churn(session: requests.Session, n: int) -> requests.Response:
        if n % 2:
            return session.delete(f"{url}/{ids[n // 2]}", timeout=120)
        return create(session, n)

    statuses = no_server_errors(race(32, churn))
    assert statuses == {201: 16, 204: 16}, statuses
    left = admin.get("/routers", params={"project_id": project}).json()["routers"]
    assert len(left) == 16
    [net_now] = ha_networks(admin, project)

    def delete(session: requests.Session, n: int) -> requests.Response:
        return session.delete(f"{url}/{left[n]['id']}", timeout=120)

    assert no_server_errors(race(16, delete)) == {204: 16}
    assert ha_networks(admin, project) == []
    assert_error(admin.get(f"/networks/{net_now['id']}"), 404)
    assert net["id"]  # (the first one may or may not have survived the churn)
