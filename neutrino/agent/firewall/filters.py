"""Security groups and anti-spoofing for the ports on this host's bridges, in nftables.

Two tables, changed together in one atomic ``nft`` batch:

- ``bridge neutrino-sg``: per-port anti-spoofing in *prerouting* (a frame is checked
  once, before it is flooded), and in *forward* a packet mark naming the filtered ports
  at both ends: ``<sending port index> << 16 | <receiving port index>``.
- ``inet neutrino-sg``: the stateful part.  This kernel has no bridge conntrack
  (``CONFIG_NF_CONNTRACK_BRIDGE``), so bridged IP packets are filtered where
  br_netfilter hands them to the IP hooks (``bridge-nf-call-ip(6)tables``, on by
  default in every namespace), using the mark: established/related accepted, invalid
  dropped, then the sender's egress chain (a match returns), then the receiver's
  ingress chain (a match accepts); the end of either chain drops (fail closed).

Remote groups are nft sets of member addresses, one per group and ethertype, without
the addresses another member's network covers (an interval set refuses overlapping
elements: CVE-2019-10876's class); members
change by element add/delete, so the ruleset does not grow with them.  Everything
but the set elements is fingerprinted (the comment of the one element of a set in each
table, read with one cheap ``nft list sets``): the tables change only when that
fingerprint does, and then only in the chains and sets that differ when the kernel holds
what was applied last (else they are replaced whole).

Established flows a change no longer allows are cut by deleting their conntrack
entries (``conntrack -D``), scoped by the removed rule's port addresses and protocol.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from neutrino import names
from neutrino.agent.model import Port, SgRule, Snapshot
from neutrino.agent.reconciler import Outcome, Pass, Reports, apply_plan
from neutrino.linux import nft
from neutrino.linux.errors import CommandError
from neutrino.linux.run import run

log = logging.getLogger(__name__)

TABLE = names.SG_TABLE
KEY = "firewall"  # one key: the tables are one transaction
MAX_PORTS = 0xFFFF
FINGERPRINT = "neutrino-sg fingerprint "
#: the set (in both tables) whose one element carries the fingerprint as its comment
FINGERPRINT_SET = names.SG_FINGERPRINT_SET
#: ICMPv6 neighbour discovery and MLD an instance needs (130-132 MLD, 133 RS, 135/136 NS/NA)
ND_TYPES = (130, 131, 132, 133, 135, 136, 143)
CONNTRACK_PROTOCOLS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp", 33: "dccp"}
PORT_PROTOCOLS = (6, 17, 33, 132, 136)  # tcp, udp, dccp, sctp, udplite


@dataclass(frozen=True)
class PortFilter:
    """What one port's filtering is made of (for flushing conntrack when it changes)."""

    port_id: str
    tap: str
    addresses: tuple[str, ...]
    rules: tuple[SgRule, ...]


@dataclass(frozen=True)
class Desired:
    tables: tuple[nft.Table, ...] = ()
    fingerprint: str = ""
    ports: dict[str, PortFilter] = field(default_factory=dict)
    #: the taps these tables hold a decision for (filtered, unfiltered, or the agent's own
    #: ports'): only these may be plugged, the bridge drops what any other tap sends
    decided: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Observed:
    fingerprint: str | None = None  # None: no table (or not ours)
    sets: dict[str, tuple[str, ...]] = field(default_factory=dict)  # inet set -> elements
    #: the two tables' sets as listed (for a patch's element changes)
    held: dict[tuple[str, str], tuple[nft.Set, ...]] = field(default_factory=dict,
                                                             compare=False)


@dataclass(frozen=True)
class ReplaceTables:
    desired: Desired
    key: str = KEY


@dataclass(frozen=True)
class PatchTables:
    """The kernel holds ``before`` (its fingerprint says so): change only the chains and
    sets that differ, in one transaction (a hundred ports' tables are ~2,600 rules;
    replacing them whole for one new port cost ~150 ms of nft)."""

    desired: Desired
    before: Desired
    held: dict[tuple[str, str], tuple[nft.Set, ...]] = field(default_factory=dict,
                                                             compare=False)
    key: str = KEY


@dataclass(frozen=True)
class SetElements:
    set_name: str
    add: tuple[str, ...] = ()
    delete: tuple[str, ...] = ()
    key: str = KEY


@dataclass(frozen=True)
class FlushConntrack:
    """Delete conntrack entries: each tuple is ``conntrack -D`` filter arguments."""

    filters: tuple[tuple[str, ...], ...]
    key: str = KEY


Op = ReplaceTables | PatchTables | SetElements | FlushConntrack


set_name = names.sg_remote_set


def _member(address: str) -> str:
    """A set element as nft lists it back: a host route is the bare address."""
    net = ipaddress.ip_network(address, strict=False)
    return str(net.network_address) if net.prefixlen == net.max_prefixlen else str(net)


def _uncovered(addresses: Iterable[str]) -> list[str]:
    """Set elements for member addresses: those inside another member's network (an
    address pair covering a neighbour's address) left out, since an interval set
    refuses overlapping elements and with them the host's whole batch.  Adjacent ones
    stay apart, so a member leaving still removes exactly its own element."""
    nets = sorted({ipaddress.ip_network(a, strict=False) for a in addresses},
                  key=lambda n: (n.network_address, n.prefixlen))
    kept: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for net in nets:  # CIDR blocks nest or are disjoint: only the last kept can cover
        if not (kept and net.subnet_of(kept[-1])):
            kept.append(net)
    return [_member(str(n)) for n in kept]


def _family(address: str) -> int:
    return ipaddress.ip_network(address, strict=False).version


# --- desired --------------------------------------------------------------------------

def filtered_ports(snap: Snapshot) -> list[Port]:
    """This host's ports but those whose devices the agent makes itself (its DHCP and
    router ports), by id: what its device_owner says decides nothing."""
    ours = snap.cloud_ports()
    return sorted((p for p in snap.ports.values() if p.local and p.id not in ours),
                  key=lambda p: p.id)


def _addresses(port: Port) -> tuple[str, ...]:
    return tuple(ip for _, ip in port.fixed_ips)


def _masked_mark(mask: int) -> nft.Expr:
    return {"&": [nft.meta("mark"), mask]}


def link_local(mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return str(ipaddress.ip_address("fe80::" + ":".join(groups)))


#: ICMPv6 types of neighbour discovery (RS, RA, NS, NA, redirect): never behind an
#: extension header, so their fields sit at fixed offsets of the transport header
ND_MESSAGES = (133, 134, 135, 136, 137)
RS, NS, NA, REDIRECT = 133, 135, 136, 137
#: the one link-layer address option an ND message may carry, as its first two bytes
#: (type, length in 8-byte units): source (1) in RS and NS, target (2) in NA
SLLA, TLLA, NONCE = 0x0101, 0x0201, 0x0E01


def _raw(offset_bits: int, bits: int) -> nft.Expr:
    """Bits of the transport header (nft 1.0.6 names no ND target field)."""
    return {"payload": {"base": "th", "offset": offset_bits, "len": bits}}


def _v6_element(address: str) -> Any:
    """An IPv6 address or network as a 128-bit number (for a raw payload match)."""
    net = ipaddress.ip_network(address, strict=False)
    low, high = int(net.network_address), int(net.broadcast_address)
    return f"0x{low:032x}" if low == high else {"range": [f"0x{low:032x}", f"0x{high:032x}"]}


def _mac_number(mac: str) -> int:
    return int(mac.replace(":", ""), 16)


def _neighbour_discovery(port: Port, macs: Sequence[str], v6: Sequence[str],
                         note: str) -> list[nft.Rule]:
    """What the port may say in neighbour discovery (CVE-2021-20267's class): a
    neighbour advertisement only for its own addresses and with its own MAC as target
    link-layer address, solicitations only with its own MAC as source link-layer
    address, no router advertisement (dropped before) and no redirect.  A message
    longer than its one expected option is dropped, so no second option can carry
    another MAC past these checks."""
    icmp_type = nft.payload("icmpv6", "type")
    length = nft.payload("ip6", "length")
    own_macs = {"set": [_mac_number(m) for m in macs]}

    def rule(*exprs: nft.Expr) -> nft.Rule:
        return nft.Rule([*exprs, nft.DROP], note)

    def option(kind: int, header_bits: int, allowed: Sequence[int], total: int) \
            -> list[nft.Rule]:
        """The message ``kind`` (``header_bits`` long) is bare, or carries one option
        (of ``allowed``), and a link-layer address in it is the port's."""
        at = _raw(header_bits, 16)
        return [
            rule(nft.match(icmp_type, kind),
                 nft.match(length, [total - 8, total], "!=")),
            rule(nft.match(icmp_type, kind), nft.match(length, total),
                 nft.match(at, {"set": list(allowed)}, "!=")),
            rule(nft.match(icmp_type, kind), nft.match(length, total),
                 nft.match(at, allowed[0]),
                 nft.match(_raw(header_bits + 16, 48), own_macs, "!="))]

    return [
        # an extension header would move the fields these rules read
        rule(nft.match(nft.meta("l4proto"), 58), nft.match(icmp_type, list(ND_MESSAGES)),
             nft.match(nft.payload("ip6", "nexthdr"), 58, "!=")),
        rule(nft.match(icmp_type, REDIRECT)),
        rule(nft.match(icmp_type, NA),
             nft.match(_raw(64, 128), {"set": [_v6_element(a) for a in v6]}, "!=")),
        *option(NA, 192, (TLLA,), 32),
        # a DAD probe (from ::) may carry a nonce instead (RFC 7527)
        *option(NS, 192, (SLLA, NONCE), 32),
        *option(RS, 64, (SLLA,), 16),
    ]


def _anti_spoofing(port: Port, tap: str) -> nft.Chain:
    """Only the port's own MAC and addresses (and its pairs') go out of it; no DHCP
    or DHCPv6 server, no router advertisements or redirects, and neighbour discovery
    only about itself."""
    macs = sorted({port.mac_address, *(m for _, m in port.allowed_address_pairs)})
    ips = [*_addresses(port), *(ip for ip, _ in port.allowed_address_pairs)]
    v4 = sorted({ip for ip in ips if _family(ip) == 4})
    v6 = sorted({ip for ip in ips if _family(ip) == 6} | {link_local(port.mac_address)})
    note = f"anti-spoofing port {port.id}"
    rules = [
        nft.Rule([nft.match(nft.payload("ether", "saddr"), macs, "!="), nft.DROP], note),
        # ARP: the sender must be the port (a DHCP-less instance probes with 0.0.0.0)
        nft.Rule([nft.match(nft.payload("ether", "type"), "arp"),
                  nft.match(nft.payload("arp", "saddr ip"), [*v4, "0.0.0.0"] if v4
                            else ["0.0.0.0"], "!="), nft.DROP], note),
        nft.Rule([nft.match(nft.payload("ether", "type"), "arp"),
                  nft.match(nft.payload("arp", "saddr ether"), macs, "!="), nft.DROP], note),
        nft.Rule([nft.match(nft.payload("ether", "type"), "arp"), nft.ACCEPT], note),
        # DHCP client before the address check (it has no address yet)
        nft.Rule([nft.match(nft.payload("ip", "saddr"), "0.0.0.0"),
                  nft.match(nft.payload("udp", "sport"), 68),
                  nft.match(nft.payload("udp", "dport"), 67), nft.ACCEPT], note),
        nft.Rule([nft.match(nft.payload("udp", "sport"), [67, 547]), nft.DROP],
                 f"no DHCP server port {port.id}"),
        nft.Rule([nft.match(nft.payload("icmpv6", "type"), 134), nft.DROP],
                 f"no router advertisement port {port.id}"),
        # before the DAD rule: whatever the source, ND speaks only of the port itself
        *_neighbour_discovery(port, macs, v6, f"neighbour discovery port {port.id}"),
        # DAD probes come from ::
        nft.Rule([nft.match(nft.payload("ip6", "saddr"), "::"),
                  nft.match(nft.payload("icmpv6", "type"), list(ND_TYPES)), nft.ACCEPT], note),
    ]
    if v4:
        rules.append(nft.Rule([nft.match(nft.payload("ether", "type"), "ip"),
                               nft.match(nft.payload("ip", "saddr"), v4), nft.ACCEPT], note))
    rules.append(nft.Rule([nft.match(nft.payload("ether", "type"), "ip6"),
                           nft.match(nft.payload("ip6", "saddr"), v6), nft.ACCEPT], note))
    rules.append(nft.Rule([nft.DROP], note))  # any other source, or ethertype (VLAN tags)
    return nft.Chain(names.sg_spoof_chain(port.id), rules)


def _rule_exprs(rule: SgRule, sets: set[str]) -> list[nft.Expr] | None:
    """The match of one security-group rule; None if it can never match."""
    v6 = rule.ethertype == "IPv6"
    ipproto = "ip6" if v6 else "ip"
    out: list[nft.Expr] = [nft.match(nft.meta("nfproto"), "ipv6" if v6 else "ipv4")]
    proto = rule.protocol
    if v6 and proto == 1:
        proto = 58  # upstream: "icmp" on an IPv6 rule means ICMPv6
    if proto is not None:
        out.append(nft.match(nft.meta("l4proto"), proto))
    lo, hi = rule.port_range_min, rule.port_range_max
    if proto in (1, 58):
        icmp = "icmpv6" if proto == 58 else "icmp"
        if lo is not None:
            out.append(nft.match(nft.payload(icmp, "type"), lo))
            if hi is not None:
                out.append(nft.match(nft.payload(icmp, "code"), hi))
    elif proto in PORT_PROTOCOLS and lo is not None:
        hi = lo if hi is None else hi
        out.append(nft.match(nft.payload("th", "dport"), lo if lo == hi else f"{lo}-{hi}"))
    remote = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        if _family(rule.remote_ip_prefix) != (6 if v6 else 4):
            return None
        out.append(nft.match(nft.payload(ipproto, remote), rule.remote_ip_prefix))
    elif rule.remote_group_id:
        name = set_name(rule.remote_group_id, rule.ethertype)
        sets.add(name)
        out.append(nft.match(nft.payload(ipproto, remote), nft.set_ref(name)))
    return out


def _port_rules(port: Port, snap: Snapshot) -> tuple[SgRule, ...]:
    rules = {r.id: r for g in port.security_groups if g in snap.security_groups
             for r in snap.security_groups[g].rules}
    return tuple(rules[k] for k in sorted(rules))


def _filter_chains(port: Port, rules: Sequence[SgRule], sets: set[str]) \
        -> tuple[nft.Chain, nft.Chain]:
    ingress: list[nft.Rule] = [
        # what every instance needs: DHCP answers, neighbour discovery, RAs
        nft.Rule([nft.match(nft.payload("udp", "sport"), [67, 547]),
                  nft.match(nft.payload("udp", "dport"), [68, 546]), nft.ACCEPT],
                 f"dhcp port {port.id}"),
        nft.Rule([nft.match(nft.payload("icmpv6", "type"), [*ND_TYPES, 134]), nft.ACCEPT],
                 f"nd port {port.id}")]
    egress: list[nft.Rule] = [
        nft.Rule([nft.match(nft.payload("udp", "sport"), [68, 546]),
                  nft.match(nft.payload("udp", "dport"), [67, 547]), nft.RETURN],
                 f"dhcp port {port.id}"),
        nft.Rule([nft.match(nft.payload("icmpv6", "type"), list(ND_TYPES)), nft.RETURN],
                 f"nd port {port.id}")]
    for rule in rules:
        exprs = _rule_exprs(rule, sets)
        if exprs is None:
            continue
        ingress_rule = rule.direction == "ingress"
        (ingress if ingress_rule else egress).append(nft.Rule(
            [*exprs, nft.ACCEPT if ingress_rule else nft.RETURN], f"rule {rule.id}"))
    # fail closed: what no rule allows ends here
    ingress.append(nft.Rule([nft.DROP], f"default deny port {port.id}"))
    egress.append(nft.Rule([nft.DROP], f"default deny port {port.id}"))
    return nft.Chain(names.sg_ingress_chain(port.id), ingress), \
        nft.Chain(names.sg_egress_chain(port.id), egress)


@dataclass(frozen=True)
class _PortChains:
    """One port's own chains and their digests (for the fingerprint)."""

    spoof: nft.Chain | None
    filters: tuple[nft.Chain, ...]  # (in-…, out-…) when filtered
    sets: frozenset[str]  # the remote-group sets its rules use
    spoof_digest: str | None
    filter_digests: tuple[str, ...]


@functools.lru_cache(maxsize=8192)
def _port_chains(port: Port, rules: tuple[SgRule, ...]) -> _PortChains:
    """Built once per (port, rules): a pass rebuilds the whole ruleset, but usually for
    one port that changed (building 100 ports' chains cost ~50 ms a pass)."""
    spoof = _anti_spoofing(port, names.tap(port.id)) if port.anti_spoofing else None
    sets: set[str] = set()
    filters = _filter_chains(port, rules, sets) if port.filtering else ()
    return _PortChains(spoof, tuple(filters), frozenset(sets),
                       _digest(spoof) if spoof is not None else None,
                       tuple(_digest(c) for c in filters))


@functools.lru_cache(maxsize=8192)
def _port_dispatch(port_id: str, index: int) -> tuple[nft.Rule, ...]:
    """The rules naming the port by its index: the two marks, then the dispatch to its
    egress and ingress chains."""
    tap = names.tap(port_id)
    return (
        nft.Rule([nft.match(nft.meta("iifname"), tap), {"mangle": {
            "key": nft.meta("mark"), "value": {"|": [nft.meta("mark"), index << 16]}}}],
            f"from port {port_id}"),
        nft.Rule([nft.match(nft.meta("oifname"), tap), {"mangle": {
            "key": nft.meta("mark"), "value": {"|": [nft.meta("mark"), index]}}}],
            f"to port {port_id}"),
        nft.Rule([nft.match(_masked_mark(0xFFFF0000), index << 16),
                  nft.jump(names.sg_egress_chain(port_id))], f"from port {port_id}"),
        nft.Rule([nft.match(_masked_mark(0xFFFF), index),
                  nft.goto(names.sg_ingress_chain(port_id))], f"to port {port_id}"))


@functools.lru_cache(maxsize=8192)
def _pass_unfiltered(port_id: str, why: str) -> nft.Rule:
    """A tap whose port is not filtered (port security off, or a port the agent makes
    itself) is let through the bridge's last rule."""
    return nft.Rule([nft.match(nft.meta("iifname"), names.tap(port_id)), nft.ACCEPT],
                    f"{why} {port_id}")


#: the bridge's last rule: what comes from a tap the tables decide nothing for (no
#: sending mark, no rule above) is dropped (fail closed); uplinks are no taps
NO_DECISION = nft.Rule([nft.match(nft.meta("iifname"), names.TAP_WILDCARD),
                        nft.match(_masked_mark(0xFFFF0000), 0), nft.DROP],
                       "no filter decision")


@functools.lru_cache(maxsize=8192)
def _spoof_jump(port_id: str) -> nft.Rule:
    return nft.Rule([nft.match(nft.meta("iifname"), names.tap(port_id)),
                     nft.jump(names.sg_spoof_chain(port_id))], f"port {port_id}")


def desired(snap: Snapshot) -> Desired:
    ports = filtered_ports(snap)
    assert len(ports) <= MAX_PORTS, "more ports than the packet mark can number"
    spoof_jumps: list[nft.Rule] = []
    spoof_chains: list[nft.Chain] = []
    spoof_digests: list[str] = []
    marks: list[nft.Rule] = [nft.Rule([{"mangle": {"key": nft.meta("mark"), "value": 0}}],
                                      "no port known yet")]
    dispatch_out: list[nft.Rule] = []
    dispatch_in: list[nft.Rule] = []
    filter_chains: list[nft.Chain] = []
    filter_digests: list[str] = []
    sets: set[str] = set()
    filters: dict[str, PortFilter] = {}
    unfiltered: list[nft.Rule] = [_pass_unfiltered(pid, "agent port")
                                  for pid in sorted(snap.cloud_ports())]
    decided = {names.tap(pid) for pid in snap.cloud_ports()}
    for index, port in enumerate(ports, start=1):
        decided.add(names.tap(port.id))
        rules = _port_rules(port, snap) if port.filtering else ()
        own = _port_chains(port, rules)
        if own.spoof is not None and own.spoof_digest is not None:
            spoof_jumps.append(_spoof_jump(port.id))
            spoof_chains.append(own.spoof)
            spoof_digests.append(own.spoof_digest)
        if not port.filtering:
            unfiltered.append(_pass_unfiltered(port.id, "unfiltered port"))
            continue  # no groups, no connection tracking for it: allow all
        mark_from, mark_to, out, into = _port_dispatch(port.id, index)
        marks += (mark_from, mark_to)
        dispatch_out.append(out)
        dispatch_in.append(into)
        filter_chains.extend(own.filters)
        filter_digests.extend(own.filter_digests)
        sets |= own.sets
        filters[port.id] = PortFilter(port.id, names.tap(port.id), _addresses(port), rules)
    prerouting = nft.Chain("prerouting", spoof_jumps, "filter", "prerouting", -300, "accept")
    bridge_forward = nft.Chain("forward", [*marks, *unfiltered, NO_DECISION], "filter",
                               "forward", -300, "accept")
    inet_sets = []
    for name in sorted(sets):
        group_id, v = names.parse_sg_remote_set(name)  # type: ignore[misc]
        group = snap.security_groups.get(group_id)
        members = _uncovered(a for a in (group.members if group else ())
                             if _family(a) == v)
        inet_sets.append(nft.Set(name, "ipv4_addr" if v == 4 else "ipv6_addr", members,
                                 ("interval",)))
    forward = nft.Chain("forward", [
        nft.Rule([nft.match(nft.meta("mark"), 0), nft.ACCEPT], "no filtered port"),
        nft.Rule([nft.match(nft.ct("state"), ["established", "related"]), nft.ACCEPT],
                 "stateful"),
        nft.Rule([nft.match(nft.ct("state"), "invalid"), nft.DROP], "stateful"),
        *dispatch_out, *dispatch_in], "filter", "forward", 0, "accept")
    fingerprint = _fingerprint([
        ("bridge", [], [_digest(prerouting), _digest(bridge_forward), *spoof_digests]),
        ("inet", inet_sets, [_digest(forward), *filter_digests])])
    # the fingerprint rides in both tables, where one cheap `nft list sets` finds it
    stamp = nft.Set(FINGERPRINT_SET, "inet_service", (1,),
                    comments=((1, FINGERPRINT + fingerprint),))
    bridge = nft.Table("bridge", TABLE, (stamp,), (prerouting, bridge_forward, *spoof_chains))
    inet = nft.Table("inet", TABLE, (*inet_sets, stamp), (forward, *filter_chains))
    return Desired((bridge, inet), fingerprint, filters, frozenset(decided))


def _digest(chain: nft.Chain) -> str:
    shape = [chain.name, chain.type, chain.hook, chain.priority, chain.policy,
             [[list(r.expr), r.comment] for r in chain.rules]]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()


def _fingerprint(tables: Iterable[tuple[str, Sequence[nft.Set], Sequence[str]]]) -> str:
    """Of everything but the set elements (those change incrementally): per table its
    family, its sets' shapes and its chains' digests, in order."""
    shape = [[family, TABLE, [[s.name, s.type, list(s.flags)] for s in sets], list(digests)]
             for family, sets, digests in tables]
    return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]


# --- diff --------------------------------------------------------------------------------

def _flush_filters(port: PortFilter, rule: SgRule | None) -> list[tuple[str, ...]]:
    """conntrack -D filters for the flows ``rule`` allowed on ``port`` (None: all)."""
    out: list[tuple[str, ...]] = []
    for address in port.addresses:
        v = _family(address)
        if rule is not None and rule.ethertype != f"IPv{v}":
            continue
        proto: tuple[str, ...] = ()
        if rule is not None and rule.protocol is not None:
            number = 58 if v == 6 and rule.protocol == 1 else rule.protocol
            name = CONNTRACK_PROTOCOLS.get(number)
            proto = ("-p", name) if name else ()
        fam = ("-f", "ipv6") if v == 6 else ()
        if rule is None or rule.direction == "ingress":
            out.append((*fam, *proto, "-d", address))
        if rule is None or rule.direction == "egress":
            out.append((*fam, *proto, "-s", address))
    return out


def diff(want: Desired, seen: Observed, before: Desired | None = None) -> list[Op]:
    """The tables changed when their shape changed (patched when the kernel holds what
    was applied last, else replaced), else set elements added and deleted; then
    conntrack flushed for what is allowed no more.  ``before`` is what was applied last
    (None after a restart: a changed port is flushed whole)."""
    plan: list[Op] = []
    removed_members: dict[str, set[str]] = {}
    if seen.fingerprint != want.fingerprint:
        if seen.fingerprint is None:
            return [ReplaceTables(want)]  # a fresh table: nothing was filtered, nothing to cut
        if before is not None and seen.fingerprint == before.fingerprint:
            plan.append(PatchTables(want, before, seen.held))
        else:
            plan.append(ReplaceTables(want))
        for table in want.tables:
            for s in table.sets:
                gone = set(seen.sets.get(s.name, ())) - {str(e) for e in s.elements}
                if gone and s.name != FINGERPRINT_SET:
                    removed_members[s.name] = gone
    else:
        for table in want.tables:
            for s in table.sets:
                if s.name == FINGERPRINT_SET:
                    continue  # part of the fingerprint itself
                have = set(seen.sets.get(s.name, ()))
                wanted = {str(e) for e in s.elements}
                add, gone = sorted(wanted - have), sorted(have - wanted)
                if add or gone:
                    plan.append(SetElements(s.name, tuple(add), tuple(gone)))
                if gone:
                    removed_members[s.name] = set(gone)
    filters: list[tuple[str, ...]] = []
    old_ports = before.ports if before is not None else {}
    for pid, port in sorted(want.ports.items()):
        old = old_ports.get(pid)
        if old is None:
            if before is None and seen.fingerprint != want.fingerprint:
                filters += _flush_filters(port, None)  # unknown past: fail closed
            continue
        now = {r.id for r in port.rules}
        for rule in old.rules:
            if rule.id not in now:
                filters += _flush_filters(old, rule)
        for rule in port.rules:
            if rule.remote_group_id is None:
                continue
            gone = removed_members.get(set_name(rule.remote_group_id, rule.ethertype), ())
            for member in sorted(gone):
                for address in port.addresses:
                    if _family(address) != _family(member):
                        continue
                    fam = ("-f", "ipv6") if _family(address) == 6 else ()
                    src, dst = (member, address) if rule.direction == "ingress" \
                        else (address, member)
                    filters.append((*fam, "-s", src.split("/")[0], "-d", dst))
    if filters:
        plan.append(FlushConntrack(tuple(dict.fromkeys(filters))))
    return plan


def _stamp(sets: Iterable[nft.Set]) -> str | None:
    for s in sets:
        if s.name == FINGERPRINT_SET:
            for _, comment in s.comments:
                if comment.startswith(FINGERPRINT):
                    return comment[len(FINGERPRINT):]
    return None


Flow = tuple[int, str, str, str]  # IP version, protocol, original source and destination


def flows(listing: str) -> list[Flow]:
    """The entries of ``conntrack -L -o extended`` (both families)."""
    out = []
    for line in listing.splitlines():
        words = line.split()
        if len(words) < 3 or words[0] not in ("ipv4", "ipv6"):
            continue
        src = next((w[4:] for w in words if w.startswith("src=")), None)
        dst = next((w[4:] for w in words if w.startswith("dst=")), None)
        if src and dst:
            out.append((4 if words[0] == "ipv4" else 6, words[2],
                        str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))))
    return out


def matches(f: tuple[str, ...], flow: Flow) -> bool:
    """Whether ``conntrack -D <f>`` would delete ``flow`` (the filters made here are
    flag/value pairs: -f, -p, -s, -d; -s and -d match the original direction)."""
    args = dict(zip(f[::2], f[1::2], strict=True))
    version, proto, src, dst = flow
    return (version == (6 if args.get("-f") == "ipv6" else 4)
            and args.get("-p", proto) == proto
            and ("-s" not in args or str(ipaddress.ip_address(args["-s"])) == src)
            and ("-d" not in args or str(ipaddress.ip_address(args["-d"])) == dst))


# --- the reconciler ------------------------------------------------------------------------

class Firewall:
    """The security-groups reconciler.  Its outcome's ``decided`` fact is the taps the
    kernel's tables hold a decision for: the bridges plug no other (fail closed)."""

    name = "firewall"
    after = ("l3", "dhcp")  # their ports (made this pass) are the agent's own: unfiltered
    scoped = True

    def __init__(self, netns: str | None) -> None:
        self.netns = netns
        self.applied: Desired | None = None

    def kernel(self) -> Observed:
        # the sets only (one nft run), not the tables: listing ~2,600 rules for 100
        # ports and parsing them cost ~150 ms a pass
        sets = nft.list_sets(netns=self.netns)
        stamps = {_stamp(sets.get((family, TABLE), ())) for family in ("bridge", "inet")}
        if len(stamps) != 1 or None in stamps:
            return Observed()  # a table missing, or not ours (or from before the stamp)
        return Observed(stamps.pop(), {s.name: tuple(str(e) for e in s.elements)
                                       for s in sets.get(("inet", TABLE), ())
                                       if s.name != FINGERPRINT_SET},
                        {(family, TABLE): tuple(sets[(family, TABLE)])
                         for family in ("bridge", "inet")})

    def remember(self, want: Desired) -> None:
        """What is in the kernel now (after a pass without failure)."""
        self.applied = want

    # -- the Reconciler protocol --------------------------------------------------------

    def desired(self, p: Pass) -> Desired:
        return desired(p.snapshot)

    def observe(self, p: Pass, want: Desired) -> Observed:
        return self.kernel()

    def diff(self, p: Pass, want: Desired, seen: Observed) -> list[Op]:
        return diff(want, seen, self.applied)

    def apply(self, p: Pass, plan: Sequence[Op]) -> dict[str, Exception]:
        failed = apply_plan(plan, self._do, "firewall")
        if not failed:
            for op in plan:
                if isinstance(op, ReplaceTables | PatchTables):
                    self.applied = op.desired
        return failed

    def report(self, p: Pass, want: Desired, seen: Observed, plan: Sequence[Op],
               failed: Mapping[str, Exception], out: Reports) -> Outcome:
        if not failed:
            self.remember(want)
            return Outcome(len(plan), facts={"decided": want.decided})
        # the tables are one transaction: the kernel holds what was applied last (after
        # a restart that is unknown, and no tap has a decision), the new ports none.
        # Retried with backoff through the networks of the ports it filters.
        held = self.applied.decided if self.applied is not None else frozenset()
        return Outcome(len(plan), frozenset(pt.network_id for pt in p.snapshot.ports.values()
                                            if pt.local),
                       facts={"decided": held & want.decided})

    def _do(self, op: Op) -> None:
        if isinstance(op, ReplaceTables):
            nft.apply_tables(op.desired.tables, netns=self.netns)
        elif isinstance(op, PatchTables):
            try:
                patched = nft.patch_tables(op.before.tables, op.desired.tables, held=op.held,
                                           netns=self.netns)
            except CommandError as exc:  # the kernel is not quite what we left: all anew
                log.warning("patching the firewall tables failed, replacing them: %s", exc)
                patched = False
            if not patched:
                nft.apply_tables(op.desired.tables, netns=self.netns)
        elif isinstance(op, SetElements):
            nft.change_elements("inet", TABLE, op.set_name, op.add, op.delete,
                                netns=self.netns)
        else:
            # one `conntrack -D` per filter only where a flow matches it: a port leaving a
            # group of a hundred makes a hundred filters, mostly with nothing to cut
            listed = run(["conntrack", "-L", "-o", "extended"], netns=self.netns, check=False)
            found = flows(listed.stdout) if listed.ok else None
            for f in op.filters:
                if found is not None and not any(matches(f, flow) for flow in found):
                    continue
                try:
                    # exit 1 when nothing matched: not an error
                    run(["conntrack", "-D", *f], netns=self.netns, check=False)
                except CommandError as exc:  # pragma: no cover - missing tool etc.
                    log.warning("conntrack -D %s: %s", " ".join(f), exc)
