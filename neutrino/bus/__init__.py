"""Server <-> agent messages: one small interface, several transports.

- ``messages``: the versioned messages themselves (what crosses the wire)
- ``core``: the :class:`Bus` interface every transport implements
- ``inprocess``: the transport ``neutrino up`` uses (server and agent in one process)
- ``server``: the server's side: RPC handlers over the services, change events out

An AMQP transport (RabbitMQ) implements the same :class:`Bus`: ``publish`` becomes a
fanout exchange, ``call``/``serve`` a request queue with reply-to.
"""

from neutrino.bus.core import Bus, BusError, BusUnavailable
from neutrino.bus.inprocess import InProcessBus

__all__ = ["Bus", "BusError", "BusUnavailable", "InProcessBus"]
