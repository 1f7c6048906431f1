"""The spool: durable storage of accounts and messages, the only code that imports
SQLAlchemy. `open_spool` is the way in; SqlSpool implements hub.ports.Spool."""

from __future__ import annotations

from spool.store import SqlSpool

__all__ = ["SqlSpool", "open_spool"]


def open_spool(url: str, *, busy_timeout: float = 10.0) -> SqlSpool:
    """A spool on `url` (sqlite:///path or postgresql://...); call upgrade() on a new one."""
    return SqlSpool(url, busy_timeout=busy_timeout)
