"""Connections and transactions.

One operation is one transaction: services receive a connection that is
already inside it, and either everything they wrote commits or nothing does.
:meth:`Database.write` retries the whole operation when it lost a race that a
second attempt can win (a random MAC drawn twice, a deadlock), so concurrency
never surfaces as a 500.

SQLite runs in WAL mode with foreign keys on.  Writers take ``BEGIN
IMMEDIATE`` under an in-process lock, so concurrent requests queue on the lock
instead of spinning in SQLite's busy handler; readers never block.
PostgreSQL and MariaDB run at READ COMMITTED and serialise the contended
sections with ``SELECT ... FOR UPDATE`` (see :func:`lock_rows`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import orjson
import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.dialects import mysql, postgresql
from sqlalchemy.engine import Connection, Engine

from neutrino import errors

log = logging.getLogger(__name__)
T = TypeVar("T")

MAX_ATTEMPTS = 12


def _json_dumps(value: object) -> str:
    return orjson.dumps(value).decode()


def create_engine(url: str) -> Engine:
    kwargs: dict = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        engine = sa.create_engine(url, **kwargs)
        _configure_sqlite(engine, sqlite_file(url))
        return engine
    if url.startswith("postgresql") and "+" not in url.split("://", 1)[0]:
        url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    if url.startswith("mysql") and "+" not in url.split("://", 1)[0]:
        url = url.replace("mysql://", "mysql+pymysql://", 1)
    if url.startswith("mariadb") and "+" not in url.split("://", 1)[0]:
        url = url.replace("mariadb://", "mysql+pymysql://", 1)
    return sa.create_engine(url, isolation_level="READ COMMITTED", pool_pre_ping=True,
                            pool_size=10, max_overflow=20, **kwargs)


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None: in memory)."""
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def secure_sqlite_file(path: Path) -> None:
    """The database and its -wal, -shm and -journal readable by their owner only: they
    hold every project's data and the password hashes.  SQLite makes the side files
    with the database's own mode, so they stay so once the database is."""
    if not path.parent.is_dir():
        return  # SQLite will say so
    # made 0600 before SQLite opens it, so it is never readable by others, even briefly
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for name in ("", "-wal", "-shm", "-journal"):
        try:
            os.chmod(path.with_name(path.name + name), 0o600)
        except FileNotFoundError:
            pass
        except PermissionError as err:  # not ours: say so, the owner must fix it
            log.warning("cannot make %s private: %s", path.name + name, err)


def _configure_sqlite(engine: Engine, path: Path | None) -> None:
    if path is not None:
        secure_sqlite_file(path)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
        # Let us issue BEGIN ourselves (pysqlite's implicit BEGIN is deferred).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()
        if path is not None:
            secure_sqlite_file(path)  # side files an older version left readable

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.info.get("immediate", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'neutrino.sqlite'}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        self.dialect = self.engine.dialect.name
        self.is_sqlite = self.dialect == "sqlite"
        self._write_lock = threading.Lock() if self.is_sqlite else None
        #: run operations on the caller's (event loop) thread instead of a worker thread:
        #: SQLite work is short, CPU-bound and its writers are serial anyway, so the thread
        #: hop only costs time and per-thread connections; PostgreSQL and MariaDB wait on
        #: the network and keep the threadpool
        self.inline = self.is_sqlite
        #: for :meth:`read_scalar`: autocommit, no ping, no reset on return (it connects
        #: only when first used); SQLite connections are in autocommit mode already
        self._single = self.engine if self.is_sqlite else sa.create_engine(
            self.engine.url, isolation_level="AUTOCOMMIT", pool_pre_ping=False,
            pool_reset_on_return=None, pool_size=2, max_overflow=8)
        self._compiled: dict[int, str] = {}

    def read_scalar(self, stmt: sa.Select) -> object:
        """The first column of the first row of ``stmt`` (a module-level constant, with
        its values bound in), read outside any transaction straight through the driver.

        For a lookup made on every request: it costs a tenth of a :meth:`run_read`
        on SQLite, and one round trip instead of four (ping, BEGIN, the statement,
        COMMIT) on PostgreSQL and MariaDB."""
        sql = self._compiled.get(id(stmt))
        if sql is None:
            sql = self._compiled[id(stmt)] = str(stmt.compile(
                self.engine, compile_kwargs={"literal_binds": True}))
        for attempt in (1, 2):
            raw = self._single.raw_connection()
            try:
                cur = raw.cursor()
                cur.execute(sql)
                row = cur.fetchone()
                cur.close()
                return row[0] if row else None
            except self._single.dialect.loaded_dbapi.Error:
                raw.invalidate()  # maybe a connection the server dropped: once more, anew
                if attempt == 2:
                    raise
            finally:
                raw.close()
        raise AssertionError("unreachable")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A consistent read-only view (one snapshot) for one request."""
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def run_read(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` in one read transaction."""
        with self.read() as conn:
            return operation(conn)

    @contextmanager
    def _write_once(self) -> Iterator[Connection]:
        if self._write_lock is None:
            with self.engine.connect() as conn, conn.begin():
                conn.info.pop(_BEFORE_COMMIT, None)  # one a non-write transaction left
                try:
                    yield conn
                    _run_before_commit(conn)
                finally:
                    conn.info.pop(_BEFORE_COMMIT, None)
            return
        with self._write_lock, self.engine.connect() as conn:
            conn.info["immediate"] = True
            conn.info.pop(_BEFORE_COMMIT, None)
            try:
                with conn.begin():
                    yield conn
                    _run_before_commit(conn)
            finally:
                conn.info["immediate"] = False
                conn.info.pop(_BEFORE_COMMIT, None)

    def write(self, operation: Callable[[Connection], T]) -> T:
        """Run ``operation`` in one write transaction, retrying lost races; then what it
        asked to run after the commit (:func:`after_commit`), once."""
        delay = 0.001
        for attempt in range(1, MAX_ATTEMPTS + 1):
            # an attempt's own list: what a rolled-back attempt registered never runs
            pending: list[Callable[[], None]] = []
            try:
                with self._write_once() as conn:
                    _AFTER_COMMIT[conn] = pending
                    try:
                        result = operation(conn)
                    finally:
                        _AFTER_COMMIT.pop(conn, None)
            except (errors.Retry, exc.IntegrityError, exc.OperationalError) as err:
                if isinstance(err, exc.OperationalError) and not _is_transient(err):
                    raise
                if attempt == MAX_ATTEMPTS:
                    if isinstance(err, exc.IntegrityError):
                        raise errors.Conflict(
                            "The request conflicts with a concurrent change; retry it."
                        ) from err
                    raise errors.Conflict("The database stayed busy; retry the request.") \
                        from err
                log.debug("retrying after %s (attempt %d)", type(err).__name__, attempt)
                time.sleep(delay)
                delay = min(delay * 2, 0.05)
                continue
            for call in pending:  # committed
                call()
            return result
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        self.engine.dispose()
        self._single.dispose()


#: what runs after the commit of each write transaction's connection (by the Connection
#: object, not its DBAPI connection: that one may be invalid after a failure)
_AFTER_COMMIT: weakref.WeakKeyDictionary[Connection, list[Callable[[], None]]] = \
    weakref.WeakKeyDictionary()


def after_commit(conn: Connection, call: Callable[[], None]) -> None:
    """Run ``call`` once the transaction ``conn`` is in (a :meth:`Database.write`) has
    committed; never if it rolls back, nor for an attempt that is retried.  Calls run
    in the order they were registered, on the writer's thread, before ``write``
    returns; each must handle its own errors (the change is committed whatever they do).
    """
    pending = _AFTER_COMMIT.get(conn)
    if pending is None:
        raise RuntimeError("after_commit outside a Database.write transaction")
    pending.append(call)


_BEFORE_COMMIT = "neutrino.before_commit"


F = TypeVar("F", bound=Callable[[Connection], None])


def before_commit(conn: Connection, key: str, fn: F) -> F:
    """Run ``fn`` as the last statement(s) of this write transaction (once per ``key``,
    in the order the keys were first given), after the operation itself.  For a hot row
    every writer updates (a counter): its lock is then held only for the commit, and no
    writer waits on another lock while holding it, so it cannot take part in a deadlock.
    Returns what runs for ``key``: ``fn``, or what was given for it first (so a caller
    can gather the transaction's work in one object, as the outbox does)."""
    return conn.info.setdefault(_BEFORE_COMMIT, {}).setdefault(key, fn)


def _run_before_commit(conn: Connection) -> None:
    # conn.info belongs to the pooled DBAPI connection: never left for the next checkout
    for fn in conn.info.pop(_BEFORE_COMMIT, {}).values():
        fn(conn)


_TRANSIENT = ("deadlock", "lock wait timeout", "could not serialize", "database is locked",
              "serialization failure", "try restarting transaction")


def _is_transient(err: exc.OperationalError) -> bool:
    text = str(err.orig).lower()
    return any(marker in text for marker in _TRANSIENT)


def lock_rows(conn: Connection, table: sa.Table, ids: list[str]) -> None:
    """Serialise writers touching these rows (no-op on SQLite: writers are serial)."""
    if conn.dialect.name == "sqlite" or not ids:
        return
    conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).with_for_update())


@functools.cache
def _select_key_for_update(table: sa.Table) -> sa.Select:
    (key,) = table.primary_key.columns
    return sa.select(key).where(key == sa.bindparam("key")).with_for_update()


def lock_key(conn: Connection, table: sa.Table, key: str) -> None:
    """Lock the row of ``table`` (one-column primary key) whose key is ``key``, making
    the row first if there is none; held until the transaction ends.

    The row, not a range: at READ COMMITTED neither backend locks gaps, so locking a
    key that is not there yet would lock nothing.  A missing row is made by an upsert
    that locks the row it meets (PostgreSQL ``ON CONFLICT DO UPDATE``, MariaDB ``ON
    DUPLICATE KEY UPDATE``): a plain ``INSERT IGNORE`` would take a shared lock there,
    and two transactions upgrading shared locks deadlock.  No-op on SQLite, whose
    writers are serial.
    """
    if conn.dialect.name == "sqlite":
        return
    if conn.execute(_select_key_for_update(table), {"key": key}).first() is not None:
        return
    (column,) = table.primary_key.columns
    if conn.dialect.name == "postgresql":
        stmt = postgresql.insert(table).values({column.name: key}).on_conflict_do_update(
            index_elements=[column], set_={column.name: key})
    else:
        stmt = mysql.insert(table).values({column.name: key}).on_duplicate_key_update(
            {column.name: key})
    conn.execute(stmt)
