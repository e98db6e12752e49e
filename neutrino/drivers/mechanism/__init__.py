"""Mechanism drivers: how a port is bound to a host, and who follows network and port
changes (ML2's MechanismDriver seam).

The services call the drivers ``mechanism_drivers`` names, in that order
(:mod:`.manager`):

- ``bind_port``: may this port be bound on that host, and how is it plugged?  The
  first driver that answers a :class:`Binding` binds it; when none does, a port with a
  host is ``binding_failed``.  The driver sees the host, the network's segment and the
  configurations the host's live agents of its ``agent_type`` reported, never the
  database;
- ``create/update/delete_network|port_precommit``: inside the operation's transaction,
  after its rows are written (before they go, for a delete).  A driver may refuse the
  change by raising (:class:`Veto`): the whole transaction rolls back;
- ``..._postcommit``: after the transaction committed (never after a rollback).  A
  failure there is logged; the change stays (its revision tells a driver's reconciler
  what it missed).

Both calls get a read-only context (:class:`NetworkContext`, :class:`PortContext`):
the resource as an admin sees it, its state before an update, its network and host.
Contexts are built only when a driver ``follows_changes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

from neutrino import errors
from neutrino.drivers.types.segments import Segment

UNBOUND = "unbound"
BINDING_FAILED = "binding_failed"


@dataclass(frozen=True)
class Binding:
    vif_type: str
    vif_details: dict[str, Any] = field(default_factory=dict)

    @property
    def bound(self) -> bool:
        return self.vif_type not in (UNBOUND, BINDING_FAILED)


class Veto(errors.Conflict):
    """A driver refuses a change in its precommit: the transaction rolls back and the
    client gets this 409 with the driver's reason."""

    type = "MechanismDriverVeto"


def freeze(value: Any) -> Any:
    """``value`` made read-only all the way down (dicts as mappings, lists as tuples)."""
    if isinstance(value, Mapping):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


@dataclass(frozen=True)
class NetworkContext:
    """A network change as a driver sees it."""

    #: the network as an admin sees it: after the change (as it was, for a delete)
    current: Mapping[str, Any]
    #: before an update (None for a create or delete)
    original: Mapping[str, Any] | None
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class PortContext:
    """A port change as a driver sees it."""

    current: Mapping[str, Any]
    original: Mapping[str, Any] | None
    network: NetworkContext
    #: ``binding:host_id`` after the change, and before it ("" for none)
    host: str
    original_host: str


@dataclass(frozen=True)
class BindingRequest:
    """What ``bind_port`` is asked to bind."""

    port_id: str
    host: str
    network_id: str
    segment: Segment | None
    vnic_type: str
    profile: Mapping[str, Any]
    #: the configurations of the live, enabled agents of the driver's ``agent_type`` on
    #: ``host`` (empty for a driver that has none)
    agents: tuple[Mapping[str, Any], ...]


class MechanismDriver(Protocol):
    #: its name in ``mechanism_drivers`` (and in logs and errors)
    name: str
    #: the agents that realise its ports (``agents`` of a :class:`BindingRequest`); None:
    #: it needs none
    agent_type: str | None
    #: whether it follows network and port changes: only then are its precommit and
    #: postcommit calls made (and their contexts built)
    follows_changes: bool

    def bind_port(self, request: BindingRequest) -> Binding | None:
        """The port's binding on ``request.host``; None: not this driver's to bind."""
        ...

    def create_network_precommit(self, context: NetworkContext) -> None: ...

    def create_network_postcommit(self, context: NetworkContext) -> None: ...

    def update_network_precommit(self, context: NetworkContext) -> None: ...

    def update_network_postcommit(self, context: NetworkContext) -> None: ...

    def delete_network_precommit(self, context: NetworkContext) -> None: ...

    def delete_network_postcommit(self, context: NetworkContext) -> None: ...

    def create_port_precommit(self, context: PortContext) -> None: ...

    def create_port_postcommit(self, context: PortContext) -> None: ...

    def update_port_precommit(self, context: PortContext) -> None: ...

    def update_port_postcommit(self, context: PortContext) -> None: ...

    def delete_port_precommit(self, context: PortContext) -> None: ...

    def delete_port_postcommit(self, context: PortContext) -> None: ...
