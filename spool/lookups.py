"""Reads that find messages by what a customer knows about them (their own client
references) rather than by the hub's id."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, select

from hub.model import Message
from spool.engine import Database
from spool.rows import chunks, message_from_row
from spool.tables import messages


def find_by_client_ref(db: Database, account_id: int,
                       client_refs: Sequence[str]) -> dict[str, Message]:
    """The account's messages with these client references, keyed by reference; a
    reference the account never used is simply absent."""
    if not client_refs:
        return {}
    with db.read() as conn:
        return messages_by_client_ref(conn, account_id, client_refs)


def messages_by_client_ref(conn: Connection, account_id: int,
                           client_refs: Iterable[str]) -> dict[str, Message]:
    """As find_by_client_ref, inside a transaction the caller holds (intake's, which
    asks this of every reference it accepts: almost all of them are new)."""
    present = sorted(_present(conn, account_id, sorted(set(client_refs))))
    found: dict[str, Message] = {}
    # Chunked: an IN list has a bound-parameter limit (SQLite 32,766), and the unique
    # (account_id, client_ref) index answers each chunk directly.
    for part in chunks(present):
        query = select(messages).where(messages.c.account_id == account_id,
                                       messages.c.client_ref.in_(part))
        for row in conn.execute(query).mappings():
            found[row["client_ref"]] = message_from_row(row)
    return found


def _present(conn: Connection, account_id: int, client_refs: list[str]) -> set[str]:
    """Which of these references the account has used: one statement with the list as
    a single parameter (an array; JSON for SQLite), answered from the unique index
    alone, instead of SQLAlchemy rendering an IN list of hundreds of parameters."""
    if not client_refs:
        return set()
    if conn.dialect.name == "postgresql":
        sql = (f"SELECT client_ref FROM {messages.name} "  # noqa: S608 - our own table name
               "WHERE account_id = %(account)s AND client_ref = ANY(%(refs)s)")
        params: Any = {"account": account_id, "refs": client_refs}
    else:
        sql = (f"SELECT client_ref FROM {messages.name} "  # noqa: S608 - our own table name
               "WHERE account_id = ? AND client_ref IN (SELECT value FROM json_each(?))")
        params = (account_id, json.dumps(client_refs))
    return {row[0] for row in conn.exec_driver_sql(sql, params)}
