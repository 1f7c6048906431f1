"""spool.faults: which driver errors are temporary, the public reason each gets (never the
driver's words) and how long a client is asked to wait."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, InternalError, OperationalError

from hub.errors import (
    SPOOL_BUSY,
    SPOOL_DISK,
    SPOOL_FULL,
    SPOOL_READ_ONLY,
    SPOOL_UNAVAILABLE,
    SPOOL_UNREACHABLE,
)
from spool.faults import temporary


class PgError(Exception):
    """Stands in for a psycopg error: its class lives in a psycopg module and it has a
    sqlstate (None for a refused connection, as psycopg gives)."""

    __module__ = "psycopg.errors"

    def __init__(self, text: str, sqlstate: str | None) -> None:
        super().__init__(text)
        self.sqlstate = sqlstate


def wrapped(kind: type[DBAPIError], orig: Exception, invalidated: bool = False) -> DBAPIError:
    return kind("INSERT ...", {}, orig, connection_invalidated=invalidated)


@pytest.mark.parametrize(("error", "reason", "wait"), [
    (wrapped(OperationalError, sqlite3.OperationalError("database is locked")), SPOOL_BUSY, 1),
    (wrapped(OperationalError, sqlite3.OperationalError("database or disk is full")),
     SPOOL_FULL, 30),
    (wrapped(OperationalError, sqlite3.OperationalError(
        "attempt to write a readonly database")), SPOOL_READ_ONLY, 30),
    (wrapped(OperationalError, sqlite3.OperationalError("disk I/O error")), SPOOL_DISK, 30),
    (wrapped(OperationalError, sqlite3.OperationalError("unable to open database file")),
     SPOOL_UNAVAILABLE, 30),
    (wrapped(OperationalError, PgError('connection to server at "db.internal" (10.0.0.5), '
                                       "port 5432 failed: Connection refused", None)),
     SPOOL_UNREACHABLE, 5),
    (wrapped(OperationalError, PgError("terminating connection due to administrator "
                                       "command", "57P01")), SPOOL_UNREACHABLE, 5),
    (wrapped(OperationalError, PgError("could not extend file: No space left on device",
                                       "53100")), SPOOL_FULL, 30),
    (wrapped(InternalError, PgError("cannot execute INSERT in a read-only transaction",
                                    "25006")), SPOOL_READ_ONLY, 30),
    (wrapped(DBAPIError, PgError("the connection is lost", None), invalidated=True),
     SPOOL_UNREACHABLE, 5),
    (wrapped(OperationalError, PgError("deadlock detected", "40P01")), SPOOL_BUSY, 1),
])
def test_a_temporary_fault_gets_its_public_reason_and_wait(error: DBAPIError, reason: str,
                                                           wait: int) -> None:
    failure = temporary(error)
    assert failure is not None
    assert (failure.reason, failure.retry_after) == (reason, wait)
    assert str(error.orig) in str(failure)  # the driver's words are for the log only
    assert "10.0.0.5" not in failure.reason


class PgOperationalError(PgError):
    """Stands in for psycopg.OperationalError, as raised bare by its COPY."""

    __module__ = "psycopg"


PgOperationalError.__name__ = "OperationalError"


def test_a_bare_driver_error_is_classified_too() -> None:
    """PostgreSQL COPY talks to psycopg itself: its errors are not SQLAlchemy's."""
    full = temporary(PgError('could not extend file "base/5/16447_fsm": No space left on '
                             "device", "53100"))
    assert full is not None and full.reason == SPOOL_FULL
    lost = temporary(PgOperationalError("consuming input failed: server closed the "
                                        "connection unexpectedly", None))
    assert lost is not None and lost.reason == SPOOL_UNREACHABLE
    locked = temporary(sqlite3.OperationalError("database is locked"))
    assert locked is not None and locked.reason == SPOOL_BUSY


@pytest.mark.parametrize("error", [
    wrapped(IntegrityError, sqlite3.IntegrityError("UNIQUE constraint failed")),
    wrapped(InternalError, PgError("invalid byte sequence", "22021")),
    PgError("invalid byte sequence", "22021"),
    ValueError("not a driver's"),
])
def test_an_error_no_retry_cures_is_not_temporary(error: Exception) -> None:
    assert temporary(error) is None
