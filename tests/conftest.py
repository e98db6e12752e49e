"""Shared fixtures: real servers on real databases.

``server`` is a real uvicorn HTTP server (in a thread of the test process)
on a fresh database.  It is parametrised over the backends, so every API test
runs on SQLite, PostgreSQL and MariaDB; a backend that is not reachable skips
with the reason.  Admin URLs of the database services can be set with
``NEUTRINO_TEST_PG_URL`` and ``NEUTRINO_TEST_MYSQL_URL``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
import uvicorn
from starlette.types import ASGIApp

from neutrino import config
from neutrino.server import build

PG_ADMIN = os.environ.get("NEUTRINO_TEST_PG_URL",
                          "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("NEUTRINO_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/")
BACKENDS = ("sqlite", "postgresql", "mariadb")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reachable(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    return None


@pytest.fixture(scope="session")
def database_factory(tmp_path_factory: pytest.TempPathFactory):
    """Make fresh databases on a backend; drop them all at the end of the session."""
    made: list[tuple[str, str]] = []

    def make(backend: str) -> str:
        name = f"neutrino_t_{uuid.uuid4().hex[:10]}"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'neutrino.sqlite'}"
        admin = PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN
        why = _reachable(admin)
        if why:
            pytest.skip(f"{backend} not reachable at {admin.split('@')[-1]}: {why}")
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
            else:
                conn.execute(sa.text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 "
                                     f"COLLATE utf8mb4_bin"))
        engine.dispose()
        made.append((backend, name))
        base = admin.rsplit("/", 1)[0]
        return f"{base}/{name}" + ("?charset=utf8mb4" if backend == "mariadb" else "")

    yield make
    for backend, name in made:
        admin = PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


def wait_for(cond: Callable[[], object], timeout: float = 15.0, what: str = "",
             interval: float = 0.05) -> Any:
    """Poll ``cond`` until it returns something true, and return that; AssertionError
    (naming ``what``) once ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while not (value := cond()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or cond}")
        time.sleep(interval)
    return value


class Server:
    """A real Neutrino HTTP server on a free loopback port, in a thread."""

    def __init__(self, settings: config.Settings,
                 wrap: Callable[[ASGIApp], ASGIApp] | None = None) -> None:
        self.settings = settings
        app, self.db = build(settings)
        if wrap is not None:  # e.g. a middleware that counts what clients asked
            app = wrap(app)
        # h11 here (``serve`` runs httptools), with the HTTP layer's refusals in the envelope
        cfg = uvicorn.Config(app, host=settings.host, port=settings.port, loop="asyncio",
                             http="neutrino.api.http:H11Envelope",
                             h11_max_incomplete_event_size=settings.max_header_size,
                             log_level="warning", access_log=False)
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        self.url = f"http://{settings.host}:{settings.port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self.db.dispose()


def start_server(tmp: Path, database_url: str, *,
                 wrap: Callable[[ASGIApp], ASGIApp] | None = None,
                 **overrides: object) -> Server:
    # API tests speak noauth (identity headers) unless they ask for more
    overrides.setdefault("auth", "noauth")
    settings = config.load(None, host="127.0.0.1", port=free_port(), data_dir=tmp,
                           database_url=database_url, **overrides)
    return Server(settings, wrap)


class Client:
    """requests against one server, as one identity (noauth headers)."""

    def __init__(self, url: str, project: str | None = None, roles: str = "member") -> None:
        self.base = url
        self.session = requests.Session()
        if project is not None:
            self.session.headers.update({"X-Project-Id": project, "X-Roles": roles})

    def request(self, method: str, path: str, **kw: object) -> requests.Response:
        return self.session.request(method, f"{self.base}/v2.0{path}", timeout=30, **kw)

    def get(self, path: str, **kw: object) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: object = None, **kw: object) -> requests.Response:
        return self.request("POST", path, json=body, **kw)

    def put(self, path: str, body: object = None, **kw: object) -> requests.Response:
        return self.request("PUT", path, json=body, **kw)

    def delete(self, path: str, **kw: object) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def create(self, collection: str, **attrs: object) -> dict:
        singular = collection[:-1].replace("-", "_")  # security-groups: security_group
        r = self.post(f"/{collection}", {singular: attrs})
        assert r.status_code == 201, r.text
        return r.json()[singular]

    def network_with_subnet(self, cidr: str = "10.0.0.0/24", **subnet: object) \
            -> tuple[dict, dict]:
        net = self.create("networks", name="net")
        version = 6 if ":" in cidr else 4
        sub = self.create("subnets", network_id=net["id"], cidr=cidr, ip_version=version,
                          **subnet)
        return net, sub


def assert_error(r: requests.Response, status: int, type_: str | None = None,
                 contains: str | None = None) -> dict:
    assert r.status_code == status, f"{r.status_code} {r.text}"
    err = r.json()["NeutronError"]
    assert set(err) == {"type", "message", "detail"}
    assert err["message"], "an error must say what is wrong"
    if type_ is not None:
        assert err["type"] == type_, err
    if contains is not None:
        assert contains in err["message"], err
    return err


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, database_factory,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    url = database_factory(request.param)
    srv = start_server(tmp_path_factory.mktemp("srv"), url)
    yield srv
    srv.stop()


@pytest.fixture
def admin(server: Server) -> Client:
    return Client(server.url)


@pytest.fixture
def project_client(server: Server):
    """Clients for fresh member projects: ``project_client()`` -> Client."""
    def make(roles: str = "member") -> Client:
        return Client(server.url, project=f"p-{uuid.uuid4().hex[:8]}", roles=roles)
    return make
