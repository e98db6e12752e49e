"""The outbox across processes: `neutrino serve` on PostgreSQL (and MariaDB), events to
an agent's subscription on RabbitMQ.

- A server killed (-9) between a commit and its publish loses no event: the next start
  publishes what it left, and the outbox drains.  The window cannot be hit reliably
  for real, so the fault is injected: ``NEUTRINO_FAULT_OUTBOX=hold`` (the publisher
  sends nothing, as if the process died right after its commits) and
  ``stall-after-claim`` (it claims rows, then hangs holding them until killed).
- Two publishers (two servers on one database) share the outbox: rows one of them
  holds are skipped by the other (SKIP LOCKED), not waited for, and taken once the
  holder is gone; under concurrent writes through both, every event reaches the agent
  once.  The guarantee is at-least-once: a crash after a publish and before its delete
  commits would send those rows again (agents take events as marks, so that is
  harmless), but two live publishers never send one row twice.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from neutrino.bus import messages as m
from neutrino.bus.amqp import AmqpBus
from neutrino.bus.core import CHANGES
from neutrino.db import tables as t
from neutrino.rpc.publisher import FAULT_ENV, SWEEP_INTERVAL
from tests.conftest import Client, free_port, wait_for
from tests.rabbit import AMQP_URL, delete_topology, need_broker, new_prefix

NEUTRINO = str(Path(sys.executable).with_name("neutrino"))


@dataclass
class Process:
    url: str
    proc: subprocess.Popen

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> str:
        """SIGTERM: a clean stop (exit 0); its output."""
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, out
        return out


@contextmanager
def running(tmp: Path, database_url: str, prefix: str,
            fault: str | None = None) -> Iterator[Process]:
    """``neutrino serve`` on ``database_url`` and the broker (bus prefix ``prefix``),
    with ``fault`` injected into its publisher; killed at the end if still running."""
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = tmp / "neutrino.toml"
    cfg.write_text(f'database_url = "{database_url}"\nport = {port}\nauth = "noauth"\n'
                   f'bus_url = "{AMQP_URL}"\nbus_prefix = "{prefix}"\n'
                   f'log_level = "warning"\n')
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault:
        env[FAULT_ENV] = fault
    log = (tmp / "serve.log").open("w")
    proc = subprocess.Popen([NEUTRINO, "serve", "--config", str(cfg)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(url + "/v2.0/networks", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert proc.poll() is None, (tmp / "serve.log").read_text()
            assert time.monotonic() < deadline, "serve did not answer"
            time.sleep(0.1)
        yield Process(url, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        log.close()


class Agent:
    """An agent's subscription to the change events (on RabbitMQ)."""

    def __init__(self, prefix: str) -> None:
        self.heard: list[m.Changed] = []
        self.bus = AmqpBus(AMQP_URL, prefix=prefix, name="test-agent")
        assert self.bus.wait_connected(10)
        self.bus.subscribe(CHANGES, self.heard.append)

    def about(self, kind: str, ident: str) -> list[m.Changed]:
        return [e for e in list(self.heard) if e.kind == kind and e.id == ident]


@pytest.fixture
def broker() -> Iterator[str]:
    need_broker()
    prefix = new_prefix()
    yield prefix
    delete_topology(prefix)


def outbox_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.select(sa.func.count()).select_from(t.outbox_events)) or 0)


def outbox_objects(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.scalars(sa.select(t.outbox_events.c.object_id)))


@pytest.mark.parametrize("fault", ["hold", "stall-after-claim"])
def test_a_crash_between_commit_and_publish_loses_nothing(
        fault: str, broker: str, database_factory, tmp_path: Path) -> None:
    url = database_factory("postgresql")
    engine = sa.create_engine(url)
    agent = Agent(broker)
    try:
        with running(tmp_path / "first", url, broker, fault) as first:
            net = Client(first.url).create("networks", name="committed, never sent")
            # committed (the client has its answer) and in the outbox, not on the bus
            assert net["id"] in outbox_objects(engine)
            time.sleep(SWEEP_INTERVAL * 1.5)  # a sweep came and went: still held
            assert agent.about("network", net["id"]) == []
            assert net["id"] in outbox_objects(engine)
            first.kill9()  # dies in the window
        assert net["id"] in outbox_objects(engine)  # the crash took nothing away
        with running(tmp_path / "again", url, broker) as again:
            # the start's sweep publishes what the dead one left, and the outbox drains
            wait_for(lambda: agent.about("network", net["id"]), 15, "the event after restart")
            wait_for(lambda: outbox_count(engine) == 0, 15, "the outbox to drain")
            assert agent.about("network", net["id"]) == [
                m.Changed("network", net["id"], net["id"])]
            # and it carries on as usual
            later = Client(again.url).create("networks", name="after")
            wait_for(lambda: agent.about("network", later["id"]), 15, "a later event")
            again.stop()
    finally:
        agent.bus.close()
        engine.dispose()


def test_a_publisher_holding_rows_does_not_hold_back_another(
        broker: str, database_factory, tmp_path: Path) -> None:
    """Server a's publisher claims a row and hangs holding it; server b goes on
    publishing its own (it skips a's), and takes a's row once a is killed."""
    url = database_factory("postgresql")
    engine = sa.create_engine(url)
    agent = Agent(broker)
    try:
        with running(tmp_path / "a", url, broker, "stall-after-claim") as a, \
                running(tmp_path / "b", url, broker) as b:
            held = Client(a.url).create("networks", name="held by a")
            time.sleep(0.5)  # a's publisher claimed it
            mine = Client(b.url).create("networks", name="b's own")
            wait_for(lambda: agent.about("network", mine["id"]), 10, "b's event")
            time.sleep(SWEEP_INTERVAL * 1.5)  # b swept meanwhile, and skipped a's row
            assert agent.about("network", held["id"]) == []
            a.kill9()  # its transaction (and lock) die with its connection
            wait_for(lambda: agent.about("network", held["id"]), 20, "a's row, through b")
            wait_for(lambda: outbox_count(engine) == 0, 15, "the outbox to drain")
            assert len(agent.about("network", held["id"])) == 1
            assert len(agent.about("network", mine["id"])) == 1
            b.stop()
    finally:
        agent.bus.close()
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_two_publishers_send_each_event_once(backend: str, broker: str, database_factory,
                                             tmp_path: Path) -> None:
    url = database_factory(backend)
    engine = sa.create_engine(url)
    agent = Agent(broker)
    try:
        with running(tmp_path / "a", url, broker) as a, running(tmp_path / "b", url, broker) as b:
            clients = [Client(a.url), Client(b.url)]

            def make(i: int) -> str:
                return str(clients[i % 2].create("networks", name=f"n{i}")["id"])

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                ids = list(pool.map(make, range(60)))
            wait_for(lambda: all(agent.about("network", i) for i in ids), 20,
                     "every network's event")
            wait_for(lambda: outbox_count(engine) == 0, 15, "the outbox to drain")
            time.sleep(SWEEP_INTERVAL * 1.5)  # sweeps of both came and went
            counts = Counter(e.id for e in list(agent.heard) if e.kind == "network")
            assert {i: counts[i] for i in ids} == dict.fromkeys(ids, 1)
            a.stop()
            b.stop()
    finally:
        agent.bus.close()
        engine.dispose()
