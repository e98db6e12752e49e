"""Upstream Neutron's security advisories, replayed against a real Neutrino server.

Each test is the attack of one OpenStack Security Advisory (or CVE) that concerns
the Networking API, its policy and isolation, or resource exhaustion through it;
it passes because the attack fails.  Tests run on SQLite, PostgreSQL and MariaDB
(the ``server`` fixture) unless the backend cannot matter.  Advisories about the
data plane (L2/L3 agents, firewall drivers, dnsmasq files) are replayed by the data
plane's tests, not here.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
import requests

from tests.backends.serving import serve
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


# -- OSSA-2014-031 / CVE-2014-6414: admin-only network attributes reset to their defaults
#    by a non-admin's update

def test_cve_2014_6414_members_cannot_reset_admin_only_attributes(
        admin: Client, project_client: Callable[..., Client]) -> None:
    member = project_client()
    project = member.session.headers["X-Project-Id"]
    net = admin.create("networks", name="made-for-member", project_id=project, shared=True,
                       **{"provider:network_type": "vlan",
                          "provider:physical_network": "physnet1",
                          "provider:segmentation_id": 1234})
    # each to its default value: the value does not matter, the attribute does
    for attrs in ({"shared": False}, {"router:external": False}, {"is_default": False},
                  {"provider:network_type": "vxlan"}, {"provider:segmentation_id": None},
                  {"provider:physical_network": None}):
        r = member.put(f"/networks/{net['id']}", {"network": attrs})
        assert_error(r, 403, "PolicyNotAuthorized")
    after = admin.get(f"/networks/{net['id']}").json()["network"]
    assert after["shared"] is True and after["provider:segmentation_id"] == 1234
    assert after["revision_number"] == net["revision_number"]
    # the same for a port's binding and a router's admin-only attributes
    port = admin.create("ports", network_id=net["id"], project_id=project,
                        **{"binding:host_id": "compute-1"})
    for attrs in ({"binding:host_id": ""}, {"binding:profile": {}}):
        assert_error(member.put(f"/ports/{port['id']}", {"port": attrs}), 403,
                     "PolicyNotAuthorized")
    router = admin.create("routers", name="r", project_id=project, distributed=True)
    for attrs in ({"distributed": False}, {"ha": False}):
        assert_error(member.put(f"/routers/{router['id']}", {"router": attrs}), 403,
                     "PolicyNotAuthorized")
    assert admin.get(f"/routers/{router['id']}").json()["router"]["distributed"] is True


# -- OSSA-2014-039 / CVE-2014-7821: a crafted dns_nameservers crashed the server ------
#    (the errata let hostnames through again; upstream has since taken addresses only)

@pytest.mark.parametrize("server_value", ["8.8.8.8 --dhcp-script=/bin/sh", "8.8.8.8\n",
                                          "8.8.8.8,9.9.9.9", "1.1.1.1/32", "dns.example",
                                          " 8.8.8.8", "8.8.8"])
def test_cve_2014_7821_dns_nameservers_must_be_addresses(project_client,
                                                         server_value: str) -> None:
    member = project_client()
    net = member.create("networks", name="n")
    r = member.post("/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                            "cidr": "10.70.0.0/24",
                                            "dns_nameservers": [server_value]}})
    assert_error(r, 400, None, "dns_nameservers")
    sub = member.create("subnets", network_id=net["id"], ip_version=4, cidr="10.70.0.0/24")
    r = member.put(f"/subnets/{sub['id']}", {"subnet": {"dns_nameservers": [server_value]}})
    assert_error(r, 400, None, "dns_nameservers")
    # host routes, which reach the same daemon
    route = {"destination": "10.71.0.0/24", "nexthop": server_value}
    assert_error(member.put(f"/subnets/{sub['id']}", {"subnet": {"host_routes": [route]}}),
                 400, None, "host_routes")
    assert member.get(f"/subnets/{sub['id']}").json()["subnet"]["dns_nameservers"] == []


# -- OSSA-2015-012 / CVE-2015-3221: an address pair the ipset tool rejects crashed the
#    L2 agent (the fix refused zero-length prefixes; upstream later took /0 again, as
#    two /1 halves in ipset)

@pytest.mark.parametrize("address", ["10.0.0.0/33", "::/129", "10.0.0.1/-1", "1.2.3.4\n",
                                     " 1.2.3.4", "300.1.1.1", "1.2.3.4/24/8", "",
                                     "0.0.0.0/0 "])
def test_cve_2015_3221_invalid_address_pairs_are_refused(project_client, address: str) -> None:
    member = project_client()
    net = member.create("networks", name="n")
    r = member.post("/ports", {"port": {"network_id": net["id"],
                                        "allowed_address_pairs": [{"ip_address": address}]}})
    assert_error(r, 400, None, "allowed_address_pairs")


def test_cve_2015_3221_whole_address_space_pairs_are_stored_canonical(project_client) -> None:
    # 0.0.0.0/0 and ::/0 are legal pairs (as upstream); what the agents get is one
    # spelling of a network, never host bits or text
    member = project_client()
    net = member.create("networks", name="n")
    port = member.create("ports", network_id=net["id"], allowed_address_pairs=[
        {"ip_address": "0.0.0.0/0"}, {"ip_address": "::/0"}, {"ip_address": "10.1.2.3/8"}])
    assert sorted(p["ip_address"] for p in port["allowed_address_pairs"]) == \
        ["0.0.0.0/0", "10.0.0.0/8", "::/0"]


# -- OSSA-2015-018 / CVE-2015-5240 (a port's device_owner changed to network:* right
#    after it was made, so its firewall and anti-spoofing were never applied) and its
#    2026 regression OSSA-2026-021 (CVE pending in the advisory; CVE-2026-50266 as this
#    project recorded it): a project manager setting network:dhcp on a port of another
#    project's shared network

@pytest.mark.parametrize("roles", ["member", "manager", "member,manager"])
@pytest.mark.parametrize("device_owner", ["network:dhcp", "network:router_interface",
                                          "network:floatingip", "network:anything"])
def test_cve_2015_5240_network_device_owners_are_the_network_owners(
        admin: Client, project_client: Callable[..., Client], roles: str,
        device_owner: str) -> None:
    shared = admin.create("networks", name="shared", shared=True)
    admin.create("subnets", network_id=shared["id"], cidr="10.72.0.0/24", ip_version=4)
    tenant = project_client(roles)
    r = tenant.post("/ports", {"port": {"network_id": shared["id"],
                                        "device_owner": device_owner}})
    assert_error(r, 403, "PolicyNotAuthorized", "device_owner")
    port = tenant.create("ports", network_id=shared["id"], device_owner="compute:nova")
    r = tenant.put(f"/ports/{port['id']}", {"port": {"device_owner": device_owner}})
    assert_error(r, 403, "PolicyNotAuthorized", "device_owner")
    assert admin.get(f"/ports/{port['id']}").json()["port"]["device_owner"] == "compute:nova"
    # on its own network a project may (upstream's rule is about others' networks) --
    # but for the DHCP port, which is the cloud's own (a port passing for it could go
    # unfiltered, or be completed and released by the server)
    own = tenant.create("networks", name="own")
    if device_owner == "network:dhcp":
        r = tenant.post("/ports", {"port": {"network_id": own["id"],
                                            "device_owner": device_owner}})
        assert_error(r, 403, "PolicyNotAuthorized", "create_port:device_owner")
        mine = tenant.create("ports", network_id=own["id"], device_owner="compute:nova")
        r = tenant.put(f"/ports/{mine['id']}", {"port": {"device_owner": device_owner}})
        assert_error(r, 403, "PolicyNotAuthorized", "update_port:device_owner")
        assert admin.create("ports", network_id=own["id"], project_id=own["project_id"],
                            device_owner=device_owner)["device_owner"] == device_owner
        return
    assert tenant.create("ports", network_id=own["id"],
                         device_owner=device_owner)["device_owner"] == device_owner


# -- CVE-2018-14635: a fixed IP from a subnet of another network -----------------------

def test_cve_2018_14635_fixed_ips_come_from_the_ports_network(
        admin: Client, project_client: Callable[..., Client]) -> None:
    member, other = project_client(), project_client()
    net = member.create("networks", name="mine")
    member.create("subnets", network_id=net["id"], cidr="10.73.0.0/24", ip_version=4)
    elsewhere = member.create("networks", name="elsewhere")
    foreign = member.create("subnets", network_id=elsewhere["id"], cidr="10.74.0.0/24",
                            ip_version=4)
    theirs_net = other.create("networks", name="theirs")
    theirs = other.create("subnets", network_id=theirs_net["id"], cidr="10.75.0.0/24",
                          ip_version=4)
    for fixed in ({"subnet_id": foreign["id"]},
                  {"subnet_id": foreign["id"], "ip_address": "10.74.0.9"}):
        r = member.post("/ports", {"port": {"network_id": net["id"], "fixed_ips": [fixed]}})
        assert_error(r, 400, "InvalidInput", "invalid subnet")
    # another project's subnet does not even exist for the caller
    r = member.post("/ports", {"port": {"network_id": net["id"],
                                        "fixed_ips": [{"subnet_id": theirs["id"]}]}})
    assert_error(r, 404, "SubnetNotFound")
    # an address of another network's range, named without a subnet
    r = member.post("/ports", {"port": {"network_id": net["id"],
                                        "fixed_ips": [{"ip_address": "10.74.0.9"}]}})
    assert_error(r, 400, "InvalidIpForNetwork")
    port = member.create("ports", network_id=net["id"])
    r = member.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [{"subnet_id": foreign["id"]}]}})
    assert_error(r, 400, "InvalidInput", "invalid subnet")
    # nothing was allocated on the subnets named
    for subnet in (foreign, theirs):
        assert Client(admin.base).get(f"/ports?fixed_ips=subnet_id={subnet['id']}") \
            .json()["ports"] == []


# -- OSSA-2019-001 / CVE-2019-9735: a destination port on a protocol without ports
#    (VRRP) made iptables-restore fail, so no further group was applied on the host

@pytest.mark.parametrize("rule,error", [
    ({"protocol": "vrrp", "port_range_min": 22, "port_range_max": 22},
     "SecurityGroupInvalidProtocolForPort"),
    ({"protocol": "47", "port_range_min": 1}, "SecurityGroupInvalidProtocolForPort"),
    ({"protocol": None, "port_range_min": 80, "port_range_max": 80},
     "SecurityGroupProtocolRequiredWithPorts"),
    ({"protocol": "tcp", "port_range_min": 30, "port_range_max": 20},
     "SecurityGroupInvalidPortRange"),
    ({"protocol": "tcp", "port_range_min": 0, "port_range_max": 65536},
     "SecurityGroupInvalidPortValue"),
    ({"protocol": "icmp", "port_range_min": 256}, "SecurityGroupInvalidIcmpValue"),
    ({"protocol": "icmp", "port_range_min": 8, "port_range_max": 300},
     "SecurityGroupInvalidIcmpValue"),
])
def test_cve_2019_9735_rules_are_valid_for_their_protocol(project_client, rule: dict,
                                                         error: str) -> None:
    member = project_client()
    group = member.create("security-groups", name="g")
    r = member.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", **rule}})
    assert_error(r, 400, error)


# -- CVE-2022-3277 and CVE-2023-3637 (no OSSA; GHSA-r3jh-qhgj-gvr8 words 3637 as:
#    listing the security groups of an invalid project creates resources beyond the
#    caller's quota): a list for another project made that project's default group

@pytest.mark.parametrize("path", ["/security-groups?project_id={p}",
                                  "/security-groups?tenant_id={p}",
                                  "/security-group-rules?project_id={p}",
                                  "/security-groups?project_id={p}&project_id=other"])
def test_cve_2022_3277_lists_make_no_groups_for_other_projects(
        admin: Client, project_client: Callable[..., Client], path: str) -> None:
    member = project_client()
    stranger = f"nobody-{uuid.uuid4().hex[:8]}"
    r = member.get(path.format(p=stranger))
    assert r.status_code == 200, r.text
    assert next(v for k, v in r.json().items() if not k.endswith("_links")) == []
    # an admin's list filtered on that project would make it (as upstream's): list all
    everyone = admin.get("/security-groups?fields=project_id").json()["security_groups"]
    assert [g for g in everyone if g["project_id"] == stranger] == []
    rules = admin.get("/security-group-rules?fields=project_id").json()["security_group_rules"]
    assert [r for r in rules if r["project_id"] == stranger] == []


# -- OSSA-2026-016 / CVE-2026-49299: the tag controller checked plural policy names on
#    single-tag writes, which default policy allowed: project readers changed tags

def test_cve_2026_49299_readers_cannot_change_tags(
        project_client: Callable[..., Client]) -> None:
    member = project_client()
    project = member.session.headers["X-Project-Id"]
    reader = Client(member.base, project=project, roles="reader")
    net = member.create("networks", name="n", tags=["keep"])
    port = member.create("ports", network_id=net["id"], tags=["keep"])
    for collection, item in (("networks", net), ("ports", port)):
        base = f"/{collection}/{item['id']}/tags"
        for method, path, body in (("PUT", f"{base}/added", None),
                                   ("POST", base, {"tags": ["added"]}),
                                   ("PUT", base, {"tags": ["replaced"]}),
                                   ("DELETE", f"{base}/keep", None),
                                   ("DELETE", base, None)):
            r = reader.request(method, path, json=body)
            assert_error(r, 403, "PolicyNotAuthorized")
        assert reader.get(base).json()["tags"] == ["keep"]  # reading is theirs
        assert member.get(f"/{collection}/{item['id']}").json()[collection[:-1]][
            "revision_number"] == item["revision_number"]


# -- OSSA-2021-006 / CVE-2021-40797: memory growth from requests to routes that do not
#    exist (upstream's routes middleware kept every one)

def _nonexistent(i: int) -> tuple[str, str]:
    """A request to a route that does not exist (or a resource that does not), each
    one unique: a cache keyed by any part of a request would grow with them."""
    return [("GET", f"/v2.0/nothing-{i}"),
            ("GET", f"/nowhere/{i}/deeper?q={i}"),
            ("GET", f"/v2.0/networks/{uuid.uuid4()}/nothing/{i}"),
            ("PATCH", f"/v2.0/networks?marker={i}"),
            ("GET", f"/v2.0/ports/{uuid.uuid4()}"),
            ("DELETE", f"/v2.0/routers/{uuid.uuid4()}/tags/t{i}")][i % 6]


def test_cve_2021_40797_memory_stays_bounded_for_nonexistent_routes(
        tmp_path: Path, database_factory) -> None:
    with serve(tmp_path, database_factory("sqlite")) as served:
        process = psutil.Process(served.proc.pid)
        session = requests.Session()

        def burst(start: int, count: int) -> None:
            for i in range(start, start + count):
                method, path = _nonexistent(i)
                r = session.request(method, served.url + path, timeout=30,
                                    headers={"X-Openstack-Request-Id": f"req-{i}"})
                assert r.status_code in (404, 405), (path, r.status_code, r.text[:200])
                assert "NeutronError" in r.json()

        burst(0, 3000)  # warm up: allocators, caches of the code itself
        before = process.memory_info().rss
        burst(3000, 15000)
        grown = process.memory_info().rss - before
    # upstream grew by every request; a few MiB of allocator slack is not that
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over 15,000 requests"


# -- OSSA-2024-005 / CVE-2024-53916: tags changed on networks of other projects --------

def _tag_writes(base: str) -> list[tuple[str, str, dict | None]]:
    """Every way of changing an object's tags."""
    return [("PUT", f"{base}/added", None), ("POST", base, {"tags": ["added"]}),
            ("PUT", base, {"tags": ["replaced"]}), ("DELETE", f"{base}/keep", None),
            ("DELETE", base, None)]


def test_cve_2024_53916_tags_of_a_visible_object_are_its_owners(
        admin: Client, project_client: Callable[..., Client]) -> None:
    """Upstream applied no policy check to network tag changes: a project that could see
    a network (shared, RBAC-shared, external) added and cleared its tags.  Here only the
    owner changes them, on every taggable object another project can see."""
    owner = project_client()
    mine = owner.session.headers["X-Project-Id"]
    theirs = uuid.uuid4().hex  # an RBAC target is a project id
    other = Client(owner.base, project=theirs)
    shared = admin.create("networks", name="shared", shared=True, project_id=mine,
                          tags=["keep"])
    external = admin.create("networks", name="ext", project_id=mine, tags=["keep"],
                            **{"router:external": True})
    targeted = owner.create("networks", name="to-one", tags=["keep"])
    subnet = owner.create("subnets", network_id=shared["id"], cidr="10.76.0.0/24",
                          ip_version=4, tags=["keep"])
    group = owner.create("security-groups", name="g", tags=["keep"])
    for kind, obj in (("network", targeted), ("security_group", group)):
        r = owner.post("/rbac-policies", {"rbac_policy": {
            "object_type": kind, "object_id": obj["id"], "action": "access_as_shared",
            "target_tenant": theirs}})
        assert r.status_code == 201, r.text
    pool = admin.create("subnetpools", name="pool", prefixes=["10.77.0.0/16"],
                        default_prefixlen=24, shared=True, project_id=mine, tags=["keep"])
    for collection, obj in (("networks", shared), ("networks", external),
                            ("networks", targeted), ("subnets", subnet),
                            ("security-groups", group), ("subnetpools", pool)):
        singular = collection[:-1].replace("-", "_")
        before = owner.get(f"/{collection}/{obj['id']}").json()[singular]["revision_number"]
        base = f"/{collection}/{obj['id']}/tags"
        assert other.get(base).json()["tags"] == ["keep"], "the other project sees it"
        for method, path, body in _tag_writes(base):
            r = other.request(method, path, json=body)
            assert_error(r, 403, "PolicyNotAuthorized")
        shown = owner.get(f"/{collection}/{obj['id']}").json()[singular]
        assert shown["tags"] == ["keep"] and \
            shown["revision_number"] == before, (collection, shown)
        # the owner may
        assert owner.put(f"{base}/mine").status_code == 201


# -- OSSA-2014-014 / CVE-2014-0187: a rule with an invalid CIDR stopped the agent -------

@pytest.mark.parametrize("prefix", ["10.0.0.0/33", "10.0.0.300/24", "10.0.0.0/", "/24",
                                    "10.0.0.0/24\n", " 10.0.0.0/24", "10.0.0.0/24,1.1.1.1",
                                    "10.0.0.0/8 --dport 22", "::/129", "fe80::1%eth0/64",
                                    "10.0.0.0/-1", "10.0.0.0/08x"])
def test_cve_2014_0187_rules_with_invalid_cidrs_are_refused(project_client,
                                                            prefix: str) -> None:
    """Upstream's OVS agent failed on a rule whose remote_ip_prefix was no CIDR, and
    applied no rule after it.  Here such a rule never exists: a 400 in the envelope, and
    the group's rules are as before."""
    member = project_client()
    group = member.create("security-groups", name="g")
    rules = member.get(f"/security-group-rules?security_group_id={group['id']}").json()
    ethertype = "IPv6" if ":" in prefix else "IPv4"
    r = member.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": ethertype,
        "remote_ip_prefix": prefix}})
    assert_error(r, 400, "InvalidCIDR", "IP prefix")
    assert member.get(f"/security-group-rules?security_group_id={group['id']}").json() \
        == rules


def test_cve_2014_0187_a_prefix_of_the_other_family_is_refused(project_client) -> None:
    member = project_client()
    group = member.create("security-groups", name="g")
    for ethertype, prefix in (("IPv4", "2001:db8::/64"), ("IPv6", "10.0.0.0/8")):
        r = member.post("/security-group-rules", {"security_group_rule": {
            "security_group_id": group["id"], "direction": "ingress",
            "ethertype": ethertype, "remote_ip_prefix": prefix}})
        assert_error(r, 400)


#: IPv6 addresses with a scope (``%zone``): Python's ipaddress takes them, nft and the
#: daemons do not (nft reads the zone as a host name to resolve, and fails the batch)
SCOPED = ("fe80::1%eth0", "2001:db8:9::5%1")


@pytest.mark.parametrize("where", ["remote_ip_prefix", "fixed_ip", "address_pair",
                                   "address_pair_cidr", "subnet_cidr", "gateway_ip",
                                   "dns_nameserver", "host_route", "allocation_pool",
                                   "subnetpool_prefix", "router_route"])
def test_cve_2014_0187_scoped_ipv6_addresses_are_no_addresses(project_client,
                                                              where: str) -> None:
    """The class of CVE-2014-0187 in Neutrino: an IPv6 address with a zone passed every
    address check and broke the host's whole nft batch (test_advisories.py of the data
    plane replays that).  Every address field refuses it, as upstream's netaddr does."""
    member = project_client()
    net = member.create("networks", name="n")
    sub = member.create("subnets", network_id=net["id"], cidr="2001:db8:9::/64",
                        ip_version=6)
    scoped, cidr = SCOPED[1], "2001:db8:9::%1/64"
    new_subnet = {"network_id": net["id"], "ip_version": 6, "cidr": "2001:db8:8::/64"}
    path, body = {
        "remote_ip_prefix": ("/security-group-rules", {"security_group_rule": {
            "security_group_id": member.create("security-groups", name="g")["id"],
            "direction": "ingress", "ethertype": "IPv6", "remote_ip_prefix": cidr}}),
        "fixed_ip": ("/ports", {"port": {"network_id": net["id"], "fixed_ips": [
            {"subnet_id": sub["id"], "ip_address": scoped}]}}),
        "address_pair": ("/ports", {"port": {"network_id": net["id"],
                                             "allowed_address_pairs": [
                                                 {"ip_address": SCOPED[0]}]}}),
        "address_pair_cidr": ("/ports", {"port": {"network_id": net["id"],
                                                  "allowed_address_pairs": [
                                                      {"ip_address": cidr}]}}),
        "subnet_cidr": ("/subnets", {"subnet": {**new_subnet, "cidr": "2001:db8:8::%1/64"}}),
        "gateway_ip": ("/subnets", {"subnet": {**new_subnet,
                                               "gateway_ip": "2001:db8:8::1%1"}}),
        "dns_nameserver": ("/subnets", {"subnet": {**new_subnet,
                                                   "dns_nameservers": [SCOPED[0]]}}),
        "host_route": ("/subnets", {"subnet": {**new_subnet, "host_routes": [
            {"destination": "2001:db8:7::/64", "nexthop": "2001:db8:8::9%1"}]}}),
        "allocation_pool": ("/subnets", {"subnet": {**new_subnet, "allocation_pools": [
            {"start": "2001:db8:8::10%1", "end": "2001:db8:8::20"}]}}),
        "subnetpool_prefix": ("/subnetpools", {"subnetpool": {
            "name": "p", "prefixes": ["2001:db8:6::%1/48"], "default_prefixlen": 64}}),
    }.get(where, ("", {}))
    if where == "router_route":  # routes are set by an update, next hops on a subnet
        router = member.create("routers", name="r")
        r = member.put(f"/routers/{router['id']}/add_router_interface",
                       {"subnet_id": sub["id"]})
        assert r.status_code == 200, r.text
        r = member.put(f"/routers/{router['id']}", {"router": {"routes": [
            {"destination": "2001:db8:5::/64", "nexthop": scoped}]}})
        assert_error(r, 400)
        assert member.get(f"/routers/{router['id']}").json()["router"]["routes"] == []
        return
    before = {c: len(member.get(f"/{c}").json()[c.replace("-", "_")])
              for c in ("ports", "subnets", "security-group-rules", "subnetpools")}
    assert_error(member.post(path, body), 400)
    after = {c: len(member.get(f"/{c}").json()[c.replace("-", "_")]) for c in before}
    assert after == before, "nothing was made"


# -- OSSA-2017-001 / CVE-2017-2592: complete requests, tokens included, in error logs -----

def test_cve_2017_2592_unexpected_errors_log_no_token_or_password(
        tmp_path: Path, database_factory, caplog: pytest.LogCaptureFixture) -> None:
    """oslo.middleware's CatchErrors put the whole request (keystone tokens in its
    headers) into the error log with the traceback.  Here a real fault (tables dropped
    behind the server's back) makes unexpected errors on the Networking API and on the
    identity API: each is a 500 in its envelope, logged with its traceback, and neither
    the log nor the answer holds the token, a service token or the password."""
    from tests.api.test_identity import ADMIN_PASSWORD, Keystone
    from tests.conftest import start_server

    url = database_factory("sqlite")
    server = start_server(tmp_path, url, auth="embedded")
    try:
        from neutrino.identity.store import Identity
        server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        ks = Keystone(server)
        _, _, token = ks.member()
        assert ks.net(token, "POST", "/networks", {"network": {"name": "n"}}).status_code \
            == 201
        secret = f"secret-{uuid.uuid4().hex}"
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("DROP TABLE tags")
        caplog.set_level(logging.DEBUG)
        r = requests.get(f"{server.url}/v2.0/networks", timeout=30,
                         headers={"X-Auth-Token": token, "X-Service-Token": secret})
        assert r.status_code == 500 and "NeutronError" in r.json(), r.text
        assert token not in r.text and secret not in r.text
        with sqlite3.connect(url.removeprefix("sqlite:///")) as db:
            db.execute("DROP TABLE identity_auth_failures")
        r = ks.issue({"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"name": "Default"}, "password": ADMIN_PASSWORD}}}})
        assert r.status_code == 500 and "error" in r.json(), r.text
        assert ADMIN_PASSWORD not in r.text
    finally:
        server.stop()
    logged = caplog.text + "".join(
        logging.Formatter().formatException(rec.exc_info) for rec in caplog.records
        if rec.exc_info)
    assert "unexpected error" in logged and "Traceback" in logged, "the faults are logged"
    for word in (token, secret, ADMIN_PASSWORD):
        assert word not in logged


# -- OSSA-2026-001 / CVE-2026-22797: identity headers forged next to a real token --------

def test_cve_2026_22797_identity_headers_beside_a_token_count_for_nothing(
        tmp_path: Path, database_factory) -> None:
    """keystonemiddleware's external_oauth2_token middleware left identity headers a
    client sent (X-Roles, X-Is-Admin-Project, X-User-Id...) in place when the token did
    not set them, so a member could claim admin.  Neutrino's API reads who is asking
    from the validated token alone (the headers are noauth's, and only there)."""
    from neutrino.identity.store import Identity
    from tests.api.test_identity import ADMIN_PASSWORD, Keystone
    from tests.conftest import start_server

    server = start_server(tmp_path, database_factory("sqlite"), auth="embedded")
    try:
        server.db.write(lambda conn: Identity().bootstrap(conn, ADMIN_PASSWORD))
        ks = Keystone(server)
        victim_project, _, victim = ks.member()
        mine, _, token = ks.member()
        theirs = ks.net(victim, "POST", "/networks", {"network": {"name": "theirs"}})
        assert theirs.status_code == 201
        forged = {"X-Roles": "admin", "X-Role": "admin", "X-Is-Admin-Project": "True",
                  "X-Project-Id": victim_project, "X-Tenant-Id": victim_project,
                  "X-User-Id": "admin", "X-Identity-Status": "Confirmed",
                  "X-Service-Roles": "admin", "X-Auth-Token": token}

        def ask(method: str, path: str, body: dict | None = None) -> requests.Response:
            return requests.request(method, f"{server.url}/v2.0{path}", json=body,
                                    headers=forged, timeout=30)
        assert ask("GET", "/networks").json()["networks"] == [], "its own project's only"
        net_id = theirs.json()["network"]["id"]
        assert_error(ask("GET", f"/networks/{net_id}"), 404, "NetworkNotFound")
        assert_error(ask("POST", "/networks", {"network": {"name": "x", "shared": True}}),
                     403, "PolicyNotAuthorized")
        made = ask("POST", "/networks", {"network": {"name": "mine"}}).json()["network"]
        assert made["project_id"] == mine, "made in the token's project"
        del forged["X-Auth-Token"]
        assert ask("GET", "/networks").status_code == 401, "headers alone are nobody"
    finally:
        server.stop()


# -- OSSA-2026-032 / CVE-2026-55707: onboarding another project's subnets into a pool ----

def test_cve_2026_55707_no_onboarding_of_another_projects_subnets(
        admin: Client, project_client: Callable[..., Client]) -> None:
    """Upstream's subnet-onboard action let a member move the subnets of another
    project's shared network into the member's own subnet pool.  Neutrino has no such
    action (``subnet_onboard`` is not advertised): the call is a 404 in the envelope and
    the victim's subnet stays out of every pool."""
    victim, attacker = project_client(), project_client()
    net = admin.create("networks", name="shared", shared=True,
                       project_id=victim.session.headers["X-Project-Id"])
    sub = victim.create("subnets", network_id=net["id"], cidr="10.78.0.0/24", ip_version=4)
    pool = attacker.create("subnetpools", name="mine", prefixes=["10.78.0.0/16"],
                           default_prefixlen=24)
    r = attacker.put(f"/subnetpools/{pool['id']}/onboard_network_subnets",
                     {"network_id": net["id"]})
    assert_error(r, 404)
    aliases = {e["alias"] for e in admin.get("/extensions").json()["extensions"]}
    assert "subnet_onboard" not in aliases
    assert victim.get(f"/subnets/{sub['id']}").json()["subnet"]["subnetpool_id"] is None


# -- OSSN-0096 / CVE-2026-44393: the message bus's broker name unchecked under TLS --------

def _certificate(tmp: Path, name: str, ca: tuple[Path, Path], san: str) -> tuple[Path, Path]:
    """A server certificate for ``san`` signed by ``ca`` (openssl, as an operator would)."""
    key, csr, crt = tmp / f"{name}.key", tmp / f"{name}.csr", tmp / f"{name}.crt"
    ext = tmp / f"{name}.ext"
    ext.write_text(f"subjectAltName={san}\n")
    for cmd in (["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                 "-out", csr, "-subj", f"/CN={name}"],
                ["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1],
                 "-CAcreateserial", "-out", crt, "-days", "1", "-extfile", ext]):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return crt, key


def _handshakes(crt: Path, key: Path, ca: Path, seconds: float) -> tuple[int, int]:
    """Point a bus at a TLS listener on 127.0.0.1 holding ``crt``: (handshakes the client
    completed, handshakes it refused) in ``seconds``."""
    import socket
    import ssl
    import threading

    from neutrino.bus.amqp import AmqpBus

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    done, refused = [0], [0]
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(2)
            try:
                with context.wrap_socket(conn, server_side=True):
                    done[0] += 1  # then closed: no broker here, only its TLS
            except (ssl.SSLError, OSError):
                refused[0] += 1
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    bus = AmqpBus(f"amqps://guest:guest@127.0.0.1:{port}/?cafile={ca}", min_backoff=0.1,
                  max_backoff=0.3)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (done[0] or refused[0] > 2):
            time.sleep(0.1)
        assert not bus.connected
    finally:
        bus.close()
        stop.set()
        thread.join(5)
        listener.close()
    return done[0], refused[0]


def test_ossn_0096_the_bus_checks_the_brokers_name_under_tls(tmp_path: Path) -> None:
    """oslo.messaging checked a RabbitMQ broker's certificate chain but not that the
    certificate was for the broker's host, so any certificate of the deployment's CA
    could stand in for the broker.  Neutrino's bus (``amqps://``) refuses a certificate
    of the right CA for another name, and takes one for the host it dialled."""
    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(ca_key), "-out", str(ca), "-days", "1", "-subj", "/CN=test-ca"],
                   check=True, capture_output=True)
    other = _certificate(tmp_path, "broker-elsewhere", (ca, ca_key), "DNS:broker.invalid")
    right = _certificate(tmp_path, "broker", (ca, ca_key), "IP:127.0.0.1")
    completed, refused = _handshakes(*other, ca, 10)
    assert completed == 0 and refused > 0, "a certificate for another name is refused"
    completed, _ = _handshakes(*right, ca, 10)
    assert completed > 0, "the broker's own certificate is taken (the test can tell)"


# -- OSSN-0102: sub-resources reached through a parent of one's own -----------------------

def test_ossn_0102_a_child_is_reached_only_through_its_own_parent(
        project_client: Callable[..., Client]) -> None:
    """Upstream authorized port forwardings and conntrack helpers by the parent named in
    the URL but loaded the child by its own id, so a member reached another project's
    child through a parent of its own.  Neutrino has neither; its children reached
    through a parent are router interfaces, extra routes and tags, and security group
    rules: naming another project's child through one's own parent changes nothing."""
    victim, attacker = project_client(), project_client()
    _, sub = victim.network_with_subnet("10.79.0.0/24")
    router = victim.create("routers", name="victim")
    r = victim.put(f"/routers/{router['id']}/add_router_interface", {"subnet_id": sub["id"]})
    assert r.status_code == 200, r.text
    interface = r.json()["port_id"]
    mine = attacker.create("routers", name="mine")
    for body in ({"port_id": interface}, {"subnet_id": sub["id"]}):
        for action in ("remove_router_interface", "add_router_interface"):
            r = attacker.put(f"/routers/{mine['id']}/{action}", body)
            assert r.status_code in (400, 404, 409), (action, body, r.text)
            assert "NeutronError" in r.json()
    assert victim.get(f"/ports/{interface}").json()["port"]["device_id"] == router["id"]
    group = victim.create("security-groups", name="g")
    rule = victim.create("security-group-rules", security_group_id=group["id"],
                         direction="ingress", protocol="tcp")
    assert_error(attacker.get(f"/security-group-rules/{rule['id']}"), 404)
    assert_error(attacker.delete(f"/security-group-rules/{rule['id']}"), 404)
    r = attacker.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress"}})
    assert r.status_code == 404 and "NeutronError" in r.json(), r.text
    assert victim.get(f"/security-group-rules/{rule['id']}").status_code == 200
    aliases = {e["alias"] for e in victim.get("/extensions").json()["extensions"]}
    assert not aliases & {"floating-ip-port-forwarding", "l3-conntrack-helper"}


# -- OSSN-0095: rules naming a remote address group enforced as from anywhere -------------

def test_ossn_0095_a_rule_naming_an_address_group_is_never_from_anywhere(
        project_client) -> None:
    """Upstream's OVN driver took rules naming a remote address group before it could
    enforce them and left out their source, so they allowed every address.  Neutrino has
    no address groups: such a rule is refused (no address group exists), never stored to
    be applied without its remote."""
    member = project_client()
    group = member.create("security-groups", name="g")
    before = member.get(f"/security-group-rules?security_group_id={group['id']}").json()
    r = member.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": group["id"], "direction": "ingress", "ethertype": "IPv4",
        "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
        "remote_address_group_id": str(uuid.uuid4())}})
    assert_error(r, 404, "AddressGroupNotFound")
    assert member.get(f"/security-group-rules?security_group_id={group['id']}").json() \
        == before
