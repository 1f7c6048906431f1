"""Conversions between table rows and the hub's model records."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    Boolean,
    ClauseElement,
    ColumnElement,
    Connection,
    String,
    TypeDecorator,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from hub.model import (
    Account,
    Encoding,
    ErrorInfo,
    Event,
    Message,
    MessageClass,
    NewMessage,
    Source,
    Status,
)
from spool.bulk import driver
from spool.tables import from_micros, from_units

T = TypeVar("T")
CHUNK = 500  # keeps IN lists and bind-parameter counts well inside every backend's limits


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _JsonList(TypeDecorator[Sequence[Any]]):
    """A list bound as one JSON text, for SQLite's json_each."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value: Sequence[Any] | None, dialect: Any) -> str | None:
        return None if value is None else json.dumps(list(value))

    def process_literal_param(self, value: Sequence[Any] | None, dialect: Any) -> str:
        # For a statement printed with its values (query plans in the tests).
        return "NULL" if value is None else "'" + json.dumps(list(value)).replace("'", "''") + "'"


class _Listed(ColumnElement[bool]):
    """`column IN` the list passed as one parameter; see `listed`."""

    inherit_cache = True
    _is_implicitly_boolean = True  # a condition itself: no "= 1" where booleans are ints
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("name", InternalTraversal.dp_string)]
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], name: str) -> None:
        self.column = column
        self.name = name


@compiles(_Listed)
def _expanding_in(element: _Listed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column.in_(bindparam(element.name, expanding=True)),
                                **kw))


@compiles(_Listed, "postgresql")
def _any_array(element: _Listed, compiler: Any, **kw: Any) -> str:
    array = bindparam(element.name, type_=postgresql.ARRAY(element.column.type))
    return str(compiler.process(element.column == any_(array), **kw))


@compiles(_Listed, "sqlite")
def _json_each_in(element: _Listed, compiler: Any, **kw: Any) -> str:
    values = func.json_each(bindparam(element.name, type_=_JsonList())).table_valued("value")
    return str(compiler.process(element.column.in_(select(values.c.value).scalar_subquery()),
                                **kw))


def listed(column: ColumnElement[Any], name: str = "ids") -> ColumnElement[bool]:
    """`column IN` the list passed as parameter `name`, as one parameter: on SQLite a JSON
    text that json_each reads, on PostgreSQL an array (`column = ANY(...)`). The
    statement is compiled once and then found in SQLAlchemy's cache (and, on
    PostgreSQL, prepared once by psycopg); an expanding IN is rendered anew at every
    execution: 60 of the 80 us a lookup of 80 ids took, inside the writer's turn."""
    return _Listed(column, name)


def on_driver(statement: ClauseElement) -> str:
    """`statement` as SQLite's driver takes it (qmark parameters in the statement's
    order; a `listed` list is one JSON text): hot lookups run there at once, since
    SQLAlchemy's execution cost more than the lookup (about 100 µs a statement on a
    slow host). One statement, so SQLite and PostgreSQL ask the same."""
    return str(statement.compile(dialect=sqlite.dialect()))


def listed_rows(conn: Connection, sql: str, *params: Any, ids: Iterable[Any]) -> list[Any]:
    """The rows of SQLite text `sql` (from `on_driver`, or written as it would be) for
    `params` and then the list `ids`, fetched whole from the driver."""
    return driver(conn).execute(sql, (*params, json.dumps(list(ids)))).fetchall()


_SOURCES = {s.value: s for s in Source}
_ENCODINGS = {e.value: e for e in Encoding}
# Statuses by their stored value: a dict lookup, where Status(value) goes through the
# enum machinery (about a microsecond) for every row the hot paths read.
STATUSES = {s.value: s for s in Status}
_CLASSES = {c.value: c for c in MessageClass}


class _Typed:
    """Rows read through the table's types: their times and costs are the model's."""

    @staticmethod
    def time(value: datetime | None) -> datetime | None:
        return value

    @staticmethod
    def cost(value: Decimal) -> Decimal:
        return value


class FromDriver:
    """message_from_row's conversions for rows read as the driver gives them (times in
    microseconds, costs in units; RAW_COLUMNS), each distinct value once per read: the
    messages a claim reads back share their acceptance times (a commit group's) and a
    few costs. A claim reads every message a dispatcher sends, and converting each time
    and cost through the table's types was most of that read."""

    def __init__(self) -> None:
        self._times: dict[int | None, datetime | None] = {None: None}
        self._costs: dict[int, Decimal] = {}

    def time(self, micros: int | None) -> datetime | None:
        try:
            return self._times[micros]
        except KeyError:
            assert micros is not None
            found = self._times[micros] = from_micros(micros)
            return found

    def cost(self, units: int) -> Decimal:
        try:
            return self._costs[units]
        except KeyError:
            found = self._costs[units] = from_units(units)
            return found


_TYPED = _Typed()


def message_from_row(row: Mapping[Any, Any], convert: _Typed | FromDriver = _TYPED) -> Message:
    """A Message from a row of the messages table read through the table's types (or
    as the driver gives it, with `convert` a FromDriver)."""
    return message_from_values([row[name] for name in RAW_COLUMNS], convert)


def message_from_values(values: Sequence[Any], convert: _Typed | FromDriver = _TYPED) -> Message:
    """A Message from the values of RAW_COLUMNS in their order: read through the table's
    types, or as the driver gives them with `convert` a FromDriver (a claim's rows, by
    position: every message a dispatcher sends is made here)."""
    (id_, account_id, source, recipient, text, encoding, segments, cost, status, attempts,
     message_class, priority, accepted_at, updated_at, due_at, sender, client_ref, batch_id,
     send_at, expires_at, carrier, carrier_message_id, code, error_text, submitted_at,
     completed_at) = values
    time = convert.time
    return Message(
        id=id_,
        account_id=account_id,
        source=_SOURCES[source],
        recipient=recipient,
        text=text,
        encoding=_ENCODINGS[encoding],
        segments=segments,
        cost=convert.cost(cost),
        status=STATUSES[status],
        attempts=attempts,
        message_class=_CLASSES[message_class],
        priority=priority,
        accepted_at=_aware(time(accepted_at)),
        updated_at=_aware(time(updated_at)),
        due_at=_aware(time(due_at)),
        sender=sender,
        client_ref=client_ref,
        batch_id=batch_id,
        send_at=time(send_at),
        expires_at=time(expires_at),
        carrier=carrier,
        carrier_message_id=carrier_message_id,
        error=None if code is None else ErrorInfo(code, error_text or ""),
        submitted_at=time(submitted_at),
        completed_at=time(completed_at),
    )


# What message_from_row reads, for queries that select them by name as the driver gives
# them (no types: FromDriver converts).
RAW_COLUMNS = (
    "id", "account_id", "source", "recipient", "text", "encoding", "segments", "cost",
    "status", "attempts", "message_class", "priority", "accepted_at", "updated_at",
    "due_at", "sender", "client_ref", "batch_id", "send_at", "expires_at", "carrier",
    "carrier_message_id", "error_code", "error_text", "submitted_at", "completed_at",
)


def _aware(value: datetime | None) -> datetime:
    assert value is not None  # a NOT NULL column
    return value


def message_from_new(nm: NewMessage) -> Message:
    """The Message a NewMessage becomes the moment it is stored."""
    return Message(
        id=nm.id,
        account_id=nm.account_id,
        source=nm.source,
        recipient=nm.recipient,
        text=nm.text,
        encoding=nm.encoding,
        segments=nm.segments,
        cost=nm.cost,
        status=nm.initial_status,
        attempts=0,
        message_class=nm.message_class,
        priority=nm.priority,
        accepted_at=nm.accepted_at,
        updated_at=nm.accepted_at,
        due_at=nm.due_at,
        sender=nm.sender,
        client_ref=nm.client_ref,
        batch_id=nm.batch_id,
        send_at=nm.send_at,
        expires_at=nm.expires_at,
    )


MESSAGE_COLUMNS = (
    "id", "account_id", "source", "client_ref", "batch_id", "sender", "recipient", "text",
    "encoding", "segments", "cost", "message_class", "priority", "send_at", "expires_at",
    "due_at", "status", "attempts", "accepted_at", "updated_at", "batch_line",
)


def event_from_row(row: Mapping[Any, Any]) -> Event:
    return Event(row["message_id"], row["at"], Status(row["status"]), row["detail"])


def account_from_row(row: Mapping[Any, Any], sender_ids: Iterable[str]) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        balance=row["balance"],
        price_per_segment=row["price_per_segment"],
        sender_ids=tuple(sorted(sender_ids)),
        created_at=row["created_at"],
        enabled=row["enabled"],
        has_password=row["password_hash"] is not None,
        deleted_at=row["deleted_at"],
        marketing_optout=row["marketing_optout"],
    )
