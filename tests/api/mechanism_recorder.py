"""A second mechanism driver for the tests, loaded by name through ``mechanism_drivers``
("tests.api.mechanism_recorder:Recorder"): it records every call it gets, with whether
the resource was visible from another database connection at that moment (so a test
can tell a call inside the transaction from one after its commit), binds ports on hosts
named ``recorder-*``, and refuses (or fails at) what a test tells it to."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from neutrino.config import Settings
from neutrino.db import tables as t
from neutrino.db.engine import create_engine
from neutrino.drivers.mechanism import Binding, BindingRequest, NetworkContext, PortContext, Veto

#: every Recorder made, newest last (a test takes its server's)
INSTANCES: list[Recorder] = []
HOST_PREFIX = "recorder-"


@dataclass(frozen=True)
class Call:
    name: str  # e.g. "create_port_precommit"
    current: Mapping[str, Any]
    original: Mapping[str, Any] | None
    #: whether another connection saw the resource's row when the call was made
    committed: bool
    context: NetworkContext | PortContext


class Recorder:
    name = "recorder"
    agent_type = None
    follows_changes = True

    def __init__(self, settings: Settings) -> None:
        self.calls: list[Call] = []
        self.binds: list[BindingRequest] = []
        #: call -> the resource names it refuses (Veto), or fails at (RuntimeError)
        self.refuse: dict[str, set[str]] = {}
        self.fail: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self._engine = create_engine(settings.db_url)
        INSTANCES.append(self)

    def close(self) -> None:
        self._engine.dispose()

    def named(self, name: str) -> list[str]:
        """The calls made for resources called ``name``, in order."""
        return [c.name for c in self.calls if c.current.get("name") == name]

    def bind_port(self, request: BindingRequest) -> Binding | None:
        self.binds.append(request)
        if not request.host.startswith(HOST_PREFIX):
            return None
        return Binding("other", {"driver": self.name, "segment": str(request.segment)})

    def _seen(self, table: sa.Table, ident: str) -> bool:
        with self._engine.connect() as conn:
            return conn.scalar(sa.select(table.c.id).where(table.c.id == ident)) is not None

    def _record(self, call: str, context: NetworkContext | PortContext) -> None:
        table = t.ports if isinstance(context, PortContext) else t.networks
        name = context.current.get("name", "")
        with self._lock:
            self.calls.append(Call(call, context.current, context.original,
                                   self._seen(table, context.current["id"]), context))
        if name in self.refuse.get(call, ()):
            raise Veto(f"The recorder refuses {name} in {call}.")
        if name in self.fail.get(call, ()):
            raise RuntimeError(f"the recorder broke on {name}")

    def create_network_precommit(self, context: NetworkContext) -> None:
        self._record("create_network_precommit", context)

    def create_network_postcommit(self, context: NetworkContext) -> None:
        self._record("create_network_postcommit", context)

    def update_network_precommit(self, context: NetworkContext) -> None:
        self._record("update_network_precommit", context)

    def update_network_postcommit(self, context: NetworkContext) -> None:
        self._record("update_network_postcommit", context)

    def delete_network_precommit(self, context: NetworkContext) -> None:
        self._record("delete_network_precommit", context)

    def delete_network_postcommit(self, context: NetworkContext) -> None:
        self._record("delete_network_postcommit", context)

    def create_port_precommit(self, context: PortContext) -> None:
        self._record("create_port_precommit", context)

    def create_port_postcommit(self, context: PortContext) -> None:
        self._record("create_port_postcommit", context)

    def update_port_precommit(self, context: PortContext) -> None:
        self._record("update_port_precommit", context)

    def update_port_postcommit(self, context: PortContext) -> None:
        self._record("update_port_postcommit", context)

    def delete_port_precommit(self, context: PortContext) -> None:
        self._record("delete_port_precommit", context)

    def delete_port_postcommit(self, context: PortContext) -> None:
        self._record("delete_port_postcommit", context)
