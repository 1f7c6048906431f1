"""Reads that find messages by what a customer knows about them (their own client
references) rather than by the hub's id."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select

from hub.model import Message
from spool.engine import Database
from spool.rows import chunks, message_from_row
from spool.tables import messages


def find_by_client_ref(db: Database, account_id: int,
                       client_refs: Sequence[str]) -> dict[str, Message]:
    """The account's messages with these client references, keyed by reference; a
    reference the account never used is simply absent."""
    wanted = sorted(set(client_refs))
    found: dict[str, Message] = {}
    if not wanted:
        return found
    with db.read() as conn:
        # Chunked: an IN list has a bound-parameter limit (SQLite 32,766), and the
        # unique (account_id, client_ref) index answers each chunk directly.
        for part in chunks(wanted):
            query = select(messages).where(messages.c.account_id == account_id,
                                           messages.c.client_ref.in_(part))
            for row in conn.execute(query).mappings():
                found[row["client_ref"]] = message_from_row(row)
    return found
