"""Admin-defined default rules (``/v2.0/default-security-group-rules``): the templates
new security groups start with."""

from __future__ import annotations

import uuid

import pytest
import requests

from tests.conftest import Client, Server, assert_error

MISSING = "5a5a5a5a-0000-4000-8000-000000000000"
KEYS = {"id", "direction", "ethertype", "protocol", "port_range_min", "port_range_max",
        "remote_ip_prefix", "remote_group_id", "remote_address_group_id", "description",
        "used_in_default_sg", "used_in_non_default_sg"}
INGRESS = "Legacy default SG rule for ingress traffic"
EGRESS = "Legacy default SG rule for egress traffic"
#: what upstream seeds (the peer's GET /v2.0/default-security-group-rules)
LEGACY = sorted([
    ("ingress", "IPv4", "PARENT", INGRESS, True, False),
    ("ingress", "IPv6", "PARENT", INGRESS, True, False),
    ("egress", "IPv4", None, EGRESS, True, True),
    ("egress", "IPv6", None, EGRESS, True, True),
])


def summary(rule: dict) -> tuple:
    return (rule["direction"], rule["ethertype"], rule["remote_group_id"],
            rule["description"], rule["used_in_default_sg"], rule["used_in_non_default_sg"])


def templates(client: Client, query: str = "") -> list[dict]:
    r = client.get(f"/default-security-group-rules{query}")
    assert r.status_code == 200, r.text
    return r.json()["default_security_group_rules"]


def post_template(client: Client, **attrs: object) -> requests.Response:
    return client.post("/default-security-group-rules",
                       {"default_security_group_rule": {"direction": "ingress", **attrs}})


def new_project(server: Server) -> Client:
    return Client(server.url, project=uuid.uuid4().hex)


def group_rules(group: dict) -> set[tuple]:
    """(direction, ethertype, protocol, port, whether the remote group is the group)"""
    return {(r["direction"], r["ethertype"], r["protocol"], r["port_range_min"],
             r["remote_group_id"] == group["id"]) for r in group["security_group_rules"]}


@pytest.fixture
def member(server: Server) -> Client:
    return new_project(server)


def test_seeded_with_upstreams_legacy_rules(admin: Client, member: Client) -> None:
    seeded = templates(admin)
    assert all(set(t) == KEYS for t in seeded)
    assert sorted(summary(t) for t in seeded) == LEGACY
    # every project may read them (upstream: any reader), only admins write
    assert templates(member) == seeded
    assert member.get(f"/default-security-group-rules/{seeded[0]['id']}").json()[
        "default_security_group_rule"] == seeded[0]
    assert {summary(t) for t in templates(admin, "?used_in_non_default_sg=false")} == {
        x for x in LEGACY if not x[5]}
    assert len(templates(admin, "?remote_group_id=PARENT")) == 2
    assert len(templates(admin, "?direction=egress&ethertype=IPv6")) == 1


def test_only_admins_write(admin: Client, member: Client) -> None:
    assert_error(post_template(member, protocol="tcp"), 403, "PolicyNotAuthorized",
                 "rule:create_default_security_group_rule is disallowed by policy")
    some = templates(admin)[0]
    assert_error(member.delete(f"/default-security-group-rules/{some['id']}"), 403,
                 "PolicyNotAuthorized")
    assert_error(admin.put(f"/default-security-group-rules/{some['id']}",
                           {"default_security_group_rule": {"description": "x"}}), 400,
                 "HTTPBadRequest", "Cannot update read-only attribute description")
    assert_error(admin.get(f"/default-security-group-rules/{MISSING}"), 404,
                 "DefaultSecurityGroupRuleNotFound",
                 f"Default Security Group rule {MISSING} does not exist")
    assert_error(admin.delete(f"/default-security-group-rules/{MISSING}"), 404,
                 "DefaultSecurityGroupRuleNotFound")
    # no tags, no project: they belong to the cloud
    assert admin.get(f"/default-security-group-rules/{some['id']}/tags").status_code == 404
    assert_error(post_template(admin, protocol="tcp", project_id="p"), 400, "HTTPBadRequest",
                 "Unrecognized attribute")


@pytest.mark.parametrize("attrs,type_,message", [
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 1},
     "SecurityGroupInvalidPortValue", "Invalid value for port 0"),
    ({"protocol": "gre", "port_range_min": 1, "port_range_max": 1},
     "SecurityGroupInvalidProtocolForPort", None),
    ({"protocol": "257"}, "SecurityGroupRuleInvalidProtocol", None),
    ({"ethertype": "IPv6", "remote_ip_prefix": "10.0.0.0/8"},
     "SecurityGroupRuleParameterConflict", None),
    ({"remote_group_id": MISSING}, "InvalidInput", "must be 'PARENT'"),
    ({"remote_group_id": "PARENT", "remote_ip_prefix": "10.0.0.0/8"},
     "SecurityGroupMultipleRemoteEntites", None),
    ({"used_in_default_sg": "maybe"}, "InvalidInput", "cannot be converted to boolean"),
])
def test_template_errors(admin: Client, attrs: dict, type_: str, message: str | None) -> None:
    before = templates(admin)
    assert_error(post_template(admin, **attrs), 400, type_, message)
    assert templates(admin) == before


def test_templates_shape_new_groups(server: Server, admin: Client) -> None:
    """Tests here change the cloud's templates: each puts them back as it found them."""
    ssh = post_template(admin, protocol="6", port_range_min=22, port_range_max=22,
                        description="ssh everywhere", used_in_default_sg=True,
                        used_in_non_default_sg=True)
    assert ssh.status_code == 201, ssh.text
    ssh = ssh.json()["default_security_group_rule"]
    assert set(ssh) == KEYS and ssh["protocol"] == "6"  # spelled as rules are
    # upstream's API reference defaults: not in default groups, in the others
    web_only = post_template(admin, protocol="tcp", port_range_min=80, port_range_max=80,
                             remote_ip_prefix="192.0.2.7")
    assert web_only.status_code == 201, web_only.text
    web_only = web_only.json()["default_security_group_rule"]
    assert (web_only["used_in_default_sg"], web_only["used_in_non_default_sg"]) == (False,
                                                                                   True)
    assert web_only["remote_ip_prefix"] == "192.0.2.7/32"
    parent_udp = post_template(admin, protocol="udp", remote_group_id="PARENT",
                               used_in_default_sg=True, used_in_non_default_sg=False)
    assert parent_udp.status_code == 201, parent_udp.text
    parent_udp = parent_udp.json()["default_security_group_rule"]
    # the same match is the same template (in the same kind of group)
    assert_error(post_template(admin, protocol="tcp", port_range_min=22, port_range_max=22,
                               used_in_default_sg=False, used_in_non_default_sg=True), 409,
                 "DefaultSecurityGroupRuleExists",
                 f"Default Security group rule already exists. Rule id is {ssh['id']}.")
    try:
        member = new_project(server)
        (default,) = member.get("/security-groups").json()["security_groups"]
        assert group_rules(default) == {
            ("egress", "IPv4", None, None, False), ("egress", "IPv6", None, None, False),
            ("ingress", "IPv4", None, None, True), ("ingress", "IPv6", None, None, True),
            ("ingress", "IPv4", "6", 22, False), ("ingress", "IPv4", "udp", None, True)}
        assert len(default["security_group_rules"]) == 6
        r = member.post("/security-groups", {"security_group": {"name": "web"}})
        web = r.json()["security_group"]
        assert group_rules(web) == {
            ("egress", "IPv4", None, None, False), ("egress", "IPv6", None, None, False),
            ("ingress", "IPv4", "6", 22, False), ("ingress", "IPv4", "tcp", 80, False)}
        # groups made before a template changes keep their rules
        assert admin.delete(f"/default-security-group-rules/{ssh['id']}").status_code == 204
        assert len(member.get(f"/security-groups/{web['id']}").json()["security_group"][
            "security_group_rules"]) == 4
    finally:
        for tpl in (ssh, web_only, parent_udp):
            admin.delete(f"/default-security-group-rules/{tpl['id']}")
    assert sorted(summary(t) for t in templates(admin)) == LEGACY


def test_operator_drops_the_remote_group_rules(server: Server, admin: Client) -> None:
    parents = templates(admin, "?remote_group_id=PARENT")
    assert len(parents) == 2
    for tpl in parents:
        assert admin.delete(f"/default-security-group-rules/{tpl['id']}").status_code == 204
    try:
        member = new_project(server)
        (default,) = member.get("/security-groups").json()["security_groups"]
        # only egress is left: nothing is let in, not even from the group itself
        assert group_rules(default) == {("egress", "IPv4", None, None, False),
                                        ("egress", "IPv6", None, None, False)}
    finally:
        for tpl in parents:
            r = post_template(admin, ethertype=tpl["ethertype"], remote_group_id="PARENT",
                              description=tpl["description"], used_in_default_sg=True,
                              used_in_non_default_sg=False)
            assert r.status_code == 201, r.text
    assert sorted(summary(t) for t in templates(admin)) == LEGACY
