"""The API-only provider: it accepts everything the API accepts and reports each
change done as soon as it committed, as upstream's provider with no-op drivers does.

There is no data plane behind it yet (HAProxy in a namespace comes next), so nothing
passes traffic; objects go ``PENDING_* -> ACTIVE`` (or away, for deletes) in the
transaction the report makes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from neutrino.drivers.service.loadbalancer import StatusReporter

#: what its flavors and availability zones may say (names as upstream's amphora
#: provider's, so flavors written for it are accepted)
FLAVOR_KEYS = {
    "loadbalancer_topology": "The load balancer topology: SINGLE or ACTIVE_STANDBY.",
    "compute_flavor": "The compute driver flavor ID (unused: no instances).",
    "amp_image_tag": "The image tag (unused: no instances).",
}
ZONE_KEYS = {
    "compute_zone": "The compute availability zone (recorded, not used).",
    "management_network": "The management network ID (recorded, not used).",
    "valid_vip_networks": "Network IDs VIPs of this zone may be on.",
}


class ApiOnly:
    description = "The API-only provider: objects go ACTIVE once committed, no data plane."

    def __init__(self, name: str, reporter: StatusReporter) -> None:
        self.name = name
        self.reporter = reporter

    def _done(self, obj: Mapping[str, Any]) -> None:
        self.reporter.provisioning(obj["kind"], obj["id"], "ACTIVE")

    def _gone(self, obj: Mapping[str, Any]) -> None:
        self.reporter.provisioning(obj["kind"], obj["id"], "DELETED")

    def create_vip_port(self, loadbalancer_id: str, project_id: str,
                        vip: Mapping[str, Any]) -> Mapping[str, Any] | None:
        return None  # an ordinary port

    def loadbalancer_create(self, loadbalancer: Mapping[str, Any]) -> None:
        self._done(loadbalancer)

    def loadbalancer_update(self, original: Mapping[str, Any],
                            current: Mapping[str, Any]) -> None:
        self._done(current)

    def loadbalancer_delete(self, loadbalancer: Mapping[str, Any], cascade: bool) -> None:
        self.reporter.provisioning("loadbalancer", loadbalancer["id"], "DELETED")

    def loadbalancer_failover(self, loadbalancer_id: str) -> None:
        self.reporter.provisioning("loadbalancer", loadbalancer_id, "ACTIVE")

    def listener_create(self, listener: Mapping[str, Any]) -> None:
        self._done(listener)

    def listener_update(self, original: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self._done(current)

    def listener_delete(self, listener: Mapping[str, Any]) -> None:
        self._gone(listener)

    def pool_create(self, pool: Mapping[str, Any]) -> None:
        self._done(pool)

    def pool_update(self, original: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self._done(current)

    def pool_delete(self, pool: Mapping[str, Any]) -> None:
        self._gone(pool)

    def member_create(self, member: Mapping[str, Any]) -> None:
        self._done(member)

    def member_update(self, original: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self._done(current)

    def member_delete(self, member: Mapping[str, Any]) -> None:
        self._gone(member)

    def member_batch_update(self, pool_id: str, members: Sequence[Mapping[str, Any]]) -> None:
        for member in members:
            if member.get("provisioning_status") == "PENDING_DELETE":
                self._gone(member)
            else:
                self._done(member)
        self.reporter.provisioning("pool", pool_id, "ACTIVE")

    def health_monitor_create(self, monitor: Mapping[str, Any]) -> None:
        self._done(monitor)

    def health_monitor_update(self, original: Mapping[str, Any],
                              current: Mapping[str, Any]) -> None:
        self._done(current)

    def health_monitor_delete(self, monitor: Mapping[str, Any]) -> None:
        self._gone(monitor)

    def l7policy_create(self, policy: Mapping[str, Any]) -> None:
        self._done(policy)

    def l7policy_update(self, original: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self._done(current)

    def l7policy_delete(self, policy: Mapping[str, Any]) -> None:
        self._gone(policy)

    def l7rule_create(self, rule: Mapping[str, Any]) -> None:
        self._done(rule)

    def l7rule_update(self, original: Mapping[str, Any], current: Mapping[str, Any]) -> None:
        self._done(current)

    def l7rule_delete(self, rule: Mapping[str, Any]) -> None:
        self._gone(rule)

    def supported_flavor_metadata(self) -> Mapping[str, str]:
        return FLAVOR_KEYS

    def supported_availability_zone_metadata(self) -> Mapping[str, str]:
        return ZONE_KEYS

    def validate_flavor(self, metadata: Mapping[str, Any]) -> None:
        _known(metadata, FLAVOR_KEYS, "flavor")
        topology = metadata.get("loadbalancer_topology")
        if topology is not None and topology not in ("SINGLE", "ACTIVE_STANDBY"):
            raise ValueError(f"loadbalancer_topology {topology!r} is not SINGLE or "
                             f"ACTIVE_STANDBY")

    def validate_availability_zone(self, metadata: Mapping[str, Any]) -> None:
        _known(metadata, ZONE_KEYS, "availability zone")


def _known(metadata: Mapping[str, Any], keys: Mapping[str, str], what: str) -> None:
    unknown = sorted(set(metadata) - set(keys))
    if unknown:
        raise ValueError(f"unsupported {what} metadata: {', '.join(unknown)}")
