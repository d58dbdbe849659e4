"""Initial schema: stations, connectors, id tags, transactions, meter values, reservations, profiles, journal.

Revision ID: 0001
Revises:
Create Date: 2026-11-24 23:47:52.568327
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "id_tags",
        sa.Column("id_tag", sa.String(length=36), nullable=False),
        sa.Column("token_type", sa.String(length=20), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("expiry_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("parent_id_tag", sa.String(length=36), nullable=True),
        sa.Column("note", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id_tag", name=op.f("pk_id_tags")),
    )
    op.create_table(
        "ocpp_journal",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ocpp_journal")),
    )
    op.create_index(op.f("ix_ocpp_journal_station_id"), "ocpp_journal", ["station_id"], unique=False)

    op.create_table(
        "stations",
        sa.Column("id", sa.String(length=48), nullable=False),
        sa.Column("registered", sa.Boolean(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("ocpp_version", sa.String(length=8), nullable=True),
        sa.Column("vendor", sa.String(length=50), nullable=True),
        sa.Column("model", sa.String(length=50), nullable=True),
        sa.Column("serial_number", sa.String(length=25), nullable=True),
        sa.Column("charge_box_serial_number", sa.String(length=25), nullable=True),
        sa.Column("firmware_version", sa.String(length=50), nullable=True),
        sa.Column("iccid", sa.String(length=20), nullable=True),
        sa.Column("imsi", sa.String(length=20), nullable=True),
        sa.Column("meter_type", sa.String(length=25), nullable=True),
        sa.Column("meter_serial_number", sa.String(length=25), nullable=True),
        sa.Column("boot_status", sa.String(length=16), nullable=True),
        sa.Column("boot_reason", sa.String(length=32), nullable=True),
        sa.Column("firmware_status", sa.String(length=32), nullable=True),
        sa.Column("diagnostics_status", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_boot_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_connected_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_disconnected_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stations")),
    )
    op.create_table(
        "connectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("info", sa.String(length=50), nullable=True),
        sa.Column("vendor_id", sa.String(length=255), nullable=True),
        sa.Column("vendor_error_code", sa.String(length=50), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_connectors_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connectors")),
        sa.UniqueConstraint(
            "station_id",
            "evse_id",
            "connector_id",
            name=op.f("uq_connectors_station_id_evse_id_connector_id"),
        ),
    )
    op.create_index(op.f("ix_connectors_station_id"), "connectors", ["station_id"], unique=False)

    op.create_table(
        "data_transfers",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("direction", sa.String(length=3), nullable=False),
        sa.Column("vendor_id", sa.String(length=255), nullable=False),
        sa.Column("message_id", sa.String(length=50), nullable=True),
        sa.Column("data", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_data_transfers_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_transfers")),
    )
    op.create_index(
        op.f("ix_data_transfers_station_id_received_at"),
        "data_transfers",
        ["station_id", "received_at"],
        unique=False,
    )

    op.create_table(
        "status_notifications",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error_code", sa.String(length=50), nullable=True),
        sa.Column("info", sa.String(length=50), nullable=True),
        sa.Column("vendor_id", sa.String(length=255), nullable=True),
        sa.Column("vendor_error_code", sa.String(length=50), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_status_notifications_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_status_notifications")),
    )
    op.create_index(
        op.f("ix_status_notifications_station_id_received_at"),
        "status_notifications",
        ["station_id", "received_at"],
        unique=False,
    )

    op.create_table(
        "transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("ocpp_transaction_id", sa.String(length=36), nullable=True),
        sa.Column("id_tag", sa.String(length=36), nullable=True),
        sa.Column("authorization_status", sa.String(length=16), nullable=True),
        sa.Column("reservation_id", sa.Integer(), nullable=True),
        sa.Column("meter_start_wh", sa.Float(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("meter_stop_wh", sa.Float(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stop_reason", sa.String(length=32), nullable=True),
        sa.Column("stop_id_tag", sa.String(length=36), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_transactions_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint(
            "station_id", "evse_id", "started_at", name=op.f("uq_transactions_station_id_evse_id_started_at")
        ),
    )
    op.create_index(op.f("ix_transactions_id_tag"), "transactions", ["id_tag"], unique=False)
    op.create_index(
        op.f("ix_transactions_station_id_stopped_at"),
        "transactions",
        ["station_id", "stopped_at"],
        unique=False,
    )

    op.create_table(
        "charging_profiles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("profile_id", sa.Integer(), nullable=False),
        sa.Column("stack_level", sa.Integer(), nullable=False),
        sa.Column("purpose", sa.String(length=24), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("profile", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_charging_profiles_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_charging_profiles_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_charging_profiles")),
    )
    op.create_index(
        op.f("ix_charging_profiles_station_id_evse_id_profile_id"),
        "charging_profiles",
        ["station_id", "evse_id", "profile_id"],
        unique=False,
    )

    op.create_table(
        "meter_values",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("connector_id", sa.Integer(), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("ocpp_transaction_ref", sa.String(length=36), nullable=True),
        sa.Column("timestamp", sa.DateTime(timezone=True), nullable=False),
        sa.Column("measurand", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=8), nullable=True),
        sa.Column("unit", sa.String(length=16), nullable=True),
        sa.Column("context", sa.String(length=32), nullable=False),
        sa.Column("location", sa.String(length=16), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_numeric", sa.Float(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_meter_values_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_meter_values_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meter_values")),
    )
    op.create_index(
        op.f("ix_meter_values_station_id_timestamp"),
        "meter_values",
        ["station_id", "timestamp"],
        unique=False,
    )
    op.create_index(
        op.f("ix_meter_values_transaction_id_timestamp"),
        "meter_values",
        ["transaction_id", "timestamp"],
        unique=False,
    )
    # A sample a station repeats (same place, time, measurand, phase, location, context) is stored once.
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

    op.create_table(
        "reservations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("station_id", sa.String(length=48), nullable=False),
        sa.Column("evse_id", sa.Integer(), nullable=False),
        sa.Column("id_tag", sa.String(length=36), nullable=False),
        sa.Column("parent_id_tag", sa.String(length=36), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transaction_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
            name=op.f("fk_reservations_station_id_stations"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["transactions.id"],
            name=op.f("fk_reservations_transaction_id_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reservations")),
    )
    op.create_index(op.f("ix_reservations_station_id"), "reservations", ["station_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_reservations_station_id"), table_name="reservations")

    op.drop_table("reservations")
    op.drop_index("uq_meter_values_sample", table_name="meter_values")
    op.drop_index(op.f("ix_meter_values_transaction_id_timestamp"), table_name="meter_values")
    op.drop_index(op.f("ix_meter_values_station_id_timestamp"), table_name="meter_values")

    op.drop_table("meter_values")
    op.drop_index(op.f("ix_charging_profiles_station_id_evse_id_profile_id"), table_name="charging_profiles")

    op.drop_table("charging_profiles")
    op.drop_index(op.f("ix_transactions_station_id_stopped_at"), table_name="transactions")
    op.drop_index(op.f("ix_transactions_id_tag"), table_name="transactions")

    op.drop_table("transactions")
    op.drop_index(op.f("ix_status_notifications_station_id_received_at"), table_name="status_notifications")

    op.drop_table("status_notifications")
    op.drop_index(op.f("ix_data_transfers_station_id_received_at"), table_name="data_transfers")

    op.drop_table("data_transfers")
    op.drop_index(op.f("ix_connectors_station_id"), table_name="connectors")

    op.drop_table("connectors")
    op.drop_table("stations")
    op.drop_index(op.f("ix_ocpp_journal_station_id"), table_name="ocpp_journal")

    op.drop_table("ocpp_journal")
    op.drop_table("id_tags")
