"""Typed, immutable views of the desired state the server sends (``HostState``).

Parsing is lenient in the bus's way: unknown keys are ignored and missing ones
take defaults, so an agent and a server one version apart still agree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from neutrino.bus.messages import HostState


@dataclass(frozen=True)
class Segment:
    network_type: str
    physical_network: str | None = None
    segmentation_id: int | None = None


@dataclass(frozen=True)
class Subnet:
    id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)


@dataclass(frozen=True)
class DhcpOption:
    name: str
    value: str
    ip_version: int = 4


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: tuple[tuple[str, str], ...] = ()  # (subnet_id, ip_address)
    device_owner: str = ""
    revision_number: int = 0
    admin_state_up: bool = True
    #: bound to this host (its tap is ours to plug)
    local: bool = False
    extra_dhcp_opts: tuple[DhcpOption, ...] = ()
    name: str = ""

    @property
    def is_dhcp(self) -> bool:
        return self.device_owner == "network:dhcp"


@dataclass(frozen=True)
class Network:
    id: str
    mtu: int
    segment: Segment | None
    subnets: tuple[Subnet, ...] = ()
    #: ports bound here: the host needs the network's bridge
    l2: bool = False
    #: this host serves the network's DHCP
    dhcp: bool = False
    admin_state_up: bool = True


@dataclass(frozen=True)
class RouterAddress:
    subnet_id: str
    ip_address: str
    cidr: str
    gateway_ip: str | None = None  # the subnet's (for a gateway port: the next hop out)


@dataclass(frozen=True)
class RouterPort:
    id: str
    network_id: str
    mac_address: str
    mtu: int = 1500
    fixed_ips: tuple[RouterAddress, ...] = ()
    admin_state_up: bool = True


@dataclass(frozen=True)
class FloatingIp:
    id: str
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str = ""


@dataclass(frozen=True)
class Router:
    id: str
    admin_state_up: bool = True
    enable_snat: bool = True
    gateway: RouterPort | None = None
    interfaces: tuple[RouterPort, ...] = ()
    routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    floatingips: tuple[FloatingIp, ...] = ()
    revision_number: int = 0

    @property
    def network_ids(self) -> set[str]:
        ports = (*self.interfaces, *((self.gateway,) if self.gateway else ()))
        return {p.network_id for p in ports}


@dataclass(frozen=True)
class Snapshot:
    """The desired state of (part of) a host, as of ``generation``."""

    generation: int = 0
    networks: Mapping[str, Network] = field(default_factory=dict)
    ports: Mapping[str, Port] = field(default_factory=dict)
    routers: Mapping[str, Router] = field(default_factory=dict)

    def ports_on(self, network_id: str) -> list[Port]:
        return sorted((p for p in self.ports.values() if p.network_id == network_id),
                      key=lambda p: p.id)

    def merged(self, newer: Snapshot, network_ids: list[str] | None,
               router_ids: list[str] | None = None) -> Snapshot:
        """This snapshot with the networks in ``network_ids`` (all if None) and the
        routers in ``router_ids`` replaced by what ``newer`` says of them.  A network
        ``newer`` tells of without being asked (a router's) is replaced whole too."""
        if network_ids is None:
            return newer
        asked = set(network_ids) | set(newer.networks)
        nets = {k: v for k, v in self.networks.items() if k not in asked}
        nets.update(newer.networks)
        ports = {k: v for k, v in self.ports.items() if v.network_id not in asked}
        ports.update(newer.ports)
        routers = {k: v for k, v in self.routers.items() if k not in set(router_ids or ())}
        routers.update(newer.routers)
        return Snapshot(max(self.generation, newer.generation), nets, ports, routers)


def _subnet(d: Mapping[str, Any]) -> Subnet:
    return Subnet(
        id=d["id"], ip_version=int(d["ip_version"]), cidr=d["cidr"],
        gateway_ip=d.get("gateway_ip"), enable_dhcp=bool(d.get("enable_dhcp", True)),
        ipv6_ra_mode=d.get("ipv6_ra_mode"), ipv6_address_mode=d.get("ipv6_address_mode"),
        dns_nameservers=tuple(d.get("dns_nameservers") or ()),
        host_routes=tuple((r["destination"], r["nexthop"]) for r in d.get("host_routes") or ()))


def _port(d: Mapping[str, Any]) -> Port:
    return Port(
        id=d["id"], network_id=d["network_id"], mac_address=d["mac_address"].lower(),
        fixed_ips=tuple((f["subnet_id"], f["ip_address"]) for f in d.get("fixed_ips") or ()),
        device_owner=d.get("device_owner") or "",
        revision_number=int(d.get("revision_number") or 0),
        admin_state_up=bool(d.get("admin_state_up", True)), local=bool(d.get("local")),
        extra_dhcp_opts=tuple(DhcpOption(o["opt_name"], str(o["opt_value"]),
                                         int(o.get("ip_version") or 4))
                              for o in d.get("extra_dhcp_opts") or ()),
        name=d.get("name") or "")


def _network(d: Mapping[str, Any]) -> Network:
    seg = d.get("segment")
    return Network(
        id=d["id"], mtu=int(d["mtu"]),
        segment=Segment(seg["provider:network_type"], seg.get("provider:physical_network"),
                        seg.get("provider:segmentation_id")) if seg else None,
        subnets=tuple(_subnet(s) for s in d.get("subnets") or ()),
        l2=bool(d.get("l2")), dhcp=bool(d.get("dhcp")),
        admin_state_up=bool(d.get("admin_state_up", True)))


def _router_port(d: Mapping[str, Any]) -> RouterPort:
    return RouterPort(
        id=d["id"], network_id=d["network_id"], mac_address=d["mac_address"].lower(),
        mtu=int(d.get("mtu") or 1500), admin_state_up=bool(d.get("admin_state_up", True)),
        fixed_ips=tuple(RouterAddress(f["subnet_id"], f["ip_address"], f["cidr"],
                                      f.get("gateway_ip")) for f in d.get("fixed_ips") or ()))


def _router(d: Mapping[str, Any]) -> Router:
    gateway = d.get("gateway")
    return Router(
        id=d["id"], admin_state_up=bool(d.get("admin_state_up", True)),
        enable_snat=bool(d.get("enable_snat", True)),
        gateway=_router_port(gateway) if gateway else None,
        interfaces=tuple(_router_port(p) for p in d.get("interfaces") or ()),
        routes=tuple((r["destination"], r["nexthop"]) for r in d.get("routes") or ()),
        floatingips=tuple(FloatingIp(f["id"], f["floating_ip_address"], f["fixed_ip_address"],
                                     f.get("port_id") or "")
                          for f in d.get("floatingips") or () if f.get("fixed_ip_address")),
        revision_number=int(d.get("revision_number") or 0))


def snapshot(state: HostState) -> Snapshot:
    return Snapshot(state.generation, {n["id"]: _network(n) for n in state.networks},
                    {p["id"]: _port(p) for p in state.ports},
                    {r["id"]: _router(r) for r in state.routers})


def dhcp_port(d: Mapping[str, Any]) -> Port:
    return _port(d)
