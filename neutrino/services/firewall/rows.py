"""The rows of the firewall family, as its services and the default group write them."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino.db import tables as t
from neutrino.services.core import collection as c

#: the attributes a rule stores under their own name
MATCH = ("protocol", "ip_version", "source_ip_address", "destination_ip_address",
         "source_port", "destination_port", "action", "enabled")
PENDING = ("PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE")
FPR = t.firewall_policy_rules


def insert_rule(conn: Connection, owner: str, body: dict) -> str:
    """A rule of ``owner`` from a checked body."""
    row = c.standard_row(owner, body)
    conn.execute(t.firewall_rules.insert().values(
        **row, shared=body.get("shared", False), **{k: body[k] for k in MATCH}))
    if body.get("tags"):
        c.set_tags(conn, row["id"], body["tags"])
    return row["id"]


def insert_policy(conn: Connection, owner: str, body: dict) -> str:
    """A policy of ``owner`` holding ``body["firewall_rules"]`` (checked) in order."""
    row = c.standard_row(owner, body)
    conn.execute(t.firewall_policies.insert().values(
        **row, shared=body.get("shared", False), audited=body.get("audited", False)))
    set_policy_rules(conn, row["id"], body.get("firewall_rules", []))
    if body.get("tags"):
        c.set_tags(conn, row["id"], body["tags"])
    return row["id"]


def policy_rules(conn: Connection, policy_id: str) -> list[str]:
    return list(conn.scalars(sa.select(FPR.c.firewall_rule_id).where(
        FPR.c.firewall_policy_id == policy_id).order_by(FPR.c.position)))


def set_policy_rules(conn: Connection, policy_id: str, rule_ids: Sequence[str]) -> None:
    conn.execute(FPR.delete().where(FPR.c.firewall_policy_id == policy_id))
    if rule_ids:
        conn.execute(FPR.insert(), [{"firewall_policy_id": policy_id, "firewall_rule_id": r,
                                     "position": n} for n, r in enumerate(rule_ids)])


def group_ports(conn: Connection, group_id: str) -> list[str]:
    gp = t.firewall_group_ports
    return list(conn.scalars(sa.select(gp.c.port_id).where(
        gp.c.firewall_group_id == group_id).order_by(gp.c.port_id)))
