"""Assembling a running server: settings -> database -> services -> ASGI app."""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette

from neutrino import config
from neutrino.api.app import create_app
from neutrino.config import Settings
from neutrino.db import migrate
from neutrino.db.engine import Database
from neutrino.services import Services


def build(settings: Settings, *, upgrade: bool = True) -> tuple[Starlette, Database]:
    """The ASGI app for ``settings``, with the database brought to the current schema."""
    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    if upgrade:
        migrate.upgrade(db.engine)
    elif migrate.current_revision(db.engine) != migrate.head_revision():
        raise SystemExit("the database schema is not current: run `neutrino db-upgrade`")
    return create_app(Services(settings), db), db


def app_from_environment() -> Starlette:
    """Factory for multi-worker ``serve``: each worker builds its own app.

    The parent process has already migrated the database.
    """
    path = os.environ.get("NEUTRINO_CONFIG")
    settings = config.load(Path(path) if path else None)
    app, _ = build(settings, upgrade=False)
    return app
