"""Security groups and their rules, as upstream: validation, normalisation, duplicates,
the default group, groups on ports, sharing, quotas; and the real ``openstack`` CLI."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest
import requests
import sqlalchemy as sa

from neutrino.db import tables as t
from tests.conftest import Client, Server, assert_error, start_server

MISSING = "5a5a5a5a-0000-4000-8000-000000000000"
RULE_KEYS = {
    "id", "project_id", "tenant_id", "security_group_id", "direction", "ethertype", "protocol",
    "port_range_min", "port_range_max", "remote_ip_prefix", "remote_group_id",
    "remote_address_group_id", "normalized_cidr", "belongs_to_default_sg", "description",
    "tags", "created_at", "updated_at", "revision_number",
}
GROUP_KEYS = {"id", "name", "description", "project_id", "tenant_id", "created_at",
              "updated_at", "revision_number", "tags", "stateful", "shared",
              "security_group_rules"}


def new_project(server: Server, roles: str = "member") -> Client:
    # RBAC policies name projects by id (UUID-like), as Keystone's are
    return Client(server.url, project=uuid.uuid4().hex, roles=roles)


def project_of(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


def make_group(client: Client, name: str = "web", **attrs: object) -> dict:
    r = client.post("/security-groups", {"security_group": {"name": name, **attrs}})
    assert r.status_code == 201, r.text
    return r.json()["security_group"]


def post_rule(client: Client, group_id: str, **attrs: object) -> requests.Response:
    return client.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group_id, "direction": "ingress", **attrs}})


def make_rule(client: Client, group_id: str, **attrs: object) -> dict:
    r = post_rule(client, group_id, **attrs)
    assert r.status_code == 201, r.text
    return r.json()["security_group_rule"]


def groups_of(client: Client, **filters: str) -> list[dict]:
    r = client.get("/security-groups", params=filters)
    assert r.status_code == 200, r.text
    return r.json()["security_groups"]


def rule_rows(server: Server, **where: str) -> int:
    """Rows in security_group_rules, straight from the database."""
    table = t.security_group_rules
    with server.db.engine.connect() as conn:
        return conn.scalar(sa.select(sa.func.count()).select_from(table).where(
            *[table.c[k] == v for k, v in where.items()])) or 0


@pytest.fixture
def member(server: Server) -> Client:
    return new_project(server)


# -- the default group ------------------------------------------------------------------

def test_default_group_is_made_on_first_list(server: Server, admin: Client,
                                             member: Client) -> None:
    listed = groups_of(member)
    assert [g["name"] for g in listed] == ["default"]
    default = listed[0]
    assert set(default) == GROUP_KEYS
    assert default["description"] == "Default security group" and default["stateful"] is True
    assert default["shared"] is False and default["project_id"] == project_of(member)
    rules = default["security_group_rules"]
    assert all(set(r) == RULE_KEYS for r in rules)
    # upstream's legacy rules: ingress from the group itself, egress anywhere
    assert sorted((r["direction"], r["ethertype"], r["remote_group_id"]) for r in rules) == [
        ("egress", "IPv4", None), ("egress", "IPv6", None),
        ("ingress", "IPv4", default["id"]), ("ingress", "IPv6", default["id"])]
    assert all(r["belongs_to_default_sg"] is True and r["protocol"] is None for r in rules)
    # made once: lists of groups and rules find it
    assert groups_of(member) == listed
    r = member.get("/security-group-rules")
    assert {x["id"] for x in r.json()["security_group_rules"]} == {x["id"] for x in rules}
    used = member.get(f"/quotas/{project_of(member)}/details").json()["quota"]
    assert used["security_group"]["used"] == 1 and used["security_group_rule"]["used"] == 4
    # an admin's list for a project makes that project's default (as upstream)
    other = uuid.uuid4().hex
    assert [g["name"] for g in groups_of(admin, project_id=other)] == ["default"]
    assert rule_rows(server, project_id=other) == 4


def test_default_group_is_made_on_first_port(member: Client) -> None:
    net, _ = member.network_with_subnet("10.60.0.0/24")
    port = member.create("ports", network_id=net["id"])
    (default,) = groups_of(member)
    assert default["name"] == "default" and port["security_groups"] == [default["id"]]
    # a port of the project made by an admin gets the project's default as well
    assert member.create("ports", network_id=net["id"])["security_groups"] == [default["id"]]


def test_the_name_default_is_the_default_groups_alone(admin: Client, member: Client) -> None:
    for name in ("default", "Default"):
        assert_error(member.post("/security-groups", {"security_group": {"name": name}}), 409,
                     "SecurityGroupDefaultAlreadyExists", "Default security group already "
                                                          "exists.")
    (default,) = groups_of(member)
    web = make_group(member)
    assert_error(member.put(f"/security-groups/{web['id']}",
                            {"security_group": {"name": "DEFAULT"}}), 409,
                 "SecurityGroupDefaultAlreadyExists")
    for client in (member, admin):
        assert_error(client.put(f"/security-groups/{default['id']}",
                                {"security_group": {"name": "default"}}), 409,
                     "SecurityGroupCannotUpdateDefault",
                     "Updating default security group not allowed.")
    r = member.put(f"/security-groups/{default['id']}",
                   {"security_group": {"description": "ours"}})
    assert r.status_code == 200 and r.json()["security_group"]["description"] == "ours"


def test_default_group_delete_is_for_admins(admin: Client, member: Client) -> None:
    (default,) = groups_of(member)
    assert_error(member.delete(f"/security-groups/{default['id']}"), 409,
                 "SecurityGroupCannotRemoveDefault",
                 "Insufficient rights for removing default security group.")
    # an admin cleans up (a deleted project's group); the project's next use makes another
    assert admin.delete(f"/security-groups/{default['id']}").status_code == 204
    assert member.get(f"/security-groups/{default['id']}").status_code == 404
    (again,) = groups_of(member)
    assert again["name"] == "default" and again["id"] != default["id"]


# -- groups -----------------------------------------------------------------------------

def test_new_group_gets_the_non_default_templates(member: Client) -> None:
    web = make_group(member, description="web tier", tags=["a"])
    assert set(web) == GROUP_KEYS
    assert web["description"] == "web tier" and web["tags"] == ["a"]
    assert web["stateful"] is True and web["shared"] is False
    assert sorted((r["direction"], r["ethertype"], r["remote_group_id"])
                  for r in web["security_group_rules"]) == [("egress", "IPv4", None),
                                                            ("egress", "IPv6", None)]
    assert all(r["belongs_to_default_sg"] is False for r in web["security_group_rules"])
    # the project's default came first (as upstream)
    assert sorted(g["name"] for g in groups_of(member)) == ["default", "web"]
    assert member.get(f"/security-groups/{web['id']}").json()["security_group"] == web
    r = member.put(f"/security-groups/{web['id']}", {"security_group": {"name": "web2"}})
    assert r.status_code == 200
    assert r.json()["security_group"]["revision_number"] == web["revision_number"] + 1
    # bulk items may come wrapped, as upstream accepts (tempest sends them so)
    r = member.post("/security-groups", {"security_groups": [
        {"security_group": {"name": "bulk-a"}}, {"name": "bulk-b", "stateful": True}]})
    assert r.status_code == 201, r.text
    assert [g["name"] for g in r.json()["security_groups"]] == ["bulk-a", "bulk-b"]
    stateless = make_group(member, "udp", stateful=False)
    assert stateless["stateful"] is False
    assert [g["name"] for g in groups_of(member, stateful="false")] == ["udp"]


def test_group_in_use_cannot_be_deleted(member: Client) -> None:
    net, _ = member.network_with_subnet("10.61.0.0/24")
    web = make_group(member)
    port = member.create("ports", network_id=net["id"], security_groups=[web["id"]])
    assert port["security_groups"] == [web["id"]]
    assert_error(member.delete(f"/security-groups/{web['id']}"), 409, "SecurityGroupInUse",
                 f"Security Group {web['id']} in use.")
    # stateful cannot change while ports use the group
    assert_error(member.put(f"/security-groups/{web['id']}",
                            {"security_group": {"stateful": False}}), 409, "SecurityGroupInUse")
    assert member.put(f"/ports/{port['id']}", {"port": {"security_groups": []}}).json()[
        "port"]["security_groups"] == []
    assert member.put(f"/security-groups/{web['id']}",
                      {"security_group": {"stateful": False}}).status_code == 200
    assert member.delete(f"/security-groups/{web['id']}").status_code == 204
    assert_error(member.get(f"/security-groups/{web['id']}"), 404, "SecurityGroupNotFound",
                 f"Security group {web['id']} does not exist")
    assert_error(member.delete(f"/security-groups/{web['id']}"), 404, "SecurityGroupNotFound")


def test_others_groups_do_not_exist(server: Server, admin: Client, member: Client) -> None:
    web = make_group(member)
    rule = make_rule(member, web["id"], protocol="tcp", port_range_min=80, port_range_max=80)
    other = new_project(server)
    for path in (f"/security-groups/{web['id']}", f"/security-group-rules/{rule['id']}"):
        assert other.get(path).status_code == 404
        assert other.delete(path).status_code == 404
    assert web["id"] not in {g["id"] for g in groups_of(other)}
    assert rule["id"] not in {r["id"] for r in other.get(
        "/security-group-rules").json()["security_group_rules"]}
    assert_error(post_rule(other, web["id"]), 404, "SecurityGroupNotFound")
    mine = make_group(other)
    assert_error(post_rule(other, mine["id"], remote_group_id=web["id"]), 404,
                 "SecurityGroupNotFound")
    # nor may its ports use them
    net, _ = other.network_with_subnet("10.62.0.0/24")
    r = other.post("/ports", {"port": {"network_id": net["id"], "security_groups": [web["id"]]}})
    assert_error(r, 404, "SecurityGroupNotFound", f"Security group {web['id']} does not exist")
    # admins see and change everything
    assert admin.get(f"/security-groups/{web['id']}").status_code == 200
    assert admin.get(f"/security-group-rules/{rule['id']}").status_code == 200
    readers = Client(server.url, project=project_of(member), roles="reader")
    assert readers.get(f"/security-groups/{web['id']}").status_code == 200
    assert_error(readers.delete(f"/security-group-rules/{rule['id']}"), 403,
                 "PolicyNotAuthorized")
    assert_error(readers.post("/security-groups", {"security_group": {"name": "x"}}), 403,
                 "PolicyNotAuthorized")


# -- rules ------------------------------------------------------------------------------

@pytest.mark.parametrize("given,ethertype,stored,same", [
    # (as given, ethertype, as stored and shown, another spelling of the same protocol)
    ("tcp", "IPv4", "tcp", "6"), ("TCP", "IPv4", "tcp", 6), ("6", "IPv4", "6", "tcp"),
    (6, "IPv4", "6", "TCP"), ("06", "IPv4", "6", "tcp"), ("47", "IPv4", "47", "gre"),
    ("gre", "IPv4", "gre", 47), ("vrrp", "IPv4", "vrrp", "112"), (112, "IPv4", "112", "vrrp"),
    ("253", "IPv4", "253", 253), (0, "IPv4", "0", "hopopt"), ("ip", "IPv4", "ip", "0"),
    ("any", "IPv4", None, None), (None, "IPv6", None, "ANY"),
    # the legacy spellings of ICMPv6, rewritten as upstream does
    ("icmp", "IPv6", "ipv6-icmp", "58"), ("icmpv6", "IPv6", "ipv6-icmp", "1"),
    ("1", "IPv6", "58", "icmp"), ("58", "IPv6", "58", "ipv6-icmp"),
    ("udplite", "ipv6", "udplite", 136), ("esp", "IPv4", "esp", "50"),
])
def test_protocol_spellings(member: Client, given: object, ethertype: str,
                            stored: str | None, same: object) -> None:
    web = make_group(member)
    rule = make_rule(member, web["id"], protocol=given, ethertype=ethertype)
    # the client's form comes back (upstream's test suites rely on it), in one spelling
    assert rule["protocol"] == stored and rule["ethertype"] == ethertype.replace("ipv", "IPv")
    assert set(rule) == RULE_KEYS
    # another spelling of the same protocol is the same rule
    assert_error(post_rule(member, web["id"], protocol=same, ethertype=ethertype), 409,
                 "SecurityGroupRuleExists", f"Rule id is {rule['id']}.")


@pytest.mark.parametrize("attrs,status,type_,message", [
    ({"protocol": "256"}, 400, "SecurityGroupRuleInvalidProtocol",
     "Security group rule protocol 256 not supported"),
    ({"protocol": -1}, 400, "SecurityGroupRuleInvalidProtocol", "integer representations"),
    ({"protocol": "foo"}, 400, "SecurityGroupRuleInvalidProtocol", "'vrrp'"),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 2}, 400,
     "SecurityGroupInvalidProtocolForPort", "Ports cannot be specified for protocol 47. "
     "Ports are only supported for DCCP, SCTP, TCP, UDP, UDPLITE."),
    ({"protocol": "icmp", "port_range_min": 256}, 400, "SecurityGroupInvalidIcmpValue",
     "Invalid value for ICMP type (port_range_min) 256. It must be 0 to 255."),
    ({"protocol": "icmp", "port_range_min": 3, "port_range_max": 256}, 400,
     "SecurityGroupInvalidIcmpValue", "ICMP code (port_range_max) 256"),
    ({"protocol": "icmp", "port_range_max": 0}, 400, "SecurityGroupMissingIcmpType",
     "ICMP code (port-range-max) 0 is provided but ICMP type (port-range-min) is missing."),
    ({"port_range_min": 10, "port_range_max": 10}, 400,
     "SecurityGroupProtocolRequiredWithPorts", "Must also specify protocol"),
    ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20}, 400,
     "SecurityGroupInvalidPortRange", "port_range_min must be <= port_range_max"),
    ({"protocol": "udp", "port_range_min": 30}, 400, "SecurityGroupInvalidPortRange", None),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 20}, 400,
     "SecurityGroupInvalidPortValue", "Invalid value for port 0"),
    ({"protocol": "tcp", "port_range_min": 1, "port_range_max": 65536}, 400,
     "SecurityGroupInvalidPortValue", "Invalid value for port 65536"),
    ({"protocol": "tcp", "port_range_min": "x"}, 400, "SecurityGroupInvalidPortValue",
     "Invalid value for port x"),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"}, 400,
     "SecurityGroupRuleParameterConflict", "Conflicting value ethertype IPv6 for CIDR "
                                           "10.0.0.0/8"),
    ({"ethertype": "IPv5"}, 400, "SecurityGroupRuleInvalidEtherType",
     "Security group rule for ethertype 'IPv5' not supported. Allowed values are "
     "['IPv4', 'IPv6']."),
    ({"ethertype": None}, 400, "SecurityGroupRuleInvalidEtherType", None),
    ({"protocol": "ipv6-icmp"}, 400, "SecurityGroupEthertypeConflictWithProtocol",
     "Invalid ethertype IPv4 for protocol ipv6-icmp."),
    ({"protocol": "58"}, 400, "SecurityGroupEthertypeConflictWithProtocol", None),
    ({"remote_ip_prefix": "foo"}, 400, "InvalidCIDR", "Invalid CIDR foo given as IP prefix."),
    ({"remote_ip_prefix": "10.0.0.0/8", "remote_group_id": "SELF"}, 400,
     "SecurityGroupMultipleRemoteEntites", "Only one of remote_ip_prefix or remote_group_id"),
    ({"direction": "in"}, 400, "HTTPBadRequest", "Invalid input for direction"),
    ({"remote_group_id": MISSING}, 404, "SecurityGroupNotFound",
     f"Security group {MISSING} does not exist"),
    ({"security_group_id": "nope"}, 404, "SecurityGroupNotFound",
     "Security group nope does not exist"),
    # address groups are not implemented: none exists
    ({"remote_address_group_id": MISSING}, 404, "AddressGroupNotFound",
     f"Address group {MISSING} could not be found."),
    ({"remote_address_group_id": MISSING, "remote_group_id": "SELF"}, 400,
     "SecurityGroupMultipleRemoteEntites", None),
    ({"name": "x"}, 400, "HTTPBadRequest", "Unrecognized attribute"),
])
def test_rule_errors(member: Client, attrs: dict, status: int, type_: str,
                     message: str | None) -> None:
    web = make_group(member)
    if attrs.get("remote_group_id") == "SELF":
        attrs = {**attrs, "remote_group_id": web["id"]}
    assert_error(post_rule(member, web["id"], **attrs), status, type_, message)
    assert len(member.get(f"/security-groups/{web['id']}").json()["security_group"][
        "security_group_rules"]) == 2  # nothing was written


def test_required_rule_attributes(member: Client) -> None:
    web = make_group(member)
    r = member.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": web["id"]}})
    assert_error(r, 400, "HTTPBadRequest", "Required attribute 'direction' not specified")
    r = member.post("/security-group-rules", {"security_group_rule": {"direction": "egress"}})
    assert_error(r, 400, "HTTPBadRequest",
                 "Required attribute 'security_group_id' not specified")


def test_ports_icmp_and_prefixes_are_normalised(member: Client) -> None:
    web = make_group(member)
    ping = make_rule(member, web["id"], protocol="icmp", port_range_min=8, port_range_max=0)
    assert (ping["port_range_min"], ping["port_range_max"]) == (8, 0)
    assert_error(post_rule(member, web["id"], protocol=1, port_range_min="8",
                           port_range_max="0"), 409, "SecurityGroupRuleExists")
    # the whole port range is no range (as upstream)
    every = make_rule(member, web["id"], protocol="tcp", port_range_min=1,
                      port_range_max=65535)
    assert every["port_range_min"] is None and every["port_range_max"] is None
    assert_error(post_rule(member, web["id"], protocol="tcp"), 409, "SecurityGroupRuleExists",
                 every["id"])
    host_bits = make_rule(member, web["id"], remote_ip_prefix="10.1.2.3/8")
    assert host_bits["remote_ip_prefix"] == "10.1.2.3/8"  # kept, as upstream
    assert host_bits["normalized_cidr"] == "10.0.0.0/8"
    # the same network however spelled is the same rule
    assert_error(post_rule(member, web["id"], remote_ip_prefix="10.0.0.0/8"), 409,
                 "SecurityGroupRuleExists", host_bits["id"])
    found = member.get(f"/security-group-rules?security_group_id={web['id']}"
                       f"&normalized_cidr=10.0.0.0/8").json()["security_group_rules"]
    assert [r["id"] for r in found] == [host_bits["id"]]
    single = make_rule(member, web["id"], remote_ip_prefix="10.1.2.4")
    assert single["remote_ip_prefix"] == single["normalized_cidr"] == "10.1.2.4/32"
    v6 = make_rule(member, web["id"], ethertype="IPv6", remote_ip_prefix="2001:DB8::1/64",
                   protocol="udp", port_range_min=53, port_range_max=53)
    assert v6["remote_ip_prefix"] == "2001:db8::1/64"
    assert v6["normalized_cidr"] == "2001:db8::/64"
    # anywhere is no prefix
    udp = make_rule(member, web["id"], protocol="udp", port_range_min=5, port_range_max=5)
    assert_error(post_rule(member, web["id"], protocol="udp", port_range_min=5,
                           port_range_max=5, remote_ip_prefix="0.0.0.0/0"), 409,
                 "SecurityGroupRuleExists", udp["id"])
    assert post_rule(member, web["id"], protocol="udp", port_range_min=5, port_range_max=5,
                     direction="egress").status_code == 201


def test_rule_list_filters_sorting_and_bulk(member: Client) -> None:
    web = make_group(member)
    r = member.post("/security-group-rules", {"security_group_rules": [
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "tcp",
         "port_range_min": 22, "port_range_max": 22, "description": "ssh"},
        {"security_group_id": web["id"], "direction": "ingress", "protocol": "17",
         "port_range_min": 53, "port_range_max": 53},
    ]})
    assert r.status_code == 201, r.text
    ssh, dns = r.json()["security_group_rules"]
    assert (ssh["protocol"], dns["protocol"]) == ("tcp", "17")
    # a bulk request with a duplicate writes nothing
    r = member.post("/security-group-rules", {"security_group_rules": [
        {"security_group_id": web["id"], "direction": "egress", "protocol": "tcp"},
        {"security_group_id": web["id"], "direction": "egress", "protocol": "6"},
    ]})
    assert_error(r, 409, "SecurityGroupRuleExists")

    def ids(query: str) -> list[str]:
        r = member.get(f"/security-group-rules?security_group_id={web['id']}&{query}")
        assert r.status_code == 200, r.text
        return [x["id"] for x in r.json()["security_group_rules"]]

    # filters find a protocol however it was spelled
    assert ids("protocol=6") == [ssh["id"]]
    assert set(ids("protocol=TCP&protocol=udp")) == {ssh["id"], dns["id"]}
    assert len(ids("protocol=any")) == 2  # the group's egress rules
    assert ids("protocol=bogus") == []
    assert set(ids("direction=ingress")) == {ssh["id"], dns["id"]}
    assert ids("port_range_min=53") == [dns["id"]]
    assert ids("description=ssh") == [ssh["id"]]
    assert len(ids("direction=egress&belongs_to_default_sg=false")) == 2
    assert ids("belongs_to_default_sg=true") == []
    assert ids("sort_key=port_range_min&sort_dir=desc&protocol=tcp&protocol=udp") == [
        dns["id"], ssh["id"]]
    page = member.get(f"/security-group-rules?security_group_id={web['id']}&limit=2")
    assert len(page.json()["security_group_rules"]) == 2
    assert page.json()["security_group_rules_links"][0]["href"].startswith(
        f"{member.base}/v2.0/security-group-rules?")


def test_rule_description_tags_and_revisions(member: Client) -> None:
    web = make_group(member)
    rule = make_rule(member, web["id"], protocol="tcp", port_range_min=443,
                     port_range_max=443, tags=["https"])
    assert rule["tags"] == ["https"] and rule["revision_number"] == 0
    after_add = member.get(f"/security-groups/{web['id']}").json()["security_group"]
    assert after_add["revision_number"] == web["revision_number"] + 1  # as upstream
    r = member.put(f"/security-group-rules/{rule['id']}",
                   {"security_group_rule": {"description": "TLS"}})
    assert r.status_code == 200 and r.json()["security_group_rule"]["description"] == "TLS"
    assert r.json()["security_group_rule"]["revision_number"] == 1
    assert_error(member.put(f"/security-group-rules/{rule['id']}",
                            {"security_group_rule": {"protocol": "udp"}}), 400,
                 "HTTPBadRequest", "Cannot update read-only attribute protocol")
    assert member.put(f"/security-group-rules/{rule['id']}/tags/web").status_code == 201
    assert member.get(f"/security-group-rules?tags=web&security_group_id={web['id']}").json()[
        "security_group_rules"][0]["id"] == rule["id"]
    assert member.delete(f"/security-group-rules/{rule['id']}").status_code == 204
    assert_error(member.get(f"/security-group-rules/{rule['id']}"), 404,
                 "SecurityGroupRuleNotFound", f"Security group rule {rule['id']} does not exist")
    after_delete = member.get(f"/security-groups/{web['id']}").json()["security_group"]
    assert after_delete["revision_number"] == after_add["revision_number"] + 1


@pytest.mark.parametrize("collection", ["security-groups", "security-group-rules"])
def test_if_match_on_groups_and_rules(member: Client, collection: str) -> None:
    # test_tags_revisions covers If-Match on networks/subnets/ports only; groups and
    # rules check the revision in their own update paths, so they need their own test
    web = make_group(member)
    item = web if collection == "security-groups" else make_rule(
        member, web["id"], protocol="tcp", port_range_min=22, port_range_max=22)
    kind = collection[:-1].replace("-", "_")
    url = f"/{collection}/{item['id']}"
    rev = member.get(url).json()[kind]["revision_number"]
    assert_error(member.put(url, {kind: {"description": "stale"}},
                            headers={"If-Match": "revision_number=999"}),
                 412, "RevisionNumberConstraintFailed",
                 f"Constrained to 999, but current revision is {rev}")
    assert member.get(url).json()[kind]["description"] == item["description"]  # not changed
    r = member.put(url, {kind: {"description": "fresh"}},
                   headers={"If-Match": f"revision_number={rev}"})
    assert r.status_code == 200, r.text
    assert r.json()[kind]["revision_number"] == rev + 1


def test_remote_group_rules_are_one_row_each(server: Server, member: Client) -> None:
    net, _ = member.network_with_subnet("10.63.0.0/24")
    web, db = make_group(member, "web"), make_group(member, "db")
    for _ in range(4):  # members of the remote group
        member.create("ports", network_id=net["id"], security_groups=[web["id"]])
    before = rule_rows(server)
    rule = make_rule(member, db["id"], protocol="tcp", port_range_min=5432,
                     port_range_max=5432, remote_group_id=web["id"])
    assert rule["remote_group_id"] == web["id"]
    # one row, whatever the size of the remote group
    assert rule_rows(server) == before + 1
    assert rule_rows(server, remote_group_id=web["id"]) == 1
    member.create("ports", network_id=net["id"], security_groups=[web["id"]])
    assert rule_rows(server) == before + 1
    # a group named as a remote group goes with its rules elsewhere
    for port in member.get(f"/ports?security_groups={web['id']}").json()["ports"]:
        assert member.delete(f"/ports/{port['id']}").status_code == 204
    assert member.delete(f"/security-groups/{web['id']}").status_code == 204
    assert member.get(f"/security-group-rules/{rule['id']}").status_code == 404
    assert rule_rows(server, remote_group_id=web["id"]) == 0
    left = member.get(f"/security-groups/{db['id']}").json()["security_group"]
    assert rule["id"] not in {r["id"] for r in left["security_group_rules"]}


# -- groups on ports --------------------------------------------------------------------

def test_security_groups_on_ports(member: Client) -> None:
    net, _ = member.network_with_subnet("10.64.0.0/24")
    (default,) = groups_of(member)
    web, db = make_group(member, "web"), make_group(member, "db")
    port = member.create("ports", network_id=net["id"], security_groups=[db["id"], web["id"]])
    assert sorted(port["security_groups"]) == sorted([db["id"], web["id"]])
    bare = member.create("ports", network_id=net["id"], security_groups=[])
    assert bare["security_groups"] == []
    assert member.create("ports", network_id=net["id"],
                         security_groups=None)["security_groups"] == []
    for groups, status, type_ in (([MISSING], 404, "SecurityGroupNotFound"),
                                  (["x"], 400, "HTTPBadRequest"),
                                  ([web["id"], web["id"]], 400, "HTTPBadRequest")):
        r = member.post("/ports", {"port": {"network_id": net["id"], "security_groups": groups}})
        assert_error(r, status, type_)
    r = member.put(f"/ports/{port['id']}", {"port": {"security_groups": [default["id"]]}})
    assert r.status_code == 200 and r.json()["port"]["security_groups"] == [default["id"]]
    assert r.json()["port"]["revision_number"] == port["revision_number"] + 1
    same = member.put(f"/ports/{port['id']}", {"port": {"security_groups": [default["id"]]}})
    assert same.json()["port"]["revision_number"] == r.json()["port"]["revision_number"]
    assert_error(member.put(f"/ports/{port['id']}", {"port": {"security_groups": [MISSING]}}),
                 404, "SecurityGroupNotFound")
    r = member.put(f"/ports/{port['id']}", {"port": {"security_groups": None}})
    assert r.json()["port"]["security_groups"] == []
    member.put(f"/ports/{bare['id']}", {"port": {"security_groups": [web["id"]]}})
    listed = member.get(f"/ports?security_groups={web['id']}").json()["ports"]
    assert [p["id"] for p in listed] == [bare["id"]]
    assert len(member.get(f"/ports?security_groups={web['id']}&security_groups="
                          f"{db['id']}").json()["ports"]) == 1
    # stateful and stateless groups never meet on a port (as upstream)
    loose = make_group(member, "loose", stateful=False)
    r = member.put(f"/ports/{bare['id']}", {"port": {"security_groups": [web["id"],
                                                                         loose["id"]]}})
    assert_error(r, 409, "SecurityGroupConflict", "Cannot apply both stateful and stateless")


def test_quotas_of_groups_and_rules(admin: Client, member: Client) -> None:
    project = project_of(member)
    assert admin.put(f"/quotas/{project}", {"quota": {
        "security_group": 2, "security_group_rule": 7}}).status_code == 200
    web = make_group(member)  # the default (4 rules) and this one (2): 2 groups, 6 rules
    assert_error(member.post("/security-groups", {"security_group": {"name": "more"}}), 409,
                 "OverQuota", "['security_group', 'security_group_rule']")
    make_rule(member, web["id"], protocol="tcp")
    assert_error(post_rule(member, web["id"], protocol="udp"), 409, "OverQuota",
                 "['security_group_rule']")
    details = member.get(f"/quotas/{project}/details").json()["quota"]
    assert details["security_group"] == {"limit": 2, "used": 2, "reserved": 0}
    assert details["security_group_rule"] == {"limit": 7, "used": 7, "reserved": 0}


def test_extensions_are_advertised(admin: Client) -> None:
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert {"security-group", "security-groups-default-rules", "stateful-security-group",
            "security-groups-normalized-cidr", "security-groups-shared-filtering",
            "security-groups-rules-belongs-to-default-sg", "port-security-groups-filtering",
            "rbac-policies", "rbac-security-groups", "port-security",
            "port-security-split"} <= aliases
    # address groups are not implemented, so not advertised
    assert not {"address-group", "security-groups-remote-address-group"} & aliases
    root = {r["collection"]: r for r in admin.get("/").json()["resources"]}
    assert root["security_groups"]["links"][0]["href"].endswith("/v2.0/security-groups")


# -- the real openstack CLI -----------------------------------------------------------

@pytest.fixture(scope="module")
def cli_server(database_factory: Callable[[str], str],
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("sg-cli"), database_factory("sqlite"))
    yield srv
    srv.stop()


@pytest.mark.cli
def test_openstack_cli(cli_server: Server, tmp_path_factory: pytest.TempPathFactory) -> None:
    from tests.api.test_openstack_cli import OPENSTACK, Cli, write_clouds_yaml

    if not OPENSTACK.exists():
        pytest.skip("the openstack CLI is not installed beside the interpreter")
    cli = Cli(write_clouds_yaml(tmp_path_factory.mktemp("sg-cli") / "clouds.yaml",
                                cli_server.url))
    api = Client(cli_server.url)
    web = cli("security group", "create", "web", "--description", "web tier", "-f", "json")
    assert web["name"] == "web" and web["stateful"] is True
    db = cli("security group", "create", "db", "--stateless", "-f", "json")
    assert db["stateful"] is False
    ssh = cli("security group rule", "create", "--protocol", "tcp", "--dst-port", "22",
              "--remote-group", "web", "db", "-f", "json")
    assert ssh["protocol"] == "tcp" and ssh["remote_group_id"] == web["id"]
    assert (ssh["port_range_min"], ssh["port_range_max"]) == (22, 22)
    gre = cli("security group rule", "create", "--protocol", "47", "web", "-f", "json")
    assert gre["protocol"] == "47"
    vrrp = cli("security group rule", "create", "--protocol", "vrrp", "--egress",
               "--ethertype", "IPv6", "web", "-f", "json")
    assert (vrrp["protocol"], vrrp["direction"], vrrp["ether_type"]) == ("vrrp", "egress",
                                                                         "IPv6")
    rules = api.get(f"/security-group-rules?security_group_id={web['id']}").json()[
        "security_group_rules"]
    assert {gre["id"], vrrp["id"]} <= {r["id"] for r in rules}

    net = api.create("networks", name="cli-sg")
    api.create("subnets", network_id=net["id"], cidr="10.70.0.0/24", ip_version=4)
    # the port-security split through the CLI's generic --extra-property (a router VM)
    port = cli("port", "create", "--network", net["id"], "--security-group", "web", "p1",
               "--extra-property", "type=bool,name=anti_spoofing_enabled,value=False",
               "-f", "json")
    assert port["security_group_ids"] == [web["id"]]
    shown = api.get(f"/ports/{port['id']}").json()["port"]
    assert shown["anti_spoofing_enabled"] is False and shown["port_security_enabled"] is True
    assert "in use" in cli.fails("security group", "delete", "web")

    policy = cli("network", "rbac", "create", "--type", "network", "--action",
                 "access_as_shared", "--target-all-projects", net["id"], "-f", "json")
    assert policy["object_id"] == net["id"] and policy["target_project_id"] == "*"
    assert api.get(f"/networks/{net['id']}").json()["network"]["shared"] is True
    cli("network", "rbac", "delete", policy["id"])
    assert api.get(f"/networks/{net['id']}").json()["network"]["shared"] is False
    assert api.delete(f"/ports/{port['id']}").status_code == 204
    cli("security group", "delete", "web")
    assert api.get(f"/security-groups/{web['id']}").status_code == 404
