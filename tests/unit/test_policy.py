"""The policy rules on their own: who sees which rows (the families' scopes, built from
neutrino.policy and its sharing SQL), who may write."""


import pytest
import sqlalchemy as sa

from neutrino import errors, policy
from neutrino.context import Context
from neutrino.db import migrate
from neutrino.db import tables as t
from neutrino.db.engine import create_engine
from neutrino.policy import sharing
from neutrino.services.l2 import networks, ports

A = Context(project_id="A", roles=frozenset({"member", "reader"}))
B = Context(project_id="B", roles=frozenset({"member", "reader"}))
READER = Context(project_id="A", roles=frozenset({"reader"}))
ADMIN = Context.admin("X")


def _net(ident: str, project: str, external: bool = False) -> dict:
    return {"id": ident, "project_id": project, "name": ident, "description": "",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "revision_number": 0, "admin_state_up": True, "status": "ACTIVE", "mtu": 1450,
            "router_external": external, "port_security_enabled": True,
            "availability_zone_hints": []}


def _port(ident: str, project: str, network: str) -> dict:
    return {"id": ident, "project_id": project, "name": ident, "description": "",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
            "revision_number": 0, "network_id": network, "mac_address": f"fa:16:3e:00:00:{ident}",
            "admin_state_up": True, "status": "DOWN", "device_id": "", "device_owner": "",
            "port_security_enabled": True, "binding_host_id": "", "binding_vnic_type": "normal",
            "binding_profile": {}, "binding_vif_type": "unbound", "binding_vif_details": {}}


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory):
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('p') / 'p.sqlite'}")
    migrate.upgrade(engine)
    with engine.begin() as c:
        c.execute(t.networks.insert(), [_net("a-own", "A"), _net("b-own", "B"),
                                        _net("b-shared", "B"), _net("b-shared-to-a", "B"),
                                        _net("ext", "X", external=True),
                                        _net("ext-to-a", "X", external=True)])
        c.execute(t.network_rbacs.insert(), [
            {"id": "r1", "object_id": "b-shared", "project_id": "B", "target_project": "*",
             "action": sharing.SHARED},
            {"id": "r2", "object_id": "b-shared-to-a", "project_id": "B",
             "target_project": "A", "action": sharing.SHARED},
            # external networks are visible by their access_as_external policies
            {"id": "r3", "object_id": "ext", "project_id": "X", "target_project": "*",
             "action": sharing.EXTERNAL},
            {"id": "r4", "object_id": "ext-to-a", "project_id": "X", "target_project": "A",
             "action": sharing.EXTERNAL}])
        c.execute(t.ports.insert(), [_port("01", "A", "a-own"), _port("02", "B", "b-own"),
                                     _port("03", "B", "a-own"), _port("04", "A", "b-shared")])
    with engine.connect() as c:
        yield c
    engine.dispose()


def visible(conn: sa.Connection, table: sa.Table, clause: object) -> set[str]:
    stmt = sa.select(table.c.id)
    if clause is not None:
        stmt = stmt.where(clause)
    return set(conn.scalars(stmt))


def test_networks_visible_to_a_project(conn: sa.Connection) -> None:
    assert visible(conn, t.networks, networks.scope(A)) == {
        "a-own", "b-shared", "b-shared-to-a", "ext", "ext-to-a"}
    assert visible(conn, t.networks, networks.scope(B)) == {
        "b-own", "b-shared", "b-shared-to-a", "ext"}
    assert networks.scope(ADMIN) is None  # everything


def test_ports_visible_to_owner_and_network_owner(conn: sa.Connection) -> None:
    # A owns port 01 and 04, and network a-own which carries B's port 03
    assert visible(conn, t.ports, ports.scope(A)) == {"01", "03", "04"}
    # B owns 02 and 03, and network b-shared which carries A's port 04
    assert visible(conn, t.ports, ports.scope(B)) == {"02", "03", "04"}
    assert visible(conn, t.ports, ports.scope(Context(project_id="C"))) == set()


def test_readers_may_not_write() -> None:
    policy.check_write(A, "create_network")
    with pytest.raises(errors.PolicyNotAuthorized):
        policy.check_write(READER, "create_network")


def test_only_admins_create_for_other_projects() -> None:
    assert policy.owner_for_create(A, {}, "create_network") == "A"
    assert policy.owner_for_create(A, {"project_id": "A"}, "create_network") == "A"
    # upstream answers 400, not 403, to a member naming another project
    with pytest.raises(errors.BadRequest, match="Specifying 'project_id' other than"):
        policy.owner_for_create(A, {"tenant_id": "B"}, "create_network")
    assert policy.owner_for_create(ADMIN, {"project_id": "B"}, "create_network") == "B"
    with pytest.raises(errors.BadRequest):
        policy.owner_for_create(ADMIN, {"project_id": "B", "tenant_id": "C"}, "x")


def test_changes_are_for_owners() -> None:
    policy.check_owner(A, "A", "update_network")
    policy.check_owner(ADMIN, "A", "update_network")
    with pytest.raises(errors.PolicyNotAuthorized):
        policy.check_owner(B, "A", "update_network")
