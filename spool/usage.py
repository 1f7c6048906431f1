"""An account's usage by day: messages accepted, their segments, and the credit they
cost net of refunds, counted in the spool in one grouped query."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import BigInteger, and_, case, func, not_, select, type_coerce

from hub.ports import DayUsage
from spool.engine import Database
from spool.tables import EPOCH, from_units, messages

_DAY_MICROS = 86_400_000_000


def usage_by_day(db: Database, account_id: int, since: datetime, until: datetime,
                 offset: timedelta) -> list[DayUsage]:
    m = messages.c
    shift = offset // timedelta(microseconds=1)
    # Times are stored as integer microseconds: integer division gives the local day
    # on SQLite and PostgreSQL alike.
    day = ((type_coerce(m.accepted_at, BigInteger) + shift) // _DAY_MICROS).label("day")
    # A message that ended without reaching a carrier (cancelled, expired, refused
    # before sending) had its credit refunded.
    refunded = and_(m.completed_at.is_not(None), m.submitted_at.is_(None))
    charged = func.sum(case((not_(refunded), type_coerce(m.cost, BigInteger)), else_=0))
    query = (select(day, func.count(), func.sum(m.segments), charged)
             .where(m.account_id == account_id, m.accepted_at >= since, m.accepted_at < until)
             .group_by(day).order_by(day))
    with db.read() as conn:
        rows = conn.execute(query).all()
    return [DayUsage((EPOCH + timedelta(days=int(d))).date().isoformat(), int(n),
                     int(segments or 0), from_units(int(units or 0)))
            for d, n, segments, units in rows]
