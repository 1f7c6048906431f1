"""Opt-out lists in the spool: every entry is created by `create_optout` (an inbound STOP,
the API, the CLI, an import), listed, removed; each account's settings; and the check
intake's commit makes, one indexed read for a whole group of recipients."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from hub.events import EventType, optout_data
from hub.model import ErrorInfo, MessageClass, NewMessage, Source
from hub.optouts import (
    BLOCKED,
    OPTED_OUT,
    NewOptOut,
    OptOut,
    OptOutMethod,
    OptOutScope,
    OptOutSettings,
)
from spool import webhooks
from spool.bulk import driver
from spool.engine import Database
from spool.queue import cancel_unsent_to
from spool.rows import chunks
from spool.tables import optout_settings, optouts

o = optouts
IMPORT_CHUNK = 2000


def create_optout(conn: Connection, new: NewOptOut) -> OptOut | None:
    """Put a number on a list in the caller's transaction: the one place an opt-out is
    created, whatever carried it, so whatever must happen with a new opt-out (an
    `optout.created` event, say) is added here and commits with it. Returns the new entry,
    or None when the number was on that list already (kept as it was, with its first
    reason). Never fails on a duplicate, even one committed concurrently: a STOP must not
    roll back the inbound message it came in."""
    values = {"account_id": new.account_id, "number": new.number, "created_at": new.at,
              "method": new.method.value, "reason": new.reason, "inbound_id": new.inbound_id}
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = (dialect.insert(o).values(**values).on_conflict_do_nothing()
                 .returning(o.c.id))
    row = conn.execute(statement).first()
    if row is None:
        return None
    _cancel_unsent(conn, new)
    created = OptOut(int(row.id), new.account_id, new.number, new.at, new.method, new.reason,
                     new.inbound_id)
    if new.account_id is not None:  # the global list belongs to no account
        webhooks.emit(conn, new.account_id, EventType.OPTOUT_CREATED, new.at,
                      optout_data(created))
    return created


# What a message the new entry stops before it is sent ends with.
_STOPPED = {OPTED_OUT: ErrorInfo(OPTED_OUT, "the recipient opted out before it was sent"),
            BLOCKED: ErrorInfo(BLOCKED, "the recipient was blocked before it was sent")}


def _cancel_unsent(conn: Connection, new: NewOptOut) -> None:
    """WASPA's "no further messages": what the list now refuses at intake, accepted
    earlier and not yet with a carrier (a scheduled campaign, a queue), is cancelled too."""
    if new.account_id is None:
        cancel_unsent_to(conn, new.number, None, False, _STOPPED[BLOCKED], new.at)
        return
    scope = conn.execute(select(optout_settings.c.scope).where(
        optout_settings.c.account_id == new.account_id)).scalar()
    cancel_unsent_to(conn, new.number, new.account_id, scope != OptOutScope.ALL.value,
                     _STOPPED[OPTED_OUT], new.at)


def add(db: Database, new: NewOptOut) -> tuple[OptOut, bool]:
    """The entry for the number on that list, and whether it is new."""
    with db.write() as conn:
        created = create_optout(conn, new)
        if created is not None:
            return created, True
        found = _find(conn, new.account_id, new.number)
    assert found is not None  # a conflict means the row is there, and nothing deletes it here
    return found, False


def add_many(db: Database, entries: Sequence[NewOptOut]) -> int:
    """Each entry through `create_optout`, IMPORT_CHUNK per transaction: a file of a
    national registry's size neither waits for one commit per number nor holds the
    write lock for the whole file. A file read again adds only what is missing."""
    added = 0
    for part in chunks(list(entries), IMPORT_CHUNK):
        with db.write() as conn:
            added += sum(create_optout(conn, new) is not None for new in part)
    return added


def remove(db: Database, account_id: int | None, number: str) -> bool:
    with db.write() as conn:
        done = conn.execute(delete(o).where(_on_list(account_id), o.c.number == number))
    return bool(done.rowcount)


def get(db: Database, account_id: int | None, number: str) -> OptOut | None:
    with db.read() as conn:
        return _find(conn, account_id, number)


def page(db: Database, account_id: int | None, after_id: int, limit: int) -> list[OptOut]:
    """One page of a list in the order entries were made, after entry `after_id`."""
    query = (select(o).where(_on_list(account_id), o.c.id > after_id)
             .order_by(o.c.id).limit(limit))
    with db.read() as conn:
        return [_from_row(r) for r in conn.execute(query).mappings()]


def get_settings(db: Database, account_id: int) -> OptOutSettings:
    with db.read() as conn:
        row = conn.execute(select(optout_settings).where(
            optout_settings.c.account_id == account_id)).first()
    if row is None:
        return OptOutSettings(account_id)
    return OptOutSettings(account_id, OptOutScope(row.scope), bool(row.confirm))


def save_settings(db: Database, settings: OptOutSettings) -> None:
    s = optout_settings
    values = {"scope": settings.scope.value, "confirm": settings.confirm}
    with db.write() as conn:
        done = conn.execute(s.update().where(s.c.account_id == settings.account_id)
                            .values(**values))
        if not done.rowcount:
            conn.execute(s.insert().values(account_id=settings.account_id, **values))


def confirmations_due(db: Database, inbound_ids: Sequence[str]) -> list[OptOut]:
    """The opt-outs these inbound messages created for accounts that confirm them."""
    s = optout_settings
    found: list[OptOut] = []
    with db.read() as conn:
        for part in chunks(list(inbound_ids)):
            query = (select(o).join(s, s.c.account_id == o.c.account_id)
                     .where(o.c.inbound_id.in_(part), s.c.confirm.is_(True)).order_by(o.c.id))
            found += [_from_row(r) for r in conn.execute(query).mappings()]
    return found


def _on_list(account_id: int | None) -> Any:
    return o.c.account_id.is_(None) if account_id is None else o.c.account_id == account_id


def _find(conn: Connection, account_id: int | None, number: str) -> OptOut | None:
    row = conn.execute(select(o).where(_on_list(account_id), o.c.number == number)
                       ).mappings().first()
    return None if row is None else _from_row(row)


def _from_row(row: Mapping[Any, Any]) -> OptOut:
    return OptOut(row["id"], row["account_id"], row["number"], row["created_at"],
                  OptOutMethod(row["method"]), row["reason"], row["inbound_id"])


# --- intake's check ----------------------------------------------------------------


class Barred:
    """The recipients of one commit group that are on a list, read once for the whole
    group: `refusal` then answers each message from memory."""

    def __init__(self, blocked: set[str], opted: set[tuple[int, str]],
                 every_class: set[int]) -> None:
        self.blocked = blocked  # on the global block list
        self.opted = opted  # (account id, number) on an account's list
        self.every_class = every_class  # accounts whose opt-outs stop every class

    def refusal(self, nm: NewMessage) -> str | None:
        """OPTED_OUT, BLOCKED, or None when the message may go. The hub's own messages
        (an opt-out's confirmation) pass the account's list, never the block list."""
        if nm.recipient in self.blocked:
            return BLOCKED
        if (nm.account_id, nm.recipient) not in self.opted or nm.source is Source.HUB:
            return None
        if nm.message_class is MessageClass.MARKETING or nm.account_id in self.every_class:
            return OPTED_OUT
        return None


_ANY = select(o.c.id).limit(1)  # built once: intake's every commit asks
_ANY_SQLITE = "SELECT id FROM optouts LIMIT 1"  # the same through the driver (acceptance.py)


def barred(conn: Connection, group: Sequence[NewMessage]) -> Barred | None:
    """The group's barred recipients, or None when none is (the common case: one cheap
    read when no list has any entry)."""
    if conn.dialect.name == "sqlite":
        if driver(conn).execute(_ANY_SQLITE).fetchone() is None:
            return None
    elif conn.execute(_ANY).first() is None:
        return None
    accounts = {nm.account_id for nm in group}
    numbers = sorted({nm.recipient for nm in group})
    blocked: set[str] = set()
    opted: set[tuple[int, str]] = set()
    for part in chunks(numbers):
        for account_id, number in conn.execute(
                select(o.c.account_id, o.c.number).where(o.c.number.in_(part))):
            if account_id is None:
                blocked.add(number)
            elif account_id in accounts:
                opted.add((account_id, number))
    if not blocked and not opted:
        return None
    every_class: set[int] = set()
    if opted:
        s = optout_settings
        every_class = set(conn.execute(select(s.c.account_id).where(
            s.c.account_id.in_(sorted({a for a, _ in opted})),
            s.c.scope == OptOutScope.ALL.value)).scalars())
    return Barred(blocked, opted, every_class)
