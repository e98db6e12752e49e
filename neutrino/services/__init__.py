"""Domain services, composed once at start-up (no inheritance chains, no mixins)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.engine import Connection

from neutrino.bus.messages import Changed
from neutrino.config import Settings
from neutrino.drivers.types.segments import SegmentAllocator
from neutrino.services.core.collection import Collection
from neutrino.services.core.quotas import Quotas
from neutrino.services.l2.networks import Networks
from neutrino.services.l2.ports import Ports
from neutrino.services.l2.subnetpools import SubnetPools
from neutrino.services.l2.subnets import Subnets
from neutrino.services.l3.floatingips import FloatingIps
from neutrino.services.l3.router_ha import HaNetworks
from neutrino.services.l3.routers import Routers
from neutrino.services.realisation.agents import Agents, PortBinder
from neutrino.services.realisation.hosts import Hosts
from neutrino.services.security.port_security import PortSecurity
from neutrino.services.security.security_groups import (
    DefaultRules,
    SecurityGroupRules,
    SecurityGroups,
)
from neutrino.services.sharing.rbac import RbacPolicies


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.quotas = Quotas(settings.quotas)
        self.networks = Networks(SegmentAllocator(settings), self.quotas)
        self.subnetpools = SubnetPools(self.quotas)
        self.subnets = Subnets(settings, self.networks, self.quotas, self.subnetpools)
        self.ports = Ports(settings, self.networks, self.subnets, self.quotas)
        self.agents = Agents(settings)
        self.binder = self.ports.binder = PortBinder(self.agents)
        self.hosts = Hosts(self.agents, self.subnets, self.ports)
        #: called with the change events of each committed write (the bus publishes them)
        self.listeners: list[Callable[[list[Changed | None]], None]] = []
        #: collection name -> service, for the generic CRUD routes
        self.collections: dict[str, Collection] = {
            "networks": self.networks, "subnets": self.subnets, "ports": self.ports,
            "subnetpools": self.subnetpools,
        }
        self.collections["agents"] = self.agents
        self._compose_l3()
        self._compose_security()

    def _compose_l3(self) -> None:
        """Routers and floating IPs, and the guards they keep on ports, subnets and
        networks (nothing may change under a router through those APIs)."""
        self.routers = Routers(self.networks, self.subnets, self.ports, self.quotas,
                               HaNetworks(self.settings, self.networks),
                               self.settings.max_routes)
        self.floatingips = FloatingIps(self.networks, self.subnets, self.ports, self.quotas)
        self.collections.update(routers=self.routers, floatingips=self.floatingips)
        self.ports.before_delete += [self.routers.guard_port_delete,
                                     self.floatingips.guard_port_delete]
        self.ports.before_update += [self.routers.guard_port_update,
                                     self.floatingips.guard_port_update]
        self.subnets.before_delete.append(self.routers.guard_subnet_delete)
        self.networks.before_update.append(self.routers.guard_network_update)
        self.networks.before_delete.append(self.floatingips.drop_unassociated)

    def _compose_security(self) -> None:
        """Security groups (and what ports take from them), their default rules, and
        sharing networks and groups with RBAC policies."""
        self.default_rules = DefaultRules()
        self.security_groups = SecurityGroups(self.quotas, self.default_rules)
        self.security_group_rules = SecurityGroupRules(self.security_groups, self.quotas)
        self.ports.security = PortSecurity(self.security_groups)
        self.rbac = RbacPolicies(self.networks, self.security_groups, self.quotas)
        self.collections.update({
            "security-groups": self.security_groups,
            "security-group-rules": self.security_group_rules,
            "default-security-group-rules": self.default_rules,
            "rbac-policies": self.rbac,
        })

    def changed(self, conn: Connection, collection: str, ident: str) -> Changed | None:
        """The change event of a write to ``ident`` (inside its transaction)."""
        return self.hosts.change(conn, collection, ident)

    def notify(self, events: Iterable[Changed | None]) -> None:
        """Hand a committed transaction's events to the listeners."""
        found = [e for e in events if e is not None]
        if found:
            for listener in self.listeners:
                listener(found)
