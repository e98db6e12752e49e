"""Assembling a running server: settings -> database -> services -> ASGI app."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from neutrino import config
from neutrino.api.app import create_app
from neutrino.api.auth import Authenticator, EmbeddedKeystone, ExternalKeystone, NoAuth
from neutrino.bus import Bus, connect
from neutrino.config import Settings
from neutrino.db import migrate
from neutrino.db.engine import Database
from neutrino.rpc.handlers import AgentServer
from neutrino.rpc.publisher import Publisher
from neutrino.services import Services

log = logging.getLogger(__name__)


def build(settings: Settings, *, upgrade: bool = True, migrate_in_child: bool = False,
          bus: Bus | None = None) -> tuple[Starlette, Database]:
    """The ASGI app for ``settings``, with the database brought to the current schema.

    ``migrate_in_child`` keeps Alembic out of this (serving) process: see
    :mod:`neutrino.db.migrate`.
    """
    if not settings.database_url:
        prepare_data_dir(settings)
    db = Database(settings.db_url)
    if upgrade:
        migrate.upgrade(db.engine, in_child=migrate_in_child)
    elif migrate.current_revision(db.engine) != migrate.head_revision():
        raise SystemExit("the database schema is not current: run `neutrino db-upgrade`")
    auth, extra_routes = authentication(settings, db)
    services = Services(settings)
    services.attach(db)
    app = create_app(services, db, auth, extra_routes)
    # agents reach the server through the bus (app.state.bus), never the database
    app.state.services = services
    app.state.bus = bus if bus is not None else connect(
        settings.bus_url, prefix=settings.bus_prefix,
        name=f"neutrino-server@{socket.gethostname()}")
    app.state.agent_server = AgentServer(app.state.bus, services, db)
    # the outbox's events go out while this process serves (each worker has its own);
    # it starts with a sweep of what an earlier run left
    publisher = app.state.publisher = Publisher(app.state.bus, db)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        publisher.start()
        try:
            yield
        finally:
            publisher.stop()

    app.router.lifespan_context = lifespan
    return app, db


def prepare_data_dir(settings: Settings) -> Path:
    """The data directory, made (or, made by an older version, tightened) to 0700: it
    holds the SQLite database and the admin's credentials."""
    path = settings.data_dir
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.chmod(path, 0o700)
    except PermissionError as err:
        log.warning("cannot make the data directory %s private: %s", path, err)
    return path


def authentication(settings: Settings, db: Database) -> tuple[Authenticator, list[BaseRoute]]:
    """The authenticator for ``settings.auth``, and the identity API it brings (if any)."""
    if settings.auth == "noauth":
        return NoAuth(), []
    if settings.auth == "embedded":
        # imported here: a noauth or external-Keystone server never carries them
        from neutrino.identity.api import IdentityApi
        from neutrino.identity.store import Identity, Security

        identity = Identity(settings.token_ttl, Security.from_settings(settings))
        auth = EmbeddedKeystone(identity, db, settings.token_cache_seconds)
        return auth, IdentityApi(identity, db, on_change=auth.cache.clear).routes()
    if settings.auth == "keystone":
        if not settings.keystone_url:
            raise SystemExit("auth = keystone needs keystone_url (and keystone_password)")
        return ExternalKeystone(
            settings.keystone_url, settings.keystone_username, settings.keystone_password,
            settings.keystone_project, settings.keystone_user_domain,
            settings.keystone_project_domain, settings.token_cache_seconds), []
    raise SystemExit(f"unknown auth mode {settings.auth!r}: use noauth, embedded or keystone")


def app_from_environment() -> Starlette:
    """Factory for multi-worker ``serve``: each worker builds its own app.

    The parent process has already migrated the database.
    """
    path = os.environ.get("NEUTRINO_CONFIG")
    settings = config.load(Path(path) if path else None)
    app, _ = build(settings, upgrade=False)
    return app
