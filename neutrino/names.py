"""Kernel object names: the one place they are computed and parsed back.

Names follow upstream Neutron's linuxbridge agent so every troubleshooting habit
still works (``ip netns exec qrouter-<id> tcpdump -ni qr-<id[:11]>``).  Interface
names must fit IFNAMSIZ (16 bytes including the NUL), so every builder asserts the
15-character limit; a name that does not fit is a bug, not a runtime condition.

``parse_link`` / ``parse_namespace`` map a name back to what it was made from, so a
sweeper can tell our objects from anyone else's.
"""

from __future__ import annotations

import enum
import hashlib
import re
from typing import NamedTuple

IFNAMSIZ = 16
MAX_IFNAME = IFNAMSIZ - 1
ID_PREFIX_LEN = 11
# Namespaces are files under /run/netns: any file name works, but we keep them printable.
MAX_NAMESPACE = 255
MAX_VNI = 2**24 - 1
# Upstream's length for the hash that replaces a truncated physical device name.
_HASH_LEN = 6

# Ids are UUIDs; their first 11 characters are 8 hex digits, a dash and 2 hex digits.
_ID_PREFIX = re.compile(r"[0-9a-f]{8}-[0-9a-f]{2}")
_ID_FULL = re.compile(r"[0-9a-f][0-9a-f-]*")
# What the kernel rejects in an interface name (dev_valid_name): '/', ':' and whitespace.
_BAD_IFNAME = re.compile(r"[/:\s]")


class Kind(enum.StrEnum):
    BRIDGE = "bridge"
    TAP = "tap"
    ROUTER_INTERFACE = "router_interface"
    ROUTER_GATEWAY = "router_gateway"
    DHCP_NS_PORT = "dhcp_ns_port"
    VXLAN = "vxlan"
    VLAN = "vlan"
    VLAN_WIRE = "vlan_wire"
    DHCP_NAMESPACE = "dhcp_namespace"
    ROUTER_NAMESPACE = "router_namespace"


class Parsed(NamedTuple):
    """What a name was built from: ``ident`` is the id prefix (links), the full id
    (namespaces), the VNI (vxlan) or the VLAN id (vlan and vlan_wire, with ``physdev``
    set: the device name as it appears in the link's name, maybe cut and hashed)."""

    kind: Kind
    ident: str
    physdev: str | None = None


# Prefix -> kind for the "<prefix><id[:11]>" family of link names.
_LINK_PREFIXES: dict[str, Kind] = {
    "brq": Kind.BRIDGE,
    "tap": Kind.TAP,
    "qr-": Kind.ROUTER_INTERFACE,
    "qg-": Kind.ROUTER_GATEWAY,
    "ns-": Kind.DHCP_NS_PORT,
}
_NAMESPACE_PREFIXES: dict[str, Kind] = {
    "qdhcp-": Kind.DHCP_NAMESPACE,
    "qrouter-": Kind.ROUTER_NAMESPACE,
}


def _ifname(name: str) -> str:
    assert name, "empty interface name"
    assert len(name) <= MAX_IFNAME, f"interface name {name!r} is longer than {MAX_IFNAME}"
    assert not _BAD_IFNAME.search(name) and name not in (".", ".."), \
        f"interface name {name!r} has a character the kernel rejects"
    return name


def _prefixed(prefix: str, ident: str) -> str:
    assert ident, "an id is needed to name a kernel object"
    return _ifname(prefix + ident[:ID_PREFIX_LEN])


def bridge(network_id: str) -> str:
    """The Linux bridge of a network: ``brq`` + network id[:11]."""
    return _prefixed("brq", network_id)


#: every tap, as an nftables interface wildcard
TAP_WILDCARD = "tap*"


def tap(port_id: str) -> str:
    """An instance port, and the bridge side of a DHCP port: ``tap`` + port id[:11]."""
    return _prefixed("tap", port_id)


def router_interface(port_id: str) -> str:
    """A router's internal port inside ``qrouter-``: ``qr-`` + port id[:11]."""
    return _prefixed("qr-", port_id)


def router_gateway(port_id: str) -> str:
    """A router's external gateway port inside ``qrouter-``: ``qg-`` + port id[:11]."""
    return _prefixed("qg-", port_id)


def dhcp_tap(port_id: str) -> str:
    """The bridge side of a DHCP port's veth pair (same as an instance tap)."""
    return tap(port_id)


def dhcp_ns_port(port_id: str) -> str:
    """The namespace side of a DHCP port's veth pair: ``ns-`` + port id[:11]."""
    return _prefixed("ns-", port_id)


def _namespace(prefix: str, ident: str) -> str:
    assert ident, "an id is needed to name a namespace"
    name = prefix + ident
    assert len(name) <= MAX_NAMESPACE and "/" not in name and not any(c.isspace() for c in name), \
        f"namespace name {name!r} is not a usable file name"
    return name


def dhcp_namespace(network_id: str) -> str:
    return _namespace("qdhcp-", network_id)


def router_namespace(router_id: str) -> str:
    return _namespace("qrouter-", router_id)


#: namespaces of ``neutrino instance`` (test and demo instances, not the agent's)
INSTANCE_PREFIX = "nt-inst-"
_INSTANCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def instance_namespace(name: str) -> str:
    """The namespace of the instance ``name`` (``nt-inst-<name>``)."""
    assert _INSTANCE_NAME.fullmatch(name), \
        f"instance name {name!r}: letters, digits, '_', '.', '-' (at most 63)"
    return _namespace(INSTANCE_PREFIX, name)


def vxlan(vni: int) -> str:
    """The VXLAN device of a segment: ``vxlan-<vni>`` (at most 14 characters)."""
    assert 0 < vni <= MAX_VNI, f"VNI {vni} outside 1..{MAX_VNI}"
    return _ifname(f"vxlan-{vni}")


#: the wire side of a VLAN segment's veth pair (see ``vlan_wire``)
VLAN_WIRE_PREFIX = "vw-"


def _physdev_name(prefix: str, physdev: str, vid: int) -> str:
    """``<prefix><physdev>.<vid>``; when that does not fit, the device name is cut and
    its tail replaced by a short hash of the full name, as upstream does, so two long
    device names that share a prefix still get different names."""
    assert 0 < vid < 4095, f"VLAN id {vid} outside 1..4094"
    _ifname(physdev)
    suffix = f".{vid}"
    if len(prefix) + len(physdev) + len(suffix) <= MAX_IFNAME:
        return _ifname(prefix + physdev + suffix)
    digest = hashlib.sha1(physdev.encode()).hexdigest()[:_HASH_LEN]
    keep = MAX_IFNAME - len(prefix) - len(suffix) - _HASH_LEN
    return _ifname(prefix + physdev[:keep] + digest + suffix)


def vlan(physdev: str, vid: int) -> str:
    """The VLAN segment's device in the network's bridge: ``<physdev>.<vid>``, upstream's
    name for its 802.1Q sub-interface (here the bridge end of a veth pair)."""
    return _physdev_name("", physdev, vid)


def vlan_wire(physdev: str, vid: int) -> str:
    """The other end of that veth pair, where tc tags frames and sends them out of
    ``physdev``: ``vw-<physdev>.<vid>`` (cut and hashed like ``vlan``)."""
    return _physdev_name(VLAN_WIRE_PREFIX, physdev, vid)


def _parse_vlan(name: str, kind: Kind) -> Parsed | None:
    physdev, dot, vid = name.rpartition(".")
    if dot and physdev and vid.isdigit() and not vid.startswith("0") and 0 < int(vid) < 4095:
        return Parsed(kind, vid, physdev)
    return None


def parse_link(name: str) -> Parsed | None:
    """Recognise an interface name we would have made; None for anyone else's."""
    for prefix, kind in _LINK_PREFIXES.items():
        if name.startswith(prefix):
            ident = name[len(prefix):]
            return Parsed(kind, ident) if _ID_PREFIX.fullmatch(ident) else None
    if name.startswith("vxlan-"):
        vni = name[len("vxlan-"):]
        if vni.isdigit() and not vni.startswith("0") and int(vni) <= MAX_VNI:
            return Parsed(Kind.VXLAN, vni)
        return None
    if name.startswith(VLAN_WIRE_PREFIX):
        return _parse_vlan(name[len(VLAN_WIRE_PREFIX):], Kind.VLAN_WIRE)
    return _parse_vlan(name, Kind.VLAN)


def parse_namespace(name: str) -> Parsed | None:
    """Recognise ``qdhcp-<network id>`` / ``qrouter-<router id>``; None otherwise."""
    for prefix, kind in _NAMESPACE_PREFIXES.items():
        if name.startswith(prefix):
            ident = name[len(prefix):]
            return Parsed(kind, ident) if _ID_FULL.fullmatch(ident) else None
    return None


# -- nftables ---------------------------------------------------------------------------
#
# Tables, chains and sets the agent makes.  nft names are not bounded by IFNAMSIZ, so a
# port's chains carry its whole id (``neutrino trace`` and the sweeper read them back).

#: the security-group tables (``bridge`` and ``inet`` families, one name)
SG_TABLE = "neutrino-sg"
#: the set (in both security-group tables) whose one element carries their fingerprint
SG_FINGERPRINT_SET = "fingerprint"
#: a router namespace's NAT table (family ``ip``)
L3_NAT_TABLE = "neutrino-l3"
#: the host's masquerade of the public network to its uplink (family ``ip``)
PUBLIC_MASQUERADE_TABLE = "neutrino-public"


def sg_spoof_chain(port_id: str) -> str:
    """A port's anti-spoofing chain in the bridge table."""
    return f"spoof-{port_id}"


def sg_ingress_chain(port_id: str) -> str:
    """A port's security-group rules for what it receives (inet table)."""
    return f"in-{port_id}"


def sg_egress_chain(port_id: str) -> str:
    """A port's security-group rules for what it sends (inet table)."""
    return f"out-{port_id}"


def sg_remote_set(group_id: str, ethertype: str) -> str:
    """The member addresses of a remote group, one set per ethertype: ``rg4-<id>``."""
    assert ethertype in ("IPv4", "IPv6"), f"unknown ethertype {ethertype!r}"
    return f"rg{4 if ethertype == 'IPv4' else 6}-{group_id}"


def parse_sg_remote_set(name: str) -> tuple[str, int] | None:
    """``(group id, IP version)`` of a remote group's set name; None for any other."""
    prefix, dash, group_id = name.partition("-")
    if dash and prefix in ("rg4", "rg6") and group_id:
        return group_id, int(prefix[2])
    return None
