"""Bulk inserts on the hot path (accepted messages and their events). Rows arrive in
driver form (times as microseconds, money as units). SQLite gets them through one
executemany of a statement compiled once (SQLAlchemy's per-row parameter processing cost
more than SQLite itself); PostgreSQL through COPY, several times faster than any
INSERT there, inside the same transaction."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Dialect, Table, bindparam, insert


def bulk_insert(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    """INSERT rows of driver values, given in `columns` order, in one executemany."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        _copy(conn, table, columns, rows)
        return
    sql, order = _compiled(conn.dialect, table, columns)
    if not conn.dialect.positional:
        conn.exec_driver_sql(sql, [dict(zip(columns, row, strict=True)) for row in rows])
    elif order == columns:
        conn.exec_driver_sql(sql, list(rows))
    else:
        index = [columns.index(name) for name in order]
        conn.exec_driver_sql(sql, [tuple(row[i] for i in index) for row in rows])


@lru_cache(maxsize=64)
def _compiled(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, tuple[str, ...]]:
    compiled = insert(table).values({name: bindparam(name) for name in columns}).compile(
        dialect=dialect
    )
    order = tuple(compiled.positiontup or columns) if dialect.positional else columns
    return str(compiled), order



def _copy(
    conn: Connection, table: Table, columns: tuple[str, ...], rows: Sequence[tuple[Any, ...]]
) -> None:
    raw = conn.connection.driver_connection  # psycopg 3, in this transaction
    assert raw is not None
    names = ", ".join(columns)  # our own column names, never input
    with raw.cursor() as cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
