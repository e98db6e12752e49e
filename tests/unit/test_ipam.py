"""IPAM as pure functions: pools, gateways, first-free allocation, EUI-64."""

import ipaddress

import pytest

from neutrino import errors
from neutrino.services.l2 import ipam


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def test_default_ipv4_pool_skips_network_broadcast_and_gateway() -> None:
    net = ipam.network("10.0.0.0/24")
    gw = ipam.default_gateway(net)
    assert gw == ip("10.0.0.1")
    assert ipam.default_pools(net, gw) == [ipam.Pool(ip("10.0.0.2"), ip("10.0.0.254"))]


def test_gateway_in_the_middle_splits_the_pool() -> None:
    net = ipam.network("10.0.0.0/29")
    pools = ipam.default_pools(net, ip("10.0.0.4"))
    assert pools == [ipam.Pool(ip("10.0.0.1"), ip("10.0.0.3")),
                     ipam.Pool(ip("10.0.0.5"), ip("10.0.0.6"))]


def test_ipv6_gateway_is_the_subnet_router_anycast_address() -> None:
    net = ipam.network("fd00::/64")
    assert ipam.default_gateway(net) == ip("fd00::")
    [pool] = ipam.default_pools(net, ip("fd00::"))
    assert pool.start == ip("fd00::1") and pool.end == ip("fd00::ffff:ffff:ffff:ffff")


def test_point_to_point_networks_use_both_addresses() -> None:
    assert ipam.default_pools(ipam.network("10.0.0.0/31"), None) == [
        ipam.Pool(ip("10.0.0.0"), ip("10.0.0.1"))]


@pytest.mark.parametrize(("pools", "error_type"), [
    ([{"start": "10.1.0.2", "end": "10.1.0.5"}], "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.9", "end": "10.0.0.5"}], "InvalidAllocationPool"),
    # the network and broadcast addresses are out of bounds (as upstream says)
    ([{"start": "10.0.0.0", "end": "10.0.0.5"}], "OutOfBoundsAllocationPool"),
    ([{"start": "10.0.0.250", "end": "10.0.0.255"}], "OutOfBoundsAllocationPool"),
    ([{"start": "fd00::1", "end": "fd00::5"}], "InvalidAllocationPool"),
    # overlapping pools are a 409 upstream
    ([{"start": "10.0.0.2", "end": "10.0.0.5"}, {"start": "10.0.0.5", "end": "10.0.0.9"}],
     "OverlappingAllocationPools"),
])
def test_bad_pools_are_refused(pools: list[dict], error_type: str) -> None:
    with pytest.raises((errors.BadRequest, errors.Conflict)) as exc:
        ipam.validate_pools(ipam.network("10.0.0.0/24"), pools)
    assert exc.value.type == error_type
    assert exc.value.status == (409 if error_type == "OverlappingAllocationPools" else 400)
    assert exc.value.message


def test_gateway_inside_a_pool_conflicts() -> None:
    net = ipam.network("10.0.0.0/24")
    pools = ipam.validate_pools(net, [{"start": "10.0.0.1", "end": "10.0.0.20"}])
    with pytest.raises(errors.Conflict) as exc:
        ipam.check_gateway(net, ip("10.0.0.1"), pools)
    assert exc.value.type == "GatewayConflictWithAllocationPools"


def test_broadcast_gateway_is_invalid() -> None:
    with pytest.raises(errors.InvalidInput):
        ipam.check_gateway(ipam.network("10.0.0.0/24"), ip("10.0.0.255"), [])


def test_first_free_walks_pools_in_order_and_skips_taken() -> None:
    pools = [ipam.Pool(ip("10.0.0.2"), ip("10.0.0.3")), ipam.Pool(ip("10.0.0.10"),
                                                                  ip("10.0.0.11"))]
    assert ipam.first_free(pools, set()) == "10.0.0.2"
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3"}) == "10.0.0.10"
    assert ipam.first_free(pools, {"10.0.0.2", "10.0.0.3", "10.0.0.10", "10.0.0.11"}) is None


def test_eui64_matches_rfc4291() -> None:
    assert ipam.eui64("fd00::/64", "fa:16:3e:88:14:46") == "fd00::f816:3eff:fe88:1446"
    assert ipam.eui64("2001:db8:1:2::/64", "00:00:5e:00:53:01") == \
        "2001:db8:1:2:200:5eff:fe00:5301"


def test_overlaps_only_within_one_ip_version() -> None:
    assert ipam.overlaps("10.0.0.0/24", "10.0.0.128/25")
    assert not ipam.overlaps("10.0.0.0/24", "10.0.1.0/24")
    assert not ipam.overlaps("10.0.0.0/24", "fd00::/64")


def test_first_free_on_ipv6_ignores_other_families() -> None:
    pools = [ipam.Pool(ip("fd00::2"), ip("fd00::ffff"))]
    assert ipam.first_free(pools, {"fd00::2", "fd00::3", "10.0.0.4"}) == "fd00::4"
    assert ipam.first_free([], {"fd00::2"}) is None
