"""OCPP 2.0.1 in the same model: transaction events, EV charging needs, device model, charging limits,
reported profiles, security and device events; 2.0.1 details on transactions and meter values.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:20:18.673419
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "charging_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("is_grid_critical", sa.Boolean(), nullable=True),
        sa.Column("schedules", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_charging_limits_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_limits")),
    )
    op.create_index(op.f("ix_charging_limits_station_id"), "charging_limits", ["station_id"], unique=False)

    op.create_table(
        "device_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("variable", sa.String(length=50), nullable=False),
        sa.Column("actual_value", sa.String(length=2500), nullable=False),
        sa.Column("event_notification_type", sa.String(length=32), nullable=False),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_device_events_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_events")),
    )
    op.create_index(
        op.f("ix_device_events_station_id_timestamp"), "device_events", ["station_id", "timestamp"], unique=False
    )

    op.create_table(
        "device_variables",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("component", sa.String(length=50), nullable=False),
        sa.Column("component_instance", sa.String(length=50), nullable=True),
        sa.Column("evse_id", sa.Integer(), nullable=True),
        sa.Column("connector_id", sa.Integer(), nullable=True),
        sa.Column("variable", sa.String(length=50), nullable=False),
        sa.Column("variable_instance", sa.String(length=50), nullable=True),
        sa.Column("attribute_type", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=2500), nullable=True),
        sa.Column("mutability", sa.String(length=10), nullable=True),
        sa.Column("persistent", sa.Boolean(), nullable=True),
        sa.Column("constant", sa.Boolean(), nullable=True),
        sa.Column("data_type", sa.String(length=20), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("min_limit", sa.Float(), nullable=True),
        sa.Column("max_limit", sa.Float(), nullable=True),
        sa.Column("values_list", sa.String(length=1000), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_device_variables_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_variables")),
    )
    op.create_index(op.f("ix_device_variables_station_id"), "device_variables", ["station_id"], unique=False)
    # One row per attribute: instances and EVSE/connector may be absent, so compare them coalesced.
    op.create_index(
        "uq_device_variables_attribute",
        "device_variables",
        [
            "station_id",
            "component",
            sa.text("coalesce(component_instance, '')"),
            sa.text("coalesce(evse_id, -1)"),
            sa.text("coalesce(connector_id, -1)"),
            "variable",
            sa.text("coalesce(variable_instance, '')"),
            "attribute_type",
        ],
        unique=True,
    )

    op.create_table(
        "reported_charging_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_reported_charging_profiles_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reported_charging_profiles")),
    )
    op.create_index(
        op.f("ix_reported_charging_profiles_station_id_request_id"),
        "reported_charging_profiles",
        ["station_id", "request_id"],
        unique=False,
    )

    op.create_table(
        "security_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("type", sa.String(length=50), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tech_info", sa.String(length=255), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_security_events_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_events")),
    )
    op.create_index(
        op.f("ix_security_events_station_id_timestamp"), "security_events", ["station_id", "timestamp"], unique=False
    )

    op.create_table(
        "ev_charging_needs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("requested_energy_transfer", sa.String(length=32), nullable=False),
        sa.Column("departure_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("energy_amount_wh", sa.Float(), nullable=True),
        sa.Column("ev_min_current_a", sa.Float(), nullable=True),
        sa.Column("ev_max_current_a", sa.Float(), nullable=True),
        sa.Column("ev_max_voltage_v", sa.Float(), nullable=True),
        sa.Column("ev_max_power_w", sa.Float(), nullable=True),
        sa.Column("state_of_charge", sa.Integer(), nullable=True),
        sa.Column("ev_energy_capacity_wh", sa.Float(), nullable=True),
        sa.Column("max_schedule_tuples", sa.Integer(), nullable=True),
        sa.Column("raw", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_ev_charging_needs_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_ev_charging_needs_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ev_charging_needs")),
    )
    op.create_index(
        op.f("ix_ev_charging_needs_station_id_evse_id_received_at"),
        "ev_charging_needs",
        ["station_id", "evse_id", "received_at"],
        unique=False,
    )

    op.create_table(
        "transaction_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("seq_no", sa.Integer(), nullable=False),
        sa.Column("event_type", sa.String(length=8), nullable=False),
        sa.Column("trigger_reason", sa.String(length=32), nullable=False),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("offline", sa.Boolean(), nullable=False),
        sa.Column("charging_state", sa.String(length=20), nullable=True),
        sa.Column("stopped_reason", sa.String(length=32), nullable=True),
        sa.Column("id_tag", sa.String(length=36), nullable=True),
        sa.Column("id_token_type", sa.String(length=20), nullable=True),
        sa.Column("remote_start_id", sa.Integer(), nullable=True),
        sa.Column("number_of_phases_used", sa.Integer(), nullable=True),
        sa.Column("cable_max_current_a", sa.Integer(), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"], ["stations.id"], name=op.f("fk_transaction_events_station_id_stations"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_transaction_events_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transaction_events")),
        sa.UniqueConstraint("transaction_id", "seq_no", name=op.f("uq_transaction_events_transaction_id_seq_no")),
    )
    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.add_column(sa.Column("signed_data", sa.JSON(), nullable=True))

    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("log_status", sa.String(length=32), nullable=True))

    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("id_token_type", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("remote_start_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("charging_state", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("last_seq_no", sa.Integer(), nullable=True))
        # Every session stored so far began with a StartTransaction: its start is confirmed.
        batch_op.add_column(sa.Column("start_confirmed", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.alter_column("meter_start_wh", existing_type=sa.FLOAT(), nullable=True)
        batch_op.create_unique_constraint(
            batch_op.f("uq_transactions_station_id_ocpp_transaction_id"), ["station_id", "ocpp_transaction_id"]
        )
        # A retransmitted start is a 1.6 notion: 2.0.1 sessions have ids of their own and may share a
        # place and a start (a power cut ends two at once, their Ended events arrive first, EVSE unknown).
        batch_op.drop_constraint("uq_transactions_station_id_evse_id_started_at", type_="unique")
    op.create_index(
        "uq_transactions_v16_start",
        "transactions",
        ["station_id", "evse_id", "started_at"],
        unique=True,
        sqlite_where=sa.text("ocpp_transaction_id IS NULL"),
        postgresql_where=sa.text("ocpp_transaction_id IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_transactions_v16_start", table_name="transactions")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_transactions_station_id_evse_id_started_at", ["station_id", "evse_id", "started_at"]
        )
        batch_op.drop_constraint(batch_op.f("uq_transactions_station_id_ocpp_transaction_id"), type_="unique")
        batch_op.alter_column("meter_start_wh", existing_type=sa.FLOAT(), nullable=False)
        batch_op.drop_column("start_confirmed")
        batch_op.drop_column("last_seq_no")
        batch_op.drop_column("charging_state")
        batch_op.drop_column("remote_start_id")
        batch_op.drop_column("id_token_type")

    with op.batch_alter_table("stations", schema=None) as batch_op:
        batch_op.drop_column("log_status")

    # SQLite drops a column by copying the table, which loses the expression index: rebuild it.
    op.drop_index("uq_meter_values_sample", table_name="meter_values")
    with op.batch_alter_table("meter_values", schema=None) as batch_op:
        batch_op.drop_column("signed_data")
    op.create_index(
        "uq_meter_values_sample",
        "meter_values",
        [
            "station_id",
            "evse_id",
            "connector_id",
            "timestamp",
            "measurand",
            sa.text("coalesce(phase, '')"),
            "location",
            "context",
        ],
        unique=True,
    )

    op.drop_table("transaction_events")
    op.drop_index(op.f("ix_ev_charging_needs_station_id_evse_id_received_at"), table_name="ev_charging_needs")

    op.drop_table("ev_charging_needs")
    op.drop_index(op.f("ix_security_events_station_id_timestamp"), table_name="security_events")

    op.drop_table("security_events")
    op.drop_index(op.f("ix_reported_charging_profiles_station_id_request_id"), table_name="reported_charging_profiles")

    op.drop_table("reported_charging_profiles")
    op.drop_index("uq_device_variables_attribute", table_name="device_variables")
    op.drop_index(op.f("ix_device_variables_station_id"), table_name="device_variables")

    op.drop_table("device_variables")
    op.drop_index(op.f("ix_device_events_station_id_timestamp"), table_name="device_events")

    op.drop_table("device_events")
    op.drop_index(op.f("ix_charging_limits_station_id"), table_name="charging_limits")

    op.drop_table("charging_limits")
