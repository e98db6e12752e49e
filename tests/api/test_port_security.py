"""Port security: upstream's one switch for unchanged clients, and Neutrino's
``port-security-split`` (anti-spoofing and security groups each on its own)."""

from __future__ import annotations

import uuid

import pytest

from tests.conftest import Client, Server, assert_error

NEEDS_FILTERING = ("PortSecurityAndIPRequiredForSecurityGroups",
                   "Port security must be enabled and port must have an IP address in order "
                   "to use security groups.")
HAS_GROUPS = ("PortSecurityPortHasSecurityGroup",
              "Port has security group associated. Cannot disable port security or IP "
              "address until security group is removed.")
PAIRS_NEED = ("AddressPairAndPortSecurityRequired",
              "Port Security must be enabled in order to have allowed address pairs")
PAIR = [{"ip_address": "10.90.0.200"}]


@pytest.fixture
def member(server: Server) -> Client:
    return Client(server.url, project=uuid.uuid4().hex)


@pytest.fixture
def net(member: Client) -> dict:
    return member.network_with_subnet("10.90.0.0/24")[0]


def default_group(client: Client) -> str:
    project = client.session.headers.get("X-Project-Id", "fake_project_id")  # noauth admin
    (group,) = client.get(f"/security-groups?name=default&project_id={project}").json()[
        "security_groups"]
    return group["id"]


def port(client: Client, net: dict, **attrs: object) -> dict:
    return client.create("ports", network_id=net["id"], **attrs)


def put(client: Client, port_id: str, **attrs: object):
    return client.put(f"/ports/{port_id}", {"port": attrs})


def protection(p: dict) -> tuple:
    return (p["port_security_enabled"], p["anti_spoofing_enabled"],
            p["security_groups_enabled"], bool(p["security_groups"]),
            bool(p["allowed_address_pairs"]))


# -- upstream's one switch ----------------------------------------------------------------

def test_port_security_off_means_no_groups(member: Client, net: dict) -> None:
    default = default_group(member)
    on = port(member, net)
    assert protection(on) == (True, None, None, True, False)
    assert on["security_groups"] == [default]
    off = port(member, net, port_security_enabled=False)
    assert protection(off) == (False, None, None, False, False)
    r = member.post("/ports", {"port": {"network_id": net["id"], "port_security_enabled": False,
                                        "security_groups": [default]}})
    assert_error(r, 400, *NEEDS_FILTERING)
    assert port(member, net, port_security_enabled=False, security_groups=[])[
        "security_groups"] == []
    # a network without port security makes ports without it (and without groups)
    open_net = member.create("networks", name="open", port_security_enabled=False)
    assert protection(port(member, open_net)) == (False, None, None, False, False)


def test_turning_port_security_off_needs_the_groups_gone(member: Client, net: dict) -> None:
    p = port(member, net, allowed_address_pairs=PAIR)
    assert_error(put(member, p["id"], port_security_enabled=False), 409, *PAIRS_NEED)
    assert_error(put(member, p["id"], port_security_enabled=False, allowed_address_pairs=[]),
                 409, *HAS_GROUPS)
    assert_error(put(member, p["id"], port_security_enabled=False, allowed_address_pairs=[],
                     security_groups=[default_group(member)]), 400, *NEEDS_FILTERING)
    r = put(member, p["id"], port_security_enabled=False, allowed_address_pairs=[],
            security_groups=[])
    assert r.status_code == 200, r.text
    assert protection(r.json()["port"]) == (False, None, None, False, False)
    assert_error(put(member, p["id"], security_groups=[default_group(member)]), 400,
                 *NEEDS_FILTERING)
    # on again: no group comes back by itself (as upstream)
    r = put(member, p["id"], port_security_enabled=True)
    assert protection(r.json()["port"]) == (True, None, None, False, False)


def test_cloud_ports_are_never_filtered(admin: Client, net: dict) -> None:
    dhcp = port(admin, net, device_owner="network:dhcp")
    assert protection(dhcp) == (False, None, None, False, False)
    router = port(admin, net, device_owner="network:router_interface",
                  port_security_enabled=True)
    assert protection(router) == (False, None, None, False, False)
    r = admin.post("/ports", {"port": {"network_id": net["id"], "device_owner": "network:dhcp",
                                       "security_groups": [default_group(admin)]}})
    assert_error(r, 400, *NEEDS_FILTERING)


# -- the split ----------------------------------------------------------------------------

def test_anti_spoofing_without_filtering(member: Client, net: dict) -> None:
    p = port(member, net, security_groups_enabled=False, allowed_address_pairs=PAIR)
    assert protection(p) == (True, None, False, False, True)
    r = member.post("/ports", {"port": {"network_id": net["id"],
                                        "security_groups_enabled": False,
                                        "security_groups": [default_group(member)]}})
    assert_error(r, 400, *NEEDS_FILTERING)
    # the same with upstream's switch off and anti-spoofing on by itself
    q = port(member, net, port_security_enabled=False, anti_spoofing_enabled=True,
             allowed_address_pairs=PAIR)
    assert protection(q) == (False, True, None, False, True)


def test_filtering_without_anti_spoofing(member: Client, net: dict) -> None:
    default = default_group(member)
    # a router-like VM: sends from any address, still behind its security groups
    p = port(member, net, port_security_enabled=False, security_groups_enabled=True)
    assert protection(p) == (False, None, True, True, False)
    assert p["security_groups"] == [default]  # the default group, as for any filtered port
    assert_error(put(member, p["id"], allowed_address_pairs=PAIR), 409, *PAIRS_NEED)
    q = port(member, net, anti_spoofing_enabled=False)
    assert protection(q) == (True, False, None, True, False)
    r = member.post("/ports", {"port": {"network_id": net["id"], "anti_spoofing_enabled": False,
                                        "allowed_address_pairs": PAIR}})
    assert_error(r, 409, *PAIRS_NEED)


def test_each_half_is_set_on_its_own(member: Client, net: dict) -> None:
    p = port(member, net, allowed_address_pairs=PAIR)
    # filtering off while groups are on the port: as upstream's switch
    assert_error(put(member, p["id"], security_groups_enabled=False), 409, *HAS_GROUPS)
    r = put(member, p["id"], security_groups_enabled=False, security_groups=[])
    assert protection(r.json()["port"]) == (True, None, False, False, True)
    assert r.json()["port"]["revision_number"] > p["revision_number"]
    # upstream's switch off now changes nothing for filtering, and anti-spoofing follows it
    assert_error(put(member, p["id"], port_security_enabled=False), 409, *PAIRS_NEED)
    r = put(member, p["id"], port_security_enabled=False, anti_spoofing_enabled=True)
    assert protection(r.json()["port"]) == (False, True, False, False, True)
    # null: follow port_security_enabled again
    assert_error(put(member, p["id"], anti_spoofing_enabled=None), 409, *PAIRS_NEED)
    r = put(member, p["id"], anti_spoofing_enabled=None, allowed_address_pairs=[],
            security_groups_enabled=None)
    assert protection(r.json()["port"]) == (False, None, None, False, False)
    r = put(member, p["id"], security_groups_enabled=True,
            security_groups=[default_group(member)])
    assert protection(r.json()["port"]) == (False, None, True, True, False)
    shown = member.get(f"/ports/{p['id']}").json()["port"]
    assert protection(shown) == protection(r.json()["port"])


def test_split_attributes_are_the_network_owners(server: Server, admin: Client) -> None:
    shared = admin.create("networks", name="shared", shared=True)
    admin.create("subnets", network_id=shared["id"], cidr="10.91.0.0/24", ip_version=4)
    member = Client(server.url, project=uuid.uuid4().hex)
    for attr in ("anti_spoofing_enabled", "security_groups_enabled",
                 "port_security_enabled"):
        r = member.post("/ports", {"port": {"network_id": shared["id"], attr: False}})
        assert_error(r, 403, "PolicyNotAuthorized", f"rule:create_port:{attr} is disallowed")
    p = port(member, shared)
    assert protection(p) == (True, None, None, True, False)
    assert_error(put(member, p["id"], anti_spoofing_enabled=False), 403, "PolicyNotAuthorized")
    assert put(admin, p["id"], anti_spoofing_enabled=False).status_code == 200


def test_split_attribute_values(member: Client, net: dict) -> None:
    r = member.post("/ports", {"port": {"network_id": net["id"],
                                        "anti_spoofing_enabled": "maybe"}})
    assert_error(r, 400, "InvalidInput", "'maybe' cannot be converted to boolean")
    assert port(member, net, anti_spoofing_enabled="false")["anti_spoofing_enabled"] is False
    assert_error(member.get("/ports?anti_spoofing_enabled=true"), 400, "HTTPBadRequest",
                 "invalid attribute for filtering")
