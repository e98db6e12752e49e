"""DHCP: per network this host serves, a namespace ``qdhcp-<network>`` holding the
DHCP port (veth ``tap…`` on the bridge side, ``ns-…`` inside) and a supervised
DHCP server with a static lease per port.

Keys are network ids.  The DHCP port itself is the server's to make: when the
snapshot has none (or one missing an address on a DHCP subnet) the plan asks
for it over the bus and waits for the next snapshot.  Changes to leases and
options are files rewritten atomically plus a reload (no lease is lost); changes
to the server's own configuration restart it.

The server program is behind :class:`DhcpBackend` (dnsmasq now, Kea next).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from neutrino import names
from neutrino.agent.dhcp.dnsmasq import CONF, DhcpFiles, dhcp_subnets, served_ports
from neutrino.agent.model import Network, Port, Snapshot
from neutrino.agent.reconciler import Outcome, Pass, Reports, apply_plan
from neutrino.linux import addressing, devices, namespaces, process

log = logging.getLogger(__name__)


class DhcpBackend(Protocol):
    name: str

    def render(self, net: Network, ports: list[Port], interface: str) -> DhcpFiles: ...
    def daemon(self, network_id: str, netns: str) -> process.Daemon: ...
    def read(self, network_id: str) -> dict[str, str | None]: ...
    def networks(self) -> list[str]: ...
    def write(self, network_id: str, content: Mapping[str, str]) -> list[str]: ...
    def remove(self, network_id: str) -> None: ...


@dataclass(frozen=True)
class DhcpSpec:
    network_id: str
    namespace: str
    port: Port | None  # this host's DHCP port on the network
    #: the port is missing, or lacks an address on a DHCP subnet: ask the server
    need_port: bool
    mtu: int = 1500
    addresses: tuple[str, ...] = ()  # ip/prefixlen on the ns- side
    files: Mapping[str, str] = field(default_factory=dict)
    #: port id -> revision of the ports the files serve ("known to DHCP")
    served: Mapping[str, int] = field(default_factory=dict)

    @property
    def interface(self) -> str:
        assert self.port is not None
        return names.dhcp_ns_port(self.port.id)

    @property
    def tap(self) -> str:
        assert self.port is not None
        return names.dhcp_tap(self.port.id)


@dataclass(frozen=True)
class DhcpSeen:
    namespace: bool = False
    #: the ns- device: (mac, mtu, up), its addresses
    interface: tuple[str | None, int, bool] | None = None
    addresses: frozenset[str] = frozenset()
    tap: bool = False
    files: Mapping[str, str | None] = field(default_factory=dict)
    running: bool = False


# -- steps ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestPort:
    key: str
    release: bool = False


@dataclass(frozen=True)
class EnsureNamespace:
    key: str
    namespace: str


@dataclass(frozen=True)
class EnsureVeth:
    key: str
    tap: str
    interface: str
    namespace: str
    mtu: int
    mac: str


@dataclass(frozen=True)
class EnsureAddresses:
    key: str
    interface: str
    namespace: str
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class WriteFiles:
    key: str
    files: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Start:
    key: str
    namespace: str


@dataclass(frozen=True)
class Restart:
    key: str
    namespace: str


@dataclass(frozen=True)
class Reload:
    key: str
    namespace: str


@dataclass(frozen=True)
class Stop:
    key: str
    namespace: str


@dataclass(frozen=True)
class DeleteTap:
    key: str
    tap: str


@dataclass(frozen=True)
class DeleteNamespace:
    key: str
    namespace: str


@dataclass(frozen=True)
class RemoveFiles:
    key: str


DhcpOp = (RequestPort | EnsureNamespace | EnsureVeth | EnsureAddresses | WriteFiles | Start
          | Restart | Reload | Stop | DeleteTap | DeleteNamespace | RemoveFiles)


# -- desired -------------------------------------------------------------------------------

def desired(snapshot: Snapshot, backend: DhcpBackend) -> dict[str, DhcpSpec]:
    out = {}
    for net in snapshot.networks.values():
        subnets = dhcp_subnets(net)
        if not net.dhcp or not subnets:
            continue
        ports = snapshot.ports_on(net.id)
        mine = snapshot.dhcp_port(net.id)
        ns = names.dhcp_namespace(net.id)
        have = {sid for sid, _ in mine.fixed_ips} if mine else set()
        # SLAAC subnets give the port its address by themselves
        need = mine is None or any(s.id not in have for s in subnets
                                   if not (s.ip_version == 6 and s.ipv6_address_mode == "slaac"))
        if mine is None:
            out[net.id] = DhcpSpec(net.id, ns, None, True)
            continue
        cidrs = {s.id: ipaddress.ip_network(s.cidr) for s in net.subnets}
        addresses = tuple(f"{ip}/{cidrs[sid].prefixlen}" for sid, ip in mine.fixed_ips
                          if sid in cidrs)
        files = backend.render(net, ports, names.dhcp_ns_port(mine.id))
        served = {p.id: p.revision_number for p in served_ports(net, ports)}
        out[net.id] = DhcpSpec(net.id, ns, mine, need, net.mtu, addresses, files.all(), served)
    return out


# -- diff (pure) ---------------------------------------------------------------------------

def _build(spec: DhcpSpec, seen: DhcpSeen) -> list[DhcpOp]:
    key = spec.network_id
    if spec.need_port:
        plan: list[DhcpOp] = [RequestPort(key)]
        if spec.port is None:
            return plan  # the rest waits for the port
    else:
        plan = []
    assert spec.port is not None
    ns = spec.namespace
    if not seen.namespace:
        plan.append(EnsureNamespace(key, ns))
    want_if = (spec.port.mac_address, spec.mtu, True)
    if not seen.namespace or seen.interface != want_if or not seen.tap:
        plan.append(EnsureVeth(key, spec.tap, spec.interface, ns, spec.mtu,
                               spec.port.mac_address))
    if not seen.namespace or seen.addresses != frozenset(spec.addresses):
        plan.append(EnsureAddresses(key, spec.interface, ns, spec.addresses))
    changed = sorted(n for n, text in spec.files.items() if seen.files.get(n) != text)
    if changed:
        plan.append(WriteFiles(key, tuple((n, spec.files[n]) for n in changed)))
    if not seen.running:
        plan.append(Start(key, ns))
    elif CONF in changed:
        plan.append(Restart(key, ns))
    elif changed:
        plan.append(Reload(key, ns))
    return plan


def _teardown(key: str, seen: DhcpSeen, tap: str | None, release: bool) -> list[DhcpOp]:
    ns = names.dhcp_namespace(key)
    plan: list[DhcpOp] = []
    if seen.running:
        plan.append(Stop(key, ns))
    if tap is not None and seen.tap:
        plan.append(DeleteTap(key, tap))
    if seen.namespace:
        plan.append(DeleteNamespace(key, ns))
    if seen.files:
        plan.append(RemoveFiles(key))
    if release:
        plan.append(RequestPort(key, release=True))
    return plan


def diff(want: Mapping[str, DhcpSpec], seen: Mapping[str, DhcpSeen],
         keys: Iterable[str] | None = None, *, taps: Mapping[str, str] | None = None,
         release: Iterable[str] = ()) -> list[DhcpOp]:
    """Steps for ``keys`` (network ids; None: every network either side knows).
    ``taps``: network -> the bridge-side device of a DHCP port seen (for teardown);
    ``release``: networks that still exist but whose DHCP port here must go."""
    todo = set(want) | set(seen) if keys is None else set(keys)
    releasing = set(release)
    plan: list[DhcpOp] = []
    for key in sorted(todo):
        if key in want:
            plan.extend(_build(want[key], seen.get(key, DhcpSeen())))
        else:
            plan.extend(_teardown(key, seen.get(key, DhcpSeen()), (taps or {}).get(key),
                                  key in releasing))
    return plan


# -- observe and apply ---------------------------------------------------------------------

@dataclass(frozen=True)
class DhcpObserved:
    """What a pass looked at: the networks (``keys``; None: all), what exists for them,
    the bridge-side tap of each DHCP namespace found, and the networks whose DHCP port
    this host holds but no longer serves (to give back)."""

    keys: frozenset[str] | None
    seen: Mapping[str, DhcpSeen]
    taps: Mapping[str, str]
    release: frozenset[str]


class Dhcp:
    """The DHCP servers reconciler (no dependency: it makes its own ports' taps)."""

    name = "dhcp"
    after: tuple[str, ...] = ()
    scoped = True

    def __init__(self, backend: DhcpBackend, netns: str | None,
                 request_port: Callable[[str, bool], None]) -> None:
        self.backend = backend
        self.netns = netns  # where the bridge-side taps live
        self.request_port = request_port

    def keys_of(self, network_ids: Iterable[str]) -> list[str]:
        return list(network_ids)

    # -- the Reconciler protocol --------------------------------------------------------

    def desired(self, p: Pass) -> dict[str, DhcpSpec]:
        return desired(p.snapshot, self.backend)

    def observe(self, p: Pass, want: Mapping[str, DhcpSpec]) -> DhcpObserved:
        snap = p.snapshot
        release = frozenset(n for n in snap.networks if n not in want
                            and snap.dhcp_port(n) is not None)
        keys = None if p.networks is None else set(p.networks) | release
        if self.netns is not None:
            # a sandboxed agent shares the namespace list with others (two "hosts" on one
            # machine): its own are those it keeps files for, in full and partial passes
            own = set(self.backend.networks()) | set(want) | release
            keys = own if keys is None else keys & own
        seen, taps = self.kernel(keys, want)
        return DhcpObserved(None if keys is None else frozenset(keys), seen, taps, release)

    def diff(self, p: Pass, want: Mapping[str, DhcpSpec], seen: DhcpObserved) -> list[DhcpOp]:
        return diff(want, seen.seen, seen.keys, taps=seen.taps, release=seen.release)

    def apply(self, p: Pass, plan: Sequence[DhcpOp]) -> dict[str, Exception]:
        return apply_plan(plan, self._do, "dhcp")

    def report(self, p: Pass, want: Mapping[str, DhcpSpec], seen: DhcpObserved,
               plan: Sequence[DhcpOp], failed: Mapping[str, Exception],
               out: Reports) -> Outcome:
        """The ports a realised server knows are up for DHCP."""
        for net_id, spec in want.items():
            if (p.networks is None or net_id in p.networks) and net_id not in failed \
                    and spec.port is not None:
                for pid in spec.served:
                    port = p.snapshot.ports.get(pid)
                    out.port(pid, "dhcp", True, port.revision_number if port else 0)
        return Outcome(len(plan), frozenset(failed))

    def kernel(self, keys: Iterable[str] | None,
               want: Mapping[str, DhcpSpec]) -> tuple[dict[str, DhcpSeen], dict[str, str]]:
        """What exists for ``keys`` (None: every network we left a trace of), and the
        bridge-side tap of each DHCP namespace found."""
        if keys is None:
            found = {p.ident for n in namespaces.list_namespaces()
                     if (p := names.parse_namespace(n)) and p.kind == names.Kind.DHCP_NAMESPACE}
            keys = found | set(self.backend.networks()) | set(want)
        host_links = {lk.name for lk in devices.list_links(self.netns)}
        seen, taps = {}, {}
        for key in keys:
            ns = names.dhcp_namespace(key)
            on_disk = {n: t for n, t in self.backend.read(key).items() if t is not None}
            if not namespaces.namespace_exists(ns):
                seen[key] = DhcpSeen(files=on_disk)
                continue
            interface, addresses = None, frozenset()
            for link in devices.list_links(ns):
                parsed = names.parse_link(link.name)
                if parsed is None or parsed.kind != names.Kind.DHCP_NS_PORT:
                    continue
                spec = want.get(key)
                if spec is not None and spec.port is not None and link.name != spec.interface:
                    continue  # another port's leftover: the teardown of the veth takes it
                interface = ((link.mac or "").lower(), link.mtu, link.up)
                addresses = frozenset(a for a in addressing.list_addresses(link.name, ns)
                                      if not ipaddress.ip_interface(a).ip.is_link_local)
                taps[key] = names.tap(link.name[len("ns-"):])
            spec = want.get(key)
            tap = spec.tap if spec is not None and spec.port is not None else taps.get(key)
            seen[key] = DhcpSeen(True, interface, addresses, tap in host_links, on_disk,
                                 self.backend.daemon(key, ns).alive())
        return seen, taps


    def _do(self, op: DhcpOp) -> None:
        match op:
            case RequestPort(key, release):
                self.request_port(key, release)
            case EnsureNamespace(_, ns):
                namespaces.ensure_namespace(ns)
            case EnsureVeth(_, tap, interface, ns, mtu, mac):
                devices.ensure_veth(tap, interface, netns=self.netns, peer_netns=ns, mtu=mtu)
                devices.set_link(interface, mac=mac, netns=ns)
            case EnsureAddresses(_, interface, ns, addresses):
                addressing.ensure_addresses(interface, addresses, netns=ns)
            case WriteFiles(key, content):
                self.backend.write(key, dict(content))
            case Start(key, ns):
                self.backend.daemon(key, ns).ensure()
            case Restart(key, ns):
                self.backend.daemon(key, ns).restart()
            case Reload(key, ns):
                self.backend.daemon(key, ns).reload()
            case Stop(key, ns):
                self.backend.daemon(key, ns).stop()
            case DeleteTap(_, tap):
                devices.delete_link(tap, netns=self.netns)  # its peer inside goes with it
            case DeleteNamespace(_, ns):
                for pid in process.namespace_pids(ns):
                    process.terminate(pid)  # nothing may hold it (dnsmasq was ours)
                namespaces.delete_namespace(ns)
            case RemoveFiles(key):
                self.backend.remove(key)
            case _:
                raise AssertionError(f"unknown dhcp step {op!r}")
