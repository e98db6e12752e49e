"""Upstream Neutron's security advisories, replayed against a real Neutrino server.

Each test is the attack of one OpenStack Security Advisory (or CVE) that concerns
the Networking API, its policy and isolation, or resource exhaustion through it;
it passes because the attack fails.  Tests run on SQLite, PostgreSQL and MariaDB
(the ``server`` fixture) unless the backend cannot matter.  Advisories about the
data plane (L2/L3 agents, firewall drivers, dnsmasq files) are replayed by the data
plane's tests, not here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.conftest import Client, assert_error

ROUTER_OWNERS = ("network:router_interface", "network:router_interface_distributed",
                 "network:ha_router_replicated_interface", "network:router_gateway",
                 "network:router_centralized_snat")


# -- OSSA-2014-008 / CVE-2014-0056: routers cross-plugged by other tenants -------------

@pytest.mark.parametrize("device_owner", ROUTER_OWNERS)
def test_cve_2014_0056_a_port_cannot_claim_another_projects_router(
        project_client: Callable[..., Client], device_owner: str) -> None:
    victim, attacker = project_client(), project_client()
    router = victim.create("routers", name="victim")
    net = attacker.create("networks", name="attacker")
    attacker.create("subnets", network_id=net["id"], cidr="10.66.0.0/24", ip_version=4)
    words = (f"The following device_id {router['id']} is not owned by your project or "
             f"matches another project router.")
    r = attacker.post("/ports", {"port": {"network_id": net["id"], "device_id": router["id"],
                                          "device_owner": device_owner}})
    assert_error(r, 409, "DeviceIDNotOwnedByTenant", words)
    # nor by an update: of both at once, of the owner, or of the id
    port = attacker.create("ports", network_id=net["id"])
    r = attacker.put(f"/ports/{port['id']}", {"port": {"device_id": router["id"],
                                                       "device_owner": device_owner}})
    assert_error(r, 409, "DeviceIDNotOwnedByTenant")
    assert attacker.put(f"/ports/{port['id']}", {"port": {"device_id": router["id"]}}) \
        .status_code == 200  # no router owner: any device's id
    assert_error(attacker.put(f"/ports/{port['id']}", {"port": {"device_owner": device_owner}}),
                 409, "DeviceIDNotOwnedByTenant")
    own = attacker.create("routers", name="mine")
    mine = attacker.create("ports", network_id=net["id"], device_id=own["id"],
                           device_owner=device_owner)
    assert_error(attacker.put(f"/ports/{mine['id']}", {"port": {"device_id": router["id"]}}),
                 409, "DeviceIDNotOwnedByTenant")
    # nothing names the victim's router
    listed = Client(attacker.base).get(f"/ports?device_id={router['id']}").json()["ports"]
    assert [p for p in listed if p["device_owner"] == device_owner] == []


def test_cve_2014_0056_own_routers_and_admins_are_not_refused(
        admin: Client, project_client: Callable[..., Client]) -> None:
    victim, member = project_client(), project_client()
    router = victim.create("routers", name="r")
    net = member.create("networks", name="n")
    own = member.create("routers", name="own")
    assert member.create("ports", network_id=net["id"], device_id=own["id"],
                         device_owner="network:router_interface")["device_id"] == own["id"]
    # an id that is no router (an instance, say) is any device's, as upstream
    other = str(uuid.uuid4())
    assert member.create("ports", network_id=net["id"], device_id=other,
                         device_owner="network:router_interface")["device_id"] == other
    # an admin may (upstream's rule is for non-admins)
    port = admin.create("ports", network_id=net["id"], device_id=router["id"],
                        device_owner="network:router_interface")
    assert port["device_id"] == router["id"]


# -- OSSA-2014-025 / CVE-2014-3555: DoS through many allowed address pairs -------------

def test_cve_2014_3555_allowed_address_pairs_are_bounded(project_client) -> None:
    member = project_client()
    net = member.create("networks", name="n")
    many = [{"ip_address": f"10.{i // 250}.{i % 250}.1"} for i in range(500)]
    r = member.post("/ports", {"port": {"network_id": net["id"], "allowed_address_pairs": many}})
    assert_error(r, 400, "AllowedAddressPairExhausted")
    port = member.create("ports", network_id=net["id"])
    r = member.put(f"/ports/{port['id']}", {"port": {"allowed_address_pairs": many}})
    assert_error(r, 400, "AllowedAddressPairExhausted")
    assert member.get(f"/ports/{port['id']}").json()["port"]["allowed_address_pairs"] == []
