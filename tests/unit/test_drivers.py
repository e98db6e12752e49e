"""The driver seams on their own: type drivers loaded by name (one per network type),
the configuration checked at start, and Database.write's after-commit calls (what
postcommit stands on) on a real SQLite database."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from neutrino import config, errors
from neutrino.db.engine import Database, after_commit
from neutrino.drivers.types import SegmentRequest
from neutrino.drivers.types.manager import TypeDrivers
from neutrino.drivers.types.segments import Segment
from neutrino.services import Services


class Local:
    """A type driver of one's own (upstream's ``local``): loaded by name."""

    network_type = "local"

    def __init__(self, settings: config.Settings) -> None:
        self.mtu = settings.physical_mtu

    def validate(self, request: SegmentRequest) -> None:
        if request.physical_network is not None or request.segmentation_id is not None:
            raise errors.InvalidInput("a local network has no physical network nor id.")

    def reserve(self, conn: Connection, network_id: str, request: SegmentRequest) -> Segment:
        raise AssertionError("not reached in these tests")

    def release(self, conn: Connection, network_id: str, segment: Segment) -> None:
        raise AssertionError("not reached in these tests")

    def max_mtu(self) -> int:
        return self.mtu


def test_type_drivers_by_network_type() -> None:
    drivers = TypeDrivers(config.load(None))
    assert set(drivers.drivers) == {"flat", "vlan", "vxlan", "geneve"}
    assert (drivers.max_mtu("vxlan"), drivers.max_mtu("geneve"), drivers.max_mtu("vlan"),
            drivers.max_mtu("flat")) == (1450, 1442, 1500, 1500)
    with pytest.raises(errors.InvalidInput, match="network_type value 'gre' not supported"):
        drivers.max_mtu("gre")


def test_only_the_configured_types_exist() -> None:
    drivers = TypeDrivers(config.load(None, type_drivers="vxlan,flat"))
    assert set(drivers.drivers) == {"vxlan", "flat"}
    # refused before anything is written (no connection needed)
    with pytest.raises(errors.InvalidInput, match="network_type value 'vlan' not supported"):
        drivers.allocate(None, "n", {"provider:network_type": "vlan"})  # type: ignore[arg-type]


def test_a_type_driver_of_ones_own_is_loaded_by_name() -> None:
    settings = config.load(None, type_drivers=("vxlan", "tests.unit.test_drivers:Local"),
                           physical_mtu=9000)
    drivers = TypeDrivers(settings)
    assert isinstance(drivers.driver("local"), Local) and drivers.max_mtu("local") == 9000
    with pytest.raises(errors.InvalidInput, match="no physical network"):
        drivers.allocate(None, "n", {"provider:network_type": "local",  # type: ignore[arg-type]
                                     "provider:segmentation_id": 7})


@pytest.mark.parametrize(("overrides", "message"), [
    ({"type_drivers": ("flat", "gre")}, "unknown type driver 'gre'"),
    ({"type_drivers": ("flat",)}, "tenant_network_type 'vxlan' has no type driver"),
    ({"mechanism_drivers": ("ovs",)}, "unknown mechanism driver 'ovs'"),
    ({"mechanism_drivers": ("tests.unit.nowhere:Driver",)}, "cannot be loaded"),
    ({"mechanism_drivers": ()}, "mechanism_drivers is empty"),
])
def test_bad_driver_configuration_stops_the_start(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Services(config.load(None, **overrides))


@pytest.fixture
def db(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'a.sqlite'}")
    database.write(lambda conn: conn.exec_driver_sql("CREATE TABLE things (id TEXT PRIMARY KEY)"))
    yield database
    database.dispose()


def _count(db: Database) -> int:
    """What another connection sees (committed rows only)."""
    with db.engine.connect() as conn:
        return conn.scalar(sa.text("SELECT count(*) FROM things")) or 0


def test_after_commit_runs_once_committed(db: Database) -> None:
    seen: list[tuple[str, int]] = []

    def op(conn: Connection) -> str:
        conn.exec_driver_sql("INSERT INTO things VALUES ('a')")
        after_commit(conn, lambda: seen.append(("first", _count(db))))
        after_commit(conn, lambda: seen.append(("second", _count(db))))
        seen.append(("inside", _count(db)))
        return "done"

    assert db.write(op) == "done"
    assert seen == [("inside", 0), ("first", 1), ("second", 1)]


def test_after_commit_never_runs_for_a_rollback(db: Database) -> None:
    ran: list[str] = []

    def op(conn: Connection) -> None:
        conn.exec_driver_sql("INSERT INTO things VALUES ('b')")
        after_commit(conn, lambda: ran.append("b"))
        raise errors.Conflict("refused")

    with pytest.raises(errors.Conflict):
        db.write(op)
    assert ran == [] and _count(db) == 0


def test_after_commit_of_a_retried_attempt_does_not_run(db: Database) -> None:
    """A lost race is retried whole: only the attempt that committed has its calls run."""
    ran: list[int] = []
    attempts = iter(range(1, 10))

    def op(conn: Connection) -> None:
        attempt = next(attempts)
        conn.exec_driver_sql(f"INSERT INTO things VALUES ('c{attempt}')")
        after_commit(conn, lambda: ran.append(attempt))
        if attempt == 1:
            raise errors.Retry()

    db.write(op)
    assert ran == [2] and _count(db) == 1


def test_after_commit_needs_a_write_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError, match=r"outside a Database\.write"):
        db.run_read(lambda conn: after_commit(conn, lambda: None))
