"""Natural keys on history tables: a status report, security event, device event or DataTransfer that
arrives twice (the station repeats it, or the writer replays a commit whose acknowledgement was lost) is
stored once.

Rows already stored twice are reduced to their first copy before each unique index is built: they are the
same report, so nothing is lost.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Each unique index: its name, table and key (SQL expressions, as the index and the clean-up use them).
KEYS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "uq_status_notifications_report",
        "status_notifications",
        ("station_id", "evse_id", "connector_id", "timestamp", "status", "coalesce(error_code, '')"),
    ),
    (
        "uq_data_transfers_message",
        "data_transfers",
        ("station_id", "direction", "vendor_id", "received_at"),
    ),
    (
        "uq_security_events_event",
        "security_events",
        ("station_id", "type", "timestamp", "coalesce(tech_info, '')"),
    ),
    ("uq_device_events_event", "device_events", ("station_id", "event_id", "timestamp")),
)


def upgrade() -> None:
    for name, table, key in KEYS:
        columns = ", ".join(key)
        # Keep the first copy of each key; rows with a NULL in the key never conflict and all stay.
        not_null = " AND ".join(f"{part} IS NOT NULL" for part in key if "(" not in part)
        op.execute(
            f"DELETE FROM {table} WHERE {not_null} AND id NOT IN (SELECT min(id) FROM {table} GROUP BY {columns})"
        )
        op.create_index(name, table, [sa.text(part) if "(" in part else part for part in key], unique=True)


def downgrade() -> None:
    for name, table, _ in reversed(KEYS):
        op.drop_index(name, table_name=table)
