"""Reads that find messages by what a customer knows about them (their own client
references) rather than by the hub's id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, select

from hub.model import Message
from spool.engine import Database
from spool.rows import chunks, listed, message_from_row
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
    a single parameter (`listed`), answered from the unique index alone."""
    if not client_refs:
        return set()
    return set(conn.execute(_PRESENT, {"account": account_id, "ids": client_refs}).scalars())


_PRESENT = select(messages.c.client_ref).where(
    messages.c.account_id == bindparam("account"), listed(messages.c.client_ref))
