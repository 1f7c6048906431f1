"""The operators' tables (hub/operators.py): their logins, the credit ledger, the
portal's signed-out sessions, and the queue's recent minutes counted from the messages'
events."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    ForeignKey,
    Index,
    Integer,
    Table,
    Text,
    delete,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError

from hub.errors import Conflict, NotFound, Rejected
from hub.model import Account, Status
from hub.operators import CreditChange, Minute, Operator, password_stamp
from spool.accounts import get_account_by_id, require_live
from spool.engine import Database
from spool.tables import (
    Money,
    UtcTime,
    accounts,
    from_micros,
    message_events,
    metadata,
    to_micros,
    to_units,
)

operators = Table(
    "operators",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),
    Column("created_at", UtcTime, nullable=False),
)

# Every change of an account's credit made by hand (the CLI, an operator's page), with
# its reason: what the balance alone cannot tell later.
credit_changes = Table(
    "credit_changes",
    metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("at", UtcTime, nullable=False),
    Column("amount", Money, nullable=False),
    Column("balance", Money, nullable=False),  # after the change
    Column("reason", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Index("ix_credit_changes_account", "account_id", "id"),
)

# Portal sessions (customers' and operators') signed out before they expired. A session
# lives in its signed cookie alone, so without this a copy of the cookie kept after sign
# out would still open the pages. A row is kept until the session would have expired.
ended_sessions = Table(
    "ended_sessions",
    metadata,
    Column("key", Text, primary_key=True),  # a digest naming the session, not the cookie
    Column("until", UtcTime, nullable=False),
    Index("ix_ended_sessions_until", "until"),
)

_ENTERED = (Status.ACCEPTED.value, Status.QUEUED.value)
_MINUTE = 60_000_000  # microseconds


class OperatorRows:
    """SqlSpool's operator methods (hub.operators.AdminStore)."""

    db: Database

    def add_operator(self, name: str, password_hash: str, now: datetime) -> Operator:
        try:
            with self.db.write() as conn:
                if _find(conn, name) is not None:
                    raise Conflict(f"operator {name!r} already exists")
                conn.execute(
                    insert(operators).values(name=name, password_hash=password_hash, created_at=now)
                )
                return _operator(_find(conn, name))
        except IntegrityError as exc:  # a concurrent add of the same name won
            raise Conflict(f"operator {name!r} already exists") from exc

    def list_operators(self) -> list[Operator]:
        with self.db.read() as conn:
            return [_operator(r) for r in conn.execute(_columns().order_by(operators.c.name))]

    def remove_operator(self, name: str) -> None:
        with self.db.write() as conn:
            if not conn.execute(delete(operators).where(operators.c.name == name)).rowcount:
                raise NotFound(f"no operator named {name!r}")

    def set_operator_password(self, name: str, password_hash: str) -> None:
        with self.db.write() as conn:
            done = conn.execute(
                update(operators)
                .where(operators.c.name == name)
                .values(password_hash=password_hash)
            )
            if not done.rowcount:
                raise NotFound(f"no operator named {name!r}")

    def operator_login(self, name: str) -> tuple[Operator, str] | None:
        with self.db.read() as conn:
            row = conn.execute(select(operators).where(operators.c.name == name)).first()
        return None if row is None else (_operator(row), str(row.password_hash))

    def get_operator(self, operator_id: int) -> Operator | None:
        with self.db.read() as conn:
            row = conn.execute(_columns().where(operators.c.id == operator_id)).first()
        return None if row is None else _operator(row)

    def end_session(self, key: str, until: datetime, now: datetime) -> None:
        try:
            with self.db.write() as conn:
                # Those past their expiry go here: sign-outs are few, and no sweep needed.
                conn.execute(delete(ended_sessions).where(ended_sessions.c.until < now))
                known = select(ended_sessions.c.key).where(ended_sessions.c.key == key)
                if conn.execute(known).first() is None:
                    conn.execute(insert(ended_sessions).values(key=key, until=until))
        except IntegrityError:
            pass  # signed out twice at once (two tabs): the other write ended it

    def session_ended(self, key: str) -> bool:
        with self.db.read() as conn:
            found = select(ended_sessions.c.key).where(ended_sessions.c.key == key)
            return conn.execute(found).first() is not None

    def credit_account(
        self, name: str, amount: Decimal, reason: str, actor: str, now: datetime
    ) -> Account:
        to_units(amount)  # refuse sub-unit amounts before touching the database
        with self.db.write() as conn:
            row = require_live(conn, name, lock=True)
            if row.balance + amount < 0:
                raise Rejected(
                    "insufficient_credit",
                    f"account {name!r} has {row.balance} credits; cannot take {-amount}",
                )
            balance = row.balance + amount
            # Relative, as intake's reservations are; the row is locked meanwhile anyway.
            conn.execute(
                update(accounts)
                .where(accounts.c.id == row.id)
                .values(balance=accounts.c.balance + literal(amount, Money()))
            )
            conn.execute(
                insert(credit_changes).values(
                    account_id=row.id,
                    at=now,
                    amount=amount,
                    balance=balance,
                    reason=reason,
                    actor=actor,
                )
            )
            account_id = int(row.id)
        return get_account_by_id(self.db, account_id)

    def credit_changes(self, account_id: int, limit: int) -> list[CreditChange]:
        c = credit_changes
        query = select(c).where(c.c.account_id == account_id).order_by(c.c.id.desc()).limit(limit)
        with self.db.read() as conn:
            return [
                CreditChange(r.account_id, r.amount, r.balance, r.reason, r.actor, r.at)
                for r in conn.execute(query)
            ]

    def queue_minutes(self, since: datetime, until: datetime) -> list[Minute]:
        e = message_events
        start, end = to_micros(since), to_micros(until)
        with self.db.read() as conn:
            first = _first_event_at(conn, start)
            if first is None:
                return []
            at = type_coerce(e.c.at, BigInteger)  # microseconds, as stored
            bucket = ((at - start) // _MINUTE).label("minute")
            query = (
                select(bucket, e.c.status, func.count())
                .where(e.c.id >= first, at >= start, at < end)
                .group_by(bucket, e.c.status)
            )
            counts: dict[int, dict[str, int]] = {}
            for minute, status, n in conn.execute(query):
                counts.setdefault(int(minute), {})[status] = int(n)
        return [
            Minute(
                from_micros(start) + timedelta(minutes=k),
                entered=sum(by.get(s, 0) for s in _ENTERED),
                claimed=by.get(Status.SENDING.value, 0),
                submitted=by.get(Status.SUBMITTED.value, 0),
            )
            for k, by in sorted(counts.items())
        ]


def _first_event_at(conn: Connection, start: int) -> int | None:
    """The id of the first event at or after `start` (microseconds): a binary search on
    the primary key, whose order is the order events were written, as `at` is (an index
    on `at` would cost every write of the hot path)."""
    e = message_events
    low, high = conn.execute(select(func.min(e.c.id), func.max(e.c.id))).one()
    if low is None or _at_or_after(conn, high) < start:
        return None
    while low < high:
        middle = (low + high) // 2
        if _at_or_after(conn, middle) >= start:
            high = middle
        else:
            low = middle + 1
    return int(low)


def _at_or_after(conn: Connection, event_id: int) -> int:
    e = message_events
    at = conn.execute(
        select(e.c.at).where(e.c.id >= event_id).order_by(e.c.id).limit(1)
    ).scalar_one()
    return to_micros(at)


def _columns() -> Any:
    o = operators
    return select(o.c.id, o.c.name, o.c.created_at, o.c.password_hash)


def _find(conn: Connection, name: str) -> Any:
    return conn.execute(_columns().where(operators.c.name == name)).first()


def _operator(row: Any) -> Operator:
    return Operator(int(row.id), str(row.name), row.created_at,
                    password_stamp(row.password_hash))
