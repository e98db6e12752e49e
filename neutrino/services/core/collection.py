"""What every collection shares: list queries, lookups, standard attributes, tags.

A list query arrives as :class:`ListQuery` (parsed by the api layer, still
text); filter values are converted by the attribute's declared kind, sort keys
are checked against the declaration, and paging is keyset-based on the sort
keys plus ``id``, so a page costs the same at any depth.

A list or show that asks for some ``fields`` reads only the other tables those
attributes come from (each service's render takes them).  Nothing else has to
be read for policy: what a caller may see is decided in SQL (``scope``), and
admin-only attributes are never read for others.

There is no base class: a service holds a :class:`Listing` (its read side) and
implements :class:`Collection`, the protocol the API layer calls; other families
subscribe to its writes through :class:`Guards` given at construction.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Protocol
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.policy import Scope
from neutrino.schema.core import Resource

#: the clause of a filter on an attribute stored elsewhere: (ctx, values from the query)
FilterFn = Callable[[Context, list[str]], ColumnElement[bool]]
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


#: rows as a caller sees them, with at least the attributes ``fields`` shows (None: all)
Render = Callable[[Connection, Context, Sequence[Row], Fields], list[dict]]


class ListPreparer(Protocol):
    """What must be written before a list shows it (a project's default security group):
    checked by a read, written in a transaction of its own (reads never write)."""

    def list_needs(self, conn: Connection, ctx: Context, q: ListQuery) -> bool: ...

    def prepare_list(self, conn: Connection, ctx: Context, q: ListQuery) -> None: ...


def default_columns(resource: Resource, table: sa.FromClause) -> dict[str, ColumnElement]:
    """API attribute -> column, for the attributes stored under their own name (and
    ``tenant_id``, upstream's other name of ``project_id``)."""
    cols: dict[str, ColumnElement] = {f.name: table.c[f.name] for f in resource.fields
                                      if f.name in table.c}
    if "project_id" in table.c:
        cols["tenant_id"] = table.c.project_id
    return cols


class Listing:
    """The read side of one resource backed by one main table: list queries (filters
    converted by the attribute's kind, keyset paging), lookups in the caller's view and
    the 404 for what it may not see.  Each service holds its own; a service that only
    reads another family holds that family's listing.

    ``columns`` and ``filters`` add to (or replace) what the declaration gives: a
    column for an attribute stored under another name, a clause builder for one stored
    elsewhere (it gets the caller's context: ``shared`` means shared with the caller).
    """

    def __init__(self, resource: Resource, table: sa.FromClause, *, scope: Scope,
                 render: Render, columns: dict[str, ColumnElement] | None = None,
                 filters: dict[str, FilterFn] | None = None,
                 not_found: Callable[[str], errors.NotFound] | None = None,
                 prepare: ListPreparer | None = None,
                 touched: Callable[[Connection, str], None] | None = None) -> None:
        self.resource = resource
        self.table = table
        self.scope = scope
        self.render = render
        #: API attribute -> column, for filtering and sorting by plain columns
        self.columns = {**default_columns(resource, table), **(columns or {})}
        #: API attribute -> clause builder, for attributes stored elsewhere
        self.filters = dict(filters or {})
        self._not_found = not_found
        #: what a list must write first, if anything
        self.prepare = prepare
        #: what a new revision by :meth:`touch` records (the object's change event)
        self.touched = touched

    def not_found(self, ident: str) -> errors.NotFound:
        """The 404 for an object that does not exist or is not the caller's to see."""
        if self._not_found is not None:
            return self._not_found(ident)
        return errors.ResourceNotFound(self.resource.name, ident)

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
            if name in self.filters:
                clauses.append(self.filters[name](ctx, raw))
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

    def _order(self, sorts: list[tuple[str, str]], reverse: bool) \
            -> list[tuple[ColumnElement, bool]]:
        """Columns to order by with ascending flags; ``id`` always breaks ties."""
        order: list[tuple[ColumnElement, bool]] = []
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

    def _after_marker(self, conn: Connection, marker: str,
                      order: list[tuple[ColumnElement, bool]],
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
        return Page(self.render(conn, ctx, rows, q.fields), has_more)

    def find_row(self, conn: Connection, ctx: Context, ident: str) -> Row | None:
        stmt = by_id(self.table)
        scope = self.scope(ctx)
        if scope is not None:
            stmt = stmt.where(scope)
        return conn.execute(stmt, {"ident": ident}).first()

    def get_row(self, conn: Connection, ctx: Context, ident: str) -> Row:
        row = self.find_row(conn, ctx, ident)
        if row is None:
            raise self.not_found(ident)
        return row

    def get(self, conn: Connection, ctx: Context, ident: str, fields: Fields = None) -> dict:
        return self.render(conn, ctx, [self.get_row(conn, ctx, ident)], fields)[0]

    def touch(self, conn: Connection, ident: str) -> None:
        """A new revision of ``ident`` for a change stored elsewhere (a subnet of a
        network, a rule of a group): the one write any family may ask of another's rows,
        since the revision is a standard attribute.  Tags are stored elsewhere too.  The
        family's change event is recorded with it: the hosts realise revisions."""
        bump(conn, self.table, ident)  # type: ignore[arg-type]  # a table, not a union
        if self.touched is not None:
            self.touched(conn, ident)


class Collection(Protocol):
    """What the API layer needs of a collection: its reads (:class:`Listing`: list,
    show, the row an operation is on), its writes, and its own verbs.

    Writes run inside the operation's transaction and may refuse it by raising.
    """

    @property
    def listing(self) -> Listing: ...

    @property
    def actions(self) -> Mapping[str, Action]:
        """The resource's verbs, by the name in ``PUT /{collection}/{id}/{name}``."""
        ...

    def create(self, conn: Connection, ctx: Context, body: dict) -> str: ...

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None: ...

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None: ...


#: the verbs of a resource that has none
NO_ACTIONS: Mapping[str, Action] = MappingProxyType({})


@dataclass(frozen=True)
class Guards:
    """Checks (and the clean-ups that go with them) other families run inside a
    family's update or delete, in the operation's transaction; each may refuse it by
    raising.  Listed once, at start-up, where the services are composed."""

    before_update: tuple[UpdateHook, ...] = ()
    before_delete: tuple[DeleteHook, ...] = ()

    def update(self, conn: Connection, ctx: Context, row: Row, changes: dict) -> None:
        for hook in self.before_update:
            hook(conn, ctx, row, changes)

    def delete(self, conn: Connection, ctx: Context, row: Row) -> None:
        for hook in self.before_delete:
            hook(conn, ctx, row)


NO_GUARDS = Guards()


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
