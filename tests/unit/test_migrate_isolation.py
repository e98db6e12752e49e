"""The serving process never imports Alembic; the cheap revision checks agree with it."""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from neutrino.db import migrate
from neutrino.db.engine import create_engine


def test_head_revision_read_from_files_is_alembics_head() -> None:
    assert migrate.head_revision() == ScriptDirectory.from_config(
        migrate._config()).get_current_head()


def test_current_revision(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        assert migrate.current_revision(engine) is None
        migrate.upgrade(engine)
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_upgrade_in_child_keeps_alembic_out_of_this_process(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite'}"
    code = (
        "import sys\n"
        "import neutrino.cli.main, neutrino.server\n"
        "from neutrino.db import migrate\n"
        "from neutrino.db.engine import create_engine\n"
        f"engine = create_engine({url!r})\n"
        "migrate.upgrade(engine, in_child=True)\n"
        "assert migrate.current_revision(engine) == migrate.head_revision()\n"
        "migrate.upgrade(engine, in_child=True)  # current: no child at all\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('alembic', 'mako'))\n"
        "assert not loaded, loaded\n"
        "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
    engine = create_engine(url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision()
    finally:
        engine.dispose()


def test_failed_child_migration_stops_the_command(tmp_path: Path) -> None:
    # a directory where the database file should be: SQLite cannot open it
    bad = tmp_path / "db"
    bad.mkdir()
    with pytest.raises(SystemExit, match="migrating the database failed"):
        migrate._upgrade_in_child(f"sqlite:///{bad}")
