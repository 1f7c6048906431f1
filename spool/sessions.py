"""Clickatell's session ids (`auth`), kept in the spool so that every process and node
sharing it knows them: a client behind a load balancer authenticates on one node and
sends on another. Each is stored by a digest, never as the id itself, with its account
and the moment it expires; adapters/xml/clickatell.py decides when a use extends it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Column,
    Index,
    Integer,
    Table,
    Text,
    case,
    delete,
    insert,
    literal,
    select,
    update,
)

from spool.engine import Database
from spool.tables import UtcTime, metadata

dialect_sessions = Table(
    "dialect_sessions",
    metadata,
    Column("digest", Text, primary_key=True),  # SHA-256 of the session id, in hex
    Column("account_id", Integer, nullable=False),
    Column("expires_at", UtcTime, nullable=False),
    Index("ix_dialect_sessions_expires", "expires_at"),
)
s = dialect_sessions


class SessionRows:
    """SqlSpool's session methods (hub.ports.AccountStore)."""

    db: Database

    def open_dialect_session(self, digest: str, account_id: int, until: datetime,
                             now: datetime) -> None:
        with self.db.write() as conn:
            # Expired ones go here: sessions open far less often than they are used, and
            # no sweep is needed. The index keeps this to the rows it deletes.
            conn.execute(delete(s).where(s.c.expires_at < now))
            conn.execute(insert(s).values(digest=digest, account_id=account_id,
                                          expires_at=until))

    def dialect_session(self, digest: str, now: datetime) -> tuple[int, datetime] | None:
        """(account id, expiry) of a session live at `now`; None if unknown or expired."""
        with self.db.read() as conn:
            row = conn.execute(select(s.c.account_id, s.c.expires_at)
                               .where(s.c.digest == digest, s.c.expires_at >= now)).first()
        return None if row is None else (row.account_id, row.expires_at)

    def extend_dialect_session(self, digest: str, until: datetime, now: datetime) -> bool:
        """Extend a session live at `now` to expire at `until` (never earlier than it
        already does); False if it is unknown or expired."""
        # Bound as the column's type: a bare datetime in a CASE would be stored as text.
        later = case((s.c.expires_at < until, literal(until, UtcTime)), else_=s.c.expires_at)
        with self.db.write() as conn:
            done = conn.execute(update(s).where(s.c.digest == digest, s.c.expires_at >= now)
                                .values(expires_at=later))
            return done.rowcount > 0
