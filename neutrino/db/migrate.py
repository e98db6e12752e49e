"""Bring a database to the newest schema with Alembic (the only way tables are made).

Alembic (and the Mako, Pygments and autogenerate machinery it pulls in) costs a
serving process about 9 MB of RSS, so it is imported only when a migration
actually runs.  Checking whether one is due reads the revision files and the
``alembic_version`` table directly; ``upgrade(engine, in_child=True)`` runs the
migrations themselves in a short child process (``python -m neutrino.db.migrate``,
the database URL on stdin), which is what ``neutrino up`` and ``serve`` do.
"""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "alembic_version"


def _config() -> Config:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def _module_constants(path: Path) -> dict[str, object]:
    """The literal module-level assignments of a revision file (``revision = "0002"``)."""
    out: dict[str, object] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name):
            with contextlib.suppress(ValueError):
                out[target.id] = ast.literal_eval(value)
    return out


def head_revision() -> str:
    """The newest revision: the one no other revision file names as its parent."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        consts = _module_constants(path)
        revision, down = consts.get("revision"), consts.get("down_revision")
        if not isinstance(revision, str):
            continue
        revisions.add(revision)
        if isinstance(down, str):
            parents.add(down)
        elif isinstance(down, tuple | list):
            parents.update(d for d in down if isinstance(d, str))
    heads = revisions - parents
    if len(heads) != 1:
        raise RuntimeError(f"the migrations in {MIGRATIONS} have {len(heads)} heads, not one: "
                           f"{sorted(heads)}")
    return heads.pop()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (``None``: never migrated)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        versions = conn.scalars(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()
    if len(versions) > 1:
        raise RuntimeError(f"the database has several schema heads: {sorted(versions)}")
    return versions[0] if versions else None


def upgrade(engine: Engine, *, in_child: bool = False) -> None:
    """Apply every pending migration (a no-op when the schema is current).

    ``in_child`` runs Alembic in a child process so that this one never imports it.
    """
    if current_revision(engine) == head_revision():
        return
    if in_child:
        _upgrade_in_child(engine.url.render_as_string(hide_password=False))
        return
    from alembic import command

    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _upgrade_in_child(url: str) -> None:
    # the URL travels on stdin: it may hold a password, which argv would show to `ps`
    done = subprocess.run([sys.executable, "-m", "neutrino.db.migrate"], input=url,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"migrating the database failed (exit status {done.returncode}); "
                         f"the error is above")


def _main() -> int:
    import logging

    from neutrino.db.engine import create_engine

    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = create_engine(sys.stdin.read().strip())
    try:
        upgrade(engine)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
