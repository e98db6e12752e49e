"""Domain services, composed once at start-up: every dependency is a constructor
argument, every subscriber (a guard one family keeps on another's writes, a quota
counter) is listed here.  No base classes, no mixins.

The order is the dependency order.  The network and subnet families' read sides
(their listings) come first: ports are read and written against them before the
subnet and network services exist, and those two hold the port service (a subnet
asks it for addresses; a network removes its DHCP ports through it).

Each service records the change events of what it writes in the write's transaction
(:mod:`neutrino.services.core.events`); :mod:`neutrino.rpc.publisher` sends them.
"""

from __future__ import annotations

from neutrino.config import Settings
from neutrino.db.engine import Database
from neutrino.drivers.mechanism.manager import MechanismDrivers
from neutrino.drivers.service.firewall_noop import NoopFirewall
from neutrino.drivers.types.manager import TypeDrivers
from neutrino.services.core.collection import Collection, Guards
from neutrino.services.core.quotas import Quotas
from neutrino.services.firewall import groups as firewall_groups
from neutrino.services.firewall import policies as firewall_policies
from neutrino.services.firewall import rules as firewall_rules
from neutrino.services.firewall.defaults import DefaultGroups
from neutrino.services.firewall.groups import FirewallGroups
from neutrino.services.firewall.policies import FirewallPolicies
from neutrino.services.firewall.realise import GroupStatus, Realisation
from neutrino.services.firewall.rules import FirewallRules
from neutrino.services.l2 import networks, ports, subnetpools, subnets
from neutrino.services.l2.networks import Networks
from neutrino.services.l2.ports import Ports
from neutrino.services.l2.subnetpools import SubnetPools
from neutrino.services.l2.subnets import Subnets
from neutrino.services.l3 import floatingips, routers
from neutrino.services.l3.floatingips import FloatingIps
from neutrino.services.l3.router_ha import HaNetworks
from neutrino.services.l3.routers import Routers
from neutrino.services.loadbalancer.service import LoadBalancers
from neutrino.services.realisation.agents import Agents
from neutrino.services.realisation.hosts import Hosts
from neutrino.services.realisation.l3hosts import L3Hosts
from neutrino.services.security import security_groups
from neutrino.services.security.port_security import PortSecurity
from neutrino.services.security.security_groups import (
    DefaultRules,
    SecurityGroupRules,
    SecurityGroups,
)
from neutrino.services.sharing import rbac
from neutrino.services.sharing.rbac import RbacPolicies

#: what each family counts against its projects' quotas, in the quotas API's order
QUOTA_COUNTERS = (networks.QUOTA, subnets.QUOTA, ports.QUOTA, subnetpools.QUOTA,
                  routers.QUOTA, floatingips.QUOTA, *security_groups.QUOTAS, rbac.QUOTA,
                  firewall_groups.QUOTA, firewall_policies.QUOTA, firewall_rules.QUOTA)


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.quotas = Quotas(settings.quotas, QUOTA_COUNTERS)
        self.agents = Agents(settings)
        self.type_drivers = TypeDrivers(settings)
        self.mechanism_drivers = MechanismDrivers(settings, self.agents)
        # security groups (and what ports take from them)
        self.default_rules = DefaultRules()
        self.security_groups = SecurityGroups(self.quotas, self.default_rules)
        self.security_group_rules = SecurityGroupRules(self.security_groups, self.quotas)
        # FWaaS v2: rules, the policies holding them, the groups holding policies and ports
        # (the built-in driver enforces nothing yet: docs/firewall.md); before the ports,
        # whose deletes leave their groups
        self.firewall_status = GroupStatus()
        firewall = Realisation(NoopFirewall(self.firewall_status))
        firewall_defaults = DefaultGroups()
        self.firewall_rules = FirewallRules(self.quotas, firewall_defaults, firewall)
        self.firewall_policies = FirewallPolicies(self.firewall_rules, self.quotas,
                                                  firewall_defaults, firewall)
        self.firewall_groups = FirewallGroups(self.firewall_policies, self.quotas,
                                              firewall_defaults, firewall)
        # L2: ports first (against the network and subnet listings), then what holds them
        network_rows, subnet_rows = networks.listing(), subnets.listing()
        self.ports = Ports(settings, network_rows, subnet_rows, self.quotas,
                           PortSecurity(self.security_groups), self.mechanism_drivers,
                           # nothing changes under a router or a floating IP through the
                           # port API
                           Guards(before_update=(routers.guard_port_update,
                                                 floatingips.guard_port_update),
                                  before_delete=(routers.guard_port_delete,
                                                 floatingips.guard_port_delete,
                                                 self.firewall_groups.port_leaving)))
        self.subnetpools = SubnetPools(self.quotas)
        self.subnets = Subnets(settings, subnet_rows, network_rows, self.ports, self.quotas,
                               self.subnetpools,
                               Guards(before_delete=(routers.guard_subnet_delete,)))
        self.floatingips = FloatingIps(network_rows, self.subnets, self.ports, self.quotas)
        self.networks = Networks(network_rows, self.subnets, self.ports, self.type_drivers,
                                 self.mechanism_drivers, self.quotas,
                                 Guards(before_update=(routers.guard_network_update,),
                                        before_delete=(self.floatingips.drop_unassociated,)))
        # L3: routers are scheduled (their ports bound where they are realised) as they
        # change
        l3_hosts = L3Hosts(self.agents, self.ports)
        self.routers = Routers(network_rows, self.subnets, self.ports, self.quotas,
                               HaNetworks(settings, self.networks, self.subnets), l3_hosts,
                               settings.max_routes)
        # sharing networks and groups
        self.rbac = RbacPolicies(self.networks, self.security_groups, self.quotas)
        # load balancing (the Octavia v2 API): VIP ports through the port service
        self.loadbalancers = LoadBalancers(settings, network_rows, subnet_rows, self.ports)
        # what the hosts realise, and what they report
        self.hosts = Hosts(self.agents, self.subnets, self.ports, l3_hosts)
        #: collection name -> service, for the generic CRUD routes
        self.collections: dict[str, Collection] = {
            "networks": self.networks, "subnets": self.subnets, "ports": self.ports,
            "subnetpools": self.subnetpools, "agents": self.agents,
            "routers": self.routers, "floatingips": self.floatingips,
            "security-groups": self.security_groups,
            "security-group-rules": self.security_group_rules,
            "default-security-group-rules": self.default_rules,
            "rbac-policies": self.rbac,
            "fwaas/firewall_rules": self.firewall_rules,
            "fwaas/firewall_policies": self.firewall_policies,
            "fwaas/firewall_groups": self.firewall_groups,
        }

    def attach(self, db: Database) -> None:
        """What reports back into the database outside a request: the firewall driver's
        group statuses."""
        self.firewall_status.attach(db)
