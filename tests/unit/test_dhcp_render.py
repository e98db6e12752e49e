"""Every file Neutrino renders for dnsmasq, fed hostile strings (through the API's
validation, and straight into the renderer as if the database held them): each file
must parse to exactly the directives intended, one line per item, nothing else.

The parser reads lines as dnsmasq's does (``option.c``, ``read_file``): a line ends at
``\\n`` (and, being a C string, at NUL; it is read into a fixed buffer, 1024 bytes at a
time); outside double quotes whitespace separates and a ``#`` at the start of a word
begins a comment; quotes are removed, with backslash escapes inside them.  It is
stricter than dnsmasq where that is safe: a stray quote or escape is reported, not
guessed at.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from neutrino.agent.dhcp.dnsmasq import CONF, Dnsmasq
from neutrino.agent.model import DhcpOption, Network, Port, Segment, Subnet
from neutrino.errors import BadRequest
from neutrino.schema.kinds import BadValue
from neutrino.schema.resources import DHCP_OPTION, PORT

NET = "aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa"
SUB = "bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb"
SUB6 = "cccccccc-cccc-4ccc-8ccc-cccccccccccc"
VICTIM = "11111111-1111-4111-8111-111111111111"
ATTACKER = "22222222-2222-4222-8222-222222222222"
DHCP = "dddddddd-dddd-4ddd-8ddd-dddddddddddd"
BACKEND = Dnsmasq(Path("/state"))

#: the strings a hostile user tries first
HOSTILE = [
    "1.2.3.4\ndhcp-option=3,6.6.6.6", "x\rdhcp-option=6,6.6.6.6", "x\r\ndhcp-range=6.6.6.0",
    "1.2.3.4\x00\ndhcp-option=6,6.6.6.6", "a #comment", "#", "a\t#b", '"', 'a"b', '"\n"',
    "\\", "a\\\nb", "'", "`x`", "a b", " lead", "trail ", "x\u2028dhcp-option=6,6.6.6.6",
    "x\u0085y", "x\u2029y", "x\x0by", "x\x0cy", "x\x1by", "\x7f", "é", "\ufeff",
    "a,b", "=", "x=y", "tag:port-" + VICTIM, "set:port-" + VICTIM, "A" * 5000,
    # dnsmasq reads 1024 bytes at a time: a longer line would go on as another one
    "A" * 1024 + "dhcp-option=6,6.6.6.6", "A" * 1000 + "é" * 20 + "dhcp-option=6,6.6.6.6",
    "10.0.0.1,10.0.0.2", "[2001:db8::1]", "/tftpboot/pxelinux.0",
    "http://10.0.0.5:8080/boot.ipxe?mac=${mac}&x=1",
]
NAMES = ["mtu", "121", "tag:!ipxe,bootfile-name", "x\ny", "option:router", "tag:a,tag:b,3",
         "dns-server\r", "a b", "#", ",", "tag:x", "99999", "set:port-" + VICTIM + ",3"]


# -- dnsmasq's line syntax ------------------------------------------------------------------

class Unparsable(ValueError):
    pass


def _words(line: str) -> str:
    """One line as dnsmasq's reader leaves it: comments gone, quotes undone, whitespace
    runs made one space, trimmed."""
    out: list[str] = []
    quoted = False
    white = True
    i = 0
    while i < len(line):
        c = line[i]
        if c == '"':
            quoted = not quoted
            white = False
        elif quoted and c == "\\":
            if i + 1 >= len(line):
                raise Unparsable(f"escape at the end of {line!r}")
            i += 1
            out.append({"n": "\n", "t": "\t", "e": "\x1b", "b": "\b", "r": "\r"}
                       .get(line[i], line[i]))
        elif not quoted and c in " \t\r\f\v":
            if not white:
                out.append(" ")
            white = True
        elif not quoted and white and c == "#":
            break
        else:
            out.append(c)
            white = False
        i += 1
    if quoted:
        raise Unparsable(f"unbalanced quote in {line!r}")
    return "".join(out).strip()


def lines(text: str) -> list[str]:
    """The file's logical lines, as dnsmasq reads them (empty and comment lines dropped)."""
    out = []
    for raw in text.split("\n"):
        data = raw.encode()
        # fgets into a buffer of MAXDNAME (1025) bytes: a longer line comes in pieces
        for piece in [data[i:i + 1024] for i in range(0, max(len(data), 1), 1024)]:
            words = _words(piece.decode(errors="replace").split("\x00", 1)[0])
            if words:
                out.append(words)
    return out


def directives(text: str) -> list[tuple[str, str | None]]:
    """``key[=value]`` lines of dnsmasq.conf."""
    out = []
    for line in lines(text):
        key, eq, value = line.partition("=")
        out.append((key.strip(), value if eq else None))
    return out


# -- what the renderer is fed ---------------------------------------------------------------

def _network(**subnet: object) -> Network:
    v4 = Subnet(SUB, 4, "10.0.0.0/24", "10.0.0.1", dns_nameservers=("10.0.0.53",),
                host_routes=(("192.168.0.0/16", "10.0.0.254"),), **subnet)  # type: ignore
    v6 = Subnet(SUB6, 6, "2001:db8::/64", "2001:db8::1", ipv6_ra_mode="slaac",
                ipv6_address_mode="slaac")
    return Network(NET, 1450, Segment("vxlan", None, 5), (v4, v6), l2=True, dhcp=True)


def _ports(opts: tuple[DhcpOption, ...]) -> list[Port]:
    return [
        Port(DHCP, NET, "fa:16:3e:00:00:02", ((SUB, "10.0.0.2"),), "network:dhcp", local=True,
             host_dhcp=True),
        Port(VICTIM, NET, "fa:16:3e:00:00:10", ((SUB, "10.0.0.10"), (SUB6, "2001:db8::10")),
             "compute:nova"),
        Port(ATTACKER, NET, "fa:16:3e:00:00:20", ((SUB, "10.0.0.20"),), "compute:nova",
             extra_dhcp_opts=opts),
    ]


def render(opts: tuple[DhcpOption, ...] = (), **subnet: object) -> dict[str, str]:
    files = BACKEND.render(_network(**subnet), _ports(opts), "ns-dddddddd-dd")
    return files.all()


def accepted(name: str, value: str) -> bool:
    """Whether the API takes this option (through the port's declaration, as a request)."""
    try:
        PORT.validate_create({"network_id": NET, "extra_dhcp_opts": [
            {"opt_name": name, "opt_value": value}]}, is_admin=False)
    except BadRequest:
        return False
    return True


CONF_KEYS = {"no-hosts", "no-resolv", "bind-dynamic", "interface", "except-interface",
             "dhcp-hostsfile", "addn-hosts", "dhcp-optsfile", "dhcp-leasefile", "domain",
             "dhcp-lease-max", "log-facility", "dhcp-range", "dhcp-option-force", "enable-ra",
             "ra-param"}


def check_structure(files: dict[str, str], attacker_opts: int) -> None:
    """Exactly the intended directives: the configuration's keys, one host and one name
    per address, the subnet's four options and ``attacker_opts`` lines of the attacker's,
    each tagged with its own port."""
    conf = directives(files[CONF])
    assert {k for k, _ in conf} == CONF_KEYS
    assert len(conf) == len(files[CONF].splitlines()) - 1  # the comment heading it
    assert [v for k, v in conf if k == "dhcp-range"] == [
        f"set:subnet-{SUB},10.0.0.0,static,255.255.255.0,86400s",
        f"set:subnet-{SUB6},2001:db8::,ra-only,64,86400s"]
    hosts = lines(files["host"])
    assert len(hosts) == 2 and len(files["host"].splitlines()) == 2
    assert hosts[0].startswith("fa:16:3e:00:00:10,host-10-0-0-10,")
    assert hosts[1].startswith("fa:16:3e:00:00:20,")
    addn = lines(files["addn_hosts"])
    assert len(addn) == 3 and len(files["addn_hosts"].splitlines()) == 3
    opts = lines(files["opts"])
    assert len(opts) == len(files["opts"].splitlines())
    mine = [o for o in opts if o.startswith(f"tag:port-{ATTACKER},")]
    subnet = [o for o in opts if o.startswith(f"tag:subnet-{SUB},")]
    assert len(mine) == attacker_opts
    assert len(subnet) == 4  # router, dns-server, 121, 249
    assert len(opts) == len(mine) + len(subnet), "no untagged or foreign line"
    # every subnet option is the intended one
    assert {o.split(",")[1] for o in subnet} == {
        "option:router", "option:dns-server", "option:classless-static-route", "249"}


# -- tests ----------------------------------------------------------------------------------

def test_legit_options_render_as_one_tagged_line_each() -> None:
    opts = (DhcpOption("bootfile-name", "/tftpboot/pxelinux.0"),
            DhcpOption("dns-server", "10.0.0.1,10.0.0.2"),
            DhcpOption("tag:!ipxe,bootfile-name", "http://10.0.0.5/boot.ipxe?a=1&b=2"),
            DhcpOption("42", "10.0.0.9"),
            DhcpOption("dns-server", "[2001:db8::53]", 6))
    files = render(opts)
    check_structure(files, 5)
    assert lines(files["opts"])[:5] == [
        f"tag:port-{ATTACKER},option:bootfile-name,/tftpboot/pxelinux.0",
        f"tag:port-{ATTACKER},option:dns-server,10.0.0.1,10.0.0.2",
        f"tag:port-{ATTACKER},tag:!ipxe,option:bootfile-name,http://10.0.0.5/boot.ipxe?a=1&b=2",
        f"tag:port-{ATTACKER},42,10.0.0.9",
        f"tag:port-{ATTACKER},option6:dns-server,[2001:db8::53]"]
    assert all(accepted(o.name, o.value) for o in opts)


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_add_no_directive(value: str) -> None:
    # straight into the renderer, as if the database held it: the option is left out
    # or stays exactly one line of the attacker's own port
    files = render((DhcpOption("dns-server", value),))
    kept = [o for o in lines(files["opts"]) if o.startswith(f"tag:port-{ATTACKER},")]
    check_structure(files, len(kept))
    assert len(kept) <= 1
    if kept:
        assert kept == [f"tag:port-{ATTACKER},option:dns-server,{value}"]
        assert accepted("dns-server", value), "the renderer keeps only what the API takes"


@pytest.mark.parametrize("name", NAMES)
def test_hostile_names_add_no_directive(name: str) -> None:
    files = render((DhcpOption(name, "10.0.0.9"),))
    kept = [o for o in lines(files["opts"]) if o.startswith(f"tag:port-{ATTACKER},")]
    check_structure(files, len(kept))
    assert len(kept) <= 1
    assert bool(kept) == accepted(name, "10.0.0.9")


def test_the_cve_2021_40085_payload_is_refused_and_never_rendered() -> None:
    payload = "1500\ndhcp-option=121,0.0.0.0/1,10.0.0.20\ndhcp-option=6,10.0.0.20"
    with pytest.raises(BadRequest, match="Invalid input for extra_dhcp_opts"):
        PORT.validate_create({"network_id": NET, "extra_dhcp_opts": [
            {"opt_name": "mtu", "opt_value": payload}]}, is_admin=False)
    files = render((DhcpOption("mtu", payload),))
    check_structure(files, 0)
    assert "10.0.0.20" not in files["opts"]


def test_values_in_subnets_and_ports_that_could_break_a_line_leave_them_out() -> None:
    # only reachable past the API (whose kinds refuse them): the renderer drops the item
    net = _network()
    bad = Subnet(SUB, 4, "10.0.0.0/24", "10.0.0.1\ndhcp-option=6,6.6.6.6")
    files = BACKEND.render(Network(NET, 1450, None, (bad,), dhcp=True), _ports(()),
                           "ns-x").all()
    assert "6.6.6.6" not in "".join(files.values())
    assert not lines(files["opts"]) and "dhcp-range" not in files[CONF]
    ports = _ports(())
    ports[1] = Port(VICTIM, NET, "fa:16:3e:00:00:10\ndhcp-host=x", ((SUB, "10.0.0.10"),))
    ports[2] = Port(ATTACKER, NET, "fa:16:3e:00:00:20", ((SUB, "10.0.0.20\n#"),))
    files = BACKEND.render(net, ports, "ns-x").all()
    assert lines(files["host"]) == [] and lines(files["addn_hosts"]) == []
    with pytest.raises(ValueError, match="not a domain name"):
        Dnsmasq(Path("/state"), domain="example.org\nserver=6.6.6.6")


# -- property: whatever the API accepts renders as exactly itself ---------------------------

_any_text = st.text(st.characters(codec="utf-8"), max_size=300)
_nasty = st.text(st.sampled_from(list("\n\r\x00\t #\"'\\,=:;/[]\u2028\u2029\u0085\x0b\x0c"
                                      "abc019.-_!")), max_size=40)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.one_of(st.sampled_from(NAMES), _nasty, _any_text),
       value=st.one_of(st.sampled_from(HOSTILE), _nasty, _any_text),
       ip_version=st.sampled_from([4, 6]))
@example(name="mtu", value="1\ndhcp-option=3,6.6.6.6", ip_version=4)
def test_fuzz_what_validation_accepts_renders_as_one_line_of_itself(
        name: str, value: str, ip_version: int) -> None:
    try:
        DHCP_OPTION({"opt_name": name, "opt_value": value, "ip_version": ip_version})
        ok = True
    except BadValue:
        ok = False
    files = render((DhcpOption(name, value, ip_version),))
    kept = [o for o in lines(files["opts"]) if o.startswith(f"tag:port-{ATTACKER},")]
    check_structure(files, len(kept))
    assert len(kept) == (1 if ok else 0)
    if ok:
        assert kept[0].endswith("," + value)  # parsed back: the value, whole and alone
        assert not any(c in kept[0] for c in "\n\r\x00\"'\\# ")


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(_nasty, _any_text))
def test_fuzz_address_kinds_never_let_text_through(value: str) -> None:
    # dns_nameservers, host routes and gateways reach the opts file too: their kinds
    # keep nothing but an address (or a network), in its one canonical spelling
    from neutrino.schema.kinds import Cidr, IpAddress
    for kind in (IpAddress(), Cidr()):
        try:
            out = kind(value)
        except BadValue:
            continue
        ipaddress.ip_network(out) if "/" in out else ipaddress.ip_address(out)
        assert all(c in "0123456789abcdef.:/" for c in out)
