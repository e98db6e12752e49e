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


def test_subnet_positions_are_numbered_in_the_old_order(tmp_path: Path) -> None:
    """Subnets made before ``subnets.position`` get 1, 2, ... per network, in the order
    used until then (created_at, then id)."""
    from alembic import command

    path = migrate.MIGRATIONS / "versions" / "0008_subnet_position.py"
    before = migrate._module_constants(path)["down_revision"]
    engine = create_engine(f"sqlite:///{tmp_path / 'm.sqlite'}")
    cfg = migrate._config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, str(before))
    meta = sa.MetaData()
    with engine.begin() as conn:
        nets = sa.Table("networks", meta, autoload_with=conn)
        subnets = sa.Table("subnets", meta, autoload_with=conn)
        for net in ("n1", "n2"):
            conn.execute(nets.insert().values(
                id=net, project_id="p", name="", description="", created_at="t",
                updated_at="t", revision_number=0, admin_state_up=True, status="ACTIVE",
                mtu=1450, router_external=False, port_security_enabled=True,
                availability_zone_hints=[]))
        for ident, net, stamp in (("b", "n1", "2026-01-01T00:00:01Z"),
                                  ("c", "n1", "2026-01-01T00:00:00Z"),
                                  ("a", "n1", "2026-01-01T00:00:01Z"),
                                  ("z", "n2", "2026-01-01T00:00:05Z")):
            conn.execute(subnets.insert().values(
                id=ident, project_id="p", name="", description="", created_at=stamp,
                updated_at=stamp, revision_number=0, network_id=net, ip_version=4,
                cidr="10.0.0.0/24", gateway_ip=None, enable_dhcp=False, service_types=[]))
    migrate.upgrade(engine)
    with engine.connect() as conn:
        got = dict(conn.execute(sa.text("SELECT id, position FROM subnets")).all())
    assert got == {"c": 1, "a": 2, "b": 3, "z": 1}
    engine.dispose()
