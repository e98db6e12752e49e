"""Value kinds of FWaaS v2 firewall rules: protocol, port or port range, action, address.

Each normalises on the way in, so the database and the data plane see one spelling:

- protocol: ``tcp``, ``udp``, ``icmp`` in any case (stored lower case); ``null`` or
  ``"any"`` for any protocol (stored null); a protocol number 0-255, as a JSON number or
  text, stored as its decimal text.  Upstream takes only the three names (its
  ``"any"``/numbers are refused); the numbers and ``any`` are a deliberate superset
  (docs/api-differences.md).
- ports: one port (``22``, ``"22"``) or a range ``"lo:hi"`` with ``lo <= hi``, stored as
  text (``"22"``, ``"8000:8080"``); ``"80:80"`` is ``"80"``; ``0`` and ``null`` mean any
  port, as upstream stores them (null).
- action: ``allow``, ``deny`` or ``reject`` in any case.
- addresses: an address or a CIDR (host bits kept, as upstream keeps them).

Errors carry upstream's wording and types.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from neutrino import errors
from neutrino.schema.kinds import CIDR_SCHEMA, BadValue, Kind, ListOf, ip_text, whole_number

PROTOCOLS = ("tcp", "udp", "icmp")
ANY = "any"
ACTIONS = ("allow", "deny", "reject")
PORT_RANGE = re.compile(r"^(\d{1,5})(?::(\d{1,5}))?$")
_NUMBER = re.compile(r"^\s*\d+\s*$")


def canonical_protocol(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value.lower() == ANY):
        return None
    if isinstance(value, str) and value.lower() in PROTOCOLS:
        return value.lower()
    number = whole_number(value) if not isinstance(value, str) else (
        int(value) if _NUMBER.match(value) else None)
    if number is not None and 0 <= number <= 255:
        return str(number)
    raise errors.BadRequest(
        f"Firewall rule protocol {value} is not supported. Only protocol values "
        f"{[None, ANY, *PROTOCOLS]} and their integer representation (0 to 255) are "
        f"supported.", type="FirewallRuleInvalidProtocol")


class FirewallProtocol(Kind):
    nullable = True

    def convert(self, value: Any) -> str | None:
        return canonical_protocol(value)

    def from_query(self, text: str) -> Any:
        try:
            return canonical_protocol(text)
        except errors.BadRequest:
            return text  # matches nothing

    def json_schema(self) -> dict:
        return {"anyOf": [{"enum": [ANY, *PROTOCOLS]},
                          {"type": "string", "pattern": r"^(25[0-5]|2[0-4]\d|1?\d?\d)$"},
                          {"type": "integer", "minimum": 0, "maximum": 255},
                          {"type": "null"}]}


def _port(text: str) -> int:
    number = int(text)
    if number > 65535:
        raise BadValue(f"Invalid port: {text}")
    return number


class FirewallPort(Kind):
    """A port or ``lo:hi`` range, as text; ``0`` and null: any port (null)."""

    nullable = True

    def convert(self, value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise BadValue(f"Invalid port: {value}")
        text = str(value).strip()  # " 22" is 22, as upstream reads it
        match = PORT_RANGE.match(text)
        if match is None:
            if not text:
                raise BadValue("Port range must be two integers separated by a colon")
            bad = next((p for p in text.split(":") if not p.isdigit()), text)
            raise BadValue(f"Invalid port: {bad}")
        low = _port(match.group(1))
        high = _port(match.group(2)) if match.group(2) is not None else low
        if low > high:
            raise BadValue("First port in a port range must be lower than the second port")
        if high == 0:
            return None
        return str(low) if low == high else f"{low}:{high}"

    def from_query(self, text: str) -> Any:
        try:
            return self(text)
        except BadValue:
            return text

    def json_schema(self) -> dict:
        return {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 65535},
                          {"type": "string", "pattern": r"^\d{1,5}(:\d{1,5})?$"},
                          {"type": "null"}]}


class FirewallAction(Kind):
    def convert(self, value: Any) -> str:
        if isinstance(value, str) and value.lower() in ACTIONS:
            return value.lower()
        raise BadValue(f"{value} is not in valid_values")

    def from_query(self, text: str) -> Any:
        return text.lower()

    def json_schema(self) -> dict:
        return {"enum": list(ACTIONS)}


class FirewallAddress(Kind):
    """An address or CIDR in its compressed spelling; null: anywhere."""

    nullable = True

    def convert(self, value: Any) -> str | None:
        if isinstance(value, str) and value.strip() == value and value:
            try:
                if "/" in value:
                    return str(ipaddress.ip_interface(ip_text(value)))
                return str(ipaddress.ip_address(ip_text(value)))
            except ValueError:
                pass
        raise BadValue(f"'{value}' is neither a valid IP address, nor is it a valid IP subnet")

    def from_query(self, text: str) -> Any:
        try:
            return self(text)
        except BadValue:
            return text

    def json_schema(self) -> dict:
        return {"anyOf": [{"type": "string", "format": "ipv4"},
                          {"type": "string", "format": "ipv6"},
                          *({"type": "string", **cidr} for cidr in CIDR_SCHEMA["anyOf"]),
                          {"type": "null"}]}


class IdList(ListOf):
    """A list of ids where null means none (upstream takes null for ``[]``)."""

    nullable = True

    def __call__(self, value: Any) -> Any:
        return [] if value is None else self.convert(value)


def address_version(address: str) -> int:
    return ipaddress.ip_interface(address).version
