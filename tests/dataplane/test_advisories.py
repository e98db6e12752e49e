"""Upstream Neutron's security advisories, replayed against Neutrino with real packets
between instances (namespaces plugged like VMs, the agent in a thread): each test is
the attack, and passes because the attack fails.

The advisories are named in each test's docstring (OSSA id, CVE); docs/security.md has
the table.  Every namespace and process is removed at teardown (the ``cloud`` fixture).
"""

from __future__ import annotations

import socket
import sqlite3
import uuid

from neutrino import names
from neutrino.agent.firewall.filters import link_local
from neutrino.cli import instance as inst
from neutrino.linux.run import run
from tests.conftest import Client

from . import packets as pk
from .conftest import ping
from .packets import Tap, mac_bytes
from .test_agent_dataplane import HOST, Cloud, Vm, cloud, wait_for  # noqa: F401
from .test_agent_firewall import OPEN_PING, add_rule, boot, fetch, group, start, web_server

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


# -- MAC and address spoofing ---------------------------------------------------------------

def _bridge(cloud: Cloud, vm: Vm) -> Tap:  # noqa: F811
    """What the network's bridge takes in: past anti-spoofing, before any security
    group (which would drop the controls on their own)."""
    return Tap(cloud.hostns, names.bridge(vm.port["network_id"]))


def _arrived(seen: Tap, seconds: float, marker: bytes) -> int:
    """How many frames carrying ``marker`` reached ``seen``'s link."""
    return sum(1 for f in seen.frames(seconds) if not f.outgoing and marker in f.data)


def test_frames_with_another_mac_or_a_non_ip_ethertype_never_get_out(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2016-009 / CVE-2016-5363 (MAC spoofing with non-IP traffic) and OSSA-2021-004
    / CVE-2021-38598 (hardware address impersonation through the bridge's filter): frames
    from another instance's MAC, of any ethertype, and non-IP frames even from the
    instance's own MAC are dropped; its own IPv4 gets through."""
    victim, attacker, observer = _three(cloud)
    marker = b"neutrino-advisory-" + uuid.uuid4().bytes
    broadcast = b"\xff" * 6
    payload = marker + b"\0" * 16

    def frame(src: bytes, ethertype: int, body: bytes = payload) -> bytes:
        return broadcast + src + ethertype.to_bytes(2, "big") + body

    forged = [frame(_mac(victim), 0x88B5), frame(_mac(victim), 0x0806, payload),
              frame(_mac(victim), 0x86DD), frame(_mac(victim), 0x0800),
              frame(_mac(attacker), 0x88B5),  # local experimental: no IP at all
              frame(_mac(attacker), 0x8100, b"\x00\x07\x88\xb5" + payload),  # a VLAN tag
              frame(_mac(attacker), 0x0004)]  # 802.2 LLC, length-typed
    own = pk.udp4(_mac(attacker), broadcast, attacker.ip, "10.0.0.255", 9999, 9999, marker)
    with _bridge(cloud, attacker) as seen, Tap(attacker.ns, "eth0") as wire:
        for f in forged:
            wire.send(f)
        assert _arrived(seen, 1.0, marker) == 0, "forged or non-IP frames dropped"
        wire.send(own)
        assert _arrived(seen, 1.0, marker) == 1, "the instance's own IPv4 passes"
    assert ping(observer.ns, victim.ip)


def test_dhcp_discovery_from_a_spoofed_source_and_dhcp_server_replies_are_dropped(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2016-009 / CVE-2016-5362 (DHCP-spoofing protection bypassed with a crafted
    DHCP discovery) and a rogue DHCP server in an instance: client-to-server UDP 68->67
    passes only from 0.0.0.0 (or the instance's own address); a server reply (UDP 67->68)
    from an instance never reaches its neighbours."""
    victim, attacker, observer = _three(cloud)
    marker = b"neutrino-dhcp-" + uuid.uuid4().bytes
    broadcast = b"\xff" * 6
    spoofed_client = pk.udp4(_mac(attacker), broadcast, victim.ip, "255.255.255.255",
                             68, 67, marker)
    rogue_offer = pk.udp4(_mac(attacker), _mac(observer), attacker.ip, observer.ip, 67, 68,
                          marker)
    rogue_offer6 = pk.ipv6(_mac(attacker), _mac(observer), _ll(attacker), _ll(observer), 17,
                           (547).to_bytes(2, "big") + (546).to_bytes(2, "big")
                           + (8 + len(marker)).to_bytes(2, "big") + b"\0\0" + marker)
    discover = pk.udp4(_mac(attacker), broadcast, "0.0.0.0", "255.255.255.255", 68, 67,
                       marker)
    with _bridge(cloud, attacker) as seen, Tap(attacker.ns, "eth0") as wire:
        for f in (spoofed_client, rogue_offer, rogue_offer6):
            wire.send(f)
        assert _arrived(seen, 1.0, marker) == 0
        wire.send(discover)  # a real client's discovery is broadcast, and passes
        assert _arrived(seen, 1.0, marker) == 1
    # DHCP itself still works: the observer renews from our server
    lease = inst._dhcp(cloud.settings(), observer.name, observer.ns, 5)
    assert lease["ip"] == observer.ip and lease["router"] == "10.0.0.1"


def test_spoofed_link_local_source_icmpv6_is_dropped(cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2016-009 / CVE-2015-8914 (ICMPv6-spoofing protection bypassed with a
    link-local source): ICMPv6 (echo, NS, MLD) from another instance's link-local
    address, or from a made-up one, never gets out."""
    victim, attacker, observer = _three(cloud)
    marker = b"neutrino-icmpv6-" + uuid.uuid4().bytes
    made_up = "fe80::dead:beef"
    frames = [
        pk.icmpv6(_mac(attacker), _mac(observer), src, _ll(observer), 128, 0,
                  b"\0\1\0\1" + marker) for src in (_ll(victim), made_up)]
    frames.append(pk.icmpv6(_mac(attacker), _mac(observer), made_up, _ll(observer), 135, 0,
                            b"\0" * 4 + socket.inet_pton(socket.AF_INET6, _ll(observer))
                            + marker))
    own = pk.icmpv6(_mac(attacker), _mac(observer), _ll(attacker), _ll(observer), 128, 0,
                    b"\0\1\0\1" + marker)
    with Tap(observer.ns, "eth0") as seen, Tap(attacker.ns, "eth0") as wire:
        for f in frames:
            wire.send(f)
        assert _arrived(seen, 1.0, marker) == 0
        wire.send(own)
        assert _arrived(seen, 1.0, marker) == 1


def test_a_port_renamed_network_owner_is_still_filtered(cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2015-018 / CVE-2015-5240, the data-plane half: a port whose device_owner is
    changed to ``network:…`` by its owner must not lose its anti-spoofing or its
    security groups (only the DHCP and router ports the agent makes itself go
    unfiltered)."""
    net = start(cloud)
    open_ = group(cloud, OPEN_PING)
    closed = group(cloud)  # no ingress rule
    peer = boot(cloud, net, security_groups=[open_])
    vm = boot(cloud, net, security_groups=[closed])
    assert not ping(peer.ns, vm.ip, expect=False)
    for owner in ("network:router_interface", "network:dhcp", "network:router_gateway"):
        r = cloud.api.put(f"/ports/{vm.port['id']}", {"port": {"device_owner": owner}})
        assert r.status_code == 200, r.text
        wait_for(lambda: cloud.agent is not None and cloud.agent.idle, what="agent idle")
        assert not ping(peer.ns, vm.ip, expect=False), f"still filtered as {owner}"
        run(["ip", "addr", "replace", "10.0.0.230/24", "dev", "eth0"], netns=vm.ns)
        assert not run(["ping", "-c", "1", "-W", "1", "-I", "10.0.0.230", peer.ip],
                       netns=vm.ns, check=False).ok, f"anti-spoofing kept as {owner}"
    # and the network's own DHCP still answers everyone
    lease = inst._dhcp(cloud.settings(), peer.name, peer.ns, 5)
    assert lease["ip"] == peer.ip


# -- security-group semantics -----------------------------------------------------------------

def test_a_port_range_on_a_protocol_without_ports_opens_nothing_else(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2019-001 / CVE-2019-9735: a rule with a port range on a protocol that has no
    ports (VRRP, 112) made upstream's iptables driver accept more than asked.  Here
    the API refuses it (400) or, where a protocol takes no ports, the rule matches that
    protocol only: TCP 80 and ICMP stay closed."""
    net = start(cloud)
    gid = group(cloud)
    r = cloud.api.post("/security-group-rules", {"security_group_rule": {
        "security_group_id": gid, "direction": "ingress", "ethertype": "IPv4",
        "protocol": "vrrp", "port_range_min": 80, "port_range_max": 80}})
    assert r.status_code in (201, 400), r.text
    if r.status_code == 400:
        assert "NeutronError" in r.json()
    add = {"security_group_id": gid, "direction": "ingress", "ethertype": "IPv4",
           "protocol": "112"}
    assert cloud.api.post("/security-group-rules",
                          {"security_group_rule": add}).status_code == 201
    open_ = group(cloud, OPEN_PING)
    peer = boot(cloud, net, security_groups=[open_])
    vm = boot(cloud, net, security_groups=[gid])
    web_server(cloud, vm)
    assert not fetch(peer, vm), "TCP 80 closed"
    assert not ping(peer.ns, vm.ip, expect=False), "ICMP closed"


def test_out_of_range_icmp_type_or_code_is_refused_and_filtering_goes_on(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2015-021 / CVE-2015-7713: an ICMP rule with an invalid type or code made
    upstream's iptables-restore fail, so no rule was applied any more.  Here such a rule
    is a 400; the extremes that are valid (255) are applied, and the ports booted after
    them are filtered as their rules say."""
    net = start(cloud)
    gid = group(cloud)
    for lo, hi in ((256, 0), (0, 256), (-1, 0)):
        r = cloud.api.post("/security-group-rules", {"security_group_rule": {
            "security_group_id": gid, "direction": "ingress", "ethertype": "IPv4",
            "protocol": "icmp", "port_range_min": lo, "port_range_max": hi}})
        assert r.status_code == 400 and "NeutronError" in r.json(), (lo, hi, r.text)
    add_rule(cloud, gid, direction="ingress", ethertype="IPv4", protocol="icmp",
             port_range_min=255, port_range_max=255)
    add_rule(cloud, gid, direction="ingress", ethertype="IPv6", protocol="ipv6-icmp",
             port_range_min=255, port_range_max=255)
    open_ = group(cloud, OPEN_PING)
    peer = boot(cloud, net, security_groups=[open_])
    vm = boot(cloud, net, security_groups=[gid])
    assert not ping(peer.ns, vm.ip, expect=False), "echo is not type 255"
    r = cloud.api.put(f"/ports/{vm.port['id']}", {"port": {"security_groups": [open_]}})
    assert r.status_code == 200, r.text
    wait_for(lambda: ping(peer.ns, vm.ip, expect=False), what="rules still applied")


# -- DHCP ---------------------------------------------------------------------------------------

INJECTED = ("1500\ndhcp-option=121,0.0.0.0/1,10.0.0.66,128.0.0.0/1,10.0.0.66"
            "\ndhcp-option=6,10.0.0.66")


def test_extra_dhcp_opts_cannot_push_options_to_another_projects_instance(
        cloud: Cloud) -> None:  # noqa: F811
    """OSSA-2021-005 / CVE-2021-40085 (finding 1): a member of another project with a
    port on a shared network sets an extra_dhcp_opt whose value holds newlines.  The API
    answers 400 in the NeutronError envelope; the same value written into the database
    behind the API's back is left out of dnsmasq's files; the victim's lease carries no
    injected route or DNS server either way."""
    cloud.start_agent()
    net, _ = cloud.network("10.0.0.0/24", shared=True)
    attacker_project = uuid.uuid4().hex
    attacker = Client(cloud.server.url, attacker_project)
    port = attacker.create("ports", network_id=net["id"])
    r = attacker.put(f"/ports/{port['id']}", {"port": {"extra_dhcp_opts": [
        {"opt_name": "mtu", "opt_value": INJECTED}]}})
    assert r.status_code == 400, r.text
    err = r.json()["NeutronError"]
    assert err["type"] == "HTTPBadRequest" and "extra_dhcp_opts" in err["message"]
    r = attacker.post("/ports", {"port": {"network_id": net["id"], "extra_dhcp_opts": [
        {"opt_name": "121\ndhcp-option=6,10.0.0.66", "opt_value": "1.2.3.4"}]}})
    assert r.status_code == 400, r.text
    # the database holds it anyway (another path): the renderer must still refuse it
    with sqlite3.connect(cloud.state / "db.sqlite") as db:
        db.execute("INSERT INTO dhcp_options (port_id, opt_name, opt_value, ip_version) "
                   "VALUES (?, 'mtu', ?, 4)", (port["id"], INJECTED))
    assert attacker.put(f"/ports/{port['id']}", {"port": {"name": "poke"}}).status_code == 200
    victim = cloud.boot(net["id"])
    wait_for(lambda: cloud.agent is not None and cloud.agent.idle, what="agent idle")
    opts = (cloud.state / "agent" / "dhcp" / net["id"] / "opts").read_text()
    assert "10.0.0.66" not in opts
    assert all(line.startswith("tag:") for line in opts.splitlines())
    lease = inst._dhcp(cloud.settings(), victim.name, victim.ns, 5)
    assert "10.0.0.66" not in str(lease), lease
    assert lease["dns"] != "10.0.0.66" and not lease.get("staticroutes")
    routes = run(["ip", "route"], netns=victim.ns).stdout
    assert "10.0.0.66" not in routes
