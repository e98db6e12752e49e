"""The messages between server and agents, versioned.

Each message is a frozen dataclass with a wire ``type``; on the wire it is a
JSON-able dict ``{"type": ..., "v": VERSION, <fields>}``.  Compatibility rules,
so a server and an agent one version apart still work:

- a field is only ever *added*, with a default; never renamed or retyped;
- a reader ignores fields it does not know (a newer sender's) and fills the
  defaults of fields it misses (an older sender's);
- a message more than one version away is refused, loudly.

Nested payloads (networks, ports) are plain dicts with the same rules; the agent
reads them through :mod:`neutrino.agent.model`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

VERSION = 1


class MessageError(ValueError):
    """A wire message this side cannot read."""


@dataclass(frozen=True)
class Message:
    TYPE: ClassVar[str] = ""

    def to_wire(self) -> dict[str, Any]:
        body = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {"type": self.TYPE, "v": VERSION, **body}


_TYPES: dict[str, type[Message]] = {}


def _message(cls: type[Message]) -> type[Message]:
    assert cls.TYPE and cls.TYPE not in _TYPES, f"duplicate or missing message type {cls}"
    _TYPES[cls.TYPE] = cls
    return cls


def from_wire(data: dict[str, Any]) -> Message:
    if not isinstance(data, dict) or "type" not in data:
        raise MessageError(f"not a bus message: {data!r:.200}")
    cls = _TYPES.get(data["type"])
    if cls is None:
        raise MessageError(f"unknown message type {data['type']!r}")
    version = data.get("v", VERSION)
    if not isinstance(version, int) or abs(version - VERSION) > 1:
        raise MessageError(f"{data['type']} message of version {version}: this side speaks "
                           f"{VERSION} (and one version either side)")
    known = {f.name for f in dataclasses.fields(cls)}
    try:
        return cls(**{k: v for k, v in data.items() if k in known})
    except TypeError as exc:  # a required field is missing
        raise MessageError(f"{data['type']} message: {exc}") from None


# -- events (server -> agents) -------------------------------------------------------------

@_message
@dataclass(frozen=True)
class Changed(Message):
    """A resource changed (created, updated or deleted) in a committed transaction.
    ``network_id`` is the key agents reconcile by."""

    TYPE: ClassVar[str] = "changed"
    kind: str  # "network", "subnet", "port", "router", "floatingip"
    id: str
    network_id: str | None = None
    host: str = ""  # the port's binding host, if any
    #: the router a floating IP is forwarded through now (None: not associated)
    router_id: str | None = None


# -- calls (agent -> server) and their replies ---------------------------------------------

@_message
@dataclass(frozen=True)
class Ack(Message):
    TYPE: ClassVar[str] = "ack"


@_message
@dataclass(frozen=True)
class AgentState(Message):
    """Registration and heartbeat in one (as upstream's report_state)."""

    TYPE: ClassVar[str] = "agent_state"
    host: str
    agent_type: str
    binary: str
    topic: str
    configurations: dict[str, Any] = field(default_factory=dict)
    #: True on the first report after the agent (re)started
    start_flag: bool = False
    availability_zone: str | None = None


@_message
@dataclass(frozen=True)
class AgentRegistered(Message):
    TYPE: ClassVar[str] = "agent_registered"
    agent_id: str
    #: the server's agent_down_time: heartbeats must come more often than this
    down_time: int = 75
    #: to a DHCP agent: the networks whose DHCP its host serves now (None: not said).
    #: Which host serves a network follows the DHCP agents' liveness and admin state,
    #: which change without any write on the network, so without a change mark
    dhcp_networks: list[str] | None = None


@_message
@dataclass(frozen=True)
class SyncRequest(Message):
    """The desired state of a host: of every network it cares for (None) or of some."""

    TYPE: ClassVar[str] = "sync_request"
    host: str
    network_ids: list[str] | None = None
    #: routers asked about too (with ``network_ids`` not None; None asks for none)
    router_ids: list[str] | None = None


@_message
@dataclass(frozen=True)
class HostState(Message):
    """What ``host`` should realise for the networks asked about.

    A network asked about but missing here is no longer the host's concern.
    ``generation`` orders snapshots, across servers and their restarts: a snapshot holds
    every change of generation up to its own; an agent reports the highest it applied.
    """

    TYPE: ClassVar[str] = "host_state"
    generation: int
    networks: list[dict[str, Any]] = field(default_factory=list)
    ports: list[dict[str, Any]] = field(default_factory=list)
    #: the routers this host realises (of those asked about), with their floating IPs
    routers: list[dict[str, Any]] = field(default_factory=list)
    #: the security groups of the host's ports and those their rules name, with their
    #: rules and member addresses; always whole (a remote group's members live anywhere)
    security_groups: list[dict[str, Any]] = field(default_factory=list)


@_message
@dataclass(frozen=True)
class PortReports(Message):
    """Realisation of ports by one host's components: each report is
    ``{"port_id", "component": "l2"|"dhcp", "up": bool, "revision": int}``, the revision
    being the port's ``revision_number`` in the snapshot the host realised (a report of
    an older revision than the port must be realised at does not make it ACTIVE).
    Idempotent: the server may take the same reports twice."""

    TYPE: ClassVar[str] = "port_reports"
    host: str
    reports: list[dict[str, Any]] = field(default_factory=list)


@_message
@dataclass(frozen=True)
class RouterReports(Message):
    """Realisation of routers and floating IPs by one host's L3 agent:
    ``{"router_id", "status"}`` and ``{"floatingip_id", "status"}``, the status being
    ``ACTIVE``, ``DOWN`` or ``ERROR``; each may add ``"revision"`` (the object's
    ``revision_number`` realised), and then one older than a report already taken for
    that host is not taken."""

    TYPE: ClassVar[str] = "router_reports"
    host: str
    routers: list[dict[str, Any]] = field(default_factory=list)
    floatingips: list[dict[str, Any]] = field(default_factory=list)


@_message
@dataclass(frozen=True)
class DhcpPortRequest(Message):
    """Make (or complete) this host's DHCP port on a network; the reply is the port."""

    TYPE: ClassVar[str] = "dhcp_port_request"
    host: str
    network_id: str
    release: bool = False  # True: the network needs no DHCP here any more, remove the port


@_message
@dataclass(frozen=True)
class DhcpPort(Message):
    TYPE: ClassVar[str] = "dhcp_port"
    port: dict[str, Any] | None = None


# the call methods
REPORT_STATE = "report_state"
SYNC = "sync"
REPORT_PORTS = "report_ports"
REPORT_ROUTERS = "report_routers"
DHCP_PORT = "dhcp_port"
