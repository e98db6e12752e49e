"""Neutron's list conventions, read from a query string."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from neutrino import errors
from neutrino.schema.kinds import BadValue, Boolean
from neutrino.services.collection import ListQuery

RESERVED = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse")
_BOOL = Boolean()


@dataclass
class Parsed:
    query: ListQuery
    fields: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


def parse(query_string: str) -> Parsed:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    filters: dict[str, list[str]] = {}
    fields: list[str] = []
    sort_keys: list[str] = []
    sort_dirs: list[str] = []
    limit = marker = page_reverse = None
    for key, value in pairs:
        if key == "fields":
            fields.extend(f for f in value.split(",") if f)
        elif key == "sort_key":
            sort_keys.append(value)
        elif key == "sort_dir":
            sort_dirs.append(value.lower())
        elif key == "limit":
            limit = value
        elif key == "marker":
            marker = value
        elif key == "page_reverse":
            page_reverse = value
        else:
            filters.setdefault(key, []).append(value)
    if len(sort_keys) != len(sort_dirs):
        raise errors.BadRequest("The number of sort_keys and sort_dirs must be same")
    q = ListQuery(filters=filters, sorts=list(zip(sort_keys, sort_dirs, strict=True)))
    if limit is not None:
        try:
            q.limit = int(limit)
            if q.limit < 0:
                raise ValueError
        except ValueError:
            raise errors.BadRequest(f"Bad limit request: Limit must be an integer 0 or greater "
                                    f"and not '{limit}'.", type="BadRequest") from None
        q.limit = q.limit or None
    q.marker = marker or None
    if page_reverse is not None:
        try:
            q.page_reverse = _BOOL(page_reverse)
        except BadValue as exc:
            raise errors.InvalidInput(f"{exc.message}.") from None
    return Parsed(q, fields, pairs)


def links(base_url: str, collection: str, parsed: Parsed, items: list[dict],
          has_more: bool) -> list[dict]:
    """``*_links`` for a page: ``next`` and ``previous`` where such pages exist."""
    q = parsed.query
    if not q.limit or not items:
        return []
    keep = [(k, v) for k, v in parsed.pairs if k not in ("marker", "page_reverse")]
    out = []

    def href(marker: str, reverse: bool) -> str:
        params = [*keep, ("marker", marker)]
        if reverse:
            params.append(("page_reverse", "True"))
        return f"{base_url}/v2.0/{collection}?{urlencode(params)}"

    more_after = has_more if not q.page_reverse else bool(q.marker)
    more_before = bool(q.marker) if not q.page_reverse else has_more
    if more_after:
        out.append({"rel": "next", "href": href(items[-1]["id"], False)})
    if more_before:
        out.append({"rel": "previous", "href": href(items[0]["id"], True)})
    return out
