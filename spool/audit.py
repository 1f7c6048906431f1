"""The audit export's read: an account's messages accepted in a period, a page at a time,
each with its append-only events (hub/audit.py makes the lines)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from hub.model import Event, Message
from spool.engine import Database
from spool.rows import event_from_row, message_from_row
from spool.tables import message_events, messages

m, e = messages, message_events


def trail(db: Database, account_id: int, start: datetime, end: datetime, after_id: str,
          limit: int) -> list[tuple[Message, list[Event]]]:
    query = (select(m).where(m.c.account_id == account_id, m.c.accepted_at >= start,
                             m.c.accepted_at < end, m.c.id > after_id)
             .order_by(m.c.id).limit(limit))
    with db.read() as conn:
        found = [message_from_row(row._mapping) for row in conn.execute(query)]
        events: dict[str, list[Event]] = {x.id: [] for x in found}
        if found:
            rows = conn.execute(select(e).where(e.c.message_id.in_(list(events)))
                                .order_by(e.c.id))
            for row in rows:
                events[row.message_id].append(event_from_row(row._mapping))
    return [(x, events[x.id]) for x in found]
