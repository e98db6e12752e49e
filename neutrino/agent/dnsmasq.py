"""The dnsmasq DHCP backend: static leases by MAC, options per subnet and port, RAs.

Per network a directory ``<state>/dhcp/<network id>/`` holds ``dnsmasq.conf`` (what
needs a restart to change: interface, ranges, MTU, RA), and the files dnsmasq
re-reads on SIGHUP without losing a lease: ``host`` (dhcp-hostsfile), ``opts``
(dhcp-optsfile) and ``addn_hosts``.  ``render`` is pure; the rest supervises.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from neutrino.agent.model import Network, Port, Subnet
from neutrino.linux import files, process

CONF = "dnsmasq.conf"
#: the files a SIGHUP re-reads
RELOADABLE = ("host", "opts", "addn_hosts")


@dataclass(frozen=True)
class DhcpFiles:
    conf: str
    reloadable: Mapping[str, str]

    def all(self) -> dict[str, str]:
        return {CONF: self.conf, **self.reloadable}


def dhcp_subnets(net: Network) -> list[Subnet]:
    return [s for s in net.subnets if s.enable_dhcp]


def _v6_mode(s: Subnet) -> str:
    return s.ipv6_address_mode or "dhcpv6-stateful"


def leases_from_us(s: Subnet) -> bool:
    """Subnets whose addresses dnsmasq hands out (IPv4, DHCPv6 stateful)."""
    return s.ip_version == 4 or _v6_mode(s) == "dhcpv6-stateful"


def served_ports(net: Network, ports: list[Port]) -> list[Port]:
    """The ports that take something from this network's DHCP (address, options, RA)."""
    dhcp = {s.id for s in dhcp_subnets(net)}
    return [p for p in ports if not p.is_dhcp and any(sid in dhcp for sid, _ in p.fixed_ips)]


def _hostname(ip: str) -> str:
    return "host-" + ip.replace(".", "-").replace(":", "-")


def _option(name: str, version: int) -> str:
    """An extra_dhcp_opt's name as dnsmasq spells it: a number, or option[6]:name."""
    if name.isdigit():
        return name if version == 4 else f"option6:{name}"
    return ("option6:" if version == 6 else "option:") + name


class Dnsmasq:
    name = "dnsmasq"

    def __init__(self, state_dir: Path, *, lease_duration: int = 86400,
                 domain: str = "openstacklocal", omit_dns_when_none: bool = False) -> None:
        self.root = Path(state_dir) / "dhcp"
        self.lease_duration = lease_duration
        self.domain = domain
        self.omit_dns_when_none = omit_dns_when_none

    def dir(self, network_id: str) -> Path:
        return self.root / network_id

    # -- render (pure) ----------------------------------------------------------------

    def render(self, net: Network, ports: list[Port], interface: str) -> DhcpFiles:
        d = self.dir(net.id)
        subnets = dhcp_subnets(net)
        lease = f"{self.lease_duration}s"
        conf = ["# written by the neutrino agent; changes are overwritten",
                "no-hosts", "no-resolv", "bind-dynamic", f"interface={interface}",
                "except-interface=lo", f"dhcp-hostsfile={d / 'host'}",
                f"addn-hosts={d / 'addn_hosts'}", f"dhcp-optsfile={d / 'opts'}",
                f"dhcp-leasefile={d / 'leases'}", f"domain={self.domain}",
                f"dhcp-lease-max={max(256, 2 * len(ports))}", f"log-facility={d / 'log'}"]
        ra = False
        for s in subnets:
            net_ = ipaddress.ip_network(s.cidr)
            tag = f"set:subnet-{s.id}"
            if s.ip_version == 4:
                conf.append(f"dhcp-range={tag},{net_.network_address},static,{net_.netmask},"
                            f"{lease}")
                # option 26, sent even to clients that do not ask (as upstream forces it)
                conf.append(f"dhcp-option-force=tag:subnet-{s.id},option:mtu,{net.mtu}")
                continue
            mode = _v6_mode(s)
            keyword = {"dhcpv6-stateful": "static", "dhcpv6-stateless": "ra-stateless",
                       "slaac": "ra-only"}[mode]
            if mode == "slaac" and not s.ipv6_ra_mode:
                continue  # another router advertises it; nothing for us to do
            conf.append(f"dhcp-range={tag},{net_.network_address},{keyword},{net_.prefixlen},"
                        f"{lease}")
            ra = ra or bool(s.ipv6_ra_mode)
        if ra:
            # not a router: advertise prefixes and the MTU, with a router lifetime of 0
            conf += ["enable-ra", f"ra-param={interface},mtu:{net.mtu},30,0"]
        hosts, addn, opts = [], [], []
        by_id = {s.id: s for s in subnets}
        for p in sorted(ports, key=lambda p: p.id):
            if p.is_dhcp:
                continue
            for sid, ip in p.fixed_ips:
                s = by_id.get(sid)
                if s is None:
                    continue
                addn.append(f"{ip}\t{_hostname(ip)}.{self.domain} {_hostname(ip)}")
                if leases_from_us(s):
                    address = f"[{ip}]" if s.ip_version == 6 else ip
                    # a port's tag only where it has options of its own, as upstream: dnsmasq
                    # 2.90 can crash re-reading tagged hosts that hold a lease (see Dhcp.check)
                    tag = f"set:port-{p.id}," if p.extra_dhcp_opts else ""
                    hosts.append(f"{p.mac_address},{tag}{_hostname(ip)},{address}")
            for o in p.extra_dhcp_opts:
                opts.append(f"tag:port-{p.id},{_option(o.name, o.ip_version)},{o.value}")
        for s in subnets:
            opts.extend(self._subnet_options(s))
        return DhcpFiles("\n".join(conf) + "\n", {
            "host": "".join(f"{h}\n" for h in hosts),
            "opts": "".join(f"{o}\n" for o in opts),
            "addn_hosts": "".join(f"{a}\n" for a in addn)})

    def _subnet_options(self, s: Subnet) -> list[str]:
        tag = f"tag:subnet-{s.id}"
        if s.ip_version == 6:
            if s.dns_nameservers:
                return [f"{tag},option6:dns-server,"
                        + ",".join(f"[{a}]" for a in s.dns_nameservers)]
            return [f"{tag},option6:dns-server"] if self.omit_dns_when_none else []
        out = []
        # no value: dnsmasq sends no such option (a subnet without a gateway has no router)
        out.append(f"{tag},option:router,{s.gateway_ip}" if s.gateway_ip
                   else f"{tag},option:router")
        if s.dns_nameservers:
            out.append(f"{tag},option:dns-server,{','.join(s.dns_nameservers)}")
        elif self.omit_dns_when_none:
            out.append(f"{tag},option:dns-server")
        if s.host_routes:
            # clients that take option 121 ignore option 3: the default route goes in too
            routes = [f"{dst},{hop}" for dst, hop in s.host_routes]
            if s.gateway_ip and not any(dst == "0.0.0.0/0" for dst, _ in s.host_routes):
                routes.append(f"0.0.0.0/0,{s.gateway_ip}")
            out.append(f"{tag},option:classless-static-route,{','.join(routes)}")
            out.append(f"{tag},249,{','.join(routes)}")
        return out

    # -- the daemon ---------------------------------------------------------------------

    def daemon(self, network_id: str, netns: str) -> process.Daemon:
        d = self.dir(network_id)
        return process.Daemon(f"dnsmasq for network {network_id}",
                              ["dnsmasq", f"--conf-file={d / CONF}", f"--pid-file={d / 'pid'}"],
                              d / "pid", netns=netns)

    def read(self, network_id: str) -> dict[str, str | None]:
        d = self.dir(network_id)
        return {name: files.read(d / name) for name in (CONF, *RELOADABLE)}

    def running(self, network_id: str, netns: str) -> bool:
        return self.daemon(network_id, netns).alive()

    def networks(self) -> list[str]:
        """Networks we keep files for (directories named by a network id)."""
        try:
            return sorted(e.name for e in os.scandir(self.root) if e.is_dir())
        except FileNotFoundError:
            return []

    def write(self, network_id: str, content: Mapping[str, str]) -> list[str]:
        """Write the files that differ; the names of those that changed."""
        d = self.dir(network_id)
        # dnsmasq drops root: it must be able to reach its files to re-read them
        for path in (self.root.parent, self.root, d):
            path.mkdir(parents=True, exist_ok=True)
            path.chmod(0o755)
        return [name for name, text in content.items() if files.write_atomic(d / name, text)]

    def remove(self, network_id: str) -> None:
        d = self.dir(network_id)
        for name in (CONF, *RELOADABLE, "leases", "pid", "log"):
            files.remove(d / name)
        with contextlib.suppress(OSError):  # something else in there: not ours to delete
            d.rmdir()
