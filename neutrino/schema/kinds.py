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
        return {"type": "boolean"}


class Integer(Kind):
    def __init__(self, minimum: int | None = None, maximum: int | None = None,
                 *, nullable: bool = False) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.nullable = nullable

    def convert(self, value: Any) -> int:
        if isinstance(value, bool):
            raise BadValue(f"'{value}' is not an integer", converting=True)
        if isinstance(value, int):
            number = value
        elif isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            number = int(value)
        else:
            raise BadValue(f"'{value}' is not an integer", converting=True)
        if self.minimum is not None and number < self.minimum:
            raise BadValue(f"'{number}' should be greater than or equal to {self.minimum}")
        if self.maximum is not None and number > self.maximum:
            raise BadValue(f"'{number}' should be less than or equal to {self.maximum}")
        return number

    def json_schema(self) -> dict:
        s: dict = {"type": "integer"}
        if self.minimum is not None:
            s["minimum"] = self.minimum
        if self.maximum is not None:
            s["maximum"] = self.maximum
        return _or_null(s, self.nullable)


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
        listed = ", ".join(repr(c) for c in self.choices)
        raise BadValue(f"'{value}' is not in [{listed}]")

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


class IpAddress(Kind):
    def __init__(self, *, nullable: bool = False) -> None:
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and "/" not in value and value.strip() == value:
            try:
                return str(ipaddress.ip_address(value))
            except ValueError:
                pass
        raise BadValue(f"'{value}' is not a valid IP address")

    def json_schema(self) -> dict:
        return _or_null({"type": "string", "anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
                        self.nullable)


class Cidr(Kind):
    """A subnet in CIDR form; host bits must be zero (``strict``) or are masked."""

    def __init__(self, *, strict: bool = True, nullable: bool = False) -> None:
        self.strict = strict
        self.nullable = nullable

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and "/" in value and value.strip() == value:
            try:
                iface = ipaddress.ip_interface(value)
            except ValueError:
                pass
            else:
                net = iface.network
                if self.strict and iface.ip != net.network_address:
                    raise BadValue(f"'{value}' isn't a recognized IP subnet cidr, "
                                   f"'{net}' is recommended")
                return str(net)
        raise BadValue(f"'{value}' is not a valid IP subnet")

    def json_schema(self) -> dict:
        return _or_null({"type": "string", "pattern": r"^[0-9a-fA-F:.]+/\d{1,3}$"}, self.nullable)


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

    def json_schema(self) -> dict:
        return {"type": "string", "pattern": _MAC.pattern}


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
            raise BadValue(f"'{value}' exceeds maximum number of items {self.max_items}")
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


class Tag(String):
    def __init__(self) -> None:
        super().__init__(max_len=255)

    def convert(self, value: Any) -> str:
        tag = super().convert(value)
        if not tag or "," in tag or "/" in tag:
            raise BadValue(f"'{value}' is not a valid tag: it must be non-empty and "
                           "contain neither ',' nor '/'")
        return tag


class IpOrCidr(Kind):
    """An address or a network (allowed address pairs accept both)."""

    def convert(self, value: Any) -> str:
        if isinstance(value, str) and value.strip() == value:
            try:
                if "/" in value:
                    return str(ipaddress.ip_network(value, strict=False))
                return str(ipaddress.ip_address(value))
            except ValueError:
                pass
        raise BadValue(f"'{value}' is not a valid IP address or CIDR")

    def json_schema(self) -> dict:
        return {"type": "string"}
