"""What every collection shares: list queries, lookups, standard attributes, tags.

A list query arrives as :class:`ListQuery` (parsed by the api layer, still
text); filter values are converted by the attribute's declared kind, sort keys
are checked against the declaration, and paging is keyset-based on the sort
keys plus ``id``, so a page costs the same at any depth.

A list or show that asks for some ``fields`` reads only the other tables those
attributes come from (see :meth:`Collection.render_fields`).  Nothing else has to
be read for policy: what a caller may see is decided in SQL (``scope``), and
admin-only attributes are never read for others.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.schema.core import Resource

FilterFn = Callable[[list[Any]], ColumnElement[bool]]
#: a check or clean-up another service runs inside an update: (conn, ctx, row, changes)
UpdateHook = Callable[[Connection, Context, Row, dict], None]
#: the same before a delete: (conn, ctx, row)
DeleteHook = Callable[[Connection, Context, Row], None]
#: a verb of one resource (``PUT /routers/{id}/add_router_interface``): (conn, ctx, id, body)
Action = Callable[[Connection, Context, str, Any], dict]
#: the attributes a response shows (``fields=``); None: all of them
Fields = frozenset[str] | None
CHUNK = 500


@dataclass
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    sorts: list[tuple[str, str]] = field(default_factory=list)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False
    #: what the response shows (the api layer strips the rest); None: everything
    fields: Fields = None


@dataclass
class Page:
    items: list[dict]
    has_more: bool


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    return str(uuid4())


def wants(fields: Fields, *names: str) -> bool:
    """Whether a response showing ``fields`` shows any of ``names``."""
    return fields is None or not fields.isdisjoint(names)


def chunks(ids: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i:i + CHUNK]


TAG_FILTERS = ("tags", "tags-any", "not-tags", "not-tags-any")


def _tag_values(values: list[str]) -> list[str]:
    return [tag for v in values for tag in v.split(",") if tag]


def tag_clause(id_col: sa.Column, name: str, values: list[str]) -> ColumnElement[bool]:
    tags = _tag_values(values)
    having = sa.select(t.tags.c.resource_id).where(t.tags.c.tag.in_(tags))
    if name in ("tags", "not-tags"):  # all of them
        having = having.group_by(t.tags.c.resource_id).having(
            sa.func.count(sa.distinct(t.tags.c.tag)) == len(set(tags)))
    clause = id_col.in_(having)
    return sa.not_(clause) if name.startswith("not-") else clause


class Collection:
    """Shared read machinery for one resource backed by one main table."""

    resource: Resource
    table: sa.Table
    #: API attribute -> column, for filtering and sorting by plain columns
    columns: dict[str, sa.Column]
    #: API attribute -> clause builder, for attributes stored elsewhere
    custom_filters: dict[str, FilterFn]

    def __init__(self) -> None:
        self.columns = {**self._default_columns(), **self.column_overrides()}
        self.custom_filters = self.filter_overrides()
        # other services subscribe at start-up (services/__init__.py); each runs in the
        # operation's transaction and may refuse it by raising
        self.before_update: list[UpdateHook] = []
        self.before_delete: list[DeleteHook] = []

    # hooks ------------------------------------------------------------------

    def column_overrides(self) -> dict[str, sa.Column]:
        return {}

    def filter_overrides(self) -> dict[str, FilterFn]:
        return {}

    #: whether a list may first have to write (see list_needs and prepare_list)
    prepares_lists = False

    def list_needs(self, conn: Connection, ctx: Context, q: ListQuery) -> bool:
        """Whether ``prepare_list`` must write before this list (read-only check)."""
        return False

    def prepare_list(self, conn: Connection, ctx: Context, q: ListQuery) -> None:
        """Write what a list must show (a project's default security group)."""

    def actions(self) -> dict[str, Action]:
        """The resource's own verbs, by the name in ``PUT /{collection}/{id}/{name}``."""
        return {}

    def scope(self, ctx: Context) -> ColumnElement[bool] | None:
        raise NotImplementedError

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row]) -> list[dict]:
        raise NotImplementedError

    def render_fields(self, conn: Connection, ctx: Context, rows: Sequence[Row],
                      fields: Fields) -> list[dict]:
        """``render`` for a response that shows only ``fields`` (None: all of them).

        The items hold at least those attributes.  Collections with attributes stored in
        other tables override this to read only the tables the fields need (a
        ``?fields=id`` list of ports reads no addresses); the default renders all.
        """
        return self.render(conn, ctx, rows)

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        raise NotImplementedError

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        raise NotImplementedError

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        raise NotImplementedError

    # shared -----------------------------------------------------------------

    def _default_columns(self) -> dict[str, sa.Column]:
        cols = {}
        for f in self.resource.fields:
            if f.name in self.table.c:
                cols[f.name] = self.table.c[f.name]
        cols["tenant_id"] = self.table.c.project_id
        return cols

    def _filter_clauses(self, ctx: Context, filters: dict[str, list[str]]) \
            -> list[ColumnElement[bool]]:
        clauses: list[ColumnElement[bool]] = []
        invalid = []
        for name, raw in filters.items():
            if name in TAG_FILTERS:
                clauses.append(tag_clause(self.table.c.id, name, raw))
                continue
            spec = self.resource.by_name.get(name)
            # Admin-only attributes still filter for others (as upstream): the rows a
            # project sees are its own anyway, and the values stay hidden.
            if spec is None or not spec.filter:
                invalid.append(name)
                continue
            if name in self.custom_filters:
                clauses.append(self.custom_filters[name](raw))
                continue
            column = self.columns.get(name)
            if column is None:
                invalid.append(name)
                continue
            values = [spec.convert_query(v) for v in raw]
            clauses.append(column.in_(values) if len(values) > 1 else column == values[0])
        if invalid:
            raise errors.BadRequest(f"{invalid} is invalid attribute for filtering")
        return clauses

    def _order(self, sorts: list[tuple[str, str]], reverse: bool) -> list[tuple[sa.Column, bool]]:
        """Columns to order by with ascending flags; ``id`` always breaks ties."""
        order: list[tuple[sa.Column, bool]] = []
        for key, direction in sorts:
            spec = self.resource.by_name.get(key)
            column = self.columns.get(key)
            if spec is None or not spec.sort or column is None:
                raise errors.BadRequest(f"{[key]} is invalid attribute for sort_keys")
            if direction not in ("asc", "desc"):
                raise errors.BadRequest(f"{[direction]} is invalid value for sort_dirs, valid "
                                        f"value is 'asc' and 'desc'")
            order.append((column, direction == "asc"))
        if not any(col is self.table.c.id for col, _ in order):
            order.append((self.table.c.id, True))
        if reverse:
            order = [(col, not asc) for col, asc in order]
        return order

    def _after_marker(self, conn: Connection, marker: str, order: list[tuple[sa.Column, bool]],
                      scope: ColumnElement[bool] | None) -> ColumnElement[bool]:
        cols = [col for col, _ in order]
        stmt = sa.select(*cols).where(self.table.c.id == marker)
        if scope is not None:  # another project's object is no marker (nor its position)
            stmt = stmt.where(scope)
        row = conn.execute(stmt).first()
        if row is None:
            # upstream names the resource: "Network <marker> could not be found."
            raise errors.ResourceNotFound(self.resource.name, marker)
        # (a > x) or (a == x and b > y) or ...
        ors = []
        for i, (col, asc) in enumerate(order):
            eqs = [_same(order[j][0], row[j]) for j in range(i)]
            ors.append(sa.and_(*eqs, _beyond(col, asc, row[i])))
        return sa.or_(*ors)

    def list(self, conn: Connection, ctx: Context, q: ListQuery) -> Page:
        stmt = sa.select(self.table)
        where = self._filter_clauses(ctx, q.filters)
        scope = self.scope(ctx)
        if scope is not None:
            where.append(scope)
        order = self._order(q.sorts, q.page_reverse)
        if q.marker:
            where.append(self._after_marker(conn, q.marker, order, scope))
        if where:
            stmt = stmt.where(*where)
        stmt = stmt.order_by(*[term for c, asc in order for term in _order_terms(c, asc)])
        if q.limit:
            stmt = stmt.limit(q.limit + 1)
        rows = conn.execute(stmt).all()
        has_more = bool(q.limit) and len(rows) > q.limit
        if has_more:
            rows = rows[: q.limit]
        if q.page_reverse:
            rows.reverse()
        return Page(self.render_fields(conn, ctx, rows, q.fields), has_more)

    def find_row(self, conn: Connection, ctx: Context, ident: str) -> Row | None:
        stmt = by_id(self.table)
        scope = self.scope(ctx)
        if scope is not None:
            stmt = stmt.where(scope)
        return conn.execute(stmt, {"ident": ident}).first()

    def not_found(self, ident: str) -> errors.NotFound:
        """The 404 for an object that does not exist or is not the caller's to see
        (collections override it where upstream words it its own way)."""
        return errors.ResourceNotFound(self.resource.name, ident)

    def get_row(self, conn: Connection, ctx: Context, ident: str) -> Row:
        row = self.find_row(conn, ctx, ident)
        if row is None:
            raise self.not_found(ident)
        return row

    def get(self, conn: Connection, ctx: Context, ident: str, fields: Fields = None) -> dict:
        return self.render_fields(conn, ctx, [self.get_row(conn, ctx, ident)], fields)[0]

    def count(self, conn: Connection, project_id: str) -> int:
        return conn.scalar(sa.select(sa.func.count()).select_from(self.table).where(
            self.table.c.project_id == project_id)) or 0


# Keyset paging over columns that may hold NULL (gateway_ip, ipv6 modes): NULLs sort
# first ascending on every backend (PostgreSQL would put them last), and the marker
# comparisons below follow the same order.

def _order_terms(col: sa.Column, asc: bool) -> list[ColumnElement]:
    # an expression (a subquery, a literal of a UNION) may hold NULL as far as we know
    if not getattr(col, "nullable", True):
        return [col.asc() if asc else col.desc()]
    nulls_first = sa.case((col.is_(None), 0), else_=1)
    return [nulls_first.asc(), col.asc()] if asc else [nulls_first.desc(), col.desc()]


def _same(col: sa.Column, value: object) -> ColumnElement[bool]:
    return col.is_(None) if value is None else col == sa.literal(value, col.type)


def _beyond(col: sa.Column, asc: bool, value: object) -> ColumnElement[bool]:
    """Rows strictly after ``value`` in the column's order."""
    if value is None:
        return col.is_not(None) if asc else sa.false()
    bound = sa.literal(value, col.type)  # a literal: SQLAlchemy refuses ``col > True``
    if asc:
        return col > bound
    return sa.or_(col < bound, col.is_(None)) if getattr(col, "nullable", True) else col < bound


def standard_row(owner: str, body: dict, revision: int = 0) -> dict:
    stamp = now()
    return {"id": new_id(), "project_id": owner, "name": body.get("name", ""),
            "description": body.get("description", ""), "created_at": stamp,
            "updated_at": stamp, "revision_number": revision}


def standard_attrs(row: Row, tags: list[str] | None) -> dict:
    """The standard attributes of ``row``; ``tags`` None: they were not read (and are
    not shown)."""
    # by key through the row's mapping: several times faster than row.<attribute>
    # (SQLAlchemy's Row.__getattr__), which shows when a list renders hundreds of rows
    m = row._mapping
    out = {"id": m["id"], "name": m["name"], "description": m["description"],
           "project_id": m["project_id"], "tenant_id": m["project_id"],
           "created_at": m["created_at"], "updated_at": m["updated_at"],
           "revision_number": m["revision_number"]}
    if tags is not None:
        out["tags"] = tags
    return out


def in_ids(column: sa.Column) -> ColumnElement[bool]:
    """``column IN :ids``, for statements built once and executed with ``{"ids": [...]}``.

    Hot paths keep such prebuilt statements: executing one skips SQLAlchemy's
    per-call construction and cache-key work, most of the ~75 us a small query
    otherwise costs.
    """
    return column.in_(sa.bindparam("ids", expanding=True))


@functools.cache
def by_id(table: sa.Table) -> sa.Select:
    """``SELECT * FROM table WHERE id = :ident``, built once per table."""
    return sa.select(table).where(table.c.id == sa.bindparam("ident"))


_TAGS_OF = sa.select(t.tags.c.resource_id, t.tags.c.tag).where(
    in_ids(t.tags.c.resource_id)).order_by(t.tags.c.tag)


def load_tags(conn: Connection, ids: Sequence[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in chunks(ids):
        for rid, tag in conn.execute(_TAGS_OF, {"ids": part}):
            out.setdefault(rid, []).append(tag)
    return out


def changed(row: Row, values: dict) -> dict:
    """The column values that differ from ``row`` (an update that changes nothing
    bumps no revision, as upstream)."""
    return {k: v for k, v in values.items() if getattr(row, k) != v}


def check_revision(row: Row, if_match: int | None) -> None:
    if if_match is not None and row.revision_number != if_match:
        raise errors.PreconditionFailed(
            f"Constrained to {if_match}, but current revision is {row.revision_number}")


def bump(conn: Connection, table: sa.Table, ident: str, values: dict | None = None) -> None:
    """Record a change: new revision number and updated_at, plus any column values."""
    conn.execute(table.update().where(table.c.id == ident).values(
        revision_number=table.c.revision_number + 1, updated_at=now(), **(values or {})))


def set_tags(conn: Connection, ident: str, tags: Iterable[str]) -> None:
    conn.execute(t.tags.delete().where(t.tags.c.resource_id == ident))
    rows = [{"resource_id": ident, "tag": tag} for tag in dict.fromkeys(tags)]
    if rows:
        conn.execute(t.tags.insert(), rows)
