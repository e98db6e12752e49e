"""Value kinds of security-group rules: protocols, ports, ethertypes, remote prefixes.

Protocols keep the form the client used, as upstream does (its test suites create
rules with ``"6"`` and expect ``"6"`` back, with ``"tcp"`` and expect ``"tcp"``),
in one spelling per form:

- ``null`` and ``"any"`` (any case) mean any protocol: stored as ``null``;
- a name upstream knows, in any case, is stored in lower case (``TCP`` -> ``tcp``);
- a number 0-255, as a JSON number or as text, is stored as its decimal text
  (``6``, ``"06"`` and ``" 6"`` -> ``"6"``).

What a rule *means* is its IP protocol number (:func:`protocol_number`), stored
beside it (``security_group_rules.protocol_number``): duplicate checks, filters and
the data plane compare numbers, so ``tcp`` and ``6`` are the same rule.  With
ethertype IPv6 the legacy spellings of ICMPv6 (``icmp``, ``icmpv6``, ``1``) become
``ipv6-icmp`` / ``58``, as upstream rewrites them.

The wrong values are refused with upstream's error types, which the kinds raise
directly (a :class:`BadValue` would be reported as a generic ``HTTPBadRequest``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from neutrino import errors
from neutrino.schema.kinds import CIDR_SCHEMA, Kind, ip_text, whole_number

#: every protocol name upstream accepts, with its IANA number
PROTOCOL_NUMBERS: dict[str, int] = {
    "ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
    "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58,
    "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89,
    "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136,
    "vrrp": 112,
}
ANY = "any"
#: protocols whose rules may name ports (else a port range is a 400, as upstream)
PORT_PROTOCOLS = ("dccp", "sctp", "tcp", "udp", "udplite")
PORT_NUMBERS = frozenset(PROTOCOL_NUMBERS[p] for p in PORT_PROTOCOLS)
ICMP_NUMBERS = frozenset((1, 58))
#: protocols only IPv6 carries (upstream refuses them with ethertype IPv4)
IPV6_ONLY = frozenset(PROTOCOL_NUMBERS[p] for p in (
    "ipv6-encap", "ipv6-frag", "ipv6-icmp", "ipv6-nonxt", "ipv6-opts", "ipv6-route"))
ETHERTYPES = ("IPv4", "IPv6")
_NUMBER = re.compile(r"\s*[+-]?\d+\s*")


def _supported() -> str:
    names = ", ".join(repr(n) for n in sorted(PROTOCOL_NUMBERS))
    return f"(None, {ANY!r}, {names})"


def canonical_protocol(value: Any) -> str | None:
    """The stored spelling of a protocol given as a name or number; raises on others."""
    if value is None or (isinstance(value, str) and value.lower() == ANY):
        return None
    number = whole_number(value) if not isinstance(value, str) else None
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        number = int(value)
    elif isinstance(value, str) and value.lower() in PROTOCOL_NUMBERS:
        return value.lower()
    if number is not None and 0 <= number <= 255:
        return str(number)
    raise errors.BadRequest(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{_supported()} and integer representations [0 to 255] are supported.",
        type="SecurityGroupRuleInvalidProtocol")


def protocol_number(protocol: str | None) -> int | None:
    """The IP protocol number of a stored protocol (None: any)."""
    if protocol is None:
        return None
    return PROTOCOL_NUMBERS[protocol] if protocol in PROTOCOL_NUMBERS else int(protocol)


class Protocol(Kind):
    nullable = True

    def convert(self, value: Any) -> str | None:
        return canonical_protocol(value)

    def from_query(self, text: str) -> Any:
        try:
            return canonical_protocol(text)
        except errors.BadRequest:
            return text  # matches nothing

    def json_schema(self) -> dict:
        # the names in lower case (any case is taken), decimal text, numbers and null
        return {"anyOf": [{"enum": [ANY, *sorted(PROTOCOL_NUMBERS)]},
                          {"type": "string", "pattern": r"^(25[0-5]|2[0-4]\d|1?\d?\d)$"},
                          {"type": "integer", "minimum": 0, "maximum": 255},
                          {"type": "null"}]}


class PortNumber(Kind):
    """A port (or an ICMP type/code, which upstream carries in the port fields)."""

    nullable = True

    def convert(self, value: Any) -> int:
        number = whole_number(value)
        if number is None and isinstance(value, str) and _NUMBER.fullmatch(value):
            number = int(value)  # "+22" too
        if number is None or not 0 <= number <= 65535:
            raise errors.BadRequest(f"Invalid value for port {value}",
                                    type="SecurityGroupInvalidPortValue")
        return number

    def from_query(self, text: str) -> Any:
        try:
            return self.convert(text)
        except errors.BadRequest:
            return -1  # matches nothing

    def json_schema(self) -> dict:
        return {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535},
                          {"type": "null"}]}


class Ethertype(Kind):
    """``IPv4`` or ``IPv6``, in any case."""

    def convert(self, value: Any) -> str:
        if isinstance(value, str):
            for name in ETHERTYPES:
                if value.lower() == name.lower():
                    return name
        raise errors.BadRequest(
            f"Security group rule for ethertype '{value}' not supported. Allowed values "
            f"are {list(ETHERTYPES)}.", type="SecurityGroupRuleInvalidEtherType")

    def __call__(self, value: Any) -> Any:
        return self.convert(value)  # None is refused with the same error, as upstream

    def from_query(self, text: str) -> Any:
        try:
            return self.convert(text)
        except errors.BadRequest:
            return text

    def json_schema(self) -> dict:
        return {"enum": list(ETHERTYPES)}


def ip_prefix(value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    return ipaddress.ip_interface(ip_text(value))


class RemoteIpPrefix(Kind):
    """An address or CIDR, stored as ``address/length`` in its compressed spelling.

    Host bits are kept, as upstream keeps them (``10.1.2.3/8``); the masked network
    is the rule's ``normalized_cidr`` and what duplicate checks compare.
    """

    nullable = True

    def convert(self, value: Any) -> str | None:
        if value == "":
            return None  # upstream treats an empty prefix as none
        if isinstance(value, str) and value.strip() == value:
            try:
                return str(ip_prefix(value))
            except ValueError:
                pass
        raise errors.BadRequest(f"Invalid CIDR {value} given as IP prefix.",
                                type="InvalidCIDR")

    def from_query(self, text: str) -> Any:
        try:
            return self.convert(text)
        except errors.BadRequest:
            return text

    def json_schema(self) -> dict:
        # an address or a CIDR (host bits allowed), empty for none, or null
        return {"anyOf": [{"type": "string", "format": "ipv4"},
                          {"type": "string", "format": "ipv6"},
                          *({"type": "string", **cidr} for cidr in CIDR_SCHEMA["anyOf"]),
                          {"const": ""}, {"type": "null"}]}


def normalized_cidr(prefix: str | None) -> str | None:
    """The network of a stored prefix (``10.1.2.3/8`` -> ``10.0.0.0/8``)."""
    return None if prefix is None else str(ip_prefix(prefix).network)


class TargetProject(Kind):
    """The project an RBAC policy grants access to: a project id (UUID-like) or ``*``."""

    def convert(self, value: Any) -> str:
        if value == "*":
            return value
        if isinstance(value, str):
            text = value.strip().lower().replace("-", "").removeprefix("urn:uuid:")
            if re.fullmatch(r"\{?[0-9a-f]{32}\}?", text):
                return value
        raise errors.InvalidInput(f"'{value}' is not a valid target project ID; expected a "
                                  f"UUID or '*'.")

    def from_query(self, text: str) -> Any:
        return text

    def json_schema(self) -> dict:
        return {"anyOf": [{"const": "*"}, {"type": "string", "pattern": "^[0-9a-fA-F-]{32,36}$"}]}


class ObjectType(Kind):
    """What an RBAC policy shares: ``network`` or ``security_group``."""

    def __init__(self, *types: str) -> None:
        self.types = types

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and value.strip().lower() in self.types:
            return value.strip().lower()
        raise errors.InvalidInput(f"'{value}' is not a valid RBAC object type.")

    def from_query(self, text: str) -> Any:
        return text.strip().lower()

    def json_schema(self) -> dict:
        return {"enum": list(self.types)}
