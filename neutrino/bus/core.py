"""The bus interface: fanout events one way, calls (request -> reply) the other.

Two kinds of traffic, as in upstream's RPC but with one small surface:

- *events* the server publishes after a commit ("port p on network n changed"),
  fanned out to every subscriber of a topic.  They carry keys, never state: a
  subscriber only marks those keys dirty and reads the state when it reconciles;
- *calls* an agent makes to the server (register, heartbeat, "what should my
  host look like", "these ports are wired"), each answered by one reply.

Every message crosses the transport in its wire form (a JSON-able dict with
``type`` and ``v``), even in-process, so the in-process transport exercises
exactly what a remote one would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from neutrino.bus.messages import Message

#: where the server publishes resource changes
CHANGES = "changes"

Handler = Callable[[Message], None]
CallHandler = Callable[[Message], Message]


class BusError(Exception):
    """A call reached the server and it answered with an error."""


class BusUnavailable(BusError):
    """The other side cannot be reached now; try again later (the data plane keeps
    running meanwhile)."""


class Bus(Protocol):
    def publish(self, topic: str, message: Message) -> None:
        """Send ``message`` to every subscriber of ``topic``; never blocks on them."""

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        """Call ``handler`` for each message on ``topic``; returns the unsubscribe.
        Handlers must be quick (mark keys dirty, nothing else)."""

    def serve(self, method: str, handler: CallHandler) -> None:
        """Answer calls to ``method`` (the server side)."""

    def call(self, method: str, request: Message, timeout: float = 30.0) -> Message:
        """Send ``request`` to whoever serves ``method`` and wait for the reply.
        Raises BusUnavailable when nobody answers, BusError when the handler failed."""

    def close(self) -> None:
        ...
