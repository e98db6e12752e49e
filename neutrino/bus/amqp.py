"""The AMQP transport: server and agents on different hosts, through RabbitMQ.

Topology (``<p>`` is the ``bus_prefix`` setting, ``neutrino`` by default):

- ``<p>.events``: a topic exchange.  ``publish(topic, msg)`` sends with the routing key
  ``<topic>.<msg type>.<host or ->`` (e.g. ``changes.changed.hv1``); every subscriber
  binds its own exclusive, server-named queue with ``<topic>.#``.  A port's network
  concerns other hosts too (the one serving its DHCP), so agents take every mark and
  only the host in the key is left for finer bindings later.
- ``<p>.rpc``: a direct exchange; the servers' queue ``<p>.rpc.servers`` is bound once
  per method served (routing key = method).  Every server process consumes it, each
  call going to one of them: they keep nothing between calls (what hosts report is in
  the database), so any of them can answer any call.  It is auto-deleted with its
  last consumer, so a call while no server is up comes back unroutable at once
  (``mandatory``) instead of waiting for a timeout.  (Servers before it kept host
  state in memory and shared ``<p>.rpc.server``, with a single active consumer;
  while one of them still runs, a call reaches both queues and is answered twice,
  which the handlers' idempotence makes harmless.)
- replies: each connection's exclusive reply queue; requests carry ``reply_to``, a
  ``correlation_id`` and an ``expiration`` equal to the caller's timeout (a request
  nobody took in time is dropped, never run late).  A failed handler answers with
  the header ``x-error``.

Bodies are the messages' wire form as JSON (see :mod:`neutrino.bus.messages`), so the
version rules hold across the wire.  One asyncio loop in a thread of its own owns the
connection; the :class:`~neutrino.bus.core.Bus` methods are called from any other
thread.  The connection is supervised: when it is lost (broker restart, network cut)
pending calls fail with :class:`BusUnavailable` at once, events published meanwhile
are kept (bounded) and sent after the reconnect, which is retried with exponential
backoff; once back every subscription and served method is declared again and the
``on_reconnect`` callbacks run (an agent resyncs fully: events may have been lost).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import aio_pika
import orjson
from aio_pika import exceptions as amqp_errors
from yarl import URL

from neutrino.bus.core import BusError, BusUnavailable, CallHandler, Handler
from neutrino.bus.messages import Message, MessageError, from_wire

log = logging.getLogger(__name__)

JSON = "application/json"
#: events kept while the connection is down; the oldest go first (an agent resyncs anyway)
OUTBOX = 10_000
#: seconds of AMQP heartbeat unless the URL says (``?heartbeat=N``): a dead peer is
#: noticed within about twice this
HEARTBEAT = 15
#: a connection that lived this long resets the reconnect backoff
STABLE = 10.0


def _encode(message: Message) -> dict[str, Any]:
    return message.to_wire()


def _key_part(text: str) -> str:
    """A routing-key word: no dots or wildcards (host names have dots)."""
    return "".join("_" if c in ".#*" else c for c in text) or "-"


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parsed = URL(url)
    return str(parsed.with_password("***")) if parsed.password else url


class AmqpBus:
    """The :class:`~neutrino.bus.core.Bus` over RabbitMQ (see the module's doc)."""

    def __init__(self, url: str, *, prefix: str = "neutrino", name: str = "neutrino",
                 workers: int = 8, min_backoff: float = 0.5, max_backoff: float = 30.0) -> None:
        parsed = URL(url)
        if parsed.scheme not in ("amqp", "amqps"):
            raise ValueError(f"bus_url must be amqp://user:password@host:5672/vhost, "
                             f"not {redact(url)!r}")
        if "heartbeat" not in parsed.query:
            parsed = parsed.update_query(heartbeat=HEARTBEAT)
        self.url = parsed
        self.prefix = prefix
        self.name = name
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        #: how a message becomes its wire dict (tests swap it to play another version)
        self.encode: Callable[[Message], dict[str, Any]] = _encode
        self._workers = workers
        self._lock = threading.Lock()
        self._subscribers: dict[str, list[Handler]] = {}
        self._handlers: dict[str, CallHandler] = {}
        self._reconnect_callbacks: list[Callable[[], None]] = []
        self._connected = threading.Event()
        self._closing = False
        self.connections = 0  # successful (re)connections so far
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        # owned by the loop thread:
        self._conn: aio_pika.abc.AbstractConnection | None = None
        self._channel: aio_pika.abc.AbstractChannel | None = None
        self._events_x: aio_pika.abc.AbstractExchange | None = None
        self._rpc_x: aio_pika.abc.AbstractExchange | None = None
        self._reply_q: aio_pika.abc.AbstractQueue | None = None
        self._sub_q: aio_pika.abc.AbstractQueue | None = None
        self._rpc_q: aio_pika.abc.AbstractQueue | None = None
        self._bound_topics: set[str] = set()
        self._bound_methods: set[str] = set()
        self._pending: dict[str, asyncio.Future[tuple[dict, bytes]]] = {}
        self._outbox: deque[tuple[str, bytes, str]] = deque(maxlen=OUTBOX)
        self._loop = asyncio.new_event_loop()
        self._topology: asyncio.Lock | None = None
        self._outbox_ready: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run_loop, name=f"bus-{name}", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop)

    # -- the Bus interface (any thread but the bus's own) ---------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def on_reconnect(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (in the bus's thread: keep it quick) after every connection
        to the broker, the first one included: events may have been missed before."""
        with self._lock:
            self._reconnect_callbacks.append(callback)

    def publish(self, topic: str, message: Message) -> None:
        if self._closing:
            return
        host = getattr(message, "host", "") or ""
        key = f"{topic}.{_key_part(message.TYPE)}.{_key_part(host)}"
        body = orjson.dumps(self.encode(message))
        self._loop.call_soon_threadsafe(self._queue_event, topic, body, key)

    def flush(self, timeout: float) -> bool:
        """Wait until the broker confirmed every event published so far (the channel
        has publisher confirms); False if it did not within ``timeout`` (they stay
        queued here).  What the server's outbox waits for before it deletes rows."""
        if self._closing:
            return False

        async def sent() -> None:
            while self._outbox:  # an event leaves it once its confirm came back
                await asyncio.sleep(0.002)

        future = asyncio.run_coroutine_threadsafe(sent(), self._loop)
        try:
            future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return False
        return True

    def subscribe(self, topic: str, handler: Handler) -> Callable[[], None]:
        with self._lock:
            self._subscribers.setdefault(topic, []).append(handler)
        self._apply(self._bind_topic(topic))

        def unsubscribe() -> None:
            with self._lock:
                handlers = self._subscribers.get(topic, [])
                if handler in handlers:
                    handlers.remove(handler)
                if handlers:
                    return
                self._subscribers.pop(topic, None)
            if not self._closing:
                self._apply(self._unbind_topic(topic))
        return unsubscribe

    def serve(self, method: str, handler: CallHandler) -> None:
        with self._lock:
            self._handlers[method] = handler
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._workers, thread_name_prefix=f"bus-{self.name}-serve")
        self._apply(self._bind_method(method))

    def call(self, method: str, request: Message, timeout: float = 30.0) -> Message:
        if threading.current_thread() is self._thread:
            raise RuntimeError("Bus.call from the bus's own thread would wait for itself")
        if not self._connected.is_set():
            raise BusUnavailable(f"not connected to the message broker at {redact(str(self.url))}")
        body = orjson.dumps(self.encode(request))
        future = asyncio.run_coroutine_threadsafe(self._call(method, body, timeout), self._loop)
        try:
            headers, payload = future.result(timeout + 5)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise BusUnavailable(f"no answer to {method!r} within {timeout:g}s") from None
        if headers.get("x-error"):
            raise BusError(f"{method} failed on the server: {headers['x-error']}")
        try:
            return from_wire(orjson.loads(payload))
        except (MessageError, orjson.JSONDecodeError) as exc:
            raise BusError(f"cannot read the server's answer to {method}: {exc}") from None

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        except Exception as exc:  # closing anyway
            log.debug("bus %s: unclean shutdown: %s", self.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # -- the loop thread ------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_forever()
        finally:
            tasks = [t for t in asyncio.all_tasks(self._loop) if not t.done()]
            for task in tasks:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self._loop.close()

    def _apply(self, coro: Any) -> None:
        """Run a topology change on the loop; wait for it while connected (so a
        subscription is in place when subscribe returns), else it happens on connect."""
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if self._connected.is_set() and threading.current_thread() is not self._thread:
            try:
                future.result(10)
            except Exception as exc:  # the connection went: the reconnect declares it
                log.debug("bus %s: topology change deferred: %s", self.name, exc)

    async def _start(self) -> None:
        self._topology = asyncio.Lock()
        self._outbox_ready = asyncio.Event()
        self._supervisor = asyncio.ensure_future(self._supervise())
        self._sender = asyncio.ensure_future(self._send_events())

    async def _supervise(self) -> None:
        """Connect, set everything up, wait for the connection to go; again, with backoff."""
        delay = self.min_backoff
        failures = 0
        while not self._closing:
            lost = asyncio.Event()
            try:
                conn = await aio_pika.connect(
                    self.url, timeout=10, client_properties={"connection_name": self.name})
                conn.close_callbacks.add(lambda *_, lost=lost: lost.set())
                await self._setup(conn, lost)
            except Exception as exc:
                failures += 1
                (log.warning if failures == 1 else log.debug)(
                    "bus %s: cannot reach the broker at %s (%s); retrying with backoff",
                    self.name, redact(str(self.url)), exc or type(exc).__name__)
                await self._drop()
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(self.max_backoff, delay * 2)
                continue
            failures = 0
            self.connections += 1
            since = self._loop.time()
            log.info("bus %s: connected to %s", self.name, redact(str(self.url)))
            self._connected.set()
            self._outbox_ready.set()  # type: ignore[union-attr]
            with self._lock:
                callbacks = list(self._reconnect_callbacks)
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    log.exception("bus %s: reconnect callback failed", self.name)
            await lost.wait()
            self._connected.clear()
            await self._drop()
            if self._closing:
                return
            log.warning("bus %s: lost the connection to the broker; reconnecting", self.name)
            if self._loop.time() - since > STABLE:
                delay = self.min_backoff
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(self.max_backoff, delay * 2)

    async def _setup(self, conn: aio_pika.abc.AbstractConnection, lost: asyncio.Event) -> None:
        assert self._topology is not None
        async with self._topology:
            self._conn = conn
            channel = await conn.channel(publisher_confirms=True, on_return_raises=True)
            # a channel error (e.g. a queue declared differently) ends the channel only:
            # start over on a fresh connection
            channel.close_callbacks.add(lambda *_: lost.set())
            await channel.set_qos(prefetch_count=self._workers)
            self._channel = channel
            self._events_x = await channel.declare_exchange(
                f"{self.prefix}.events", aio_pika.ExchangeType.TOPIC, durable=True)
            self._rpc_x = await channel.declare_exchange(
                f"{self.prefix}.rpc", aio_pika.ExchangeType.DIRECT, durable=True)
            self._reply_q = await channel.declare_queue(exclusive=True, auto_delete=True)
            await self._reply_q.consume(self._on_reply, no_ack=True)
            with self._lock:
                topics, methods = list(self._subscribers), list(self._handlers)
            for topic in topics:
                await self._bind_topic_locked(topic)
            for method in methods:
                await self._bind_method_locked(method)

    async def _drop(self) -> None:
        """Forget the connection and fail the calls waiting on it."""
        conn, self._conn = self._conn, None
        self._channel = self._events_x = self._rpc_x = None
        self._reply_q = self._sub_q = self._rpc_q = None
        self._bound_topics.clear()
        self._bound_methods.clear()
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(BusUnavailable("the connection to the broker was lost"))
        if conn is not None and not conn.is_closed:
            try:
                await asyncio.wait_for(conn.close(), 5)
            except Exception as exc:
                log.debug("bus %s: closing a broken connection: %s", self.name, exc)

    async def _shutdown(self) -> None:
        self._connected.clear()
        for task in (getattr(self, "_supervisor", None), getattr(self, "_sender", None)):
            if task is not None:
                task.cancel()
        await self._drop()

    # -- topology -----------------------------------------------------------------------

    async def _bind_topic(self, topic: str) -> None:
        assert self._topology is not None
        async with self._topology:
            await self._bind_topic_locked(topic)

    async def _bind_topic_locked(self, topic: str) -> None:
        if self._channel is None or topic in self._bound_topics:
            return
        if self._sub_q is None:
            self._sub_q = await self._channel.declare_queue(exclusive=True, auto_delete=True)
            await self._sub_q.consume(self._on_event, no_ack=True)
        await self._sub_q.bind(self._events_x, f"{topic}.#")  # type: ignore[arg-type]
        self._bound_topics.add(topic)

    async def _unbind_topic(self, topic: str) -> None:
        assert self._topology is not None
        async with self._topology:
            if self._sub_q is None or topic not in self._bound_topics:
                return
            await self._sub_q.unbind(self._events_x, f"{topic}.#")  # type: ignore[arg-type]
            self._bound_topics.discard(topic)

    async def _bind_method(self, method: str) -> None:
        assert self._topology is not None
        async with self._topology:
            await self._bind_method_locked(method)

    async def _bind_method_locked(self, method: str) -> None:
        if self._channel is None or method in self._bound_methods:
            return
        if self._rpc_q is None:
            # durable + auto-delete: RabbitMQ 4 refuses transient shared queues
            self._rpc_q = await self._channel.declare_queue(
                f"{self.prefix}.rpc.servers", durable=True, auto_delete=True)
            await self._rpc_q.consume(self._on_request)
        await self._rpc_q.bind(self._rpc_x, method)  # type: ignore[arg-type]
        self._bound_methods.add(method)

    # -- events -------------------------------------------------------------------------

    def _queue_event(self, topic: str, body: bytes, key: str) -> None:
        if len(self._outbox) == self._outbox.maxlen:
            log.warning("bus %s: %d events waiting for the broker; dropping the oldest",
                        self.name, len(self._outbox))
        self._outbox.append((topic, body, key))
        if self._outbox_ready is not None:
            self._outbox_ready.set()

    async def _send_events(self) -> None:
        """Send queued events in order while connected; on failure keep them for later."""
        assert self._outbox_ready is not None
        while True:
            await self._outbox_ready.wait()
            self._outbox_ready.clear()
            while self._outbox and self._events_x is not None:
                topic, body, key = self._outbox[0]
                message = aio_pika.Message(body, content_type=JSON, headers={"topic": topic},
                                           delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
                try:
                    await self._events_x.publish(message, key, mandatory=False, timeout=10)
                except Exception as exc:  # the reconnect sets _outbox_ready again
                    log.debug("bus %s: event not sent yet: %s", self.name, exc)
                    break
                self._outbox.popleft()

    async def _on_event(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        topic = str((incoming.headers or {}).get("topic", ""))
        try:
            message = from_wire(orjson.loads(incoming.body))
        except (MessageError, orjson.JSONDecodeError) as exc:
            log.warning("bus %s: dropping an event on %s this side cannot read: %s",
                        self.name, topic, exc)
            return
        with self._lock:
            handlers = list(self._subscribers.get(topic, ()))
        for handler in handlers:
            try:
                handler(message)
            except Exception:  # one subscriber's bug never reaches the others
                log.exception("subscriber of %s failed on %s", topic, message.TYPE)

    # -- calls --------------------------------------------------------------------------

    async def _call(self, method: str, body: bytes, timeout: float) -> tuple[dict, bytes]:
        if self._rpc_x is None or self._reply_q is None:
            raise BusUnavailable("not connected to the message broker")
        ident = uuid.uuid4().hex
        future: asyncio.Future[tuple[dict, bytes]] = self._loop.create_future()
        self._pending[ident] = future
        request = aio_pika.Message(
            body, content_type=JSON, correlation_id=ident, reply_to=self._reply_q.name,
            expiration=timeout, type=method, app_id=self.name,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
        try:
            try:
                await self._rpc_x.publish(request, method, mandatory=True, timeout=timeout)
            except amqp_errors.PublishError:
                raise BusUnavailable(f"no server answers {method!r} now") from None
            except (TimeoutError, *amqp_errors.CONNECTION_EXCEPTIONS) as exc:
                raise BusUnavailable(f"cannot send {method!r}: {exc!r}") from None
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise BusUnavailable(f"no answer to {method!r} within {timeout:g}s") from None
        finally:
            self._pending.pop(ident, None)

    async def _on_reply(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        future = self._pending.pop(incoming.correlation_id or "", None)
        if future is not None and not future.done():
            future.set_result((dict(incoming.headers or {}), incoming.body))

    async def _on_request(self, incoming: aio_pika.abc.AbstractIncomingMessage) -> None:
        method = incoming.routing_key or ""
        executor = self._executor
        assert executor is not None
        headers, body = await self._loop.run_in_executor(
            executor, self._handle, method, incoming.body)
        try:
            if incoming.reply_to and self._channel is not None:
                reply = aio_pika.Message(body, content_type=JSON, headers=headers,
                                         correlation_id=incoming.correlation_id,
                                         delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT)
                # the caller may be gone meanwhile: its reply queue with it, never mind
                await self._channel.default_exchange.publish(reply, incoming.reply_to,
                                                             mandatory=False, timeout=10)
            await incoming.ack()
        except Exception as exc:  # the connection went: the request is redelivered
            log.debug("bus %s: no reply to %s sent: %s", self.name, method, exc)

    def _handle(self, method: str, body: bytes) -> tuple[dict[str, str], bytes]:
        """Run the handler (in a worker thread: it does database work)."""
        with self._lock:
            handler = self._handlers.get(method)
        try:
            if handler is None:
                raise BusError(f"this server does not serve {method!r}")
            request = from_wire(orjson.loads(body))
            reply = handler(request)
            return {}, orjson.dumps(self.encode(reply))
        except (BusError, MessageError, orjson.JSONDecodeError) as exc:
            log.warning("bus %s: %s refused: %s", self.name, method, exc)
            return {"x-error": str(exc) or type(exc).__name__}, b"{}"
        except Exception as exc:
            log.exception("bus %s: %s failed", self.name, method)
            return {"x-error": f"{type(exc).__name__}: {exc}"}, b"{}"
