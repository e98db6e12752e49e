"""The resource contract, declared once.

Every resource (network, subnet, port, ...) is one :class:`Resource` holding
its :class:`Field` declarations.  Request validation, defaults, which
attributes may be filtered and sorted, admin-only visibility and the OpenAPI
document all derive from these declarations, so there is exactly one place to
change when an attribute changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from neutrino.errors import BadRequest, InvalidInput, PolicyNotAuthorized
from neutrino.schema.kinds import BadValue, Kind


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


REQUIRED = _Sentinel("REQUIRED")
#: Leave the attribute out of the validated body: the service computes it.
COMPUTED = _Sentinel("COMPUTED")


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    kind: Callable[[Any], Any]
    create: bool = True
    update: bool = True
    #: value used when a POST omits the attribute; REQUIRED refuses the omission;
    #: COMPUTED lets the service fill it.  A callable is called for a fresh value.
    default: Any = COMPUTED
    visible: bool = True
    filter: bool = True
    sort: bool = True
    #: only admins see it in responses and may set it
    admin_only: bool = False
    #: everyone sees it, only admins may set it
    admin_write: bool = False
    #: the extension alias that brings this attribute (for discovery and docs)
    extension: str | None = None
    description: str = ""

    def convert(self, value: Any) -> Any:
        return self._converted(self.kind, value)

    def is_default(self, value: Any) -> bool:
        """Whether a create's ``value`` is what omitting it gives (as upstream's policy,
        a create may say an admin-only attribute's default, e.g. ``shared: false``)."""
        if self.default is REQUIRED or self.default is COMPUTED or callable(self.default):
            return False
        try:
            return bool(self.convert(value) == self.default)
        except (BadRequest, InvalidInput):
            return False

    def convert_query(self, text: str) -> Any:
        """Convert a filter value from the query string (always text)."""
        from_query = getattr(self.kind, "from_query", self.kind)
        return self._converted(from_query, text)

    def _converted(self, fn: Callable[[Any], Any], value: Any) -> Any:
        try:
            return fn(value)
        except BadValue as exc:
            if exc.converting:
                raise InvalidInput(f"{exc.message}.") from None
            raise BadRequest(f"Invalid input for {self.name}. Reason: {exc.message}.") from None


@dataclass(frozen=True)
class Resource:
    name: str                 # "network"
    collection: str           # "networks"
    fields: tuple[Field, ...]
    #: sub-attributes filterable by ``attr=key=value`` (e.g. ``fixed_ips=ip_address=...``)
    extra_filters: tuple[str, ...] = ()
    #: the URL segment when it is not the collection name (``security-groups`` holds
    #: ``security_groups``)
    path: str = ""
    by_name: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "by_name", {f.name: f for f in self.fields})

    @property
    def url_path(self) -> str:
        """``/v2.0/<url_path>``: where the collection is served."""
        return self.path or self.collection

    # -- request bodies ------------------------------------------------------

    def unwrap(self, body: Any, *, allow_bulk: bool) -> tuple[list[dict], bool]:
        """Return the item dicts in a request body and whether it was a bulk body."""
        if not isinstance(body, dict):
            raise BadRequest("Body contains invalid data")
        if allow_bulk and self.collection in body:
            items = body[self.collection]
            if not isinstance(items, list) or not items \
                    or not all(isinstance(i, dict) for i in items):
                raise BadRequest(f"Resources required: '{self.collection}' must be a "
                                 f"non-empty list of objects")
            if len(body) != 1:
                raise BadRequest(f"Unrecognized attribute(s) "
                                 f"'{', '.join(sorted(set(body) - {self.collection}))}'")
            # an item may come wrapped as a single body is ({"network": {...}}), as
            # upstream accepts (tempest's bulk security groups are sent so)
            items = [i[self.name] if set(i) == {self.name} and isinstance(i[self.name], dict)
                     else i for i in items]
            return items, True
        if self.name not in body:
            raise BadRequest(f"Unable to find '{self.name}' in request body")
        item = body[self.name]
        if not isinstance(item, dict):
            raise BadRequest(f"Body contains invalid data: '{self.name}' must be an object")
        return [item], False

    def _check_keys(self, item: dict, *, is_admin: bool, op: str) -> None:
        unknown = [k for k in item if k not in self.by_name]
        if unknown:
            raise BadRequest(f"Unrecognized attribute(s) '{', '.join(sorted(unknown))}'")
        for key in item:
            spec = self.by_name[key]
            allowed = spec.create if op == "POST" else spec.update
            if not allowed:
                if op == "PUT":
                    raise BadRequest(f"Cannot update read-only attribute {key}")
                raise BadRequest(f"Attribute '{key}' not allowed in {op}")
            if (spec.admin_only or spec.admin_write) and not is_admin \
                    and not (op == "POST" and spec.is_default(item[key])):
                verb = "create" if op == "POST" else "update"
                raise PolicyNotAuthorized(f"{verb}_{self.name}:{key}")

    def validate_create(self, item: dict, *, is_admin: bool) -> dict:
        """Check and convert a POST item; fill declared defaults."""
        self._check_keys(item, is_admin=is_admin, op="POST")
        out: dict[str, Any] = {}
        for spec in self.fields:
            if not spec.create:
                continue
            if spec.name in item:
                out[spec.name] = spec.convert(item[spec.name])
            elif spec.default is REQUIRED:
                raise BadRequest(f"Failed to parse request. Required attribute "
                                 f"'{spec.name}' not specified")
            elif spec.default is COMPUTED:
                continue
            else:
                out[spec.name] = spec.default() if callable(spec.default) else spec.default
        return out

    def validate_update(self, item: dict, *, is_admin: bool) -> dict:
        self._check_keys(item, is_admin=is_admin, op="PUT")
        return {k: self.by_name[k].convert(v) for k, v in item.items()}

    # -- responses -----------------------------------------------------------

    def hidden_for(self, is_admin: bool) -> frozenset[str]:
        return frozenset(f.name for f in self.fields
                         if not f.visible or (f.admin_only and not is_admin))

    def filterable(self) -> Iterable[str]:
        return (f.name for f in self.fields if f.filter)


def json_kind(kind: Callable[[Any], Any]) -> dict:
    return kind.json_schema() if isinstance(kind, Kind) else {}
