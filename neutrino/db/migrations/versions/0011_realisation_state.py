"""realisation state in the database: what hosts realised, and the bus generation

Revision ID: 0011
Revises: 0010

Until now each server process kept in memory which component on which host realised
which port (and at which revision), and counted generations from its clock: another
server or worker, or the same one restarted, knew nothing of it.

- ``port_realisations``, ``router_realisations``, ``floatingip_realisations``: one row
  per object, component and host, as last reported (revision, state, when); removed
  with their object;
- ``port_status_writes``: the revision a port's own status write made and the
  revision its hosts had to realise then (a status write asks nothing new of them);
- ``bus_generation``: one row, the generation of the desired state.  It starts from
  the clock in milliseconds, as the in-memory counter did, so generations keep growing
  for agents that saw the old ones.
"""

import time

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _realisations(name: str, target: str, key: str, state: sa.Column) -> None:
    op.create_table(
        name,
        sa.Column(key, sa.String(length=36), nullable=False),
        sa.Column("component", sa.String(length=16), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        state,
        sa.Column("updated_at", sa.String(length=20), nullable=False),
        sa.ForeignKeyConstraint([key], [f"{target}.id"],
                                name=op.f(f"fk_{name}_{key}_{target}"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint(key, "component", "host", name=op.f(f"pk_{name}")),
    )


def upgrade() -> None:
    _realisations("port_realisations", "ports", "port_id",
                  sa.Column("up", sa.Boolean(), nullable=False))
    _realisations("router_realisations", "routers", "router_id",
                  sa.Column("status", sa.String(length=16), nullable=False))
    _realisations("floatingip_realisations", "floatingips", "floatingip_id",
                  sa.Column("status", sa.String(length=16), nullable=False))
    op.create_table(
        "port_status_writes",
        sa.Column("port_id", sa.String(length=36), nullable=False),
        sa.Column("written_revision", sa.BigInteger(), nullable=False),
        sa.Column("desired_revision", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["port_id"], ["ports.id"],
                                name=op.f("fk_port_status_writes_port_id_ports"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("port_id", name=op.f("pk_port_status_writes")),
    )
    generation = op.create_table(
        "bus_generation",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bus_generation")),
    )
    op.bulk_insert(generation, [{"id": 1, "generation": int(time.time() * 1000)}])
