"""Value kinds: convert a wire value to its one canonical spelling, or say why not.

A kind is a callable ``kind(value) -> value`` that raises :class:`BadValue`,
plus ``json_schema()`` for the OpenAPI document.  Normalising on the way in
(lower-case MACs, compressed IPv6, CIDRs) means the database, filters and
agents only ever see one spelling.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Sequence
from typing import Any


class BadValue(ValueError):
    """A wire value that does not fit its kind.

    ``converting`` marks failures of type conversion (reported by Neutron as
    ``InvalidInput``) as opposed to failures of a rule on a converted value
    (reported as ``HTTPBadRequest`` naming the attribute).
    """

    def __init__(self, message: str, *, converting: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.converting = converting


class Kind:
    nullable = False

    def __call__(self, value: Any) -> Any:
        if value is None:
            if self.nullable:
                return None
            raise BadValue(self.none_message())
        return self.convert(value)

    def none_message(self) -> str:
        return "'None' is not an allowed value"

    def convert(self, value: Any) -> Any:
        raise NotImplementedError

    def json_schema(self) -> dict:
        raise NotImplementedError

    def from_query(self, text: str) -> Any:
        """Convert a query-string value (always text) for filtering."""
        return self(text)


def _or_null(schema: dict, nullable: bool) -> dict:
    if not nullable:
        return schema
    return {"anyOf": [schema, {"type": "null"}]}


class String(Kind):
    def __init__(self, max_len: int | None = 255, *, nullable: bool = False) -> None:
        self.max_len = max_len
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if not isinstance(value, str):
            raise BadValue(f"'{value}' is not a valid string")
        if self.max_len is not None and len(value) > self.max_len:
            raise BadValue(f"'{value}' exceeds maximum length of {self.max_len}")
        if "\x00" in value:  # PostgreSQL cannot store it; no name needs it
            raise BadValue(f"{value!r} contains a NUL character")
        return value

    def from_query(self, text: str) -> Any:
        return text  # any text is a fine thing to look for

    def json_schema(self) -> dict:
        s: dict = {"type": "string"}
        if self.max_len is not None:
            s["maxLength"] = self.max_len
        return _or_null(s, self.nullable)


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class Boolean(Kind):
    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def convert(self, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            low = value.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
        raise BadValue(f"'{value}' cannot be converted to boolean", converting=True)

    def json_schema(self) -> dict:
        return _or_null({"type": "boolean"}, self.nullable)


def whole_number(value: Any) -> int | None:
    """The integer a wire value spells, or None: an int, decimal text, or a float with no
    fraction (JSON Schema's integers include ``2.0``, and upstream converts them too)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


class Integer(Kind):
    def __init__(self, minimum: int | None = None, maximum: int | None = None,
                 *, nullable: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.nullable = nullable

    def convert(self, value: Any) -> int:
        if isinstance(value, bool):
            raise BadValue(f"'{value}' is not an integer", converting=True)
        number = whole_number(value)
        if number is None:
            raise BadValue(f"'{value}' is not an integer", converting=True)
        if self.minimum is not None and number < self.minimum:
            raise BadValue(f"'{number}' should be greater than or equal to {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise BadValue(f"'{number}' should be less than or equal to {self.maximum}")
        return number

    def from_query(self, text: str) -> Any:
        # A filter value out of range matches nothing; it is not an error (as upstream).
        return query_int(text)

    def json_schema(self) -> dict:
        s: dict = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return _or_null(s, self.nullable)


QUERY_INT_MAX = 2**31 - 1


def query_int(text: str) -> int:
    """An integer to filter on, clamped to 32 bits.

    A wider one cannot even be bound (SQLite: past 64 bits; PostgreSQL casts to the
    column's INTEGER) and was a 500 upstream too.  No attribute ever holds a value at
    the 32-bit bounds, so the clamped value matches nothing, as the original would.
    """
    return max(-QUERY_INT_MAX, min(Integer()(text), QUERY_INT_MAX))


class OneOf(Kind):
    def __init__(self, *choices: Any, nullable: bool = False) -> None:
        self.choices = choices
        self.nullable = nullable

    def convert(self, value: Any) -> Any:
        if isinstance(value, (str, int)) and not isinstance(value, bool) \
                and value in self.choices:
            return value
        if isinstance(value, str) and value.isdigit() and int(value) in self.choices:
            return int(value)
        if isinstance(value, float) and value.is_integer() and int(value) in self.choices:
            return int(value)  # 4.0 is JSON Schema's integer 4 too
        listed = ", ".join(repr(c) for c in self.choices)
        raise BadValue(f"'{value}' is not in [{listed}]")

    def from_query(self, text: str) -> Any:
        # Filtering on a value outside the choices matches nothing (as upstream); only
        # integer choices insist on an integer.
        if self.choices and all(isinstance(c, int) for c in self.choices if c is not None):
            return query_int(text)
        return text

    def json_schema(self) -> dict:
        return _or_null({"enum": list(self.choices)}, self.nullable)


class Uuid(Kind):
    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if isinstance(value, str):
            try:
                parsed = uuid.UUID(value)
            except ValueError:
                pass
            else:
                return str(parsed)
        raise BadValue(f"'{value}' is not a valid UUID")

    def json_schema(self) -> dict:
        return _or_null({"type": "string", "format": "uuid"}, self.nullable)

    def from_query(self, text: str) -> Any:
        # A filter on a malformed id simply matches nothing, as upstream.
        try:
            return self(text)
        except BadValue:
            return text


def ip_text(value: Any) -> str:
    """``value`` if it is text an address parser may read, else ValueError.

    Python's ipaddress also takes an IPv6 zone (``fe80::1%eth0``), which neither nft
    (it reads the zone as a host name and fails the whole batch: CVE-2014-0187's class)
    nor dnsmasq does, and which upstream's netaddr refuses: no address field has one.
    Surrounding blanks are no part of an address either."""
    if not isinstance(value, str) or value.strip() != value or "%" in value:
        raise ValueError(f"{value!r} is no address text")
    return value


class IpAddress(Kind):
    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and "/" not in value:
            try:
                return str(ipaddress.ip_address(ip_text(value)))
            except ValueError:
                pass
        raise BadValue(f"'{value}' is not a valid IP address")

    def from_query(self, text: str) -> Any:
        # the stored spelling of an address; text that is no address matches nothing
        try:
            return self(text)
        except BadValue:
            return text

    def json_schema(self) -> dict:
        return _or_null({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                        self.nullable)


class Cidr(Kind):
    """A subnet in CIDR form; host bits must be zero (``strict``) or are masked."""

    def __init__(self, *, strict: bool = True, nullable: bool = False) -> None:
        self.strict = strict
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and "/" in value:
            try:
                iface = ipaddress.ip_interface(ip_text(value))
            except ValueError:
                pass
            else:
                net = iface.network
                if self.strict and iface.ip != net.network_address:
                    raise BadValue(f"'{value}' isn't a recognized IP subnet cidr, "
                                   f"'{net}' is recommended")
                return str(net)
        if not self.strict:
            # the subnet ``cidr`` itself: upstream reports a conversion failure
            raise BadValue(f"{value} is not in a CIDR format", converting=True)
        raise BadValue(f"'{value}' is not a valid IP subnet")

    def json_schema(self) -> dict:
        return _or_null({**CIDR_SCHEMA, "examples": ["192.0.2.0/24", "2001:db8::/64"]},
                        self.nullable)


# CIDRs for the OpenAPI document (the converters themselves use ipaddress)
_V4 = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}"
_H = "[0-9a-fA-F]{1,4}"
_V6 = "(" + "|".join((
    f"({_H}:){{7}}{_H}", f"({_H}:){{1,7}}:", f"({_H}:){{1,6}}:{_H}",
    *(f"({_H}:){{1,{5 - n}}}(:{_H}){{1,{n + 2}}}" for n in range(5)),
    f":((:{_H}){{1,7}}|:)")) + ")"
CIDR_SCHEMA: dict = {"type": "string", "anyOf": [
    {"pattern": f"^{_V4}/(3[0-2]|[12]?\\d)$"},
    {"pattern": f"^{_V6}/(12[0-8]|1[01]\\d|[1-9]?\\d)$"}]}

_MAC = re.compile(r"^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$")


class MacAddress(Kind):
    def convert(self, value: Any) -> str:
        if isinstance(value, str) and _MAC.match(value):
            mac = value.lower().replace("-", ":")
            first = int(mac[:2], 16)
            if mac == "00:00:00:00:00:00" or first & 1:
                raise BadValue(f"'{value}' is not a valid unicast MAC address")
            return mac
        raise BadValue(f"'{value}' is not a valid MAC address")

    def from_query(self, text: str) -> Any:
        try:
            return self(text)
        except BadValue:
            return text  # matches nothing

    def json_schema(self) -> dict:
        # unicast (the low bit of the first octet clear) and not all zeros
        return {"type": "string", "pattern": r"^[0-9a-fA-F][02468aAcCeE]([:-][0-9a-fA-F]{2}){5}$",
                "not": {"pattern": r"^00([:-]00){5}$"}}


class Dict(Kind):
    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def convert(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise BadValue(f"'{value}' is not a dictionary")
        return value

    def json_schema(self) -> dict:
        return _or_null({"type": "object"}, self.nullable)


class ListOf(Kind):
    """A JSON list of one kind; ``unique`` refuses repeated items."""

    def __init__(self, item: Callable[[Any], Any], *, unique: bool = False,
                 max_items: int | None = None, nullable: bool = False) -> None:
        self.item = item
        self.unique = unique
        self.max_items = max_items
        self.nullable = nullable

    def convert(self, value: Any) -> list:
        if not isinstance(value, list):
            raise BadValue(f"'{value}' is not a list")
        if self.max_items is not None and len(value) > self.max_items:
            # not the list itself in the message: it may be huge
            raise BadValue(f"{len(value)} items exceed the maximum of {self.max_items}")
        out = [self.item(v) for v in value]
        if self.unique:
            seen: list = []
            for v in out:
                if v in seen:
                    raise BadValue(f"Duplicate items in the list: '{v}'")
                seen.append(v)
        return out

    def json_schema(self) -> dict:
        item_schema = self.item.json_schema() if isinstance(self.item, Kind) else {}
        s: dict = {"type": "array", "items": item_schema}
        if self.max_items is not None:
            s["maxItems"] = self.max_items
        return _or_null(s, self.nullable)


class Record(Kind):
    """A JSON object with named keys of given kinds (e.g. an allocation pool)."""

    def __init__(self, fields: dict[str, Callable[[Any], Any]], *,
                 required: Sequence[str] = (), optional_default: Any = None) -> None:
        self.fields = fields
        self.required = tuple(required)
        self.optional_default = optional_default

    def convert(self, value: Any) -> dict:
        if not isinstance(value, dict):
            raise BadValue(f"'{value}' is not a dictionary")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise BadValue(f"Unexpected keys supplied: {', '.join(unknown)}")
        missing = [k for k in self.required if k not in value]
        if missing:
            raise BadValue(f"Validation of dictionary's keys failed. Expected keys: "
                           f"{set(self.required)} Provided keys: {set(value)}")
        out = {}
        for key, kind in self.fields.items():
            if key in value:
                out[key] = kind(value[key])
        return out

    def json_schema(self) -> dict:
        props = {k: (v.json_schema() if isinstance(v, Kind) else {})
                 for k, v in self.fields.items()}
        return {"type": "object", "properties": props, "required": list(self.required),
                "additionalProperties": False}


#: tags one resource may carry (upstream's fixed per-resource limit)
MAX_TAGS = 50


class Tag(String):
    def __init__(self) -> None:
        super().__init__(max_len=255)

    def convert(self, value: Any) -> str:
        tag = super().convert(value)
        if not tag or "," in tag or "/" in tag:
            raise BadValue(f"'{value}' is not a valid tag: it must be non-empty and "
                           "contain neither ',' nor '/'")
        return tag


#: What may reach a daemon's configuration file (dnsmasq's opts file): printable ASCII
#: without whitespace, quotes, backslashes or ``#``.  dnsmasq reads its files a line at a
#: time, takes ``#`` after whitespace as a comment and unquotes ``"..."`` with backslash
#: escapes, so any of these could end a value early or start a directive of its own
#: (upstream's CVE-2021-40085: a newline in an extra_dhcp_opt became an option for the
#: whole network).  Real values (addresses and lists of them, ``[v6]``, paths, URLs with
#: queries, host names, hex strings) need none of them.
_CONFIG_VALUE = re.compile(r"[!$%&()*+,\-./0-9:;<=>?@A-Z\[\]^_a-z{|}~]+")
#: a DHCP option as dnsmasq names it: a number or a name, after at most one match tag
#: (``tag:!ipxe,bootfile-name``, as Ironic sends)
_DHCP_OPTION_NAME = re.compile(r"(tag:!?[A-Za-z0-9_.-]{1,64},)?"
                               r"([0-9]{1,5}|[A-Za-z][A-Za-z0-9_.-]*)")


def config_value_problem(value: str) -> str | None:
    """Why ``value`` may not go into a daemon's configuration file (None: it may)."""
    if not value:
        return "it is empty"
    bad = sorted({c for c in value if not _CONFIG_VALUE.fullmatch(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        return (f"it contains {shown}: only printable ASCII without whitespace, quotes, "
                "backslashes or '#' is allowed")
    return None


def dhcp_option_name_problem(name: str) -> str | None:
    """Why ``name`` is no DHCP option name dnsmasq takes (None: it is one)."""
    m = _DHCP_OPTION_NAME.fullmatch(name)
    if m is None:
        return ("it must be an option number or name (letters, digits, '-', '_', '.'), "
                "optionally after one 'tag:<name>,'")
    if m.group(2).isdigit() and int(m.group(2)) > 65535:
        return "an option number is at most 65535"
    return None


class ConfigText(String):
    """Text that reaches a daemon's configuration file (see :func:`config_value_problem`)."""

    def convert(self, value: Any) -> str:
        text = super().convert(value)
        problem = config_value_problem(text)
        if problem:
            raise BadValue(f"'{text.encode('unicode_escape').decode()}' is not allowed: "
                           f"{problem}")
        return text

    def json_schema(self) -> dict:
        s = super().json_schema()
        target = s["anyOf"][0] if "anyOf" in s else s
        target["pattern"] = f"^{_CONFIG_VALUE.pattern}$"
        return s


class DhcpOptionName(String):
    """A DHCP option's name as dnsmasq takes it."""

    def convert(self, value: Any) -> str:
        text = super().convert(value)
        problem = dhcp_option_name_problem(text)
        if problem:
            raise BadValue(f"'{text.encode('unicode_escape').decode()}' is not a valid DHCP "
                           f"option name: {problem}")
        return text

    def json_schema(self) -> dict:
        return {**super().json_schema(), "pattern": f"^{_DHCP_OPTION_NAME.pattern}$"}


class IpOrCidr(Kind):
    """An address or a network (allowed address pairs accept both)."""

    def convert(self, value: Any) -> str:
        try:
            if "/" in ip_text(value):
                return str(ipaddress.ip_network(value, strict=False))
            return str(ipaddress.ip_address(value))
        except ValueError:
            pass
        raise BadValue(f"'{value}' is not a valid IP address or CIDR")

    def json_schema(self) -> dict:
        return {"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"},
                                            *CIDR_SCHEMA["anyOf"]]}


class Prefix(Cidr):
    """A subnet pool prefix: host bits are masked away (as upstream), not refused."""

    def __init__(self) -> None:
        super().__init__(strict=True)

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and "/" in value:
            try:
                return str(ipaddress.ip_interface(ip_text(value)).network)
            except ValueError:
                pass
        raise BadValue(f"'{value}' is not a valid IP subnet")


class PrefixLength(Integer):
    """A prefix length (0-128).  Upstream answers subnet pools' lengths as strings
    (``"24"``), so the document admits both spellings, on the way in and out."""

    def __init__(self) -> None:
        super().__init__(0, 128)

    def json_schema(self) -> dict:
        return {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 128},
                          {"type": "string", "pattern": r"^(12[0-8]|1[01]\d|[1-9]?\d)$"}]}


class OrNothing(Kind):
    """An object of ``kind``, or nothing: null, ``{}`` and any other empty value all
    mean "none" (upstream's ``dict_or_nodata``, e.g. a router's gateway)."""

    nullable = True

    def __init__(self, kind: Kind) -> None:
        self.kind = kind

    def convert(self, value: Any) -> Any:
        if not value and isinstance(value, (dict, list, str)):
            return None
        return self.kind(value)

    def json_schema(self) -> dict:
        return {"anyOf": [self.kind.json_schema(), {"type": "null"},
                          {"type": "object", "maxProperties": 0}]}
