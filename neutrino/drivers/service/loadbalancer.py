"""The load balancer provider seam (Octavia's provider drivers, e.g. amphora, OVN).

The load balancer service (next) keeps the API's objects — load balancers, listeners,
pools, members, health monitors, L7 policies and rules — and their
``provisioning_status``.  After each change commits it calls the provider named by the
load balancer's ``provider`` with the object as the API shows it to an admin.  A
provider

- accepts or refuses a request at once: raising :class:`Unsupported` (a feature or
  flavor it lacks) answers the client 400 and nothing is changed, any other error is a
  failed provisioning (``ERROR``);
- does the work without blocking the caller (its own thread, task or agent) and says
  how it went through the :class:`StatusReporter` it was made with: each touched object
  goes ``ACTIVE`` (or ``ERROR``), a deleted one ``DELETED``; operating statuses
  (``ONLINE``, ``DEGRADED``, ``OFFLINE``, ``NO_MONITOR``) follow its health checks.

Until it reports, objects stay ``PENDING_CREATE``/``PENDING_UPDATE``/``PENDING_DELETE``
and the service refuses further changes to that load balancer (409), as upstream.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, Protocol

from neutrino import errors

#: an object as the API shows it to an admin (read-only): its ``id``, its parent's id
#: (``loadbalancer_id``, ``listener_id``, ``pool_id``, ``l7policy_id``) and attributes
LoadBalancer = Mapping[str, Any]
Listener = Mapping[str, Any]
Pool = Mapping[str, Any]
Member = Mapping[str, Any]
HealthMonitor = Mapping[str, Any]
L7Policy = Mapping[str, Any]
L7Rule = Mapping[str, Any]
Kind = Literal["loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy",
               "l7rule"]
Provisioning = Literal["ACTIVE", "ERROR", "DELETED"]
Operating = Literal["ONLINE", "DEGRADED", "OFFLINE", "ERROR", "NO_MONITOR", "DRAINING"]


class Unsupported(errors.BadRequest):
    """The provider cannot do what the request asks (an algorithm, a protocol, a flavor
    capability): 400, and the change is not made."""

    type = "ProviderUnsupported"


class StatusReporter(Protocol):
    """How a provider reports back (thread-safe; each call is one transaction)."""

    def provisioning(self, kind: Kind, ident: str, status: Provisioning) -> None:
        """An object's (and, the service derives, its load balancer's) provisioning
        status after the provider's work on it."""
        ...

    def operating(self, kind: Kind, ident: str, status: Operating) -> None:
        """What the provider's health checks see of an object now."""
        ...

    def vip(self, loadbalancer_id: str, address: str, port_id: str) -> None:
        """The address (and the port holding it) a provider chose for a VIP."""
        ...


class LoadBalancerDriver(Protocol):
    #: its name in the ``provider`` attribute and the configuration
    name: str

    # load balancers ------------------------------------------------------------------

    def create_vip_port(self, loadbalancer_id: str, project_id: str,
                        vip: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """Make the VIP's port itself (a provider with its own addressing), returning
        ``vip_address``/``vip_port_id``...; None: the service makes an ordinary port."""
        ...

    def loadbalancer_create(self, loadbalancer: LoadBalancer) -> None:
        """Start serving on the VIP (with the listeners, pools and members given inline
        on a single-call create)."""
        ...

    def loadbalancer_update(self, original: LoadBalancer, current: LoadBalancer) -> None: ...

    def loadbalancer_delete(self, loadbalancer: LoadBalancer, cascade: bool) -> None:
        """Stop serving; ``cascade``: its listeners, pools and members go with it."""
        ...

    def loadbalancer_failover(self, loadbalancer_id: str) -> None:
        """Rebuild the load balancer's data plane (a new amphora, another chassis)
        without changing its configuration."""
        ...

    # listeners, pools, members, health monitors ------------------------------------------

    def listener_create(self, listener: Listener) -> None: ...

    def listener_update(self, original: Listener, current: Listener) -> None: ...

    def listener_delete(self, listener: Listener) -> None: ...

    def pool_create(self, pool: Pool) -> None: ...

    def pool_update(self, original: Pool, current: Pool) -> None: ...

    def pool_delete(self, pool: Pool) -> None:
        """The pool, its members and its health monitor go."""
        ...

    def member_create(self, member: Member) -> None: ...

    def member_update(self, original: Member, current: Member) -> None: ...

    def member_delete(self, member: Member) -> None: ...

    def member_batch_update(self, pool_id: str, members: Sequence[Member]) -> None:
        """The pool's members are now exactly ``members`` (made, changed or gone)."""
        ...

    def health_monitor_create(self, monitor: HealthMonitor) -> None: ...

    def health_monitor_update(self, original: HealthMonitor, current: HealthMonitor) -> None:
        ...

    def health_monitor_delete(self, monitor: HealthMonitor) -> None: ...

    # L7 -------------------------------------------------------------------------------

    def l7policy_create(self, policy: L7Policy) -> None: ...

    def l7policy_update(self, original: L7Policy, current: L7Policy) -> None: ...

    def l7policy_delete(self, policy: L7Policy) -> None: ...

    def l7rule_create(self, rule: L7Rule) -> None: ...

    def l7rule_update(self, original: L7Rule, current: L7Rule) -> None: ...

    def l7rule_delete(self, rule: L7Rule) -> None: ...

    # flavors and availability zones ----------------------------------------------------

    def supported_flavor_metadata(self) -> Mapping[str, str]:
        """The flavor keys it understands, each with what it means."""
        ...

    def validate_flavor(self, metadata: Mapping[str, Any]) -> None:
        """Refuse (:class:`Unsupported`) a flavor it cannot honour."""
        ...

    def validate_availability_zone(self, metadata: Mapping[str, Any]) -> None: ...
