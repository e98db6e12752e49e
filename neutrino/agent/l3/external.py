"""The host's end of the external network: the bridge ``br-ex``, its address and route.

Devstack gives the host the public subnet's gateway address on ``br-ex``, so that the
host's shell reaches routers' gateways and floating IPs directly.  That is all this
does by default: the host does not forward for the external network and nothing is
NATed towards the machine's own uplink.  ``masquerade`` (the ``public_uplink_masquerade``
setting) changes exactly that, explicitly: forwarding on in the agent's namespace, and
one nftables table that masquerades the public subnet leaving through anything but the
bridge.

:class:`External` reconciles it like any other state of the host: the bridge (up, at
its MTU), the gateway address (other addresses the operator gave it stay), the
subnet's route through it and, when asked for, the masquerade.  Deleting any of them by
hand is repaired by the next pass (the kernel watchers start one when ``br-ex`` goes or
drifts).  It is never deleted: the bridge is the host's.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neutrino import names
from neutrino.agent.reconciler import Outcome, Pass, Reports, apply_plan
from neutrino.linux import addressing, devices, nft, routing, sysctl
from neutrino.linux.devices import Link

log = logging.getLogger(__name__)

MASQUERADE_TABLE = names.PUBLIC_MASQUERADE_TABLE
FORWARD = "net.ipv4.ip_forward"
KEY = "external"


def ensure_bridge(bridge: str, gateway_ip: str, cidr: str, *, netns: str | None = None,
                  mtu: int | None = None) -> bool:
    """The bridge, up, holding ``gateway_ip`` with the subnet's prefix (other addresses
    the operator gave it stay).  True if anything changed."""
    address = host_address(gateway_ip, cidr)
    changed = devices.ensure_bridge(bridge, mtu=mtu, netns=netns)
    have = addressing.list_addresses(bridge, netns)
    if address not in have:
        addressing.ensure_addresses(bridge, [*have, address], netns=netns)
        changed = True
    return changed


def host_address(gateway_ip: str, cidr: str) -> str:
    net = ipaddress.ip_network(cidr)
    return f"{ipaddress.ip_address(gateway_ip)}/{net.prefixlen}"


def masquerade_chains(cidr: str, bridge: str) -> tuple[nft.Chain, ...]:
    rule = nft.Rule([nft.match(nft.payload("ip", "saddr"), cidr),
                     nft.match(nft.meta("oifname"), bridge, "!="), {"masquerade": None}],
                    f"public network {cidr} out to the uplink")
    return (nft.Chain("postrouting", (rule,), "nat", "postrouting", 100),)


def masquerade(cidr: str, bridge: str, *, netns: str | None = None) -> None:
    """Forward and masquerade the public subnet to the host's uplink (explicit opt-in)."""
    sysctl.ensure(FORWARD, 1, netns=netns)
    nft.apply_table("ip", MASQUERADE_TABLE, masquerade_chains(cidr, bridge), netns=netns)


# -- the reconciler ----------------------------------------------------------------------

@dataclass(frozen=True)
class ExternalConfig:
    """The public network's host side, as the server made it (``neutrino up``)."""

    bridge: str
    gateway_ip: str
    cidr: str
    mtu: int | None = None
    #: forward and masquerade the public subnet to the uplink (public_uplink_masquerade)
    masquerade: bool = False
    netns: str | None = None


@dataclass(frozen=True)
class ExternalSeen:
    link: Link | None = None
    addresses: frozenset[str] = frozenset()
    route: bool = False  # the subnet's route goes through the bridge
    masquerade: tuple | None = None  # the table's chains, None: none
    forwarding: bool = False


@dataclass(frozen=True)
class EnsureBridge:
    key: str
    name: str
    mtu: int | None


@dataclass(frozen=True)
class EnsureAddress:
    key: str
    name: str
    address: str
    others: tuple[str, ...]  # the operator's, kept


@dataclass(frozen=True)
class EnsureRoute:
    key: str
    name: str
    cidr: str


@dataclass(frozen=True)
class EnsureMasquerade:
    key: str
    name: str
    cidr: str


ExternalOp = EnsureBridge | EnsureAddress | EnsureRoute | EnsureMasquerade


def _chains(chains: Sequence[nft.Chain]) -> tuple:
    return tuple((c.name, c.type, c.hook, c.priority, tuple(r.comment for r in c.rules))
                 for c in chains)


def diff_external(cfg: ExternalConfig | None, seen: ExternalSeen) -> list[ExternalOp]:
    """What turns ``seen`` into the configured host side (pure)."""
    if cfg is None:
        return []
    plan: list[ExternalOp] = []
    link = seen.link
    if link is None or link.kind != "bridge" or not link.up \
            or (cfg.mtu is not None and link.mtu != cfg.mtu):
        plan.append(EnsureBridge(KEY, cfg.bridge, cfg.mtu))
    address = host_address(cfg.gateway_ip, cfg.cidr)
    if link is None or address not in seen.addresses:
        plan.append(EnsureAddress(KEY, cfg.bridge, address, tuple(sorted(seen.addresses))))
    elif not seen.route:
        plan.append(EnsureRoute(KEY, cfg.bridge, str(ipaddress.ip_network(cfg.cidr))))
    if cfg.masquerade and (not seen.forwarding or seen.masquerade
                           != _chains(masquerade_chains(cfg.cidr, cfg.bridge))):
        plan.append(EnsureMasquerade(KEY, cfg.bridge, cfg.cidr))
    return plan


class External:
    """The ``br-ex`` reconciler: no dependency (L2 comes after it, to plug gateways'
    taps into the bridge)."""

    name = "external"
    after: tuple[str, ...] = ()
    scoped = True

    def __init__(self, cfg: ExternalConfig | None) -> None:
        self.cfg = cfg
        #: the last pass failed to repair it: the watchers leave it to the backoff
        self.failing = False

    def kernel(self) -> ExternalSeen:
        cfg = self.cfg
        if cfg is None:
            return ExternalSeen()
        link = devices.get_link(cfg.bridge, cfg.netns)
        if link is None:
            return ExternalSeen()
        addresses = frozenset(addressing.list_addresses(cfg.bridge, cfg.netns))
        dst = str(ipaddress.ip_network(cfg.cidr))
        route = any(r.dst == dst and r.gateway is None
                    for r in routing.list_routes(cfg.netns, dev=cfg.bridge,
                                                 family=4 if ":" not in dst else 6))
        masq, forwarding = None, False
        if cfg.masquerade:
            table = nft.list_table("ip", MASQUERADE_TABLE, netns=cfg.netns)
            masq = _chains(table.chains) if table is not None else None
            forwarding = sysctl.get_many([FORWARD], netns=cfg.netns).get(FORWARD) == "1"
        return ExternalSeen(link, addresses, route, masq, forwarding)

    def drifted(self) -> bool:
        """Whether the host side differs from what it should be (cheap: a few netlink
        requests), for the watchers."""
        return bool(self.cfg is not None and diff_external(self.cfg, self.kernel()))

    # -- the Reconciler protocol --------------------------------------------------------

    def desired(self, p: Pass) -> ExternalConfig | None:
        return self.cfg

    def observe(self, p: Pass, want: ExternalConfig | None) -> ExternalSeen:
        return self.kernel()

    def diff(self, p: Pass, want: ExternalConfig | None,
             seen: ExternalSeen) -> list[ExternalOp]:
        return diff_external(want, seen)

    def apply(self, p: Pass, plan: Sequence[ExternalOp]) -> dict[str, Exception]:
        if plan:
            log.info("repairing the external bridge: %s", ", ".join(type(op).__name__
                                                                    for op in plan))
        return apply_plan(plan, self._do, "external")

    def report(self, p: Pass, want: ExternalConfig | None, seen: ExternalSeen,
               plan: Sequence[ExternalOp], failed: Mapping[str, Exception],
               out: Reports) -> Outcome:
        self.failing = bool(failed)
        retry: frozenset[str] = frozenset()
        if failed and want is not None:
            # retried with backoff through the networks on the bridge (L2 plugs into it)
            retry = frozenset(n.id for n in p.snapshot.networks.values() if n.l2)
        return Outcome(len(plan), retry)

    def _do(self, op: ExternalOp) -> None:
        ns = self.cfg.netns if self.cfg is not None else None
        match op:
            case EnsureBridge(_, name, mtu):
                devices.ensure_bridge(name, mtu=mtu, netns=ns)
            case EnsureAddress(_, name, address, others):
                addressing.ensure_addresses(name, [*others, address], netns=ns)
            case EnsureRoute(_, name, cidr):
                routing.ensure_routes([routing.Route(cidr, dev=name)], netns=ns, prune=False)
            case EnsureMasquerade(_, name, cidr):
                masquerade(cidr, name, netns=ns)
            case _:
                raise AssertionError(f"unknown external step {op!r}")
