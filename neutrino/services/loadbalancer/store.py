"""Rows of the load-balancer tables <-> the objects the API shows.

Each kind's declared column attributes are columns of its table; the others are its
``attrs`` JSON.  The relations an object shows (a load balancer's listeners, a pool's
members, ...) are read from the children's rows when it is rendered.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row

from neutrino.db import tables as t
from neutrino.schema.loadbalancer import KINDS, LbKind
from neutrino.services.core.collection import new_id, now

TABLES: dict[str, sa.Table] = {
    "loadbalancer": t.lb_loadbalancers, "listener": t.lb_listeners, "pool": t.lb_pools,
    "member": t.lb_members, "healthmonitor": t.lb_healthmonitors,
    "l7policy": t.lb_l7policies, "l7rule": t.lb_l7rules,
}
COMMON = ("id", "project_id", "name", "description", "admin_state_up",
          "provisioning_status", "operating_status", "created_at", "updated_at", "tags")
#: kinds that show no name / no description
NO_NAME = {"l7rule"}
NO_DESCRIPTION = {"member", "healthmonitor", "l7rule"}
#: table columns that are no attribute of the object's own
HIDDEN = {"attrs", "transport", "loadbalancer_id"}


def columns_of(kind: str) -> set[str]:
    return {c.name for c in TABLES[kind].c}


def split(kind: str, values: dict) -> tuple[dict, dict]:
    """``values`` -> (column values, attrs values)."""
    cols = columns_of(kind)
    return ({k: v for k, v in values.items() if k in cols},
            {k: v for k, v in values.items() if k not in cols})


def insert(conn: Connection, kind: str, project_id: str, values: dict,
           provisioning: str = "PENDING_CREATE", operating: str = "OFFLINE") -> str:
    cols, attrs = split(kind, values)
    stamp = now()
    row = {"id": new_id(), "project_id": project_id, "name": "", "description": "",
           "admin_state_up": True, "provisioning_status": provisioning,
           "operating_status": operating, "created_at": stamp, "updated_at": stamp,
           "tags": [], **cols, "attrs": {**attrs, "_created_ns": time.time_ns()}}
    conn.execute(TABLES[kind].insert(), row)
    return row["id"]


def update(conn: Connection, kind: str, row: Row, changes: dict, **status: str) -> None:
    cols, attrs = split(kind, changes)
    values = {**cols, **status, "updated_at": now()}
    if attrs:
        values["attrs"] = {**row.attrs, **attrs}
    table = TABLES[kind]
    conn.execute(table.update().where(table.c.id == row.id).values(**values))


def set_status(conn: Connection, kind: str, ids: Sequence[str], **status: str) -> None:
    if ids:
        table = TABLES[kind]
        conn.execute(table.update().where(table.c.id.in_(list(ids))).values(
            updated_at=now(), **status))


def find(conn: Connection, kind: str, ident: str, *, lock: bool = False) -> Row | None:
    table = TABLES[kind]
    stmt = sa.select(table).where(table.c.id == ident)
    if lock and conn.dialect.name != "sqlite":
        stmt = stmt.with_for_update()
    return conn.execute(stmt).first()


def rows(conn: Connection, kind: str, where: Any = None) -> list[Row]:
    table = TABLES[kind]
    stmt = sa.select(table)
    if where is not None:
        stmt = stmt.where(where)
    return list(conn.execute(stmt.order_by(table.c.created_at, table.c.id)))


def _ids(conn: Connection, column: sa.Column, values: list[str], key: sa.Column | None = None
         ) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    if not values:
        return out
    key = key if key is not None else column.table.c.id
    stmt = sa.select(column, key).where(column.in_(values)).order_by(
        column.table.c.created_at, key)
    for parent, child in conn.execute(stmt):
        if parent is not None:
            out.setdefault(parent, []).append({"id": child})
    return out


def render(conn: Connection, kind: str, found: Sequence[Row]) -> list[dict]:
    """The objects of ``found`` as the API shows them."""
    spec: LbKind = KINDS[kind]
    ids = [r.id for r in found]
    rel: dict[str, dict[str, list[dict]]] = {}
    if kind == "loadbalancer":
        rel["listeners"] = _ids(conn, t.lb_listeners.c.loadbalancer_id, ids)
        rel["pools"] = _ids(conn, t.lb_pools.c.loadbalancer_id, ids)
    elif kind == "listener":
        rel["l7policies"] = _ids(conn, t.lb_l7policies.c.listener_id, ids)
    elif kind == "pool":
        rel["members"] = _ids(conn, t.lb_members.c.pool_id, ids)
        rel["listeners"] = _ids(conn, t.lb_listeners.c.default_pool_id, ids)
        monitors = _ids(conn, t.lb_healthmonitors.c.pool_id, ids)
    elif kind == "l7policy":
        rel["rules"] = _ids(conn, t.lb_l7rules.c.l7policy_id, ids)
    out = []
    for r in found:
        m = r._mapping
        item: dict[str, Any] = {k: m[k] for k in COMMON}
        if kind in NO_NAME:
            item.pop("name")
        if kind in NO_DESCRIPTION:
            item.pop("description")
        for a in spec.attrs:
            if a.name in m and a.name not in HIDDEN:
                item[a.name] = m[a.name]
            elif a.name not in item and a.name not in ("loadbalancer_id",):
                item[a.name] = m["attrs"].get(a.name)
        item.update({k: v for k, v in m["attrs"].items() if not k.startswith("_")})
        # for the API's filters and default order, not shown (keys starting with "_")
        item["_created_ns"] = m["attrs"].get("_created_ns", 0)
        for key in ("loadbalancer_id", "pool_id", "l7policy_id"):
            if key in m:
                item[f"_{key}"] = m[key]
        for name, found_ids in rel.items():
            item[name] = found_ids.get(r.id, [])
        if kind == "loadbalancer":
            item["vip_vnic_type"] = m["attrs"].get("vip_vnic_type", "normal")
        elif kind == "listener":
            item["loadbalancers"] = [{"id": m["loadbalancer_id"]}]
        elif kind == "pool":
            item["loadbalancers"] = [{"id": m["loadbalancer_id"]}]
            hm = monitors.get(r.id)
            item["healthmonitor_id"] = hm[0]["id"] if hm else None
            item.pop("listener_id", None)
            item.pop("loadbalancer_id", None)
        elif kind == "healthmonitor":
            item["pools"] = [{"id": m["pool_id"]}]
            item.pop("pool_id", None)
        elif kind == "member":
            item["vnic_type"] = "direct" if m["attrs"].get("request_sriov") else "normal"
            item.pop("request_sriov", None)
        out.append(item)
    return out
