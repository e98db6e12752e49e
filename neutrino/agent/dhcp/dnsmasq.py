"""The dnsmasq DHCP backend: static leases by MAC, options per subnet and port, RAs.

Per network a directory ``<state>/dhcp/<network id>/`` holds ``dnsmasq.conf`` (what
needs a restart to change: interface, ranges, MTU, RA), and the files dnsmasq
re-reads on SIGHUP without losing a lease: ``host`` (dhcp-hostsfile), ``opts``
(dhcp-optsfile) and ``addn_hosts``.  ``render`` is pure; the rest supervises.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from neutrino import files
from neutrino.agent.model import DhcpOption, Network, Port, Subnet
from neutrino.linux import process
from neutrino.schema.kinds import config_value_problem, dhcp_option_name_problem

log = logging.getLogger(__name__)

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


class Unsafe(ValueError):
    """A value that cannot go into dnsmasq's files as it is (it would not stay one
    item of one line).  The API refuses such values; this is the second line, for a
    value that reached the database some other way."""


_MAC = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
#: ids name dnsmasq tags: letters, digits and '-' only (a UUID is one)
_IDENT = re.compile(r"[A-Za-z0-9-]{1,64}")
_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?")
#: what a rendered line may hold at all: printable ASCII, and tabs (addn_hosts); dnsmasq
#: reads lines into a fixed buffer (about 1 KiB): a longer one would go on as another line
_LINE = re.compile(r"[\t -~]{0,1000}")
#: the longest extra_dhcp_opt value (the API's limit)
MAX_VALUE = 255


def _mac(value: str) -> str:
    if not _MAC.fullmatch(value):
        raise Unsafe(f"not a MAC address: {value!r}")
    return value


def _ident(value: str) -> str:
    """A port's or subnet's id, which names dnsmasq tags."""
    if not _IDENT.fullmatch(value):
        raise Unsafe(f"not an id: {value!r}")
    return value


def _ip(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise Unsafe(f"not an IP address: {value!r}") from None


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(value)
    except ValueError:
        raise Unsafe(f"not a CIDR: {value!r}") from None


def _option(name: str, version: int) -> str:
    """An extra_dhcp_opt's name as dnsmasq spells it: a number, or option[6]:name, after
    the match tag it may carry (``tag:!ipxe,bootfile-name``)."""
    problem = dhcp_option_name_problem(name)
    if problem:
        raise Unsafe(f"DHCP option name {name!r}: {problem}")
    tag, _, base = name.rpartition(",")
    if version == 4 and base.isdigit():
        spelled = base
    else:
        spelled = ("option6:" if version == 6 else "option:") + base
    return f"{tag},{spelled}" if tag else spelled


def _value(value: str) -> str:
    problem = (config_value_problem(value) if len(value) <= MAX_VALUE
               else f"longer than {MAX_VALUE} characters")
    if problem:
        raise Unsafe(f"DHCP option value {value!r}: {problem}")
    return value


def _extra_options(port_id: str, opts: Iterable[DhcpOption]) -> list[str]:
    """The port's own options; one that could not stay one line is left out (and said)."""
    out = []
    for o in opts:
        try:
            out.append(f"tag:port-{port_id},{_option(o.name, o.ip_version)},{_value(o.value)}")
        except Unsafe as exc:
            log.warning("port %s: extra_dhcp_opt left out of dnsmasq's files: %s", port_id, exc)
    return out


def _lines(lines: Iterable[str], what: str) -> str:
    """The file's text; a line that is not one line of printable text never gets in
    (every piece was checked already: this is the last guard)."""
    out = []
    for line in lines:
        if _LINE.fullmatch(line):
            out.append(f"{line}\n")
        else:
            log.error("dnsmasq %s: line left out, it is not one printable line: %r", what, line)
    return "".join(out)


class Dnsmasq:
    name = "dnsmasq"

    def __init__(self, state_dir: Path, *, lease_duration: int = 86400,
                 domain: str = "openstacklocal", omit_dns_when_none: bool = False) -> None:
        self.root = Path(state_dir) / "dhcp"
        self.lease_duration = int(lease_duration)
        if not _DOMAIN.fullmatch(domain):
            raise ValueError(f"dns_domain {domain!r} is not a domain name")
        self.domain = domain.rstrip(".")
        self.omit_dns_when_none = omit_dns_when_none

    def dir(self, network_id: str) -> Path:
        return self.root / network_id

    # -- render (pure) ----------------------------------------------------------------

    def render(self, net: Network, ports: list[Port], interface: str) -> DhcpFiles:
        """The files for ``net``.  Every value is checked for what dnsmasq's syntax makes
        of it: a subnet, port or option that could not stay one item of one line is left
        out whole (and said), never written half or as something else."""
        d = self.dir(net.id)
        subnets = []
        for s in dhcp_subnets(net):
            try:
                subnets.append((s, _ident(s.id), _network(s.cidr), self._subnet_options(s)))
            except Unsafe as exc:
                log.warning("subnet %s left out of dnsmasq's files: %s", s.id, exc)
        lease = f"{self.lease_duration}s"
        mtu = int(net.mtu)
        conf = ["# written by the neutrino agent; changes are overwritten",
                "no-hosts", "no-resolv", "bind-dynamic", f"interface={interface}",
                "except-interface=lo", f"dhcp-hostsfile={d / 'host'}",
                f"addn-hosts={d / 'addn_hosts'}", f"dhcp-optsfile={d / 'opts'}",
                f"dhcp-leasefile={d / 'leases'}", f"domain={self.domain}",
                f"dhcp-lease-max={max(256, 2 * len(ports))}", f"log-facility={d / 'log'}"]
        ra = False
        for s, sid, net_, _ in subnets:
            tag = f"set:subnet-{sid}"
            if s.ip_version == 4:
                conf.append(f"dhcp-range={tag},{net_.network_address},static,{net_.netmask},"
                            f"{lease}")
                # option 26, sent even to clients that do not ask (as upstream forces it)
                conf.append(f"dhcp-option-force=tag:subnet-{sid},option:mtu,{mtu}")
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
            conf += ["enable-ra", f"ra-param={interface},mtu:{mtu},30,0"]
        hosts, addn, opts = [], [], []
        by_id = {s.id: s for s, _, _, _ in subnets}
        for p in sorted(ports, key=lambda p: p.id):
            if p.is_dhcp:
                continue
            try:
                own = self._port_lines(p, by_id)
            except Unsafe as exc:
                log.warning("port %s left out of dnsmasq's files: %s", p.id, exc)
                continue
            hosts += own[0]
            addn += own[1]
            opts += own[2]
        for _, _, _, options in subnets:
            opts += options
        return DhcpFiles(_lines(conf, CONF), {
            "host": _lines(hosts, "host"), "opts": _lines(opts, "opts"),
            "addn_hosts": _lines(addn, "addn_hosts")})

    def _port_lines(self, p: Port, subnets: Mapping[str, Subnet]) \
            -> tuple[list[str], list[str], list[str]]:
        """A port's lines in the host, addn_hosts and opts files."""
        pid, mac = _ident(p.id), _mac(p.mac_address)
        hosts, addn = [], []
        opts = _extra_options(pid, p.extra_dhcp_opts)
        for sid, raw in p.fixed_ips:
            s = subnets.get(sid)
            if s is None:
                continue
            ip = _ip(raw)
            addn.append(f"{ip}\t{_hostname(ip)}.{self.domain} {_hostname(ip)}")
            if leases_from_us(s):
                address = f"[{ip}]" if s.ip_version == 6 else ip
                # a port's tag only where it has options of its own, as upstream: dnsmasq
                # 2.90 can crash re-reading tagged hosts that hold a lease (see Dhcp.check)
                tag = f"set:port-{pid}," if opts else ""
                hosts.append(f"{mac},{tag}{_hostname(ip)},{address}")
        return hosts, addn, opts

    def _subnet_options(self, s: Subnet) -> list[str]:
        tag = f"tag:subnet-{_ident(s.id)}"
        servers = [_ip(a) for a in s.dns_nameservers]
        if s.ip_version == 6:
            if servers:
                return [f"{tag},option6:dns-server," + ",".join(f"[{a}]" for a in servers)]
            return [f"{tag},option6:dns-server"] if self.omit_dns_when_none else []
        gateway = _ip(s.gateway_ip) if s.gateway_ip else None
        out = []
        # no value: dnsmasq sends no such option (a subnet without a gateway has no router)
        out.append(f"{tag},option:router,{gateway}" if gateway else f"{tag},option:router")
        if servers:
            out.append(f"{tag},option:dns-server,{','.join(servers)}")
        elif self.omit_dns_when_none:
            out.append(f"{tag},option:dns-server")
        if s.host_routes:
            # clients that take option 121 ignore option 3: the default route goes in too
            pairs = [(str(_network(dst)), _ip(hop)) for dst, hop in s.host_routes]
            routes = [f"{dst},{hop}" for dst, hop in pairs]
            if gateway and not any(dst == "0.0.0.0/0" for dst, _ in pairs):
                routes.append(f"0.0.0.0/0,{gateway}")
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
