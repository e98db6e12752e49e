"""Server <-> agent messages: one small interface, several transports.

- ``messages``: the versioned messages themselves (what crosses the wire)
- ``core``: the :class:`Bus` interface every transport implements
- ``inprocess``: the transport ``neutrino up`` uses (server and agent in one process)
- ``server``: the server's side: RPC handlers over the services, change events out

- ``amqp``: the transport between hosts, on RabbitMQ (``bus_url = "amqp://..."``):
  ``publish`` goes through a topic exchange, ``call``/``serve`` through a request queue
  with reply-to

:func:`connect` picks the transport from the ``bus_url`` setting.
"""

from neutrino.bus.core import Bus, BusError, BusUnavailable
from neutrino.bus.inprocess import InProcessBus

__all__ = ["Bus", "BusError", "BusUnavailable", "InProcessBus", "connect"]


def connect(url: str, *, prefix: str = "neutrino", name: str = "neutrino") -> Bus:
    """The transport for ``url``: empty is in-process, ``amqp://`` is RabbitMQ."""
    if not url:
        return InProcessBus()
    from neutrino.bus.amqp import AmqpBus  # aio-pika only where it is used

    return AmqpBus(url, prefix=prefix, name=name)
