"""FWaaS v2 (``/v2.0/fwaas/``): firewall rules, policies and groups as upstream serves
them — validation and normalisation, the rule order of policies (insert_rule,
remove_rule), the default group, every refusal with upstream's error type, isolation
between projects, sharing, quotas and statuses; on SQLite, PostgreSQL and MariaDB.

Nothing here claims enforcement: the built-in driver realises no filtering (see
docs/firewall.md), so statuses are what its reports make of them.
"""

from __future__ import annotations

import uuid

import pytest
import requests
import sqlalchemy as sa

from neutrino.db import tables as t
from neutrino.services.firewall.realise import GroupStatus
from tests.conftest import Client, Server, assert_error

MISSING = "5a5a5a5a-0000-4000-8000-000000000000"
RULES, POLICIES, GROUPS = ("/fwaas/firewall_rules", "/fwaas/firewall_policies",
                           "/fwaas/firewall_groups")
RULE_KEYS = {"id", "name", "description", "project_id", "tenant_id", "created_at",
             "updated_at", "revision_number", "tags", "protocol", "ip_version",
             "source_ip_address", "destination_ip_address", "source_port",
             "destination_port", "action", "enabled", "shared", "firewall_policy_id"}
POLICY_KEYS = {"id", "name", "description", "project_id", "tenant_id", "created_at",
               "updated_at", "revision_number", "tags", "firewall_rules", "audited",
               "shared"}
GROUP_KEYS = {"id", "name", "description", "project_id", "tenant_id", "created_at",
              "updated_at", "revision_number", "tags", "ingress_firewall_policy_id",
              "egress_firewall_policy_id", "ports", "admin_state_up", "status", "shared"}


def project(server: Server, roles: str = "member") -> Client:
    return Client(server.url, project=uuid.uuid4().hex, roles=roles)


def project_of(client: Client) -> str:
    return client.session.headers["X-Project-Id"]


def post(client: Client, path: str, **attrs: object) -> requests.Response:
    name = {RULES: "firewall_rule", POLICIES: "firewall_policy", GROUPS: "firewall_group"}[path]
    return client.post(path, {name: attrs})


def make(client: Client, path: str, **attrs: object) -> dict:
    r = post(client, path, **attrs)
    assert r.status_code == 201, r.text
    return next(iter(r.json().values()))


def show(client: Client, path: str, ident: str) -> dict:
    r = client.get(f"{path}/{ident}")
    assert r.status_code == 200, r.text
    return next(iter(r.json().values()))


def update(client: Client, path: str, ident: str, **attrs: object) -> requests.Response:
    name = {RULES: "firewall_rule", POLICIES: "firewall_policy", GROUPS: "firewall_group"}[path]
    return client.put(f"{path}/{ident}", {name: attrs})


def listed(client: Client, path: str, **filters: object) -> list[dict]:
    r = client.get(path, params=filters)
    assert r.status_code == 200, r.text
    return next(iter(r.json().values()))


def insert(client: Client, policy_id: str, **body: object) -> requests.Response:
    return client.put(f"{POLICIES}/{policy_id}/insert_rule", body)


def remove(client: Client, policy_id: str, **body: object) -> requests.Response:
    return client.put(f"{POLICIES}/{policy_id}/remove_rule", body)


def router_port(client: Client, cidr: str) -> str:
    """A router interface port of the client's project."""
    _, sub = client.network_with_subnet(cidr)
    router = client.create("routers", name="fw-r")
    r = client.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    return r.json()["port_id"]


def instance_port(client: Client) -> str:
    net = client.create("networks", name="fw-vm")
    return client.create("ports", network_id=net["id"], device_owner="compute:nova")["id"]


# -- rules -----------------------------------------------------------------------------

@pytest.mark.parametrize(("attrs", "stored"), [
    ({}, {"protocol": None, "ip_version": 4, "action": "deny", "enabled": True,
          "shared": False, "source_port": None, "destination_port": None,
          "source_ip_address": None, "destination_ip_address": None}),
    ({"protocol": "TCP", "destination_port": 22}, {"protocol": "tcp", "destination_port": "22"}),
    ({"protocol": "udp", "source_port": "8000:8080"}, {"source_port": "8000:8080"}),
    ({"protocol": "tcp", "destination_port": "80:80"}, {"destination_port": "80"}),
    ({"protocol": "tcp", "destination_port": "0"}, {"destination_port": None}),
    ({"protocol": "tcp", "destination_port": " 22"}, {"destination_port": "22"}),
    ({"protocol": "tcp", "source_port": "0:100"}, {"source_port": "0:100"}),
    ({"protocol": "tcp", "source_port": None}, {"source_port": None}),
    ({"protocol": "any"}, {"protocol": None}),
    ({"protocol": 6}, {"protocol": "6"}),
    ({"protocol": "icmp"}, {"protocol": "icmp"}),
    ({"action": "ALLOW"}, {"action": "allow"}),
    ({"action": "reject"}, {"action": "reject"}),
    ({"ip_version": 6, "source_ip_address": "2001:DB8::1",
      "destination_ip_address": "2001:db8::/32"},
     {"source_ip_address": "2001:db8::1", "destination_ip_address": "2001:db8::/32"}),
    ({"source_ip_address": "10.1.2.3/8"}, {"source_ip_address": "10.1.2.3/8"}),
])
def test_rule_is_stored_in_one_spelling(server: Server, attrs: dict, stored: dict) -> None:
    client = project(server)
    rule = make(client, RULES, name="r", **attrs)
    assert set(rule) == RULE_KEYS
    assert {k: rule[k] for k in stored} == stored
    assert rule["firewall_policy_id"] == [] and rule["project_id"] == project_of(client)
    assert show(client, RULES, rule["id"]) == rule


@pytest.mark.parametrize(("attrs", "status", "type_"), [
    ({"protocol": "icmp", "destination_port": "22"}, 400, "FirewallRuleInvalidICMPParameter"),
    ({"destination_port": "22"}, 400, "FirewallRuleWithPortWithoutProtocolInvalid"),
    ({"protocol": "tcp", "destination_port": "22:10"}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": "70000"}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": "a:b"}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": "-1"}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": True}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": 22.0}, 400, "HTTPBadRequest"),
    ({"protocol": "tcp", "destination_port": ""}, 400, "HTTPBadRequest"),
    ({"source_ip_address": ""}, 400, "HTTPBadRequest"),
    ({"name": None}, 400, "HTTPBadRequest"),
    ({"protocol": "47", "destination_port": "22"}, 400, "FirewallRuleInvalidPortValue"),
    ({"protocol": "bogus"}, 400, "FirewallRuleInvalidProtocol"),
    ({"protocol": "300"}, 400, "FirewallRuleInvalidProtocol"),
    ({"action": "drop"}, 400, "HTTPBadRequest"),
    ({"ip_version": 5}, 400, None),
    ({"ip_version": 6, "source_ip_address": "10.0.0.1"}, 400, "FirewallIpAddressConflict"),
    ({"destination_ip_address": "2001:db8::/32"}, 400, "FirewallIpAddressConflict"),
    ({"source_ip_address": "bogus"}, 400, "HTTPBadRequest"),
    ({"source_ip_address": "10.0.0.1%eth0"}, 400, "HTTPBadRequest"),
    ({"enabled": "maybe"}, 400, None),
    ({"firewall_policy_id": [MISSING]}, 400, "HTTPBadRequest"),
    ({"position": 1}, 400, "HTTPBadRequest"),
    ({"name": "x" * 256}, 400, "HTTPBadRequest"),
])
def test_rule_refusals(server: Server, attrs: dict, status: int, type_: str | None) -> None:
    assert_error(post(project(server), RULES, **attrs), status, type_)


def test_rule_update_checks_the_whole_rule(server: Server) -> None:
    client = project(server)
    rule = make(client, RULES, protocol="tcp", destination_port="443")
    r = update(client, RULES, rule["id"], protocol="icmp")  # the port stays: refused
    assert_error(r, 400, "FirewallRuleInvalidICMPParameter")
    r = update(client, RULES, rule["id"], ip_version=6, source_ip_address="10.0.0.1")
    assert_error(r, 400, "FirewallIpAddressConflict")
    r = update(client, RULES, rule["id"], action="reject", destination_port="8000:8100")
    assert r.status_code == 200, r.text
    changed = r.json()["firewall_rule"]
    assert changed["action"] == "reject" and changed["destination_port"] == "8000:8100"
    assert changed["revision_number"] == rule["revision_number"] + 1
    assert_error(update(client, RULES, rule["id"], firewall_policy_id=[]), 400)
    assert client.delete(f"{RULES}/{rule['id']}").status_code == 204
    assert_error(client.get(f"{RULES}/{rule['id']}"), 404, "FirewallRuleNotFound")
    assert_error(client.delete(f"{RULES}/{rule['id']}"), 404, "FirewallRuleNotFound")


def test_rule_filters_and_sorting(server: Server) -> None:
    client = project(server)
    a = make(client, RULES, name="b-allow", protocol="tcp", action="allow")
    b = make(client, RULES, name="a-deny", protocol="udp", action="deny")
    # (the default group's egress rules allow too, for any protocol)
    assert [r["id"] for r in listed(client, RULES, action="allow", protocol="tcp")] == \
        [a["id"]]
    assert [r["id"] for r in listed(client, RULES, protocol="UDP")] == [b["id"]]
    names = [r["name"] for r in listed(client, RULES, sort_key="name", sort_dir="asc")]
    assert names == sorted(names) and {"a-deny", "b-allow"} <= set(names)
    assert_error(client.get(RULES, params={"firewall_policy_id": MISSING}), 400)
    only = listed(client, RULES, fields="action", id=a["id"])
    assert only == [{"action": "allow"}]


# -- policies and their rule order -------------------------------------------------------

def test_policy_crud_and_audited(server: Server) -> None:
    client = project(server)
    r1, r2, r3 = (make(client, RULES, name=n) for n in ("r1", "r2", "r3"))
    pol = make(client, POLICIES, name="p", firewall_rules=[r1["id"], r2["id"]])
    assert set(pol) == POLICY_KEYS
    assert pol["firewall_rules"] == [r1["id"], r2["id"]] and pol["audited"] is False
    assert show(client, RULES, r1["id"])["firewall_policy_id"] == [pol["id"]]
    # audited by the owner, then any change that does not say audited resets it (as
    # upstream: a rename too)
    r = update(client, POLICIES, pol["id"], audited=True)
    assert r.json()["firewall_policy"]["audited"] is True
    r = update(client, POLICIES, pol["id"], name="renamed")
    assert r.json()["firewall_policy"]["audited"] is False
    update(client, POLICIES, pol["id"], audited=True)
    r = update(client, POLICIES, pol["id"], firewall_rules=[r3["id"], r1["id"]])
    body = r.json()["firewall_policy"]
    assert body["firewall_rules"] == [r3["id"], r1["id"]] and body["audited"] is False
    assert show(client, RULES, r2["id"])["firewall_policy_id"] == []
    # a rule change of a held rule also resets it
    update(client, POLICIES, pol["id"], audited=True)
    assert update(client, RULES, r1["id"], action="allow").status_code == 200
    assert show(client, POLICIES, pol["id"])["audited"] is False
    # an audited flag set with the change itself stays
    r = update(client, POLICIES, pol["id"], firewall_rules=[r1["id"]], audited=True)
    assert r.json()["firewall_policy"]["audited"] is True
    # a rule may sit in several policies; policies filter by the rules they hold
    other = make(client, POLICIES, name="q", firewall_rules=[r1["id"]])
    holding = listed(client, POLICIES, firewall_rules=r1["id"])
    assert sorted(p["id"] for p in holding) == sorted([pol["id"], other["id"]])
    assert listed(client, POLICIES, firewall_rules=[r2["id"], "x"]) == []
    assert sorted(show(client, RULES, r1["id"])["firewall_policy_id"]) == \
        sorted([pol["id"], other["id"]])
    assert_error(client.delete(f"{RULES}/{r1['id']}"), 409, "FirewallRuleInUse")
    assert client.delete(f"{POLICIES}/{other['id']}").status_code == 204
    assert client.delete(f"{POLICIES}/{pol['id']}").status_code == 204
    assert client.delete(f"{RULES}/{r1['id']}").status_code == 204
    assert_error(client.get(f"{POLICIES}/{pol['id']}"), 404, "FirewallPolicyNotFound")


@pytest.mark.parametrize(("attrs", "status", "type_"), [
    ({"firewall_rules": [MISSING]}, 404, "FirewallRuleNotFound"),
    ({"firewall_rules": "x"}, 400, None),
    ({"firewall_rules": ["not-a-uuid"]}, 400, None),
    ({"audited": "sometimes"}, 400, None),
    ({"shared": True}, 403, "PolicyNotAuthorized"),
    ({"bogus": 1}, 400, "HTTPBadRequest"),
    ({"name": "default ingress"}, 409, "FirewallDefaultParameterExists"),
    ({"name": "default egress"}, 409, "FirewallDefaultParameterExists"),
])
def test_policy_refusals(server: Server, attrs: dict, status: int, type_: str | None) -> None:
    assert_error(post(project(server), POLICIES, **attrs), status, type_)


def test_null_lists_are_empty(server: Server) -> None:
    client = project(server)
    assert make(client, POLICIES, firewall_rules=None)["firewall_rules"] == []
    group = make(client, GROUPS, name="g", ports=None)
    assert group["ports"] == [] and group["status"] == "INACTIVE"
    r = update(client, GROUPS, group["id"], ports=None)
    assert r.status_code == 200 and r.json()["firewall_group"]["ports"] == []


def test_policy_refuses_a_rule_twice(server: Server) -> None:
    client = project(server)
    rule = make(client, RULES)
    r = post(client, POLICIES, firewall_rules=[rule["id"], rule["id"]])
    assert_error(r, 400, contains="Duplicate")


def test_insert_and_remove_rule_keep_the_order(server: Server) -> None:
    client = project(server)
    a, b, c, d, e = (make(client, RULES, name=n)["id"] for n in "abcde")
    pol = make(client, POLICIES, firewall_rules=[a])["id"]
    r = insert(client, pol, firewall_rule_id=b)  # neither before nor after: first
    assert r.status_code == 200, r.text
    assert r.json()["firewall_rules"] == [b, a]  # the policy itself, no envelope
    assert set(r.json()) == POLICY_KEYS
    # (an empty insert_before is none: the CLI sends one with insert_after)
    assert insert(client, pol, firewall_rule_id=c, insert_after=b, insert_before="").json()[
        "firewall_rules"] == [b, c, a]
    assert insert(client, pol, firewall_rule_id=d, insert_before=a).json()[
        "firewall_rules"] == [b, c, d, a]
    # both given: insert_before decides
    assert insert(client, pol, firewall_rule_id=e, insert_before=b, insert_after=a).json()[
        "firewall_rules"] == [e, b, c, d, a]
    assert show(client, POLICIES, pol)["firewall_rules"] == [e, b, c, d, a]
    update(client, POLICIES, pol, audited=True)
    r = remove(client, pol, firewall_rule_id=c)
    assert r.json()["firewall_rules"] == [e, b, d, a] and r.json()["audited"] is False
    assert remove(client, pol, firewall_rule_id=e).json()["firewall_rules"] == [b, d, a]
    assert show(client, RULES, c)["firewall_policy_id"] == []
    # refusals, as upstream
    assert_error(insert(client, pol, firewall_rule_id=a), 409, "FirewallRuleAlreadyAssociated")
    assert_error(insert(client, pol), 400, "FirewallRuleInfoMissing")
    assert_error(client.put(f"{POLICIES}/{pol}/insert_rule", ["x"]), 400,
                 "FirewallRuleInfoMissing")
    assert_error(insert(client, pol, firewall_rule_id=MISSING), 404, "FirewallRuleNotFound")
    assert_error(insert(client, pol, firewall_rule_id=c, insert_before=e), 400,
                 "FirewallRuleNotAssociatedWithPolicy")
    assert_error(insert(client, pol, firewall_rule_id=c, insert_after=MISSING), 400,
                 "FirewallRuleNotAssociatedWithPolicy")
    assert_error(insert(client, pol, firewall_rule_id=5), 404, "FirewallRuleNotFound")
    assert_error(insert(client, pol, firewall_rule_id="not-an-id"), 404,
                 "FirewallRuleNotFound")
    assert_error(insert(client, pol, firewall_rule_id=None), 404, "FirewallRuleNotFound")
    assert_error(remove(client, pol), 400, "FirewallRuleInfoMissing")
    assert_error(remove(client, pol, firewall_rule_id=c), 400,
                 "FirewallRuleNotAssociatedWithPolicy")
    assert_error(remove(client, pol, firewall_rule_id=MISSING), 404, "FirewallRuleNotFound")
    assert_error(insert(client, MISSING, firewall_rule_id=c), 404, "FirewallPolicyNotFound")
    assert_error(client.post(f"{POLICIES}/{pol}/insert_rule", {"firewall_rule_id": c}), 405)
    assert_error(client.put(f"{POLICIES}/{pol}/bogus_action", {}), 404)
    assert show(client, POLICIES, pol)["firewall_rules"] == [b, d, a]  # nothing half-done


# -- groups ---------------------------------------------------------------------------

def test_group_on_ports_statuses_and_deletion(server: Server) -> None:
    client = project(server)
    rule = make(client, RULES, protocol="tcp", destination_port="80", action="allow")
    ingress = make(client, POLICIES, firewall_rules=[rule["id"]])
    egress = make(client, POLICIES)
    router_if = router_port(client, "10.50.1.0/24")
    vm = instance_port(client)
    r = post(client, GROUPS, name="g", ingress_firewall_policy_id=ingress["id"],
             egress_firewall_policy_id=egress["id"], ports=[router_if, vm])
    assert r.status_code == 201, r.text
    group = r.json()["firewall_group"]
    assert set(group) == GROUP_KEYS
    # the response is the committed state: pending until the driver reported
    assert group["status"] == "PENDING_CREATE"
    assert sorted(group["ports"]) == sorted([router_if, vm])
    assert [g["id"] for g in listed(client, GROUPS, ports=vm)] == [group["id"]]
    assert listed(client, GROUPS, ports=MISSING) == []
    shown = show(client, GROUPS, group["id"])
    assert shown["status"] == "ACTIVE"  # the noop driver accepts (enforces nothing)
    assert group["id"] in {g["id"] for g in listed(client, GROUPS, status="ACTIVE")}
    assert group["id"] not in {g["id"] for g in listed(client, GROUPS, status="INACTIVE")}
    assert {k: v for k, v in shown.items() if k != "status"} == \
        {k: v for k, v in group.items() if k != "status"}  # a status is no revision
    assert_error(client.delete(f"{POLICIES}/{ingress['id']}"), 409, "FirewallPolicyInUse")
    assert_error(client.delete(f"{GROUPS}/{group['id']}"), 409, "FirewallGroupInUse")
    # admin down: DOWN; a rule change of its policy is realised again
    r = update(client, GROUPS, group["id"], admin_state_up=False)
    assert r.json()["firewall_group"]["status"] == "PENDING_UPDATE"
    assert show(client, GROUPS, group["id"])["status"] == "DOWN"
    update(client, GROUPS, group["id"], admin_state_up=True)
    assert show(client, GROUPS, group["id"])["status"] == "ACTIVE"
    r = insert(client, ingress["id"], firewall_rule_id=make(client, RULES)["id"])
    assert r.status_code == 200 and show(client, GROUPS, group["id"])["status"] == "ACTIVE"
    # a port deleted leaves the group; the last one gone leaves it INACTIVE
    assert Client(server.url).delete(f"/ports/{vm}").status_code == 204  # Nova's to do
    assert show(client, GROUPS, group["id"])["ports"] == [router_if]
    r = update(client, GROUPS, group["id"], ports=[])
    assert r.json()["firewall_group"]["status"] == "INACTIVE"
    assert group["id"] in {g["id"] for g in listed(client, GROUPS, status="INACTIVE")}
    assert client.delete(f"{GROUPS}/{group['id']}").status_code == 204
    assert_error(client.get(f"{GROUPS}/{group['id']}"), 404, "FirewallGroupNotFound")
    # the port is free for another group now
    other = make(client, GROUPS, name="g2", ports=[router_if])
    assert show(client, GROUPS, other["id"])["status"] == "ACTIVE"
    assert client.delete(f"{POLICIES}/{ingress['id']}").status_code == 204


def test_group_refusals(server: Server) -> None:
    client, other = project(server), project(server)
    admin = Client(server.url)
    rif = router_port(client, "10.50.2.0/24")
    plain = client.create("ports", network_id=client.create("networks", name="n")["id"])
    held = make(client, GROUPS, name="holder", ports=[rif])
    theirs = instance_port(other)
    their_policy = make(other, POLICIES)
    cases = [
        ({"name": "default"}, 409, "FirewallDefaultParameterExists"),
        ({"ports": [plain["id"]]}, 409, "FirewallGroupPortInvalid"),
        ({"ports": [rif]}, 409, "FirewallGroupPortInUse"),
        ({"ports": [MISSING]}, 404, "PortNotFound"),
        ({"ports": [theirs]}, 404, "PortNotFound"),  # another project's: not there
        ({"ports": ["x"]}, 400, None),
        ({"ports": [rif, rif]}, 400, None),
        ({"ingress_firewall_policy_id": MISSING}, 404, "FirewallPolicyNotFound"),
        ({"egress_firewall_policy_id": their_policy["id"]}, 404, "FirewallPolicyNotFound"),
        ({"status": "ACTIVE"}, 400, "HTTPBadRequest"),
        ({"shared": True}, 403, "PolicyNotAuthorized"),
        ({"admin_state_up": "up"}, 400, None),
    ]
    for attrs, status, type_ in cases:
        assert_error(post(client, GROUPS, **attrs), status, type_)
    # an admin acting for the project: another project's port and unshared policy are
    # named by upstream's conflict types
    owner = project_of(client)
    assert_error(post(admin, GROUPS, project_id=owner, ports=[theirs]), 409,
                 "FirewallGroupPortInvalidProject")
    assert_error(post(admin, GROUPS, project_id=owner,
                      ingress_firewall_policy_id=their_policy["id"]), 404,
                 "FirewallPolicyConflict")
    # updates are checked the same way, and change nothing when refused
    gid = held["id"]
    assert_error(update(client, GROUPS, gid, name="default"), 409,
                 "FirewallDefaultParameterExists")
    assert_error(update(client, GROUPS, gid, ports=[rif, plain["id"]]), 409,
                 "FirewallGroupPortInvalid")
    assert_error(update(client, GROUPS, gid, ingress_firewall_policy_id=MISSING), 404,
                 "FirewallPolicyNotFound")
    assert_error(update(client, GROUPS, gid, status="DOWN"), 400)
    assert show(client, GROUPS, gid)["ports"] == [rif]
    # a router's own port stays the router's: its port API still refuses the delete
    assert client.delete(f"/ports/{rif}").status_code == 409


def test_a_port_joins_one_group_at_a_time_under_races(server: Server) -> None:
    """Two groups asking for the same port at once: one gets it, the other is refused
    (the port's association row is the database's to keep unique)."""
    from concurrent.futures import ThreadPoolExecutor
    client = project(server)
    port = instance_port(client)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: post(client, GROUPS, name=f"race{n}", ports=[port]),
                                range(4)))
    assert sorted(r.status_code for r in results) == [201, 409, 409, 409], \
        [r.text for r in results]
    assert all(r.json()["NeutronError"]["type"] in ("FirewallGroupPortInUse", "Conflict")
               for r in results if r.status_code == 409)


def test_a_deleted_port_leaves_its_group(server: Server) -> None:
    """Deleting a port is an update of its group, in the port's transaction: the group
    settles again (INACTIVE once its last port went), as stored, not only as shown."""
    client, admin = project(server), Client(server.url)
    ports = [instance_port(client), instance_port(client)]
    group = make(client, GROUPS, name="g", ports=ports)

    def stored() -> str:
        with server.db.engine.connect() as conn:
            return conn.scalar(sa.select(t.firewall_groups.c.status).where(
                t.firewall_groups.c.id == group["id"]))
    assert stored() == "ACTIVE"
    assert admin.delete(f"/ports/{ports[0]}").status_code == 204
    assert show(client, GROUPS, group["id"])["ports"] == [ports[1]]
    assert stored() == "ACTIVE"  # re-realised on the port left
    assert admin.delete(f"/ports/{ports[1]}").status_code == 204
    assert stored() == "INACTIVE"
    assert show(client, GROUPS, group["id"])["status"] == "INACTIVE"
    assert client.delete(f"{GROUPS}/{group['id']}").status_code == 204


def test_a_router_interface_removed_leaves_its_group(server: Server) -> None:
    client = project(server)
    _, sub = client.network_with_subnet("10.50.9.0/24")
    router = client.create("routers", name="r")
    port = client.put(f"/routers/{router['id']}/add_router_interface",
                      {"subnet_id": sub["id"]}).json()["port_id"]
    group = make(client, GROUPS, name="g", ports=[port])
    assert show(client, GROUPS, group["id"])["status"] == "ACTIVE"
    r = client.put(f"/routers/{router['id']}/remove_router_interface", {"port_id": port})
    assert r.status_code == 200, r.text
    shown = show(client, GROUPS, group["id"])
    assert (shown["ports"], shown["status"]) == ([], "INACTIVE")
    assert group["id"] in {g["id"] for g in listed(client, GROUPS, status="INACTIVE")}
    assert group["id"] not in {g["id"] for g in listed(client, GROUPS, status="ACTIVE")}
    assert client.delete(f"{GROUPS}/{group['id']}").status_code == 204


def test_a_pending_group_takes_no_change(server: Server) -> None:
    """While a group waits for its driver's report (here: its row set so, as a driver
    that has not answered leaves it), neither it nor its policies or their rules
    change (upstream: FirewallGroupInPendingState); a late report settles it."""
    client = project(server)
    rule = make(client, RULES, protocol="udp")
    pol = make(client, POLICIES, firewall_rules=[rule["id"]])
    group = make(client, GROUPS, name="g", ingress_firewall_policy_id=pol["id"],
                 ports=[instance_port(client)])
    with server.db.engine.begin() as conn:
        conn.execute(sa.update(t.firewall_groups).where(
            t.firewall_groups.c.id == group["id"]).values(status="PENDING_UPDATE"))
    for r in (update(client, GROUPS, group["id"], name="x"),
              update(client, POLICIES, pol["id"], name="x"),
              insert(client, pol["id"], firewall_rule_id=make(client, RULES)["id"]),
              remove(client, pol["id"], firewall_rule_id=rule["id"]),
              update(client, RULES, rule["id"], action="allow")):
        assert_error(r, 409, "FirewallGroupInPendingState")
    assert_error(client.delete(f"{GROUPS}/{group['id']}"), 409, "FirewallGroupInUse")
    assert show(client, POLICIES, pol["id"])["firewall_rules"] == [rule["id"]]
    late = GroupStatus()  # the driver's late report, as the server's reporter writes it
    late.attach(server.db)
    late.group(group["id"], "ACTIVE")
    assert show(client, GROUPS, group["id"])["status"] == "ACTIVE"
    late.group(group["id"], "ERROR")  # a report with nothing pending changes nothing
    assert show(client, GROUPS, group["id"])["status"] == "ACTIVE"
    assert update(client, GROUPS, group["id"], name="x").status_code == 200


# -- the default group ----------------------------------------------------------------

@pytest.mark.parametrize("first", [GROUPS, POLICIES, RULES])
def test_default_group_made_on_first_call(server: Server, first: str) -> None:
    client = project(server)
    listed(client, first)
    groups = listed(client, GROUPS)
    assert [g["name"] for g in groups] == ["default"]
    default = groups[0]
    assert default["status"] == "INACTIVE" and default["ports"] == []
    assert default["description"] == "Default firewall group"
    ingress = show(client, POLICIES, default["ingress_firewall_policy_id"])
    egress = show(client, POLICIES, default["egress_firewall_policy_id"])
    assert (ingress["name"], egress["name"]) == ("default ingress", "default egress")
    seen = {}
    for pol in (ingress, egress):
        for rule_id in pol["firewall_rules"]:
            rule = show(client, RULES, rule_id)
            seen[rule["name"]] = (rule["action"], rule["ip_version"], rule["protocol"],
                                  rule["source_ip_address"], rule["destination_ip_address"])
    assert seen == {"default ingress ipv4": ("deny", 4, None, None, None),
                    "default ingress ipv6": ("deny", 6, None, None, None),
                    "default egress ipv4": ("allow", 4, None, None, None),
                    "default egress ipv6": ("allow", 6, None, None, None)}
    # made once: another call finds it
    assert len(listed(client, GROUPS)) == 1 and len(listed(client, RULES)) == 4


def test_default_group_made_once_under_races(server: Server) -> None:
    """A project's first calls, all at once: one default group (the project's row in
    default_firewall_groups decides; the losers are retried and find it)."""
    from concurrent.futures import ThreadPoolExecutor
    client = project(server)
    calls = [lambda: client.get(GROUPS), lambda: client.get(RULES),
             lambda: post(client, RULES, name="mine"), lambda: client.get(POLICIES)] * 2
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda call: call(), calls))
    assert all(r.status_code in (200, 201) for r in results), [r.text for r in results]
    owner = project_of(client)
    assert [g["name"] for g in listed(client, GROUPS, project_id=owner)] == ["default"]
    rules = listed(client, RULES, project_id=owner)
    assert len(rules) == 4 + 2 and len(listed(client, POLICIES, project_id=owner)) == 2


def test_default_group_made_by_a_create_and_guarded(server: Server) -> None:
    client = project(server)
    made = make(client, RULES, name="first")
    names = {g["name"] for g in listed(client, GROUPS)}
    assert names == {"default"} and len(listed(client, RULES)) == 5
    default = listed(client, GROUPS, name="default")[0]
    # its project may change its ports only, an admin all but its name (as upstream)
    for attrs in ({"name": "mine"}, {"description": "ours"}, {"admin_state_up": False},
                  {"ingress_firewall_policy_id": None}):
        assert_error(update(client, GROUPS, default["id"], **attrs), 409,
                     "FirewallDefaultObjectUpdateRestricted")
    admin = Client(server.url)
    assert_error(update(admin, GROUPS, default["id"], name="x"), 409,
                 "FirewallDefaultObjectUpdateRestricted")
    assert update(admin, GROUPS, default["id"], description="ours").status_code == 200
    # its policies are fixed, though rules may be inserted into them
    ingress = default["ingress_firewall_policy_id"]
    assert_error(update(client, POLICIES, ingress, name="mine"), 409,
                 "FirewallDefaultObjectUpdateRestricted")
    r = update(client, GROUPS, default["id"], ports=[instance_port(client)])
    assert r.status_code == 200, r.text
    assert show(client, GROUPS, default["id"])["status"] == "ACTIVE"
    assert update(client, GROUPS, default["id"], ports=[]).status_code == 200
    assert_error(client.delete(f"{GROUPS}/{default['id']}"), 409,
                 "FirewallGroupCannotRemoveDefault")
    # an admin may (a deleted project's clean-up), and its policies go with it; the next
    # call makes a new one
    assert admin.delete(f"{GROUPS}/{default['id']}").status_code == 204
    assert_error(client.get(f"{POLICIES}/{ingress}"), 404, "FirewallPolicyNotFound")
    again = listed(client, GROUPS)
    assert [g["name"] for g in again] == ["default"] and again[0]["id"] != default["id"]
    assert made["id"] in {r["id"] for r in listed(client, RULES)}
    # an admin's list for a project makes that project's default group
    fresh = uuid.uuid4().hex
    assert [g["name"] for g in listed(admin, GROUPS, project_id=fresh)] == ["default"]


def test_default_policies_another_group_uses_stay(server: Server) -> None:
    client, admin = project(server), Client(server.url)
    default = listed(client, GROUPS, name="default", project_id=project_of(client))[0]
    ingress = default["ingress_firewall_policy_id"]
    mine = make(client, GROUPS, name="mine", ingress_firewall_policy_id=ingress)
    assert admin.delete(f"{GROUPS}/{default['id']}").status_code == 204
    assert show(client, POLICIES, ingress)["name"] == "default ingress"  # still used
    assert_error(client.get(f"{POLICIES}/{default['egress_firewall_policy_id']}"), 404)
    assert show(client, GROUPS, mine["id"])["ingress_firewall_policy_id"] == ingress


# -- isolation and sharing ----------------------------------------------------------

def test_projects_are_isolated(server: Server) -> None:
    alice, bob = project(server), project(server)
    rule = make(alice, RULES, name="alices")
    pol = make(alice, POLICIES, firewall_rules=[rule["id"]])
    group = make(alice, GROUPS, name="g", ingress_firewall_policy_id=pol["id"])
    for path, obj in ((RULES, rule), (POLICIES, pol), (GROUPS, group)):
        assert obj["id"] not in {o["id"] for o in listed(bob, path)}
        r = bob.get(f"{path}/{obj['id']}")
        assert r.status_code == 404
        assert bob.delete(f"{path}/{obj['id']}").status_code == 404
        assert bob.put(f"{path}/{obj['id']}", {path.split("/")[-1][:-1]: {}}).status_code \
            in (400, 404)
    assert_error(post(bob, POLICIES, firewall_rules=[rule["id"]]), 404, "FirewallRuleNotFound")
    assert_error(insert(bob, pol["id"], firewall_rule_id=rule["id"]), 404,
                 "FirewallPolicyNotFound")
    bobs_policy = make(bob, POLICIES)
    assert_error(insert(bob, bobs_policy["id"], firewall_rule_id=rule["id"]), 404,
                 "FirewallRuleNotFound")
    assert_error(post(bob, GROUPS, ingress_firewall_policy_id=pol["id"]), 404,
                 "FirewallPolicyNotFound")
    # a reader may look, not write
    reader = Client(server.url, project=project_of(alice), roles="reader")
    assert show(reader, RULES, rule["id"])["name"] == "alices"
    assert_error(post(reader, RULES), 403, "PolicyNotAuthorized")
    assert_error(update(reader, RULES, rule["id"], name="x"), 403, "PolicyNotAuthorized")
    # tags work on every FWaaS resource, for its owner
    assert alice.put(f"{RULES}/{rule['id']}/tags/web").status_code == 201
    assert show(alice, RULES, rule["id"])["tags"] == ["web"]
    assert bob.put(f"{RULES}/{rule['id']}/tags/web").status_code == 404


def test_shared_rules_and_policies_are_used_not_changed(server: Server) -> None:
    admin = Client(server.url)
    alice, bob = project(server), project(server)
    owner = project_of(alice)
    shared_rule = make(admin, RULES, project_id=owner, name="shared", shared=True,
                       protocol="tcp", destination_port="22", action="allow")
    private_rule = make(alice, RULES, name="private")
    # a shared policy holds shared rules only
    r = post(admin, POLICIES, project_id=owner, shared=True,
             firewall_rules=[shared_rule["id"], private_rule["id"]])
    assert_error(r, 404, "FirewallRuleSharingConflict")  # a 404 upstream too
    mixed = make(alice, POLICIES, firewall_rules=[private_rule["id"]])
    assert_error(update(admin, POLICIES, mixed["id"], shared=True), 409,
                 "FirewallPolicySharingConflict")
    shared_policy = make(admin, POLICIES, project_id=owner, shared=True,
                         firewall_rules=[shared_rule["id"]])
    # bob sees and uses them ...
    assert shared_rule["id"] in {x["id"] for x in listed(bob, RULES)}
    assert show(bob, POLICIES, shared_policy["id"])["shared"] is True
    bobs = make(bob, POLICIES, firewall_rules=[shared_rule["id"]])
    group = make(bob, GROUPS, ingress_firewall_policy_id=shared_policy["id"])
    assert group["ingress_firewall_policy_id"] == shared_policy["id"]
    # ... and does not change them
    assert_error(update(bob, RULES, shared_rule["id"], action="deny"), 403,
                 "PolicyNotAuthorized")
    assert_error(bob.delete(f"{RULES}/{shared_rule['id']}"), 403, "PolicyNotAuthorized")
    assert_error(update(bob, POLICIES, shared_policy["id"], name="mine"), 403,
                 "PolicyNotAuthorized")
    assert_error(insert(bob, shared_policy["id"], firewall_rule_id=bobs["id"]), 403,
                 "PolicyNotAuthorized")
    assert_error(bob.delete(f"{POLICIES}/{shared_policy['id']}"), 403, "PolicyNotAuthorized")
    # what others use stays: the rule in bob's policy, the policy under bob's group
    assert_error(update(admin, RULES, shared_rule["id"], shared=False), 409,
                 "FirewallRuleInUse")
    assert_error(update(admin, POLICIES, shared_policy["id"], shared=False), 409,
                 "FirewallPolicyInUse")
    assert_error(alice.delete(f"{POLICIES}/{shared_policy['id']}"), 409, "FirewallPolicyInUse")
    # the shared filter
    assert {x["id"] for x in listed(bob, RULES, shared="true")} >= {shared_rule["id"]}
    assert shared_rule["id"] not in {x["id"] for x in listed(bob, RULES, shared="false")}


def test_admin_naming_another_projects_unshared_rule(server: Server) -> None:
    admin = Client(server.url)
    alice, bob = project(server), project(server)
    bobs_rule = make(bob, RULES)
    r = post(admin, POLICIES, project_id=project_of(alice), firewall_rules=[bobs_rule["id"]])
    assert_error(r, 409, "FirewallRuleConflict")


# -- quotas ---------------------------------------------------------------------------

def test_quotas(server: Server) -> None:
    admin = Client(server.url)
    client = project(server)
    owner = project_of(client)
    defaults = admin.get(f"/quotas/{owner}/default").json()["quota"]
    assert (defaults["firewall_group"], defaults["firewall_policy"],
            defaults["firewall_rule"]) == (10, 10, 100)
    r = admin.put(f"/quotas/{owner}", {"quota": {"firewall_rule": 6, "firewall_policy": 3,
                                                 "firewall_group": 2}})
    assert r.status_code == 200, r.text
    make(client, RULES)  # with the default group's 4 rules: 5 of 6
    make(client, RULES)
    assert_error(post(client, RULES), 409, "OverQuota")
    make(client, POLICIES)  # the default group's 2 + 1
    assert_error(post(client, POLICIES), 409, "OverQuota")
    make(client, GROUPS, name="one")  # the default + 1
    assert_error(post(client, GROUPS, name="two"), 409, "OverQuota")
    details = client.get(f"/quotas/{owner}/details").json()["quota"]
    assert details["firewall_rule"] == {"limit": 6, "used": 6, "reserved": 0}
    assert details["firewall_group"]["used"] == 2
    # nothing of a refused create stays
    assert len(listed(client, RULES, project_id=owner)) == 6
    assert len(listed(client, GROUPS, project_id=owner)) == 2


# -- bad bodies --------------------------------------------------------------------------

@pytest.mark.parametrize("path", [RULES, POLICIES, GROUPS])
@pytest.mark.parametrize("body", [None, [], "x", {}, {"wrong": {}}, {"firewall_rule": []}])
def test_bad_bodies_are_400(server: Server, path: str, body: object) -> None:
    client = project(server)
    r = client.post(path, body) if body is not None else \
        client.request("POST", path, data=b"{not json")
    assert_error(r, 400)


def test_discovery(server: Server) -> None:
    admin = Client(server.url)
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert "fwaas_v2" in aliases
    assert admin.get("/extensions/fwaas_v2").status_code == 200
    paths = requests.get(f"{server.url}/openapi.json", timeout=10).json()["paths"]
    assert {"/v2.0/fwaas/firewall_rules", "/v2.0/fwaas/firewall_groups/{id}",
            "/v2.0/fwaas/firewall_policies/{id}/insert_rule",
            "/v2.0/fwaas/firewall_policies/{id}/remove_rule"} <= set(paths)
    assert_error(admin.get("/fwaas/bogus"), 404)
    assert_error(admin.get("/fwaas"), 404)
