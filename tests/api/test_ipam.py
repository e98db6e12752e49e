"""IP address management seen through the API: pools, explicit addresses, SLAAC, reuse.

Neutrino hands out the lowest free address of the pools in order (upstream picks at
random among free ones; see docs/api-differences.md), so tests here can name the
exact address a port gets.
"""

from __future__ import annotations

import ipaddress
import uuid

import pytest

from tests.conftest import Client, assert_error


def addresses(port: dict) -> list[str]:
    return [f["ip_address"] for f in port["fixed_ips"]]


def new_port(client: Client, network: dict, **attrs: object) -> dict:
    return client.create("ports", network_id=network["id"], **attrs)


def eui64(cidr: str, mac: str) -> str:
    """RFC 4291 appendix A, written out independently of the server's code."""
    octets = bytes(int(b, 16) for b in mac.split(":"))
    iid = bytes([octets[0] ^ 0x02]) + octets[1:3] + b"\xff\xfe" + octets[3:]
    net = ipaddress.IPv6Network(cidr)
    return str(net.network_address + int.from_bytes(iid, "big"))


@pytest.fixture
def slash29(admin: Client) -> tuple[dict, dict]:
    """A network whose subnet has five addresses to give: .2 to .6."""
    return admin.network_with_subnet("10.30.0.0/29")


def test_allocation_in_order_until_exhausted(admin: Client, slash29: tuple[dict, dict]) -> None:
    network, sub = slash29
    assert sub["allocation_pools"] == [{"start": "10.30.0.2", "end": "10.30.0.6"}]
    got = [addresses(new_port(admin, network)) for _ in range(5)]
    assert got == [[f"10.30.0.{i}"] for i in range(2, 7)]
    r = admin.post("/ports", {"port": {"network_id": network["id"]}})
    assert_error(r, 409, "IpAddressGenerationFailure",
                 f"No more IP addresses available on network {network['id']}.")
    # the network, broadcast and gateway addresses were never handed out
    used = {f["ip_address"] for p in admin.get("/ports", params={
        "network_id": network["id"]}).json()["ports"] for f in p["fixed_ips"]}
    assert not used & {"10.30.0.0", "10.30.0.1", "10.30.0.7"}


def test_addresses_freed_by_delete_and_update_are_reused(admin: Client,
                                                         slash29: tuple[dict, dict]) -> None:
    network, sub = slash29
    ports = [new_port(admin, network) for _ in range(5)]
    assert admin.delete(f"/ports/{ports[1]['id']}").status_code == 204  # frees .3
    assert addresses(new_port(admin, network)) == ["10.30.0.3"]
    # moving a port to an explicit address frees its old one
    r = admin.put(f"/ports/{ports[2]['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"], "ip_address": "10.30.0.1"}]}})  # the gateway, asked for
    assert r.status_code == 200 and addresses(r.json()["port"]) == ["10.30.0.1"]
    assert addresses(new_port(admin, network)) == ["10.30.0.4"]
    # an empty fixed_ips frees everything
    r = admin.put(f"/ports/{ports[0]['id']}", {"port": {"fixed_ips": []}})
    assert r.json()["port"]["fixed_ips"] == []
    r = admin.put(f"/ports/{ports[3]['id']}", {"port": {"fixed_ips": [
        {"ip_address": "10.30.0.2"}]}})
    assert addresses(r.json()["port"]) == ["10.30.0.2"]  # .5 is free now
    assert addresses(new_port(admin, network)) == ["10.30.0.5"]
    assert_error(admin.post("/ports", {"port": {"network_id": network["id"]}}), 409,
                 "IpAddressGenerationFailure")


def test_keeping_an_address_on_update(admin: Client, slash29: tuple[dict, dict]) -> None:
    network, sub = slash29
    port = new_port(admin, network)
    # naming only the subnet keeps the address the port has there
    r = admin.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [{"subnet_id": sub["id"]}]}})
    assert addresses(r.json()["port"]) == ["10.30.0.2"]
    assert r.json()["port"]["revision_number"] == port["revision_number"]
    r = admin.put(f"/ports/{port['id']}", {"port": {"fixed_ips": [
        {"subnet_id": sub["id"]}, {"subnet_id": sub["id"], "ip_address": "10.30.0.6"}]}})
    assert sorted(addresses(r.json()["port"])) == ["10.30.0.2", "10.30.0.6"]
    assert r.json()["port"]["revision_number"] == port["revision_number"] + 1


def test_explicit_addresses(admin: Client, slash29: tuple[dict, dict]) -> None:
    network, sub = slash29
    # an explicit address may lie outside the pools (but inside the subnet)
    wide, wide_sub = admin.network_with_subnet(
        "10.31.0.0/24", allocation_pools=[{"start": "10.31.0.10", "end": "10.31.0.20"}])
    assert addresses(new_port(admin, wide, fixed_ips=[{"ip_address": "10.31.0.100"}])) == [
        "10.31.0.100"]
    port = new_port(admin, network, fixed_ips=[{"ip_address": "10.30.0.5"}])
    assert port["fixed_ips"] == [{"subnet_id": sub["id"], "ip_address": "10.30.0.5"}]
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "fixed_ips": [{"ip_address": "10.30.0.5"}]}})
    assert_error(r, 409, "IpAddressAlreadyAllocated",
                 f"IP address 10.30.0.5 already allocated in subnet {sub['id']}")
    # automatic allocation steps around it
    assert [addresses(new_port(admin, network)) for _ in range(4)] == [
        ["10.30.0.2"], ["10.30.0.3"], ["10.30.0.4"], ["10.30.0.6"]]
    for ip in ("10.30.0.0", "10.30.0.7", "10.30.0.8", "10.99.0.1"):
        r = admin.post("/ports", {"port": {"network_id": network["id"],
                                           "fixed_ips": [{"ip_address": ip}]}})
        assert_error(r, 400, "InvalidIpForNetwork",
                     f"IP address {ip} is not a valid IP for any of the subnets on the "
                     f"specified network.")
        r = admin.post("/ports", {"port": {"network_id": network["id"], "fixed_ips": [
            {"subnet_id": sub["id"], "ip_address": ip}]}})
        assert_error(r, 400, "InvalidIpForSubnet",
                     f"IP address {ip} is not a valid IP for the specified subnet.")
    r = admin.post("/ports", {"port": {"network_id": network["id"], "fixed_ips": [
        {"subnet_id": wide_sub["id"]}]}})
    assert_error(r, 400, "InvalidInput", f"because fixed_ips included invalid subnet "
                 f"{wide_sub['id']}.")
    missing = "0d1e0000-0000-4000-8000-000000000000"
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "fixed_ips": [{"subnet_id": missing}]}})
    assert_error(r, 404, "SubnetNotFound", f"Subnet {missing} could not be found.")
    r = admin.post("/ports", {"port": {"network_id": network["id"], "fixed_ips": [{}]}})
    assert_error(r, 400, "InvalidInput", "IP allocation requires subnet_id or ip_address.")
    r = admin.post("/ports", {"port": {"network_id": network["id"], "fixed_ips": [
        {"ip_address": "10.31.0.50"}, {"ip_address": "10.31.0.50"}]}})
    assert_error(r, 400, "HTTPBadRequest", "Duplicate IP address '10.31.0.50'")


def test_several_pools_are_used_in_order(admin: Client) -> None:
    network, sub = admin.network_with_subnet("10.32.0.0/24", allocation_pools=[
        {"start": "10.32.0.20", "end": "10.32.0.21"}, {"start": "10.32.0.10",
                                                       "end": "10.32.0.11"}])
    got = [addresses(new_port(admin, network))[0] for _ in range(4)]
    assert got == ["10.32.0.10", "10.32.0.11", "10.32.0.20", "10.32.0.21"]
    assert_error(admin.post("/ports", {"port": {"network_id": network["id"]}}), 409,
                 "IpAddressGenerationFailure")
    # widening the pools makes room at once; existing addresses stay where they are
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"allocation_pools": [
        {"start": "10.32.0.10", "end": "10.32.0.11"}, {"start": "10.32.0.20",
                                                       "end": "10.32.0.22"}]}})
    assert r.status_code == 200, r.text
    assert addresses(new_port(admin, network)) == ["10.32.0.22"]
    # a pool moved elsewhere hands out from there
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"allocation_pools": [
        {"start": "10.32.0.100", "end": "10.32.0.100"}]}})
    assert r.json()["subnet"]["allocation_pools"] == [{"start": "10.32.0.100",
                                                       "end": "10.32.0.100"}]
    assert addresses(new_port(admin, network)) == ["10.32.0.100"]
    assert len(admin.get("/ports", params={"network_id": network["id"]}).json()["ports"]) == 6


def test_subnet_without_gateway_hands_out_the_first_host(admin: Client) -> None:
    network, sub = admin.network_with_subnet("10.33.0.0/29", gateway_ip=None)
    assert sub["allocation_pools"] == [{"start": "10.33.0.1", "end": "10.33.0.6"}]
    assert [addresses(new_port(admin, network))[0] for _ in range(6)] == [
        f"10.33.0.{i}" for i in range(1, 7)]


def test_slaac_addresses_are_eui64(admin: Client) -> None:
    network, v4 = admin.network_with_subnet("10.34.0.0/24")
    slaac = admin.create("subnets", network_id=network["id"], ip_version=6,
                         cidr="2001:db8:34::/64", ipv6_ra_mode="slaac",
                         ipv6_address_mode="slaac")
    stateless = admin.create("subnets", network_id=network["id"], ip_version=6,
                             cidr="2001:db8:35::/64", ipv6_address_mode="dhcpv6-stateless")
    port = new_port(admin, network, mac_address="fa:16:3e:11:22:33")
    assert sorted(addresses(port)) == sorted([
        "10.34.0.2", eui64("2001:db8:34::/64", "fa:16:3e:11:22:33"),
        eui64("2001:db8:35::/64", "fa:16:3e:11:22:33")])
    assert eui64("2001:db8:34::/64", "fa:16:3e:11:22:33") == "2001:db8:34:0:f816:3eff:fe11:2233"
    # a port asking only for an IPv4 address still gets its SLAAC addresses
    only_v4 = new_port(admin, network, fixed_ips=[{"subnet_id": v4["id"]}])
    assert {f["subnet_id"] for f in only_v4["fixed_ips"]} == {v4["id"], slaac["id"],
                                                             stateless["id"]}
    # SLAAC addresses cannot be chosen, and stay when fixed_ips changes
    r = admin.post("/ports", {"port": {"network_id": network["id"], "fixed_ips": [
        {"subnet_id": slaac["id"], "ip_address": "2001:db8:34::5"}]}})
    assert_error(r, 400, "AllocationOnAutoAddressSubnet", "cannot be directly assigned to a "
                 f"port on subnet {slaac['id']} as the subnet is configured for automatic "
                 "addresses")
    r = admin.put(f"/ports/{port['id']}", {"port": {"fixed_ips": []}})
    assert sorted(addresses(r.json()["port"])) == sorted(
        eui64(c, "fa:16:3e:11:22:33") for c in ("2001:db8:34::/64", "2001:db8:35::/64"))
    # a new MAC is a new EUI-64 address
    r = admin.put(f"/ports/{port['id']}", {"port": {"mac_address": "fa:16:3e:44:55:66"}})
    assert sorted(addresses(r.json()["port"])) == sorted(
        eui64(c, "fa:16:3e:44:55:66") for c in ("2001:db8:34::/64", "2001:db8:35::/64"))


def test_new_slaac_subnet_numbers_existing_ports(admin: Client) -> None:
    network, _ = admin.network_with_subnet("10.36.0.0/24")
    port = new_port(admin, network)
    router = new_port(admin, network, device_owner="network:router_interface")
    slaac = admin.create("subnets", network_id=network["id"], ip_version=6,
                         cidr="2001:db8:36::/64", ipv6_address_mode="slaac")
    got = admin.get(f"/ports/{port['id']}").json()["port"]
    assert {"subnet_id": slaac["id"], "ip_address": eui64("2001:db8:36::/64",
                                                          port["mac_address"])} in got[
        "fixed_ips"]
    # router interfaces are numbered by hand, not by SLAAC
    assert slaac["id"] not in {f["subnet_id"] for f in admin.get(
        f"/ports/{router['id']}").json()["port"]["fixed_ips"]}


def test_dhcpv6_stateful_allocates_from_the_pool(admin: Client) -> None:
    network = admin.create("networks", name="stateful")
    admin.create("subnets", network_id=network["id"], ip_version=6, cidr="2001:db8:37::/64",
                 ipv6_address_mode="dhcpv6-stateful", ipv6_ra_mode="dhcpv6-stateful")
    assert [addresses(new_port(admin, network)) for _ in range(2)] == [
        ["2001:db8:37::1"], ["2001:db8:37::2"]]


def test_overlapping_subnets_on_one_network_refused(admin: Client) -> None:
    network, _ = admin.network_with_subnet("10.38.0.0/24")
    for cidr in ("10.38.0.0/24", "10.38.0.128/25", "10.0.0.0/8"):
        r = admin.post("/subnets", {"subnet": {"network_id": network["id"], "cidr": cidr,
                                               "ip_version": 4}})
        assert_error(r, 400, "InvalidInput",
                     f"Requested subnet with cidr: {cidr} for network: {network['id']} "
                     f"overlaps with another subnet.")
    # the same range on another network is fine (overlapping IPs across networks)
    _, sub = admin.network_with_subnet("10.38.0.0/24")
    assert sub["cidr"] == "10.38.0.0/24"
    assert admin.create("subnets", network_id=network["id"], cidr="10.39.0.0/24",
                        ip_version=4)["cidr"] == "10.39.0.0/24"


@pytest.mark.parametrize("attrs,status,type_,message", [
    ({"gateway_ip": "10.40.0.5", "allocation_pools": [{"start": "10.40.0.2",
                                                       "end": "10.40.0.10"}]},
     409, "GatewayConflictWithAllocationPools",
     "Gateway ip 10.40.0.5 conflicts with allocation pool 10.40.0.2-10.40.0.10."),
    ({"allocation_pools": [{"start": "10.41.0.1", "end": "10.41.0.5"}]},
     400, "OutOfBoundsAllocationPool",
     "The allocation pool 10.41.0.1-10.41.0.5 spans beyond the subnet cidr 10.40.0.0/24."),
    ({"allocation_pools": [{"start": "10.40.0.0", "end": "10.40.0.5"}]},
     400, "OutOfBoundsAllocationPool", "spans beyond the subnet cidr"),
    ({"allocation_pools": [{"start": "10.40.0.250", "end": "10.40.0.255"}]},
     400, "OutOfBoundsAllocationPool", "spans beyond the subnet cidr"),
    ({"allocation_pools": [{"start": "10.40.0.20", "end": "10.40.0.10"}]},
     400, "InvalidAllocationPool", "The allocation pool 10.40.0.20-10.40.0.10 is not valid"),
    ({"allocation_pools": [{"start": "2001:db8::1", "end": "2001:db8::5"}]},
     400, "InvalidAllocationPool", "The allocation pool 2001:db8::1-2001:db8::5 is not valid"),
    ({"allocation_pools": [{"start": "10.40.0.10", "end": "10.40.0.20"},
                           {"start": "10.40.0.15", "end": "10.40.0.30"}]},
     409, "OverlappingAllocationPools",
     "Found overlapping allocation pools: 10.40.0.10-10.40.0.20 10.40.0.15-10.40.0.30 for "
     "subnet 10.40.0.0/24."),
    ({"allocation_pools": [{"start": "10.40.0.1", "end": "10.40.0.9"}]},
     409, "GatewayConflictWithAllocationPools", "Gateway ip 10.40.0.1 conflicts"),
])
def test_pool_and_gateway_conflicts(admin: Client, attrs: dict, status: int, type_: str,
                                    message: str) -> None:
    network = admin.create("networks", name="pools")
    r = admin.post("/subnets", {"subnet": {"network_id": network["id"], "ip_version": 4,
                                           "cidr": "10.40.0.0/24", **attrs}})
    assert_error(r, status, type_, message)
    # the same rules hold when a subnet is updated
    sub = admin.create("subnets", network_id=network["id"], cidr="10.40.0.0/24", ip_version=4)
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": attrs})
    assert_error(r, status, type_, message)
    assert admin.get(f"/subnets/{sub['id']}").json()["subnet"] == sub  # nothing half-written


def test_gateway_update_against_pools_and_ports(admin: Client) -> None:
    network, sub = admin.network_with_subnet("10.42.0.0/24", allocation_pools=[
        {"start": "10.42.0.10", "end": "10.42.0.20"}])
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.42.0.15"}})
    assert_error(r, 409, "GatewayConflictWithAllocationPools")
    port = new_port(admin, network, fixed_ips=[{"ip_address": "10.42.0.100"}])
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.42.0.100"}})
    assert_error(r, 409, "GatewayIpInUse", f"port {port['id']}")
    r = admin.put(f"/subnets/{sub['id']}", {"subnet": {"gateway_ip": "10.42.0.254"}})
    assert r.status_code == 200 and r.json()["subnet"]["gateway_ip"] == "10.42.0.254"


def test_a_full_subnet_gives_way_to_the_next_of_its_version(admin: Client) -> None:
    """As upstream: a port without fixed IPs takes its address from the first subnet of
    each IP version that has one free, in the order the subnets were made."""
    network = admin.create("networks", name="two-v4")
    first = admin.create("subnets", network_id=network["id"], cidr="10.31.0.0/30",
                         ip_version=4)  # one address to give: .2
    second = admin.create("subnets", network_id=network["id"], cidr="10.31.1.0/30",
                          ip_version=4)
    v6 = admin.create("subnets", network_id=network["id"], cidr="2001:db8:31::/64",
                      ip_version=6, ipv6_address_mode="dhcpv6-stateful",
                      ipv6_ra_mode="dhcpv6-stateful")
    a = new_port(admin, network)
    assert [(f["subnet_id"], f["ip_address"]) for f in a["fixed_ips"]] == [
        (first["id"], "10.31.0.2"), (v6["id"], "2001:db8:31::1")]
    b = new_port(admin, network)  # the first is full: the second subnet, the same v6 one
    assert [(f["subnet_id"], f["ip_address"]) for f in b["fixed_ips"]] == [
        (second["id"], "10.31.1.2"), (v6["id"], "2001:db8:31::2")]
    # an address asked on the full subnet has nowhere else to go
    r = admin.post("/ports", {"port": {"network_id": network["id"],
                                       "fixed_ips": [{"subnet_id": first["id"]}]}})
    assert_error(r, 409, "IpAddressGenerationFailure",
                 f"No more IP addresses available on network {network['id']}.")
    # every IPv4 subnet full: upstream's words
    r = admin.post("/ports", {"port": {"network_id": network["id"]}})
    assert_error(r, 409, "IpAddressGenerationFailure",
                 f"No more IP addresses available on network {network['id']}.")
    # a freed address on the first subnet is its again
    assert admin.delete(f"/ports/{a['id']}").status_code == 204
    assert addresses(new_port(admin, network))[0] == "10.31.0.2"


def test_subnets_made_in_one_second_keep_their_order(admin: Client, monkeypatch) -> None:
    """created_at has whole seconds: two subnets made in the same second are still tried
    (and listed on their network) in the order they were made, whatever their ids."""
    from neutrino.services.core import collection

    network = admin.create("networks", name="same-second")
    # the server runs in this process: freeze its clock and choose ids so the second
    # subnet's id sorts first (a tie on created_at broken by id would pick it)
    monkeypatch.setattr(collection, "now", lambda: "2026-01-01T00:00:00Z")
    made = []
    for prefix, cidr in (("f", "10.32.0.0/30"), ("0", "10.32.1.0/29")):
        monkeypatch.setattr(collection, "new_id",
                            lambda p=prefix: p + str(uuid.uuid4())[1:])
        made.append(admin.create("subnets", network_id=network["id"], cidr=cidr,
                                 ip_version=4))
    monkeypatch.undo()
    first, second = made
    assert first["created_at"] == second["created_at"] and second["id"] < first["id"]
    got = admin.get(f"/networks/{network['id']}").json()["network"]["subnets"]
    assert got == [first["id"], second["id"]]
    assert addresses(new_port(admin, network)) == ["10.32.0.2"]
    assert addresses(new_port(admin, network)) == ["10.32.1.2"]
