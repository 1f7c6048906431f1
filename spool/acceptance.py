"""Intake's commit: a whole group of new messages in one transaction, with duplicate
client references answered, recipients on opt-out lists refused, and credit reserved
against each account's balance."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, bindparam, select, update

from hub.errors import NotFound
from hub.model import ErrorInfo, Message, NewMessage, Source, Status
from hub.ports import MESSAGES_CHANNEL, CommitSeal, Committed
from spool import consents, idempotency
from spool.bulk import bulk_insert, driver
from spool.engine import Database, notify
from spool.ledger import Event, add_events
from spool.lookups import messages_by_client_ref
from spool.optouts import Barred, barred
from spool.pushes import callback_row, store_callbacks
from spool.rows import MESSAGE_COLUMNS, listed, message_from_new
from spool.tables import (
    Money,
    accounts,
    from_units,
    messages,
    to_micros,
    to_units,
)

RefKey = tuple[int, str]


class _Plan:
    """Decides each message in order against running balances and known client refs."""

    def __init__(self, balances: dict[int, int], known: dict[RefKey, Message],
                 disabled: set[int], barred: Barred | None = None) -> None:
        self.balances = balances
        self.disabled = disabled
        self.barred = barred  # None: no recipient of the group is on an opt-out list
        self.known = known
        # Client refs stored by this group: kept as they came and made into a Message
        # only for a duplicate (rare), not for every message that carries a reference.
        self.mine: dict[RefKey, NewMessage] = {}
        self.spent: dict[int, int] = defaultdict(int)
        self.stored: list[tuple[NewMessage, int]] = []  # with their cost in units

    def decide(self, nm: NewMessage, cost: int) -> Committed:
        account = nm.account_id
        if account in self.disabled:  # intake read it from a credential cache
            return Committed(account_disabled=True)
        ref = None if nm.client_ref is None else (account, nm.client_ref)
        if ref is not None:
            if ref in self.known:
                return Committed(duplicate_of=self.known[ref])
            if ref in self.mine:
                return Committed(duplicate_of=message_from_new(self.mine[ref]))
        if self.barred is not None and (code := self.barred.refusal(nm)) is not None:
            return Committed(barred=code)
        balance = self.balances[account]
        if balance < cost:
            return Committed(insufficient_credit=from_units(balance))
        self.balances[account] = balance - cost
        self.spent[account] += cost
        self.stored.append((nm, cost))
        if ref is not None:
            # Only a stored message can be duplicated: a refused one left nothing behind.
            self.mine[ref] = nm
        return Committed(message=nm)


def accept(db: Database, group: Sequence[NewMessage],
           seals: Sequence[tuple[int, CommitSeal]] = ()) -> list[Committed]:
    if not group and not seals:
        return []
    # Sub-unit costs fail before any lock; a group's messages share a few costs, so
    # each distinct one is converted once (Decimal arithmetic, about 1 µs).
    units: dict[Decimal, int] = {}
    costs = [units[c] if (c := nm.cost) in units else units.setdefault(c, to_units(c))
             for nm in group]
    results: list[Committed] = []
    with db.write() as conn:
        if group:  # else only seals: requests none of whose messages reached the spool
            # Lock the accounts first so that duplicate checks and balances cannot race
            # another group for the same account (PostgreSQL; SQLite is serial anyway).
            balances, disabled = _lock_balances(conn, {nm.account_id for nm in group})
            group, holds = consents.hold_new(conn, group)  # CPA hours for marketing
            plan = _Plan(balances, _stored_refs(conn, group), disabled, barred(conn, group))
            results = [plan.decide(nm, cost) for nm, cost in zip(group, costs, strict=True)]
            _store(conn, plan, holds)
        for start, sealed in seals:  # idempotency keys answered with their messages
            idempotency.seal(conn, sealed,
                             sealed.answer(results[start:start + sealed.count]))
    return results


# Built once: intake's every commit runs it (making it anew cost more than running it).
_BALANCES = (
    select(accounts.c.id, accounts.c.balance, accounts.c.enabled)
    .where(listed(accounts.c.id))
    .order_by(accounts.c.id)  # one lock order everywhere: no deadlocks
    .with_for_update()
)


# The same read and debit as SQL text for SQLite's driver (balances are stored in units;
# the one writer needs no row lock), as bulk.py's writes are: with the opt-out check
# (optouts.barred) they cost about 190 µs of CPU more a transaction through SQLAlchemy,
# a third of an accept of one message (bench/spool_ops.py --groups 1,1,1).
_BALANCES_SQLITE = ("SELECT id, balance, enabled FROM accounts"
                    " WHERE id IN (SELECT value FROM json_each(?)) ORDER BY id")
_DEBIT_SQLITE = "UPDATE accounts SET balance = balance - ? WHERE id = ?"


def _lock_balances(conn: Connection, account_ids: set[int]) -> tuple[dict[int, int], set[int]]:
    """Balances in units, and which of the accounts are disabled (or deleted)."""
    wanted = sorted(account_ids)
    if conn.dialect.name == "sqlite":
        found = driver(conn).execute(_BALANCES_SQLITE, (json.dumps(wanted),)).fetchall()
        balances = {aid: int(units) for aid, units, _ in found}
        disabled = {aid for aid, _, enabled in found if not enabled}
    else:
        rows = conn.execute(_BALANCES, {"ids": wanted}).all()
        balances = {row.id: to_units(row.balance) for row in rows}
        disabled = {row.id for row in rows if not row.enabled}
    missing = account_ids - balances.keys()
    if missing:
        raise NotFound(f"no account with id {min(missing)}")
    return balances, disabled


def _stored_refs(conn: Connection, group: Sequence[NewMessage]) -> dict[RefKey, Message]:
    refs: dict[int, set[str]] = defaultdict(set)
    for nm in group:
        if nm.client_ref is not None:
            refs[nm.account_id].add(nm.client_ref)
    return {(account_id, ref): message
            for account_id, client_refs in refs.items()
            for ref, message in messages_by_client_ref(conn, account_id, client_refs).items()}


_DEBIT = (
    update(accounts)
    .where(accounts.c.id == bindparam("b_id"))
    .values(balance=accounts.c.balance - bindparam("b_amount", type_=Money()))
)


def _store(conn: Connection, plan: _Plan, holds: dict[str, ErrorInfo]) -> None:
    if not plan.stored:
        return
    maker = _RowMaker(holds)
    rows, events = maker.rows(plan.stored)
    bulk_insert(conn, messages, MESSAGE_COLUMNS, rows)
    notify(conn, MESSAGES_CHANNEL)  # idle dispatchers on every node claim them at once
    if holds:
        consents.note_holds(conn, {nm.id: holds[nm.id] for nm, _ in plan.stored
                                   if nm.id in holds})
    if maker.callbacks:  # only messages whose request asked for a push (dlr-url...)
        store_callbacks(conn, maker.callbacks)
    add_events(conn, events)
    if conn.dialect.name == "sqlite":
        driver(conn).executemany(_DEBIT_SQLITE, [(units, aid) for aid, units in plan.spent.items()])
        return
    conn.execute(
        _DEBIT, [{"b_id": aid, "b_amount": from_units(units)} for aid, units in plan.spent.items()]
    )


class _RowMaker:
    """Message rows (MESSAGE_COLUMNS) and their acceptance events (one transition: into
    accepted, due now, or scheduled), in driver form, in one pass. This is intake's
    hottest loop, so what a group's messages share is worked out once: they have one
    acceptance time and one default expiry (the same datetime objects, converted once by
    identity), and their event details repeat per source. String enums go to the driver
    as they are: they are str."""

    def __init__(self, holds: dict[str, ErrorInfo]) -> None:
        self._holds = holds  # marketing messages held for CPA hours: why
        self._micros: dict[int, int] = {}
        self._details: dict[Source, str] = {}
        self.callbacks: list[tuple[Any, ...]] = []

    def rows(
        self, stored: Sequence[tuple[NewMessage, int]]
    ) -> tuple[list[tuple[Any, ...]], list[Event]]:
        micros = self._micro
        rows: list[tuple[Any, ...]] = []
        events: list[Event] = []
        for nm, cost in stored:
            accepted = micros(nm.accepted_at)
            due = micros(nm.due_at)
            send_at, expires_at = nm.send_at, nm.expires_at
            if due > accepted:
                status, detail = Status.SCHEDULED, (
                    f"{self._detail(nm.source)}; scheduled for {nm.due_at.isoformat()}")
                if nm.id in self._holds:
                    detail = f"{detail}; {self._holds[nm.id].text}"
            else:
                status, detail = Status.ACCEPTED, self._detail(nm.source)
            rows.append((
                nm.id, nm.account_id, nm.source, nm.client_ref, nm.batch_id, nm.sender,
                nm.recipient, nm.text, nm.encoding, nm.segments, cost, nm.message_class,
                nm.priority, None if send_at is None else micros(send_at),
                None if expires_at is None else micros(expires_at), due, status, 0,
                accepted, accepted, nm.batch_line,
            ))
            events.append((nm.id, accepted, status, detail))
            if nm.callback is not None:
                self.callbacks.append(callback_row(nm.id, nm.callback))
        return rows, events

    def _micro(self, value: datetime) -> int:
        found = self._micros.get(id(value))
        if found is None:
            # Kept alive by the group being stored, so its id is not reused meanwhile.
            found = self._micros[id(value)] = to_micros(value)
        return found

    def _detail(self, source: Source) -> str:
        found = self._details.get(source)
        if found is None:
            found = self._details[source] = f"accepted via {source.value}"
        return found
