"""The FWaaS v2 seam: what realises firewall groups on ports.

A firewall group has an ingress and an egress policy (each an ordered list of rules,
the first match deciding; what no rule matches is dropped) and the ports it applies to
(instances' ports, or router interfaces).  The firewall service (``services/firewall``)
stores groups, policies and rules, and calls the driver like the mechanism drivers are
called:
``*_precommit`` inside the transaction (read-only values; raising refuses the change and
rolls it back), ``*_postcommit`` after the commit.  A change of a policy or a rule is an
update of every group that uses it; a port that joins or leaves a group (a port deleted
leaves all of its groups) is an update of that group.  The driver reports how its
groups are realised through the :class:`FirewallStatus` it was made with (``ACTIVE``,
``DOWN`` when admin down, ``ERROR``), as the mechanism drivers' agents report ports; a
group without ports is ``INACTIVE`` (the service says so, no driver is asked).

The security groups' filtering on the same ports keeps running: a packet must pass both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Action = Literal["allow", "deny", "reject"]
Status = Literal["ACTIVE", "DOWN", "ERROR"]


@dataclass(frozen=True)
class FirewallRule:
    id: str
    action: Action
    ip_version: int
    #: None: any (a name or number, as the API stores it)
    protocol: str | None = None
    source_ip_address: str | None = None
    destination_ip_address: str | None = None
    #: "80" or "8000:8080"; None: any
    source_port: str | None = None
    destination_port: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class FirewallGroup:
    id: str
    project_id: str
    admin_state_up: bool
    #: the rules of its policy that way, in order; None: it has no policy that way
    ingress: tuple[FirewallRule, ...] | None
    egress: tuple[FirewallRule, ...] | None
    #: the ports it applies to
    ports: tuple[str, ...]


@dataclass(frozen=True)
class FirewallGroupContext:
    current: FirewallGroup
    #: before an update (None for a create or a delete)
    original: FirewallGroup | None


class FirewallStatus(Protocol):
    def group(self, group_id: str, status: Status) -> None:
        """How the group is realised now (thread-safe; one transaction per call)."""
        ...


class FirewallDriver(Protocol):
    #: its name in the configuration
    name: str

    def create_firewall_group_precommit(self, context: FirewallGroupContext) -> None: ...

    def create_firewall_group_postcommit(self, context: FirewallGroupContext) -> None: ...

    def update_firewall_group_precommit(self, context: FirewallGroupContext) -> None: ...

    def update_firewall_group_postcommit(self, context: FirewallGroupContext) -> None: ...

    def delete_firewall_group_precommit(self, context: FirewallGroupContext) -> None: ...

    def delete_firewall_group_postcommit(self, context: FirewallGroupContext) -> None: ...
