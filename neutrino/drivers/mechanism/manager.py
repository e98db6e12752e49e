"""The mechanism drivers a server runs (``mechanism_drivers``), and the seam the
services call: ``bind`` inside a port's transaction, ``changed`` for a network or port
change (precommit now, postcommit after the commit)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal, Protocol

from sqlalchemy.engine import Connection

from neutrino import errors
from neutrino.config import Settings
from neutrino.db.engine import after_commit
from neutrino.drivers import loading
from neutrino.drivers.mechanism import (
    BINDING_FAILED,
    UNBOUND,
    Binding,
    BindingRequest,
    MechanismDriver,
    NetworkContext,
    PortContext,
)
from neutrino.drivers.mechanism.linuxbridge import LinuxBridge
from neutrino.drivers.types import segments

log = logging.getLogger(__name__)

#: Neutrino's own, by the name ``mechanism_drivers`` gives them
BUILTIN: Mapping[str, loading.Factory] = {"linuxbridge": LinuxBridge}
#: the changes drivers follow: ``<change>_precommit`` and ``<change>_postcommit``
Change = Literal["create_network", "update_network", "delete_network",
                 "create_port", "update_port", "delete_port"]


class AgentConfigurations(Protocol):
    """Where binding learns what a host can do (the agents service)."""

    def configurations(self, conn: Connection, agent_type: str,
                       host: str) -> list[Mapping[str, Any]]:
        """The configurations of the live, enabled agents of a type on ``host``."""
        ...


def driver_failed(driver: MechanismDriver, call: str) -> errors.Conflict:
    return errors.Conflict(f"Mechanism driver {driver.name} failed in {call}; the change "
                           f"was not made.", type="MechanismDriverError")


class MechanismDrivers:
    def __init__(self, settings: Settings, agents: AgentConfigurations) -> None:
        self.drivers: tuple[MechanismDriver, ...] = tuple(
            loading.load("mechanism", name, BUILTIN, settings)
            for name in settings.mechanism_drivers)
        if not self.drivers:
            raise ValueError("mechanism_drivers is empty: no port could ever be bound")
        self.agents = agents
        self.followers = tuple(d for d in self.drivers if d.follows_changes)

    @property
    def follow_changes(self) -> bool:
        """Whether any driver follows changes (else the services build no contexts)."""
        return bool(self.followers)

    def bind(self, conn: Connection, port_id: str, host: str, network_id: str,
             vnic_type: str = "normal", profile: Mapping[str, Any] | None = None) -> Binding:
        """The binding of a port on ``host``: the first driver's that binds it."""
        if not host:
            return Binding(UNBOUND)
        segment = segments.load(conn, [network_id]).get(network_id)
        for driver in self.drivers:
            agents = tuple(self.agents.configurations(conn, driver.agent_type, host)) \
                if driver.agent_type else ()
            binding = driver.bind_port(BindingRequest(port_id, host, network_id, segment,
                                                      vnic_type, profile or {}, agents))
            if binding is not None and binding.bound:
                return binding
        return Binding(BINDING_FAILED)

    def changed(self, conn: Connection, change: Change,
                context: NetworkContext | PortContext) -> None:
        """Call every follower's ``<change>_precommit`` now, inside the transaction (a
        refusal rolls it back), and their ``<change>_postcommit`` after it commits."""
        if not self.followers:
            return
        precommit = f"{change}_precommit"
        for driver in self.followers:
            try:
                getattr(driver, precommit)(context)
            except errors.NeutronError as err:
                if err.status < 500:
                    raise  # the driver's own refusal, as it words it (a Veto: 409)
                log.error("mechanism driver %s failed in %s: %s", driver.name, precommit, err)
                raise driver_failed(driver, precommit) from err
            except Exception as err:
                log.exception("mechanism driver %s failed in %s", driver.name, precommit)
                raise driver_failed(driver, precommit) from err
        after_commit(conn, lambda: self._postcommit(f"{change}_postcommit", context))

    def _postcommit(self, call: str, context: NetworkContext | PortContext) -> None:
        for driver in self.followers:
            try:
                getattr(driver, call)(context)
            except Exception:  # committed: the others still hear of it
                log.exception("mechanism driver %s failed in %s", driver.name, call)
