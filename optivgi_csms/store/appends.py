"""Rows appended by many operations of one group commit, inserted with one statement per table.

Under load most writes are MeterValues: a few rows each, nothing read back. Inserting them one statement
per message cost more than the rest of the message path; an operation that only appends (it reads no row
another operation of the batch may append) hands its rows to the session instead, and the writer inserts
them together. The writer inserts what is pending before any other kind of operation runs, so every
operation still sees the rows of the operations queued before it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from optivgi_csms.store.insert_once import insert_once
from optivgi_csms.store.models import Base

_PENDING = "optivgi_appended_rows"


def append_later(session: AsyncSession, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Queue ``rows`` for ``model``'s table; they are inserted (skipping stored natural keys, as
    :func:`insert_once`) before the session's transaction commits. Only for operations the writer runs with
    ``appends_only=True``."""
    if rows:
        session.info.setdefault(_PENDING, {}).setdefault(model, []).extend(rows)


async def insert_appended(session: AsyncSession) -> None:
    """Insert every row queued by :func:`append_later` on this session, one statement per table."""
    pending: dict[type[Base], list[Mapping[str, Any]]] | None = session.info.pop(_PENDING, None)
    if pending:
        for model, rows in pending.items():
            await insert_once(session, model, rows)
