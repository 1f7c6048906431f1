"""Bulk writes on the hot paths (accepted messages and their events, dispatch outcomes).
Rows arrive in driver form (times as microseconds, money as units) and go to the driver
directly: SQLAlchemy's per-row parameter processing cost more than SQLite itself. SQLite
inserts use multi-row VALUES statements; PostgreSQL uses COPY, several times faster than
any INSERT there, inside the same transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from itertools import chain
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    Integer,
    Table,
    TypeDecorator,
)


def bulk_insert(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT rows of driver values, given in `columns` order."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    # SQLite: multi-row VALUES statements of power-of-two sizes (1,000 rows are 256 x 3,
    # 128, 64, 32 and 8: seven statements, each prepared once and then cached by the
    # driver). An executemany steps SQLite once per row and gives up the GIL at every
    # step; while the event loop holds the GIL with other requests' work, each step then
    # waits for it (up to the 5 ms switch interval). A few large steps keep the spool
    # thread from stalling that way, and bind in C: intake's spool time fell by a fifth.
    cursor = driver(conn)
    for start, size in _chunks(len(rows)):
        flat = tuple(chain.from_iterable(rows[start : start + size]))
        cursor.execute(_values_sql(table, columns, size), flat)


MAX_VALUES_ROWS = 256  # x 20 columns stays far below SQLite's 32,766 bound parameters


@lru_cache(maxsize=128)
def _values_sql(table: Table, columns: tuple[str, ...], count: int) -> str:
    _known(table, columns)
    row = f"({', '.join('?' * len(columns))})"
    values = ", ".join([row] * count)
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES {values}"  # noqa: S608


def _copy(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    raw = conn.connection.driver_connection  # psycopg 3, in this transaction
    assert raw is not None
    names = ", ".join(columns)  # our own column names, never input
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def bulk_update(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str = "id",
    keep: frozenset[str] = frozenset(),
    constants: Mapping[str, Any] | None = None,
) -> None:
    """UPDATE many rows, each a mapping of column -> driver value (all with the same keys,
    `key` among them). Columns in `keep` keep their stored value where the row gives None;
    `constants` are set on every row. SQLite: UPDATE ... FROM a VALUES list. PostgreSQL:
    one statement over unnest()ed arrays; hundreds of single-row UPDATEs cost both more."""
    if not rows:
        return
    columns = tuple(name for name in rows[0] if name != key)
    fixed = dict(constants or {})
    if conn.dialect.name == "postgresql":
        sql = _unnest_update(table, key, columns, keep, tuple(fixed))
        params = {f"c{i}": [row[name] for row in rows] for i, name in enumerate((key, *columns))}
        params.update({f"k_{name}": value for name, value in fixed.items()})
        conn.exec_driver_sql(sql, params)
        return
    constant_values = tuple(fixed.values())
    names = (key, *columns)
    values = [tuple(row[name] for name in names) for row in rows]
    if sqlite3.sqlite_version_info < (3, 33):  # no UPDATE ... FROM: one row per step
        sql = _sqlite_update(table, key, columns, keep, tuple(fixed))
        conn.exec_driver_sql(sql, [(*v[1:], *constant_values, v[0]) for v in values])
        return
    # Keys are unique here (callers keep one change per message). As with inserts, a few
    # large steps rather than one per row: see bulk_insert for the GIL stall they avoid.
    cursor = driver(conn)
    for start, size in _chunks(len(values)):
        flat = (*chain.from_iterable(values[start : start + size]), *constant_values)
        cursor.execute(_sqlite_update_from(table, key, columns, keep, tuple(fixed), size), flat)


def driver(conn: Connection) -> sqlite3.Connection:
    """The SQLite driver's connection under `conn`, in its transaction: a bulk write's
    statements go to it directly. They need nothing of SQLAlchemy's execution (no types,
    no result), which cost more per statement (15 us) than binding a few hundred values;
    its errors are the driver's own, which spool.faults reads as well."""
    raw = conn.connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return raw


def _chunks(count: int) -> Iterator[tuple[int, int]]:
    """(start, size) of power-of-two chunks of at most MAX_VALUES_ROWS: few statement
    texts (each prepared once, then cached by the driver) for any number of rows."""
    start, size = 0, MAX_VALUES_ROWS
    while start < count:
        while size > count - start:
            size //= 2
        yield start, size
        start += size


@lru_cache(maxsize=64)
def _sqlite_update(
    table: Table, key: str, columns: tuple[str, ...], keep: frozenset[str],
    constants: tuple[str, ...],
) -> str:
    _known(table, (key, *columns, *constants))
    sets = [f"{c} = COALESCE(?, {c})" if c in keep else f"{c} = ?" for c in columns]
    sets += [f"{c} = ?" for c in constants]
    return f"UPDATE {table.name} SET {', '.join(sets)} WHERE {key} = ?"  # noqa: S608


@lru_cache(maxsize=128)
def _sqlite_update_from(
    table: Table, key: str, columns: tuple[str, ...], keep: frozenset[str],
    constants: tuple[str, ...], count: int,
) -> str:
    names = (key, *columns)
    _known(table, (*names, *constants))
    t = table.name
    sets = [f"{c} = COALESCE(v.{c}, {t}.{c})" if c in keep else f"{c} = v.{c}" for c in columns]
    sets += [f"{c} = ?" for c in constants]
    row = f"({', '.join('?' * len(names))})"
    values = ", ".join([row] * count)
    update = f"UPDATE {t} SET {', '.join(sets)} FROM v WHERE {t}.{key} = v.{key}"  # noqa: S608
    return f"WITH v({', '.join(names)}) AS (VALUES {values}) {update}"


@lru_cache(maxsize=64)
def _unnest_update(
    table: Table, key: str, columns: tuple[str, ...], keep: frozenset[str],
    constants: tuple[str, ...],
) -> str:
    names = (key, *columns)
    _known(table, (*names, *constants))
    arrays = ", ".join(
        f"%(c{i})s::{_pg_type(table, name)}[]" for i, name in enumerate(names)
    )
    sets = [
        f"{c} = COALESCE(v.{c}, t.{c})" if c in keep else f"{c} = v.{c}" for c in columns
    ]
    sets += [f"{c} = %(k_{c})s" for c in constants]
    return (
        f"UPDATE {table.name} AS t SET {', '.join(sets)} "  # noqa: S608
        f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE t.{key} = v.{key}"
    )


def _known(table: Table, names: Sequence[str]) -> None:
    """Only the table's own column names ever reach the SQL text built above."""
    for name in names:
        if name not in table.c:
            raise ValueError(f"{table.name} has no column {name!r}")


def _pg_type(table: Table, column: str) -> str:
    kind = table.c[column].type
    if isinstance(kind, TypeDecorator):
        kind = kind.impl_instance
    if isinstance(kind, BigInteger):
        return "bigint"
    if isinstance(kind, Integer):
        return "integer"
    return "text"
