"""The built-in firewall driver: API only, nothing enforced.

It realises no filtering: it only answers for the groups as an agentless backend that
has nothing to program would, so clients waiting for a group to settle see it settle.
A group with ports is reported ``ACTIVE`` (``DOWN`` when admin down) once its change
committed.  ``ACTIVE`` from this driver means "accepted", never "enforced"
(docs/firewall.md); the nftables driver on the hosts' agents comes next.
"""

from __future__ import annotations

from neutrino.drivers.service.firewall import FirewallGroupContext, FirewallStatus


class NoopFirewall:
    name = "noop"

    def __init__(self, status: FirewallStatus) -> None:
        self.status = status

    def _report(self, context: FirewallGroupContext) -> None:
        group = context.current
        if group.ports:
            self.status.group(group.id, "ACTIVE" if group.admin_state_up else "DOWN")

    def create_firewall_group_precommit(self, context: FirewallGroupContext) -> None:
        pass

    def create_firewall_group_postcommit(self, context: FirewallGroupContext) -> None:
        self._report(context)

    def update_firewall_group_precommit(self, context: FirewallGroupContext) -> None:
        pass

    def update_firewall_group_postcommit(self, context: FirewallGroupContext) -> None:
        self._report(context)

    def delete_firewall_group_precommit(self, context: FirewallGroupContext) -> None:
        pass

    def delete_firewall_group_postcommit(self, context: FirewallGroupContext) -> None:
        pass
