"""RabbitMQ for the tests: is it there, a fresh name prefix per test, cleanup, and a
TCP proxy to cut a connection without touching the broker (no restart: other tests
and programs may use it).

The broker's URL can be set with ``NEUTRINO_TEST_AMQP_URL``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
import uuid

import aio_pika
import pytest
from yarl import URL

AMQP_URL = os.environ.get("NEUTRINO_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def unreachable(url: str = AMQP_URL) -> str | None:
    """Why the broker cannot be used, or None."""
    async def probe() -> None:
        conn = await aio_pika.connect(url, timeout=3)
        await conn.close()
    try:
        asyncio.run(probe())
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:100] if str(exc) else ''}"
    return None


def need_broker() -> None:
    why = unreachable()
    if why:
        pytest.skip(f"RabbitMQ not reachable at {URL(AMQP_URL).host}:{URL(AMQP_URL).port}: {why}")


def new_prefix() -> str:
    return f"nt-test-{uuid.uuid4().hex[:10]}"


def delete_topology(prefix: str, url: str = AMQP_URL) -> None:
    """Remove the exchanges (and a left-over server queue) a test's buses declared."""
    async def delete() -> None:
        conn = await aio_pika.connect(url, timeout=5)
        try:
            for kind, name in (("queue", f"{prefix}.rpc.servers"),
                               ("queue", f"{prefix}.rpc.server"),  # older servers'
                               ("exchange", f"{prefix}.rpc"), ("exchange", f"{prefix}.events")):
                channel = await conn.channel()  # a failed delete closes its channel
                try:
                    if kind == "queue":
                        await channel.queue_delete(name)
                    else:
                        await channel.exchange_delete(name)
                except Exception:
                    pass
        finally:
            await conn.close()
    asyncio.run(delete())


class Proxy:
    """A TCP proxy to the broker on a loopback port.  ``cut()`` drops every connection
    through it and refuses new ones (the broker "goes away" for its clients only);
    ``restore()`` lets them connect again."""

    def __init__(self, url: str = AMQP_URL) -> None:
        target = URL(url)
        self.target = (target.host or "127.0.0.1", target.port or 5672)
        self._lock = threading.Lock()
        self._socks: list[socket.socket] = []
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.url = str(target.with_host("127.0.0.1").with_port(self.port))
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(16)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            socks, self._socks = self._socks, []
        if listener is not None:
            listener.close()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    close = cut

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._socks += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
