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
    #: effective halves of port security (port-security-split): override or the switch
    anti_spoofing: bool = False
    filtering: bool = False
    security_groups: tuple[str, ...] = ()
    allowed_address_pairs: tuple[tuple[str, str], ...] = ()  # (ip or cidr, mac)
    #: the DHCP port the server made for this host on its network (the server says so:
    #: a port merely *called* network:dhcp is not it)
    host_dhcp: bool = False

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
    revision_number: int = 0  # 0: the server did not say


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
class SgRule:
    id: str
    direction: str  # "ingress" / "egress"
    ethertype: str  # "IPv4" / "IPv6"
    protocol: int | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None  # normalised
    remote_group_id: str | None = None


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    rules: tuple[SgRule, ...] = ()
    #: addresses of the group's ports (fixed IPs and pairs), for remote_group_id rules
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """The desired state of (part of) a host, as of ``generation``."""

    generation: int = 0
    networks: Mapping[str, Network] = field(default_factory=dict)
    ports: Mapping[str, Port] = field(default_factory=dict)
    routers: Mapping[str, Router] = field(default_factory=dict)
    #: every group this host's ports use or their rules name (always whole, never scoped)
    security_groups: Mapping[str, SecurityGroup] = field(default_factory=dict)

    def dhcp_port(self, network_id: str) -> Port | None:
        """This host's DHCP port on the network (the one its DHCP namespace plugs)."""
        return next((p for p in self.ports_on(network_id) if p.host_dhcp), None)

    def cloud_ports(self) -> set[str]:
        """The ports whose devices this host's agent makes itself: its DHCP ports on the
        networks it serves and the ports of the routers it realises.  Only these may go
        unfiltered: a port merely *called* ``network:…`` (device_owner is the port
        owner's to write) is an instance's, filtered like any (CVE-2015-5240)."""
        ours = {p.id for r in self.routers.values()
                for p in (*r.interfaces, *((r.gateway,) if r.gateway else ()))}
        for net in self.networks.values():
            if net.dhcp and (mine := self.dhcp_port(net.id)) is not None:
                ours.add(mine.id)
        return ours

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
        return Snapshot(max(self.generation, newer.generation), nets, ports, routers,
                        newer.security_groups)


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
        name=d.get("name") or "",
        anti_spoofing=_effective(d, "anti_spoofing_enabled"),
        filtering=_effective(d, "security_groups_enabled"),
        security_groups=tuple(sorted(d.get("security_groups") or ())),
        allowed_address_pairs=tuple(
            (a["ip_address"], (a.get("mac_address") or d["mac_address"]).lower())
            for a in d.get("allowed_address_pairs") or ()),
        # a server one version older does not say: its local DHCP port it is
        host_dhcp=bool(d.get("host_dhcp", d.get("local") and d.get("device_owner")
                             == "network:dhcp")))


def _effective(d: Mapping[str, Any], override: str) -> bool:
    """A half of port security: its override if set, else port_security_enabled."""
    value = d.get(override)
    return bool(d.get("port_security_enabled", False) if value is None else value)


def _sg_rule(d: Mapping[str, Any]) -> SgRule:
    return SgRule(d["id"], d["direction"], d.get("ethertype") or "IPv4",
                  d.get("protocol_number"), d.get("port_range_min"), d.get("port_range_max"),
                  d.get("normalized_cidr") or d.get("remote_ip_prefix"),
                  d.get("remote_group_id"))


def _security_group(d: Mapping[str, Any]) -> SecurityGroup:
    return SecurityGroup(d["id"], tuple(_sg_rule(r) for r in d.get("rules") or ()),
                         tuple(d.get("members") or ()))


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
                                     f.get("port_id") or "",
                                     int(f.get("revision_number") or 0))
                          for f in d.get("floatingips") or () if f.get("fixed_ip_address")),
        revision_number=int(d.get("revision_number") or 0))


def snapshot(state: HostState) -> Snapshot:
    return Snapshot(state.generation, {n["id"]: _network(n) for n in state.networks},
                    {p["id"]: _port(p) for p in state.ports},
                    {r["id"]: _router(r) for r in state.routers},
                    {g["id"]: _security_group(g) for g in state.security_groups})


def dhcp_port(d: Mapping[str, Any]) -> Port:
    return _port(d)
