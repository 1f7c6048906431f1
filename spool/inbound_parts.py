"""Parts of long replies: each committed as it comes (a redelivered part is kept once),
reassembled when its set is complete, forgotten once the whole reply is stored."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, Connection, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.model import InboundPart
from spool.engine import Database
from spool.tables import inbound_parts

t = inbound_parts


def hold(db: Database, part: InboundPart) -> tuple[str, datetime] | None:
    with db.write() as conn:
        _insert_once(conn, part)
        rows = conn.execute(
            select(t.c.seq, t.c.text, t.c.received_at).where(_same_set(part))
            .order_by(t.c.seq)
        ).all()
    seqs = [row.seq for row in rows]
    if seqs != list(range(1, part.total + 1)):
        return None
    return "".join(row.text for row in rows), min(row.received_at for row in rows)


def forget(db: Database, part: InboundPart) -> None:
    with db.write() as conn:
        conn.execute(delete(t).where(_same_set(part)))


def purge(db: Database, held_before: datetime) -> int:
    with db.write() as conn:
        result = conn.execute(delete(t).where(t.c.received_at < held_before))
    return int(result.rowcount or 0)


def _same_set(part: InboundPart) -> ColumnElement[bool]:
    return and_(t.c.carrier == part.carrier, t.c.sender == part.sender,
                t.c.recipient == part.recipient, t.c.ref == part.ref,
                t.c.total == part.total)


def _insert_once(conn: Connection, part: InboundPart) -> None:
    values = {"carrier": part.carrier, "sender": part.sender, "recipient": part.recipient,
              "ref": part.ref, "total": part.total, "seq": part.seq, "text": part.text,
              "received_at": part.received_at}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(t).values(**values).on_conflict_do_nothing())
