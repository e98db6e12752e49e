"""Subnet pool arithmetic: merging prefixes, free space, the lowest free prefix, bounds."""

from __future__ import annotations

import ipaddress

import pytest

from neutrino import errors
from neutrino.services.l2.subnetpools import (
    check_bounds,
    covered,
    free_blocks,
    lowest_free,
    merge,
    quota_units,
)


def nets(*cidrs: str) -> list:
    return [ipaddress.ip_network(c) for c in cidrs]


def texts(networks: list) -> list[str]:
    return [str(n) for n in networks]


def test_merge_collapses_and_sorts() -> None:
    assert texts(merge(["10.30.3.0/24", "10.20.0.0/16", "10.20.1.0/24", "10.21.0.0/16",
                        "10.30.0.0/24", "10.30.1.0/24"])) == \
        ["10.20.0.0/15", "10.30.0.0/23", "10.30.3.0/24"]
    assert texts(merge(["2001:db8:1::/48", "2001:db8::/48"])) == ["2001:db8::/47"]
    assert merge([]) == []
    with pytest.raises(errors.BadRequest, match="Cannot mix IPv4 and IPv6"):
        merge(["10.0.0.0/8", "2001:db8::/32"])


def test_covered() -> None:
    prefixes = nets("10.0.0.0/16", "192.168.0.0/24")
    assert covered(ipaddress.ip_network("10.0.5.0/24"), prefixes)
    assert covered(ipaddress.ip_network("192.168.0.0/24"), prefixes)
    assert not covered(ipaddress.ip_network("10.0.0.0/15"), prefixes)
    assert not covered(ipaddress.ip_network("2001:db8::/64"), prefixes)


def test_free_blocks_are_aligned_and_ordered() -> None:
    free = free_blocks(nets("10.0.0.0/24"), nets("10.0.0.0/26", "10.0.0.128/27"))
    assert texts(free) == ["10.0.0.64/26", "10.0.0.160/27", "10.0.0.192/26"]
    # a used range covering a whole prefix removes it; one elsewhere changes nothing
    assert texts(free_blocks(nets("10.1.0.0/24", "10.2.0.0/24"), nets("10.1.0.0/16"))) == \
        ["10.2.0.0/24"]
    assert texts(free_blocks(nets("10.1.0.0/24"), nets("2001:db8::/64", "10.9.0.0/24"))) == \
        ["10.1.0.0/24"]


@pytest.mark.parametrize("prefixes,used,length,expected", [
    (["10.0.0.0/24"], [], 26, "10.0.0.0/26"),
    (["10.0.0.0/24"], ["10.0.0.0/29"], 26, "10.0.0.64/26"),
    (["10.0.0.0/24"], ["10.0.0.0/29"], 29, "10.0.0.8/29"),
    (["10.0.0.0/24", "10.1.0.0/24"], ["10.0.0.0/25"], 24, "10.1.0.0/24"),
    (["10.0.0.0/24"], ["10.0.0.0/25", "10.0.0.128/25"], 30, None),
    (["10.0.0.0/24"], [], 23, None),
    (["2001:db8::/48"], ["2001:db8::/64"], 64, "2001:db8:0:1::/64"),
])
def test_lowest_free(prefixes: list[str], used: list[str], length: int,
                     expected: str | None) -> None:
    got = lowest_free(nets(*prefixes), nets(*used), length)
    assert (str(got) if got is not None else None) == expected


def test_quota_units() -> None:
    assert quota_units(4, 24) == 256 and quota_units(4, 32) == 1
    assert quota_units(6, 64) == 1 and quota_units(6, 56) == 256
    assert quota_units(6, 120) == 1  # smaller than a /64 still costs one


@pytest.mark.parametrize("args,message", [
    ((4, 24, 8, 33), "max_prefixlen=33, ip_version_max=32"),
    ((4, 8, 8, 4), "min_prefixlen=8, max_prefixlen=4"),
    ((4, 24, 30, 32), "default_prefixlen=24, min_prefixlen=30"),
    ((6, 120, 64, 112), "default_prefixlen=120, max_prefixlen=112"),
])
def test_bounds(args: tuple[int, int, int, int], message: str) -> None:
    with pytest.raises(errors.BadRequest, match=message):
        check_bounds(*args)
    check_bounds(6, 64, 48, 128)
