"""Octavia's list conventions, applied to the objects a caller may see: filters by
any attribute, ``tags``/``tags-any``/``not-tags``/``not-tags-any``, ``fields``,
``sort=key:dir,...`` (or ``sort_key``/``sort_dir``), ``limit``/``marker``/
``page_reverse``, and the ``<collection>_links`` of a page."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

from neutrino import errors

PAGING = {"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields"}
TAG_FILTERS = {"tags", "tags-any", "not-tags", "not-tags-any"}
MAX_LIMIT = 1000


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches(item: dict, key: str, wanted: list[str]) -> bool:
    value = item[key] if key in item else item.get(f"_{key}")
    if isinstance(value, bool):
        return any(w.lower() in (_text(value), "1" if value else "0") for w in wanted)
    return _text(value) in wanted


def _tags(item: dict, key: str, values: list[str]) -> bool:
    asked = {t for v in values for t in v.split(",") if t}
    have = set(item.get("tags") or [])
    if key == "tags":
        return asked <= have
    if key == "tags-any":
        return bool(asked & have)
    if key == "not-tags":
        return not asked <= have
    return not (asked & have)


def page(items: list[dict], query: str, collection: str, base: str) -> dict:
    params: dict[str, list[str]] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        params.setdefault(key, []).append(value)
    out = items
    for key, values in params.items():
        if key in TAG_FILTERS:
            out = [i for i in out if _tags(i, key, values)]
        elif key not in PAGING and out and (key in out[0] or f"_{key}" in out[0]):
            out = [i for i in out if _matches(i, key, values)]
    sorts: list[tuple[str, bool]] = []
    for spec in ",".join(params.get("sort", [])).split(","):
        if spec:
            key, _, direction = spec.partition(":")
            sorts.append((key, _direction(direction or "asc")))
    keys, dirs = params.get("sort_key", []), params.get("sort_dir", [])
    for n, key in enumerate(keys):
        sorts.append((key, _direction(dirs[n] if n < len(dirs) else "asc")))
    # creation order first (created_at has whole seconds), so equal keys keep it
    if out and "_created_ns" in out[0]:
        out = sorted(out, key=lambda i: i["_created_ns"])
    for key, desc in reversed(sorts):
        if out and key not in out[0]:
            raise errors.BadRequest(f"Invalid input for field/attribute sort_key. Value: "
                                    f"'{key}'. The sort key is not an attribute.")
        out = sorted(out, key=lambda i, k=key: (i.get(k) is None, _text(i.get(k))),
                     reverse=desc)
    reverse = params.get("page_reverse", ["false"])[-1].lower() == "true"
    marker = params.get("marker", [None])[-1]
    limit = _limit(params.get("limit", [None])[-1])
    if reverse:
        out = list(reversed(out))
    if marker is not None:
        ids = [i["id"] for i in out]
        if marker not in ids:
            raise errors.NotFound(f"Marker {marker} not found.", type="NotFound")
        out = out[ids.index(marker) + 1:]
    more = limit is not None and len(out) > limit
    if limit is not None:
        out = out[:limit]
    if reverse:
        out = list(reversed(out))
    links = []
    if out and limit is not None:
        kept = {k: v for k, v in params.items() if k not in ("marker", "page_reverse")}
        flat = [(k, v) for k, vs in kept.items() for v in vs]
        if more:
            after = urlencode([*flat, ("marker", out[-1]["id"])])
            links.append({"rel": "next", "href": f"{base}?{after}"})
        if marker is not None:
            before = urlencode([*flat, ("marker", out[0]["id"]), ("page_reverse", "True")])
            links.append({"rel": "previous", "href": f"{base}?{before}"})
    fields = [f for v in params.get("fields", []) for f in v.split(",") if f]
    out = [{k: i[k] for k in fields if k in i} if fields else shown(i) for i in out]
    return {collection: out, f"{collection}_links": links}


def _direction(text: str) -> bool:
    if text.lower() not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid input for field/attribute sort_dir. Value: "
                                f"'{text}'. Must be asc or desc.")
    return text.lower() == "desc"


def _limit(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise errors.BadRequest(f"Invalid input for field/attribute limit. Value: "
                                f"'{text}'. Must be an integer.") from None
    if value < 0:
        raise errors.BadRequest(f"Invalid input for field/attribute limit. Value: "
                                f"'{text}'. Must not be negative.")
    return min(value, MAX_LIMIT) if value else None


def shown(item: dict) -> dict:
    """``item`` without what is kept for filters and order only."""
    return {k: v for k, v in item.items() if not k.startswith("_")}


def fields_of(query: str) -> list[str]:
    return [f for k, v in parse_qsl(query) if k == "fields" for f in v.split(",") if f]
