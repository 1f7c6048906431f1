"""Intake's commit: a whole group of new messages in one transaction, with duplicate
client references answered and credit reserved against each account's balance."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, bindparam, select, update

from hub.errors import NotFound
from hub.model import Message, NewMessage, Status
from hub.ports import Committed
from spool.bulk import bulk_insert
from spool.engine import Database
from spool.ledger import Event, add_events
from spool.rows import (
    MESSAGE_COLUMNS,
    chunks,
    message_from_new,
    message_from_row,
    message_values,
)
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

    def __init__(self, balances: dict[int, int], known: dict[RefKey, Message]) -> None:
        self.balances = balances
        self.known = known
        self.spent: dict[int, int] = defaultdict(int)
        self.stored: list[tuple[NewMessage, int]] = []  # with their cost in units

    def decide(self, nm: NewMessage, cost: int) -> Committed:
        ref = None if nm.client_ref is None else (nm.account_id, nm.client_ref)
        if ref is not None and ref in self.known:
            return Committed(duplicate_of=self.known[ref])
        if self.balances[nm.account_id] < cost:
            return Committed(insufficient_credit=from_units(self.balances[nm.account_id]))
        self.balances[nm.account_id] -= cost
        self.spent[nm.account_id] += cost
        self.stored.append((nm, cost))
        if ref is not None:
            # Only a stored message can be duplicated: a refused one left nothing behind.
            self.known[ref] = message_from_new(nm)
        return Committed(message=nm)


def accept(db: Database, group: Sequence[NewMessage]) -> list[Committed]:
    if not group:
        return []
    costs = [to_units(nm.cost) for nm in group]  # sub-unit costs fail before any lock
    with db.write() as conn:
        # Lock the accounts first so that duplicate checks and balances cannot race
        # another group for the same account (PostgreSQL; SQLite is serial anyway).
        plan = _Plan(_lock_balances(conn, {nm.account_id for nm in group}), {})
        plan.known.update(_stored_refs(conn, group))
        results = [plan.decide(nm, cost) for nm, cost in zip(group, costs, strict=True)]
        _store(conn, plan)
    return results


def _lock_balances(conn: Connection, account_ids: set[int]) -> dict[int, int]:
    query = (
        select(accounts.c.id, accounts.c.balance)
        .where(accounts.c.id.in_(sorted(account_ids)))
        .order_by(accounts.c.id)  # one lock order everywhere: no deadlocks
        .with_for_update()
    )
    balances = {row.id: to_units(row.balance) for row in conn.execute(query)}
    missing = account_ids - balances.keys()
    if missing:
        raise NotFound(f"no account with id {min(missing)}")
    return balances


def _stored_refs(conn: Connection, group: Sequence[NewMessage]) -> dict[RefKey, Message]:
    refs: dict[int, set[str]] = defaultdict(set)
    for nm in group:
        if nm.client_ref is not None:
            refs[nm.account_id].add(nm.client_ref)
    found: dict[RefKey, Message] = {}
    for account_id, client_refs in refs.items():
        for part in chunks(sorted(client_refs)):
            query = select(messages).where(
                messages.c.account_id == account_id, messages.c.client_ref.in_(part)
            )
            for row in conn.execute(query).mappings():
                found[(account_id, row["client_ref"])] = message_from_row(row)
    return found


def _store(conn: Connection, plan: _Plan) -> None:
    if not plan.stored:
        return
    micros = _Micros()
    bulk_insert(conn, messages, MESSAGE_COLUMNS,
                [message_values(nm, cost, micros) for nm, cost in plan.stored])
    add_events(conn, [_event(nm, micros) for nm, _ in plan.stored])
    debit = (
        update(accounts)
        .where(accounts.c.id == bindparam("b_id"))
        .values(balance=accounts.c.balance - bindparam("b_amount", type_=Money()))
    )
    conn.execute(
        debit, [{"b_id": aid, "b_amount": from_units(units)} for aid, units in plan.spent.items()]
    )


def _event(nm: NewMessage, micros: _Micros) -> Event:
    """Acceptance is one transition: into accepted (due now) or scheduled."""
    status = nm.initial_status
    detail = f"accepted via {nm.source.value}"
    if status is Status.SCHEDULED:
        detail += f"; scheduled for {nm.due_at.isoformat()}"
    return (nm.id, micros(nm.accepted_at), status.value, detail)


class _Micros:
    """to_micros remembered by identity: a group's messages share their datetimes (one
    acceptance time, one default expiry), so each is converted once, not per message."""

    def __init__(self) -> None:
        self._seen: dict[int, int] = {}

    def __call__(self, value: datetime) -> int:
        found = self._seen.get(id(value))
        if found is None:
            found = self._seen[id(value)] = to_micros(value)
        return found
