"""The in-process transport: server and agents in one process (``neutrino up``).

Messages still go through their wire form (and a JSON round trip), so nothing is
shared between sender and receiver and what works here works over AMQP.
Subscribers run in the publisher's thread: they only mark keys dirty.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import orjson

from neutrino.bus.core import BusError, BusUnavailable, CallHandler, Handler
from neutrino.bus.messages import Message, from_wire

log = logging.getLogger(__name__)


def _copy(message: Message) -> Message:
    return from_wire(orjson.loads(orjson.dumps(message.to_wire())))


class InProcessBus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Handler]] = {}
        self._handlers: dict[str, CallHandler] = {}
        #: False simulates a server that is away (calls fail, events are lost)
        self.available = True

    def publish(self, topic: str, message: Message) -> None:
        if not self.available:
            return
        with self._lock:
            handlers = list(self._subscribers.get(topic, ()))
        for handler in handlers:
            try:
                handler(_copy(message))
            except Exception:  # one subscriber's bug never reaches the publisher
                log.exception("subscriber of %s failed on %s", topic, message.TYPE)

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._subscribers.setdefault(topic, []).append(handler)

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._subscribers.get(topic, [])
                if handler in handlers:
                    handlers.remove(handler)
        return unsubscribe

    def serve(self, method: str, handler: CallHandler) -> None:
        with self._lock:
            self._handlers[method] = handler

    def call(self, method: str, request: Message, timeout: float = 30.0) -> Message:
        with self._lock:
            handler = self._handlers.get(method)
        if handler is None or not self.available:
            raise BusUnavailable(f"no server answers {method!r} now")
        try:
            reply = handler(_copy(request))
        except BusError:
            raise
        except Exception as exc:
            raise BusError(f"{method} failed on the server: {exc}") from exc
        return _copy(reply)

    def close(self) -> None:
        with self._lock:
            self._subscribers.clear()
            self._handlers.clear()
