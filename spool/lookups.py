"""Reads that find messages by what a customer knows about them (their own client
references) rather than by the hub's id."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import Connection, bindparam, select

from hub.model import Message
from spool.engine import Database
from spool.rows import listed, message_from_row
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
    asks this of every reference it accepts: almost all of them are new). One statement
    with the list as a single parameter (`listed`), whatever its length: the unique
    (account_id, client_ref) index answers it, and a reference never used reads no row."""
    refs = sorted(set(client_refs))
    if not refs:
        return {}
    rows = conn.execute(_BY_REFS, {"account": account_id, "ids": refs}).mappings()
    return {row["client_ref"]: message_from_row(row) for row in rows}


_BY_REFS = select(messages).where(
    messages.c.account_id == bindparam("account"), listed(messages.c.client_ref))
