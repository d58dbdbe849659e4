"""Which database errors are worth retrying: the database was unreachable or busy, not the data wrong.

A write that fails because the connection dropped, the server refused a new connection or SQLite's write lock
was held by someone else may succeed a moment later; a write that broke a constraint never will. The writer
retries the first kind within a bounded budget (:mod:`optivgi_csms.store.writer`) and fails the second at once.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError

#: PostgreSQL SQLSTATEs that say "try again": the server is shutting down, starting, out of connection
#: slots, or the transaction lost a race (serialization failure, deadlock). Class 08 (connection
#: exceptions) is matched by its prefix.
_TRANSIENT_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300", "40001", "40P01"})
#: SQLite's words for a lock held by another connection (SQLITE_BUSY / SQLITE_LOCKED).
_SQLITE_BUSY = ("database is locked", "database is busy", "database table is locked")


class DatabaseUnavailableError(RuntimeError):
    """A write could not be committed within the retry budget because the database stayed unreachable or
    locked. Nothing of it was stored; the station is answered InternalError and sends it again."""

    #: Expected while an outage lasts, not a bug: callers log it in a line, without a traceback.
    transient = True


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` (or an error it was raised from) means the database was unreachable or busy."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DatabaseUnavailableError):
            return True
        if isinstance(current, DBAPIError):
            # Not every InterfaceError: SQLite raises one for a value it cannot bind, a bug that retrying would
            # only let hold up everyone's writes for the whole budget.
            if current.connection_invalidated or _transient_driver_error(current.orig):
                return True
        elif _transient_driver_error(current):
            return True
        # Sockets and timeouts: the server went away or never answered (asyncpg raises these bare on connect).
        if isinstance(current, (ConnectionError, TimeoutError)) or type(current) is OSError:
            return True
        current = current.__cause__ or current.__context__
    return False


def _transient_driver_error(error: BaseException | None) -> bool:
    if error is None:
        return False
    text = str(error).lower()
    if any(words in text for words in _SQLITE_BUSY):
        return True
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate in _TRANSIENT_SQLSTATES):
        return True
    # asyncpg's own connection errors, whichever way the adapter wrapped them.
    name = type(error).__name__
    return name in {"ConnectionDoesNotExistError", "ConnectionFailureError", "CannotConnectNowError"} or (
        name == "InterfaceError" and "connection" in text and "closed" in text
    )
