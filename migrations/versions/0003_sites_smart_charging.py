"""Sites and smart charging: the sites table with a default site, stations assigned to sites with their
smart-charging capabilities, what a session needs (set through the API), and the scheduling cycles.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 02:03:06.517364
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    sites = op.create_table(
        "sites",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("limit_kw", sa.Float(), nullable=True),
        sa.Column("limit_schedule", sa.JSON(), nullable=False),
        sa.Column("phase_limits_a", sa.JSON(), nullable=False),
        sa.Column("prices", sa.JSON(), nullable=False),
        sa.Column("voltage_v", sa.Float(), nullable=False),
        sa.Column("min_current_a", sa.Float(), nullable=False),
        sa.Column("default_dwell_s", sa.Integer(), nullable=False),
        sa.Column("default_energy_kwh", sa.Float(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("horizon_s", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sites")),
    )
    # The default site: every station not assigned elsewhere belongs to it. No limit until an operator
    # gives one (serve --site-limit-kw, the config file, or the API).
    now = datetime.now(UTC)
    op.bulk_insert(
        sites,
        [
            {
                "id": "default",
                "name": "Default site",
                "limit_kw": None,
                "limit_schedule": [],
                "phase_limits_a": {},
                "prices": [],
                "voltage_v": 230.0,
                "min_current_a": 6.0,
                "default_dwell_s": 8 * 3600,
                "default_energy_kwh": 20.0,
                "algorithm": "lp",
                "resolution_s": 900,
                "horizon_s": 24 * 3600,
                "created_at": now,
                "updated_at": now,
            }
        ],
    )
    op.create_table(
        "scheduling_cycles",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("site_id", sa.String(length=48), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("solve_s", sa.Float(), nullable=True),
        sa.Column("cycle_s", sa.Float(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("evs", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["site_id"], ["sites.id"], name=op.f("fk_scheduling_cycles_site_id_sites"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduling_cycles")),
    )
    op.create_index(
        op.f("ix_scheduling_cycles_site_id_started_at"), "scheduling_cycles", ["site_id", "started_at"], unique=False
    )

    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site_id", sa.String(length=48), nullable=True))
        batch_op.add_column(sa.Column("capabilities", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("smart_charging_note", sa.String(length=255), nullable=True))
        batch_op.create_index(batch_op.f("ix_stations_site_id"), ["site_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_stations_site_id_sites"), "sites", ["site_id"], ["id"], ondelete="RESTRICT"
        )

    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("starts_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("energy_kwh", sa.Float(), nullable=True))

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("departure_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("energy_target_kwh", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("uncontrolled_reason", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reservations", schema=None) as batch_op:
        batch_op.drop_column("energy_kwh")
        batch_op.drop_column("starts_at")

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_column("uncontrolled_reason")
        batch_op.drop_column("energy_target_kwh")
        batch_op.drop_column("departure_at")

    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_stations_site_id_sites"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_stations_site_id"))
        batch_op.drop_column("smart_charging_note")
        batch_op.drop_column("capabilities")
        batch_op.drop_column("site_id")

    op.drop_index(op.f("ix_scheduling_cycles_site_id_started_at"), table_name="scheduling_cycles")

    op.drop_table("scheduling_cycles")
    op.drop_table("sites")
