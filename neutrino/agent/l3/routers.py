"""L3: per router this host realises, a namespace ``qrouter-<router id>`` that routes
between the router's subnets and, through its gateway, to the external network.

- each interface is a veth pair ``tap<port[:11]>`` (agent's namespace, plugged into the
  network's bridge by the L2 reconciler, like an instance's tap) / ``qr-<port[:11]>``
  (router namespace, the port's MAC and addresses: the subnets' gateways);
- the gateway likewise, ``tap…`` / ``qg-<port[:11]>``, on the external network's bridge
  (``br-ex`` by ``bridge_mappings``), holding the gateway address and every floating IP
  as a /32 (so the router answers ARP for them);
- forwarding is on inside the router namespace only; routes: the default via the
  external subnet's gateway, the extra routes;
- NAT in one nftables table per router namespace (``ip neutrino-l3``), replaced
  atomically: 1:1 DNAT/SNAT per floating IP, SNAT of everything else leaving through the
  gateway (``enable_snat``), and the hairpin masquerade that lets an instance reach a
  floating IP behind its own router;
- a new IPv4 address is announced with gratuitous ARP (``arping -U``), so neighbours
  that cached an old owner move over at once;
- a floating IP taken away (or moved to another fixed IP) takes its connections with it:
  their NAT lives in conntrack, not in the rules, so its entries are deleted once the
  rules and addresses changed (OSSN-0020: else the instance stays reachable).

Keys are router ids.  Every rule carries a comment naming what it came from and a
short hash of its expression, so the table observed is compared with the one wanted
without rewriting it (a restart re-applies nothing).  Only namespaces ``qrouter-…``
are ever deleted; a sandboxed agent (``agent_netns``) only considers the routers it
left a marker for under its state directory, since it shares /run/netns with others.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from neutrino import names
from neutrino.agent.model import Router, RouterPort, Snapshot
from neutrino.agent.reconciler import Outcome, Pass, Reports, apply_plan
from neutrino.bus import messages as m
from neutrino.linux import addressing, devices, namespaces, nft, process, routing, sysctl
from neutrino.linux.devices import Link
from neutrino.linux.errors import CommandError, NamespaceNotFound
from neutrino.linux.run import run, spawn

log = logging.getLogger(__name__)

#: how router keys are told from network ids in the agent's dirty set
KEY_PREFIX = "router:"
NAT_FAMILY = "ip"
NAT_TABLE = names.L3_NAT_TABLE
#: gratuitous ARPs sent for a new address (upstream's send_arp_for_ha default)
GARP_COUNT = 3
_IPV6 = os.path.exists("/proc/sys/net/ipv6/conf/all/forwarding")


def router_key(router_id: str) -> str:
    return KEY_PREFIX + router_id


def split_keys(keys: Iterable[str]) -> tuple[list[str], list[str]]:
    """(network ids, router ids) of a set of dirty keys."""
    nets, routers = [], []
    for key in keys:
        if key.startswith(KEY_PREFIX):
            routers.append(key[len(KEY_PREFIX):])
        else:
            nets.append(key)
    return sorted(nets), sorted(routers)


def sysctls() -> dict[str, str]:
    """Inside a router namespace: forward, and never tell an instance to go around the
    router (a hairpinned floating IP must come back through the NAT)."""
    values = {"net.ipv4.conf.default.send_redirects": "0",
              "net.ipv4.conf.all.send_redirects": "0", "net.ipv4.ip_forward": "1"}
    if _IPV6:
        values["net.ipv6.conf.all.forwarding"] = "1"
    return values


@dataclass(frozen=True)
class L3Config:
    #: the agent's namespace: where the bridges and the taps live
    netns: str | None = None
    #: markers of the routers this agent made (``<state>/l3/<router id>``)
    state_dir: Path | None = None
    #: sandboxed: /run/netns is shared with other agents, only marked routers are ours
    sandboxed: bool = False


@dataclass(frozen=True)
class PortSpec:
    port_id: str
    device: str  # qr-… / qg-… in the router namespace
    tap: str  # its peer in the agent's namespace
    mac: str
    mtu: int
    addresses: tuple[str, ...]  # ip/prefixlen, normalised


@dataclass(frozen=True)
class RouterSpec:
    router_id: str
    namespace: str
    ports: tuple[PortSpec, ...]
    #: (ip version, next hop) of the default routes, through the gateway
    defaults: tuple[tuple[int, str], ...] = ()
    #: (destination, nexthop) of the extra routes
    routes: tuple[tuple[str, str], ...] = ()
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nat: tuple[nft.Chain, ...] = ()
    floatingips: tuple[str, ...] = ()  # the ids realised with the table
    gateway: str | None = None  # the qg- device
    #: (floating IP, fixed IP) of the 1:1 NAT in ``nat``
    fip_nat: frozenset[tuple[str, str]] = frozenset()

    @property
    def devices(self) -> set[str]:
        return {p.device for p in self.ports}


@dataclass(frozen=True)
class RouterSeen:
    marked: bool = False
    namespace: bool = False
    links: Mapping[str, Link] = field(default_factory=dict)  # qr-/qg- in the namespace
    addresses: Mapping[str, frozenset[str]] = field(default_factory=dict)
    taps: frozenset[str] = frozenset()  # the peers present in the agent's namespace
    defaults: frozenset[tuple[int, str]] = frozenset()
    routes: frozenset[tuple[str, str]] = frozenset()  # static, non-default
    sysctls: Mapping[str, str] = field(default_factory=dict)
    nat: tuple | None = None  # signature() of the table, None: no table
    fip_nat: frozenset[tuple[str, str]] = frozenset()  # as the table holds it


# -- steps ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class EnsureNamespace:
    key: str
    namespace: str


@dataclass(frozen=True)
class SetSysctls:
    key: str
    namespace: str
    values: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EnsurePort:
    key: str
    namespace: str
    tap: str
    device: str
    mac: str
    mtu: int


@dataclass(frozen=True)
class EnsureAddresses:
    key: str
    namespace: str
    device: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class EnsureRoutes:
    key: str
    namespace: str
    defaults: tuple[tuple[int, str, str], ...]  # (version, next hop, device)
    routes: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class ApplyNat:
    key: str
    namespace: str
    chains: tuple[nft.Chain, ...]


@dataclass(frozen=True)
class DeleteNat:
    key: str
    namespace: str


@dataclass(frozen=True)
class ForgetConnections:
    """Delete the router's conntrack entries through a floating IP: those made to it
    (original destination) and those leaving as it (reply destination)."""

    key: str
    namespace: str
    address: str


@dataclass(frozen=True)
class Announce:
    key: str
    namespace: str
    device: str
    ip: str


@dataclass(frozen=True)
class DeletePort:
    key: str
    namespace: str
    device: str


@dataclass(frozen=True)
class DeleteNamespace:
    key: str
    namespace: str


@dataclass(frozen=True)
class Forget:
    """Drop the marker of a router that is gone."""

    key: str


L3Op = (EnsureNamespace | SetSysctls | EnsurePort | EnsureAddresses | EnsureRoutes | ApplyNat
        | DeleteNat | ForgetConnections | Announce | DeletePort | DeleteNamespace | Forget)


# -- desired ---------------------------------------------------------------------------------

def _cidr(ip: str, cidr: str) -> str:
    return str(ipaddress.ip_interface(f"{ip}/{ipaddress.ip_network(cidr).prefixlen}"))


def _port(port: RouterPort, device: str, extra: Iterable[str] = ()) -> PortSpec:
    addresses = [_cidr(a.ip_address, a.cidr) for a in port.fixed_ips]
    addresses += [str(ipaddress.ip_interface(a)) for a in extra]
    return PortSpec(port.id, device, names.tap(port.id), port.mac_address, port.mtu,
                    tuple(sorted(set(addresses))))


def _rule(label: str, expr: list[nft.Expr]) -> nft.Rule:
    """A rule whose comment names its source and hashes its expression: comparing the
    comments of the table seen with ours tells whether it is ours, unchanged."""
    digest = hashlib.sha1(json.dumps([label, expr], sort_keys=True).encode()).hexdigest()[:10]
    return nft.Rule(expr, f"{label} #{digest}")


def nat_chains(router: Router, gateway: PortSpec | None) -> tuple[nft.Chain, ...]:
    """The router's NAT, or none without an IPv4 gateway address."""
    if router.gateway is None or gateway is None:
        return ()
    v4 = [a.ip_address for a in router.gateway.fixed_ips
          if ipaddress.ip_address(a.ip_address).version == 4]
    if not v4:
        return ()
    qg = gateway.device
    rid = router.id
    daddr, saddr = nft.payload("ip", "daddr"), nft.payload("ip", "saddr")
    oif, iif = nft.meta("oifname"), nft.meta("iifname")
    status = nft.ct("status")
    pre, out, post = [], [], []
    for fip in sorted(router.floatingips, key=lambda f: f.floating_ip_address):
        dnat = [nft.match(daddr, fip.floating_ip_address), {"dnat": {"addr": fip.fixed_ip_address}}]
        pre.append(_rule(f"fip {fip.id}", dnat))
        out.append(_rule(f"fip {fip.id}", dnat))
    # east-west between the router's subnets is routed untouched
    post.append(_rule(f"east-west {rid}", [nft.match(oif, qg, "!="),
                                           nft.match(status, "dnat", "!"), nft.ACCEPT]))
    for fip in sorted(router.floatingips, key=lambda f: f.floating_ip_address):
        post.append(_rule(f"fip {fip.id}", [nft.match(saddr, fip.fixed_ip_address),
                                            {"snat": {"addr": fip.floating_ip_address}}]))
    if router.enable_snat:
        post.append(_rule(f"snat {rid}", [nft.match(oif, qg), {"snat": {"addr": v4[0]}}]))
    # an instance reaching a floating IP behind its own router: the answer must come back
    # through the router to be un-NATed, so the source becomes the router's
    post.append(_rule(f"hairpin {rid}", [nft.match(iif, qg, "!="),
                                         nft.match(status, "dnat", "in"),
                                         {"masquerade": None}]))
    return (nft.Chain("prerouting", tuple(pre), "nat", "prerouting", -100),
            nft.Chain("output", tuple(out), "nat", "output", -100),
            nft.Chain("postrouting", tuple(post), "nat", "postrouting", 100))


def fip_nat(chains: Iterable[nft.Chain]) -> frozenset[tuple[str, str]]:
    """(floating IP, fixed IP) of the DNAT rules of a NAT table, ours or as listed."""
    daddr = nft.payload("ip", "daddr")
    out = set()
    for chain in chains:
        if chain.name != "prerouting":
            continue
        for rule in chain.rules:
            dst = next((e["match"]["right"] for e in rule.expr
                        if "match" in e and e["match"]["left"] == daddr), None)
            to = next((e["dnat"].get("addr") for e in rule.expr if "dnat" in e), None)
            if isinstance(dst, str) and isinstance(to, str):
                out.add((dst, to))
    return frozenset(out)


def signature(chains: Iterable[nft.Chain]) -> tuple:
    """What identifies a NAT table's content: its chains and the comments of its rules."""
    return tuple(sorted((c.name, c.type, c.hook, c.priority,
                         tuple(r.comment or "" for r in c.rules)) for c in chains))


def router_spec(router: Router) -> RouterSpec:
    ports = [_port(p, names.router_interface(p.id)) for p in router.interfaces]
    gateway = None
    defaults: list[tuple[int, str]] = []
    if router.gateway is not None:
        fips = [f"{f.floating_ip_address}/32" for f in router.floatingips]
        gateway = _port(router.gateway, names.router_gateway(router.gateway.id), fips)
        ports.append(gateway)
        for a in router.gateway.fixed_ips:
            if a.gateway_ip:
                version = ipaddress.ip_address(a.gateway_ip).version
                if version not in {v for v, _ in defaults}:
                    defaults.append((version, str(ipaddress.ip_address(a.gateway_ip))))
    routes = tuple(sorted((str(ipaddress.ip_network(d, strict=False)),
                           str(ipaddress.ip_address(h)))
                          for d, h in router.routes
                          if ipaddress.ip_network(d, strict=False).prefixlen > 0))
    chains = nat_chains(router, gateway)
    return RouterSpec(router.id, names.router_namespace(router.id), tuple(ports),
                      tuple(sorted(defaults)), routes, sysctls(), chains,
                      tuple(sorted(f.id for f in router.floatingips)) if chains else (),
                      gateway.device if gateway is not None else None, fip_nat(chains))


def desired(snapshot: Snapshot) -> dict[str, RouterSpec]:
    """Router id -> what its namespace should hold, for the routers up here."""
    return {r.id: router_spec(r) for r in snapshot.routers.values() if r.admin_state_up}


# -- diff (pure) -------------------------------------------------------------------------------

def _v4(cidr: str) -> str | None:
    iface = ipaddress.ip_interface(cidr)
    return str(iface.ip) if iface.version == 4 else None


def _build(spec: RouterSpec, seen: RouterSeen) -> list[L3Op]:
    key, ns = spec.router_id, spec.namespace
    plan: list[L3Op] = []
    if not seen.namespace:
        plan.append(EnsureNamespace(key, ns))
    if not seen.namespace or dict(seen.sysctls) != dict(spec.sysctls):
        plan.append(SetSysctls(key, ns, tuple(spec.sysctls.items())))
    # stale devices first: a subnet moving to another port never has two of them
    for device in sorted(set(seen.links) - spec.devices):
        plan.append(DeletePort(key, ns, device))
    for p in spec.ports:
        link = seen.links.get(p.device)
        if link is None or (link.mac or "").lower() != p.mac or link.mtu != p.mtu \
                or not link.up or p.tap not in seen.taps:
            plan.append(EnsurePort(key, ns, p.tap, p.device, p.mac, p.mtu))
    # NAT before the floating IPs' addresses: an address never answers un-NATed
    want_nat = signature(spec.nat) if spec.nat else None
    if want_nat != seen.nat:
        plan.append(ApplyNat(key, ns, spec.nat) if spec.nat else DeleteNat(key, ns))
    announce: list[L3Op] = []
    for p in spec.ports:
        have = seen.addresses.get(p.device, frozenset()) if p.device in seen.links else frozenset()
        if have != frozenset(p.addresses):
            plan.append(EnsureAddresses(key, ns, p.device, p.addresses))
            announce += [Announce(key, ns, p.device, ip) for a in p.addresses
                         if a not in have and (ip := _v4(a))]
    if seen.defaults != frozenset(spec.defaults) or seen.routes != frozenset(spec.routes):
        plan.append(EnsureRoutes(key, ns, tuple((v, hop, spec.gateway or "")
                                                for v, hop in spec.defaults), spec.routes))
    # last: once no rule or address makes a new one, the old mappings' connections go
    forget = [ForgetConnections(key, ns, fip)
              for fip in sorted({f for f, _ in seen.fip_nat - spec.fip_nat})]
    return plan + announce + forget


def _teardown(key: str, seen: RouterSeen) -> list[L3Op]:
    """Reverse order: the ports (their taps go with them), then the namespace."""
    ns = names.router_namespace(key)
    plan: list[L3Op] = []
    if seen.namespace:
        plan += [DeletePort(key, ns, d) for d in sorted(seen.links)]
        plan.append(DeleteNamespace(key, ns))
    if seen.marked:
        plan.append(Forget(key))
    return plan


def diff(want: Mapping[str, RouterSpec], seen: Mapping[str, RouterSeen],
         keys: Iterable[str] | None = None) -> list[L3Op]:
    """Steps for ``keys`` (router ids; None: every router either side knows)."""
    todo = set(want) | set(seen) if keys is None else set(keys)
    plan: list[L3Op] = []
    for key in sorted(todo):
        if key in want:
            plan.extend(_build(want[key], seen.get(key, RouterSeen())))
        else:
            plan.extend(_teardown(key, seen.get(key, RouterSeen())))
    return plan


# -- observe, apply, report ----------------------------------------------------------------------

@dataclass(frozen=True)
class RoutersObserved:
    """The routers a pass looked at (every one this agent may own, in a full pass) and
    what their namespaces hold."""

    keys: frozenset[str]
    routers: Mapping[str, RouterSeen]


class L3:
    """The routers reconciler (no dependency: it makes its ports' taps, L2 plugs them)."""

    name = "l3"
    after: tuple[str, ...] = ()
    scoped = False  # a pass for routers only is its own

    def __init__(self, cfg: L3Config) -> None:
        self.cfg = cfg
        self.arping = shutil.which("arping") is not None
        if not self.arping:
            log.warning("arping not found (iputils-arping): new floating IPs are not "
                        "announced with gratuitous ARP")
        #: router id -> the floating IPs last reported ACTIVE through it
        self._active_fips: dict[str, set[str]] = {}

    # -- the Reconciler protocol --------------------------------------------------------

    def desired(self, p: Pass) -> dict[str, RouterSpec]:
        return desired(p.snapshot)

    def observe(self, p: Pass, want: Mapping[str, RouterSpec]) -> RoutersObserved:
        keys = self.all_keys(want) if p.full else set(p.routers or ())
        return RoutersObserved(frozenset(keys), self.kernel(keys))

    def diff(self, p: Pass, want: Mapping[str, RouterSpec],
             seen: RoutersObserved) -> list[L3Op]:
        return diff(want, seen.routers, seen.keys)

    def apply(self, p: Pass, plan: Sequence[L3Op]) -> dict[str, Exception]:
        return apply_plan(plan, self._do, "l3")

    def report(self, p: Pass, want: Mapping[str, RouterSpec], seen: RoutersObserved,
               plan: Sequence[L3Op], failed: Mapping[str, Exception],
               out: Reports) -> Outcome:
        out.l3(*self.reports(p.snapshot, seen.keys, want, failed))
        again: set[str] = set()
        if not p.full:
            # router ports that came or went: their networks' bridges plug or drop the
            # taps just made or removed, in the next pass
            again = self.networks_touched(p.before, p.snapshot, p.routers or ()) \
                - set(p.networks or ())
        return Outcome(len(plan), frozenset(router_key(k) for k in failed), frozenset(again))

    # -- keys ---------------------------------------------------------------------------------

    def marked(self) -> set[str]:
        root = self.cfg.state_dir
        if root is None or not root.is_dir():
            return set()
        return {p.name for p in root.iterdir() if not p.name.startswith(".")}

    def _mark(self, router_id: str, on: bool) -> None:
        root = self.cfg.state_dir
        if root is None:
            return
        if on:
            root.mkdir(parents=True, exist_ok=True)
            (root / router_id).touch()
        else:
            (root / router_id).unlink(missing_ok=True)

    def all_keys(self, want: Mapping[str, RouterSpec]) -> set[str]:
        """Every router this agent may own: wanted, marked, and (unless sandboxed)
        every ``qrouter-`` namespace there is."""
        keys = set(want) | self.marked()
        if not self.cfg.sandboxed:
            keys |= {p.ident for n in namespaces.list_namespaces()
                     if (p := names.parse_namespace(n)) and p.kind == names.Kind.ROUTER_NAMESPACE}
        return keys

    @staticmethod
    def keys_for_change(msg: m.Changed, snapshot: Snapshot) -> set[str]:
        """The routers a change event concerns (read from our own snapshot only)."""
        keys: set[str] = set()
        if msg.kind == "router":
            keys.add(router_key(msg.id))
        if msg.router_id:
            keys.add(router_key(msg.router_id))
        for r in snapshot.routers.values():
            ports = {p.id for p in (*r.interfaces, *((r.gateway,) if r.gateway else ()))}
            if (msg.kind == "floatingip" and any(f.id == msg.id for f in r.floatingips)) \
                    or (msg.kind == "port" and (msg.id in ports or any(
                        f.port_id == msg.id for f in r.floatingips))) \
                    or (msg.kind in ("network", "subnet") and msg.network_id in r.network_ids):
                keys.add(router_key(r.id))
        return keys

    @staticmethod
    def networks_touched(before: Snapshot, after: Snapshot, router_ids: Iterable[str]) -> set[str]:
        """The networks whose router ports came or went with these routers' change: their
        bridges must plug or drop the ports' taps (a floating IP change touches none)."""
        touched: set[str] = set()
        for rid in router_ids:
            old, new = before.routers.get(rid), after.routers.get(rid)
            ports = [{(p.id, p.network_id) for p in (*r.interfaces,
                                                      *((r.gateway,) if r.gateway else ()))}
                     if r is not None and r.admin_state_up else set() for r in (old, new)]
            touched |= {net for _, net in ports[0] ^ ports[1]}
        return touched

    # -- observe ----------------------------------------------------------------------------

    def kernel(self, keys: Iterable[str]) -> dict[str, RouterSeen]:
        marked = self.marked()
        seen = {}
        for key in set(keys):
            try:
                seen[key] = self._observe(key, key in marked)
            except NamespaceNotFound:  # removed while we looked: as if it never was
                seen[key] = RouterSeen(marked=key in marked)
        return seen

    @staticmethod
    def _observe(key: str, marked: bool) -> RouterSeen:
        ns = names.router_namespace(key)
        if not namespaces.namespace_exists(ns):
            return RouterSeen(marked=marked)
        inside = namespaces.view(ns)  # one socket for links, addresses and routes
        links = {}
        for lk in inside.links:
            parsed = names.parse_link(lk.name)
            if parsed is not None and parsed.kind in (names.Kind.ROUTER_INTERFACE,
                                                      names.Kind.ROUTER_GATEWAY):
                links[lk.name] = lk
        addresses = {
            name: frozenset(a for a in inside.addresses.get(name, ())
                            if not ipaddress.ip_interface(a).ip.is_link_local)
            for name in links}
        # a veth's ends live and die together: a qr-/qg- device means its tap is there
        taps = frozenset(names.tap(d[3:]) for d in links)
        defaults = frozenset((r.version, r.gateway) for r in inside.routes
                             if r.is_default and r.gateway)
        static = frozenset((r.dst, r.gateway) for r in inside.routes
                           if r.proto == routing.RTPROT_STATIC and not r.is_default
                           and r.gateway)
        table = nft.list_table(NAT_FAMILY, NAT_TABLE, netns=ns)
        return RouterSeen(marked, True, links, addresses, taps, defaults, static,
                          sysctl.get_many(list(sysctls()), netns=ns),
                          signature(table.chains) if table is not None else None,
                          fip_nat(table.chains) if table is not None else frozenset())

    # -- apply --------------------------------------------------------------------------------

    def _do(self, op: L3Op) -> None:
        match op:
            case EnsureNamespace(key, ns):
                self._mark(key, True)  # before: a crash between the two leaves it ours
                namespaces.ensure_namespace(ns)
            case SetSysctls(_, ns, values):
                sysctl.set_many(dict(values), netns=ns)
            case EnsurePort(_, ns, tap, device, mac, mtu):
                devices.ensure_veth(tap, device, netns=self.cfg.netns, peer_netns=ns, mtu=mtu)
                devices.set_link(device, mac=mac, up=True, netns=ns)
            case EnsureAddresses(_, ns, device, addresses):
                addressing.ensure_addresses(device, addresses, netns=ns)
            case ApplyNat(_, ns, chains):
                nft.apply_table(NAT_FAMILY, NAT_TABLE, chains, netns=ns)
            case DeleteNat(_, ns):
                nft.delete_table(NAT_FAMILY, NAT_TABLE, netns=ns)
            case EnsureRoutes(_, ns, defaults, routes):
                for version in (4, 6):
                    hop = next(((h, d) for v, h, d in defaults if v == version), None)
                    if hop is None:
                        if version == 4 or _IPV6:
                            routing.delete_default_route(family=version, netns=ns)
                    else:
                        routing.ensure_default_route(hop[0], dev=hop[1] or None, netns=ns)
                routing.ensure_routes([routing.Route(d, gateway=h) for d, h in routes],
                                      netns=ns, prune=True)
            case ForgetConnections(_, ns, address):
                for direction in ("-d", "-q"):  # made to it; leaving as it (SNAT)
                    try:
                        # exit 1 when nothing matched: not an error
                        run(["conntrack", "-D", "-f", "ipv4", direction, address], netns=ns,
                            check=False)
                    except CommandError as exc:  # pragma: no cover - no conntrack tool
                        log.warning("conntrack -D %s %s: %s", direction, address, exc)
            case Announce(_, ns, device, ip):
                if self.arping:
                    spawn(["arping", "-U", "-c", str(GARP_COUNT), "-I", device, ip], netns=ns)
            case DeletePort(_, ns, device):
                devices.delete_link(device, netns=ns)  # its tap goes with it
            case DeleteNamespace(key, ns):
                for pid in process.namespace_pids(ns):
                    process.terminate(pid, timeout=2)  # an arping still announcing
                namespaces.delete_namespace(ns)
                self._mark(key, False)
            case Forget(key):
                self._mark(key, False)
            case _:
                raise AssertionError(f"unknown l3 step {op!r}")

    # -- reports ------------------------------------------------------------------------------

    def reports(self, snapshot: Snapshot, keys: Iterable[str], want: Mapping[str, RouterSpec],
                failed: Mapping[str, Exception]) -> tuple[list[dict], list[dict]]:
        """The status of the routers in ``keys`` and of their floating IPs, as realised,
        each with the revision realised (the router's and floating IP's
        ``revision_number`` in the snapshot; 0 when the server did not say, as for a
        floating IP taken away): ``(routers, floatingips)`` for a RouterReports message."""
        routers, fips = [], []
        for key in sorted(set(keys)):
            router = snapshot.routers.get(key)
            spec = want.get(key)
            before = self._active_fips.pop(key, set())
            if spec is not None and key not in failed:
                status, now = "ACTIVE", set(spec.floatingips)
            else:
                status, now = ("ERROR" if key in failed else "DOWN"), set()
            if router is not None:
                routers.append({"router_id": key, "status": status,
                                "revision": router.revision_number})
                fips += [{"floatingip_id": f.id,
                          "status": "ACTIVE" if f.id in now else
                          ("ERROR" if key in failed else "DOWN"),
                          "revision": f.revision_number}
                         for f in router.floatingips]
            fips += [{"floatingip_id": f, "status": "DOWN", "revision": 0}
                     for f in sorted(before - now)
                     if router is None or f not in {x.id for x in router.floatingips}]
            if now:
                self._active_fips[key] = now
        return routers, fips
