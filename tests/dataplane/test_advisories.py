"""Upstream Neutron's security advisories, replayed against Neutrino with real packets
between instances (namespaces plugged like VMs, the agent in a thread): each test is
the attack, and passes because the attack fails.

The advisories are named in each test's docstring (OSSA id, CVE); docs/security.md has
the table.  Every namespace and process is removed at teardown (the ``cloud`` fixture).
"""

from __future__ import annotations

import socket

from neutrino.agent.firewall import link_local
from neutrino.linux.run import run

from . import packets as pk
from .packets import Tap, mac_bytes
from .test_agent_dataplane import HOST, Cloud, Vm, cloud, wait_for  # noqa: F401
from .test_agent_firewall import OPEN_PING, boot, group, start

V6_PING = {"direction": "ingress", "ethertype": "IPv6", "protocol": "ipv6-icmp"}


def _ll(vm: Vm) -> str:
    return link_local(vm.port["mac_address"])


def _mac(vm: Vm) -> bytes:
    return mac_bytes(vm.port["mac_address"])


def _v6_ready(vm: Vm) -> bool:
    out = run(["ip", "-6", "addr", "show", "dev", "eth0", "tentative"], netns=vm.ns).stdout
    ready = run(["ip", "-6", "addr", "show", "dev", "eth0"], netns=vm.ns).stdout
    return "inet6" not in out and "fe80::" in ready


def _ping6(src: Vm, dst_ip: str) -> bool:
    return run(["ping", "-6", "-c", "1", "-W", "1", f"{dst_ip}%eth0"], netns=src.ns,
               check=False).ok


def _neighbour(vm: Vm, ip: str) -> str | None:
    """The MAC ``vm`` holds for ``ip`` (None: no entry)."""
    words = run(["ip", "-6", "neigh", "show", ip, "dev", "eth0"], netns=vm.ns).stdout.split()
    return words[words.index("lladdr") + 1] if "lladdr" in words else None


def _three(cloud: Cloud) -> tuple[Vm, Vm, Vm]:  # noqa: F811
    """A victim, an attacker and an observer on one network, pinging over IPv6."""
    net = start(cloud)
    g = group(cloud, OPEN_PING, V6_PING)
    vms = tuple(boot(cloud, net, security_groups=[g]) for _ in range(3))
    for vm in vms:
        wait_for(lambda vm=vm: _v6_ready(vm), what="link-local address past DAD")
    return vms  # type: ignore[return-value]


def _received(tap: Tap, seconds: float, type_: int) -> list[bytes]:
    """Bodies of the ICMPv6 messages of ``type_`` that reached ``tap``'s link."""
    out = []
    for f in tap.frames(seconds):
        msg = pk.icmpv6_of(f)
        if not f.outgoing and msg is not None and msg[0] == type_:
            out.append(msg[1])
    return out


def test_na_naming_another_instances_address_poisons_no_neighbour_cache(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2021-001, CVE-2021-20267 (finding 2): an NA from the instance's own address
    whose target is another instance's address (or whose link-layer option is another
    MAC) must not get out; a legit NA and ND as such still work."""
    victim, attacker, observer = _three(cloud)
    assert _ping6(observer, _ll(victim)) and _ping6(observer, _ll(attacker))
    assert _neighbour(observer, _ll(victim)) == victim.port["mac_address"]
    bad_target = pk.neighbour_advert(_mac(attacker), _mac(observer), _ll(attacker),
                                     _ll(observer), _ll(victim), _mac(attacker))
    bad_lladdr = pk.neighbour_advert(_mac(attacker), _mac(observer), _ll(attacker),
                                     _ll(observer), _ll(attacker), _mac(victim))
    # a second target link-layer option, behind the attacker's own
    two_options = pk.neighbour_advert(_mac(attacker), _mac(observer), _ll(attacker),
                                      _ll(observer), _ll(attacker), _mac(attacker),
                                      extra=bytes([2, 1]) + _mac(victim))
    from_unspecified = pk.neighbour_advert(_mac(attacker), _mac(observer), "::",
                                           _ll(observer), _ll(victim), _mac(attacker))
    legit = pk.neighbour_advert(_mac(attacker), _mac(observer), _ll(attacker),
                                _ll(observer), _ll(attacker), _mac(attacker), flags=0)
    with Tap(observer.ns, "eth0") as seen, Tap(attacker.ns, "eth0") as wire:
        for _ in range(3):
            for frame in (bad_target, bad_lladdr, two_options, from_unspecified, legit):
                wire.send(frame)
        got = _received(seen, 1.5, 136)
    targets = {(body[4:20], body[22:28] if len(body) >= 28 else None) for body in got}

    own = socket.inet_pton(socket.AF_INET6, _ll(attacker))
    assert targets == {(own, _mac(attacker))}, "only the attacker's NA about itself"
    assert len(got) == 3
    assert _neighbour(observer, _ll(victim)) == victim.port["mac_address"], "not poisoned"
    assert _neighbour(observer, _ll(attacker)) == attacker.port["mac_address"]
    assert _ping6(observer, _ll(victim)) and _ping6(victim, _ll(observer))


def test_ns_and_rs_carry_only_the_instances_own_mac_and_no_ra_or_redirect(
        cloud: Cloud) -> None:  # noqa: F811
    """The rest of ND from an instance (finding 2; RA: OSSA-2016-009's class): a
    solicitation naming another MAC as its source link-layer address, a router
    advertisement and a redirect never reach a neighbour; a legit solicitation does."""
    victim, attacker, observer = _three(cloud)
    assert _ping6(observer, _ll(victim))
    spoof_ns = pk.neighbour_solicit(_mac(attacker), _mac(observer), _ll(attacker),
                                    _ll(observer), _ll(observer), _mac(victim))
    legit_ns = pk.neighbour_solicit(_mac(attacker), _mac(observer), _ll(attacker),
                                    _ll(observer), _ll(observer), _mac(attacker))
    ra = pk.router_advert(_mac(attacker), _ll(attacker), "2001:db8:bad::/64")
    redirect = pk.redirect(_mac(attacker), _mac(observer), _ll(attacker), _ll(observer),
                           _ll(attacker), "2001:db8::1")
    with Tap(observer.ns, "eth0") as seen, Tap(attacker.ns, "eth0") as wire:
        for _ in range(3):
            for frame in (spoof_ns, legit_ns, ra, redirect):
                wire.send(frame)
        frames = seen.frames(1.5)
    kinds = [m for f in frames if not f.outgoing and (m := pk.icmpv6_of(f)) is not None]
    solicitations = [body[22:28] for t, body in kinds if t == 135 and len(body) >= 28]
    assert _mac(victim) not in solicitations and _mac(attacker) in solicitations
    assert not [t for t, _ in kinds if t in (134, 137)], "no RA, no redirect from an instance"
    out = run(["ip", "-6", "route", "show"], netns=observer.ns).stdout
    assert "2001:db8:bad" not in out and "default" not in out
    assert _neighbour(observer, _ll(attacker)) in (None, attacker.port["mac_address"])
