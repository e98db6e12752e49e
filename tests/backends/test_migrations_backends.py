"""On every backend, the migrations build exactly the declared schema."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from neutrino.db import migrate
from neutrino.db.engine import create_engine
from neutrino.db.tables import metadata


@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_migrations_match_tables(backend: str, database_factory) -> None:
    engine = create_engine(database_factory(backend))
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert diff == []
    finally:
        engine.dispose()
