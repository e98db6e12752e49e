"""Agents: registration and heartbeats over the bus, and the admin-only API.

An agent is identified by (agent_type, host).  Its first report inserts the row,
later ones refresh ``heartbeat_timestamp`` and ``configurations``; a report with
``start_flag`` also moves ``started_at`` (the agent restarted).  ``alive`` is not
stored: it is "heard from within ``agent_down_time``", computed at read time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Row
from sqlalchemy.sql.elements import ColumnElement

from neutrino import errors, policy
from neutrino.bus.messages import AgentState
from neutrino.config import Settings
from neutrino.context import Context
from neutrino.db import tables as t
from neutrino.drivers.mechanism.linuxbridge import AGENT_TYPE
from neutrino.schema.resources import AGENT
from neutrino.services.core import collection as c

L2_AGENT = AGENT_TYPE
DHCP_AGENT = "DHCP agent"
#: upstream's spelling of agent timestamps (no "T", no zone: UTC)
TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def timestamp(when: datetime | None = None) -> str:
    return (when or datetime.now(UTC)).strftime(TIMESTAMP)


class Agents:
    actions = c.NO_ACTIONS

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # agents exist for admins only: to anyone else the list is empty, an id a 404
        self.listing = c.Listing(AGENT, t.agents, scope=policy.admins_only, render=self.render,
                                 filters={"alive": self._filter_alive})

    def _threshold(self) -> str:
        """Heartbeats at or after this are from live agents."""
        return timestamp(datetime.now(UTC) - timedelta(seconds=self.settings.agent_down_time))

    def alive_clause(self) -> ColumnElement[bool]:
        return t.agents.c.heartbeat_timestamp >= self._threshold()

    def _filter_alive(self, ctx: Context, values: list[str]) -> ColumnElement[bool]:
        wanted = {AGENT.by_name["alive"].convert_query(v) for v in values}
        if wanted == {True}:
            return self.alive_clause()
        if wanted == {False}:
            return sa.not_(self.alive_clause())
        return sa.true()

    def render(self, conn: Connection, ctx: Context, rows: Sequence[Row],
               fields: c.Fields = None) -> list[dict]:
        threshold = self._threshold()
        return [{
            "id": r.id, "agent_type": r.agent_type, "binary": r.binary, "topic": r.topic,
            "host": r.host, "admin_state_up": r.admin_state_up,
            "alive": r.heartbeat_timestamp >= threshold,
            "availability_zone": r.availability_zone, "description": r.description or None,
            "heartbeat_timestamp": r.heartbeat_timestamp, "started_at": r.started_at,
            "created_at": r.created_at, "configurations": r.configurations,
        } for r in rows]

    def create(self, conn: Connection, ctx: Context, body: dict) -> str:
        raise errors.BadRequest("Bad agents request: Agent creation using API is not "
                                "supported..", type="BadRequest")

    def update(self, conn: Connection, ctx: Context, ident: str, body: dict,
               if_match: int | None) -> None:
        row = self.listing.get_row(conn, ctx, ident)
        values = {k: body[k] for k in ("admin_state_up", "description") if k in body}
        if values.get("description", "") is None:
            values["description"] = ""
        values = c.changed(row, values)
        if values:
            conn.execute(t.agents.update().where(t.agents.c.id == ident).values(**values))

    def delete(self, conn: Connection, ctx: Context, ident: str) -> None:
        # a live agent registers again with its next heartbeat, as upstream
        self.listing.get_row(conn, ctx, ident)
        conn.execute(t.agents.delete().where(t.agents.c.id == ident))

    # -- the bus side ----------------------------------------------------------

    def report_state(self, conn: Connection, state: AgentState) -> tuple[str, bool]:
        """Register or refresh an agent; returns its id and whether it came (back) to
        life with this report (new, restarted, or silent longer than the down time)."""
        now = timestamp()
        row = conn.execute(sa.select(t.agents).where(
            t.agents.c.agent_type == state.agent_type, t.agents.c.host == state.host)).first()
        if row is None:
            ident = c.new_id()
            conn.execute(t.agents.insert().values(
                id=ident, agent_type=state.agent_type, binary=state.binary, topic=state.topic,
                host=state.host, availability_zone=state.availability_zone,
                admin_state_up=True, description="", created_at=now, started_at=now,
                heartbeat_timestamp=now, configurations=state.configurations,
                resources_synced=None))
            return ident, True
        revived = state.start_flag or row.heartbeat_timestamp < self._threshold()
        values = {"heartbeat_timestamp": now, "configurations": state.configurations,
                  "binary": state.binary, "topic": state.topic,
                  "availability_zone": state.availability_zone}
        if state.start_flag:
            values["started_at"] = now
        conn.execute(t.agents.update().where(t.agents.c.id == row.id).values(**values))
        return row.id, revived

    def live(self, conn: Connection, agent_type: str, host: str | None = None) -> list[Row]:
        """Live agents of a type (on ``host`` if given), oldest first."""
        stmt = sa.select(t.agents).where(t.agents.c.agent_type == agent_type,
                                         self.alive_clause())
        if host is not None:
            stmt = stmt.where(t.agents.c.host == host)
        return list(conn.execute(stmt.order_by(t.agents.c.created_at, t.agents.c.host)))

    def configurations(self, conn: Connection, agent_type: str,
                       host: str) -> list[Mapping[str, Any]]:
        """What the live, enabled agents of a type on ``host`` reported they can do (what
        the mechanism drivers bind with)."""
        return [r.configurations for r in self.live(conn, agent_type, host) if r.admin_state_up]
