"""What a database failure means for clients: a driver error that a retry may cure turned
into a TemporaryFailure whose public reason names the fault (busy, disk full, read-only,
unreachable) without the driver's words, which may hold hosts, ports or paths."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, OperationalError

from hub.errors import SPOOL_BUSY as BUSY
from hub.errors import SPOOL_DISK as DISK
from hub.errors import SPOOL_FULL as FULL
from hub.errors import SPOOL_READ_ONLY as READ_ONLY
from hub.errors import SPOOL_UNAVAILABLE as UNAVAILABLE
from hub.errors import SPOOL_UNREACHABLE as UNREACHABLE
from hub.errors import TemporaryFailure

__all__ = ["BUSY", "DISK", "FULL", "READ_ONLY", "UNAVAILABLE", "UNREACHABLE", "temporary"]

# Seconds a client should wait: a lock frees up at once, the rest needs a database
# restart or an operator (a file removed, a mount fixed), so retrying every second helps
# nobody.
_WAIT = {BUSY: 1, UNREACHABLE: 5}
_LATER = 30


def temporary(exc: BaseException) -> TemporaryFailure | None:
    """The TemporaryFailure for a driver error that may clear by itself or by an
    operator's hand, or None for one that will not (a bug, a constraint) and for any
    exception that is not a driver's. Driver errors come wrapped by SQLAlchemy
    (DBAPIError) or bare, from code that talks to the driver itself (PostgreSQL COPY)."""
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        orig: BaseException = exc.orig
        operational = isinstance(exc, OperationalError)
        invalidated = exc.connection_invalidated
    elif type(exc).__module__.split(".")[0] in _DRIVERS:
        orig, invalidated = exc, False
        operational = any(k.__name__ == "OperationalError" for k in type(exc).__mro__)
    else:
        return None
    reason = _reason(orig, operational, invalidated)
    if reason is None:
        return None
    return TemporaryFailure(f"spool unavailable: {orig}", reason, _WAIT.get(reason, _LATER))


_DRIVERS = ("sqlite3", "psycopg")


def _reason(orig: BaseException, operational: bool, invalidated: bool) -> str | None:
    state = str(getattr(orig, "sqlstate", None) or "")
    text = str(orig).lower()
    if state == "53100" or "disk is full" in text or "no space left" in text:
        return FULL
    if state == "25006" or "readonly database" in text or "read-only" in text:
        return READ_ONLY
    if state.startswith(("08", "57P")) or invalidated:
        return UNREACHABLE
    if not operational:
        return None
    if "locked" in text or "busy" in text or state.startswith("40"):
        return BUSY
    if "disk i/o error" in text:
        return DISK
    if state == "" and type(orig).__module__.startswith("psycopg"):
        return UNREACHABLE  # refused, timed out, closed: psycopg gives these no state
    return UNAVAILABLE
