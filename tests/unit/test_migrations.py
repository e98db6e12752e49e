"""The migrations build exactly the schema that neutrino.db.tables declares."""

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from neutrino.db import migrate
from neutrino.db.engine import create_engine
from neutrino.db.tables import metadata


def test_migrated_schema_matches_declared_tables(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    migrate.upgrade(engine)
    assert migrate.current_revision(engine) == migrate.head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []
    # a second upgrade is a no-op
    migrate.upgrade(engine)
    assert set(sa.inspect(engine).get_table_names()) >= {"networks", "ports", "ip_allocations"}
    engine.dispose()
