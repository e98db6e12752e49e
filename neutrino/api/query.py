"""Neutron's list conventions, read from a query string."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode

from neutrino import errors
from neutrino.services.core.collection import ListQuery

RESERVED = ("fields", "sort_key", "sort_dir", "limit", "marker", "page_reverse")
MAX_LIMIT = 2**31 - 1


@dataclass
class Parsed:
    query: ListQuery
    fields: list[str] = field(default_factory=list)
    pairs: list[tuple[str, str]] = field(default_factory=list)


def parse(query_string: str) -> Parsed:
    pairs = parse_qsl(query_string, keep_blank_values=True)
    if any("\x00" in k or "\x00" in v for k, v in pairs):
        # nothing stored holds one, and PostgreSQL refuses to even compare with one
        raise errors.BadRequest("Invalid query string: it contains a NUL character")
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
    # the service reads only what these need; an empty ``fields=`` shows everything
    q = ListQuery(filters=filters, sorts=list(zip(sort_keys, sort_dirs, strict=True)),
                  fields=frozenset(fields) or None)
    if limit is not None:
        try:
            q.limit = int(limit)
            if q.limit < 0:
                raise ValueError
        except ValueError:
            raise errors.BadRequest(f"Bad limit request: Limit must be an integer 0 or greater "
                                    f"and not '{limit}'.", type="BadRequest") from None
        # a page bigger than any table is no limit; the database could not bind 2**63
        q.limit = min(q.limit, MAX_LIMIT) or None
    # A marker counts even without a limit (upstream ignores it then; clients such as
    # ``openstack network list --marker`` expect it to count).
    q.marker = marker or None
    # upstream reads only "true" (any case) as true and never refuses a value
    q.page_reverse = (page_reverse or "").lower() == "true"
    return Parsed(q, fields, pairs)


def links(base_url: str, collection: str, parsed: Parsed, items: list[dict],
          has_more: bool) -> list[dict]:
    """``*_links`` for a page, by upstream's rule (clients and tempest rely on it).

    ``next`` is there unless a forward page came back short, ``previous`` unless a
    reverse page did; so the last full page links to an empty one, and an empty page
    links back (``previous`` without a marker: the last page).
    """
    q = parsed.query
    if not q.limit:
        return []
    keep = [(k, v) for k, v in parsed.pairs if k not in ("marker", "page_reverse")]
    out = []

    def href(marker: str | None, reverse: bool) -> str:
        params = [*keep, *([("marker", marker)] if marker else [])]
        if reverse:
            params.append(("page_reverse", "True"))
        return f"{base_url}/v2.0/{collection}?{urlencode(params)}"

    short = len(items) < q.limit
    if not (short and not q.page_reverse):
        out.append({"rel": "next", "href": href(items[-1]["id"] if items else None, False)})
    if not (short and q.page_reverse):
        out.append({"rel": "previous", "href": href(items[0]["id"] if items else None, True)})
    return out
