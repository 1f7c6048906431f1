"""Builders for test data: accounts in a spool, NewMessages with real ULIDs, and hostile
mail structures."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from hub.ids import new_id
from hub.model import Account, Encoding, MessageClass, NewMessage, Source
from hub.ports import Spool

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
_names = itertools.count(1)


def make_account(
    spool: Spool,
    name: str | None = None,
    *,
    credits: Decimal | str = "100",
    price: Decimal | str = "0.05",
    sender_ids: Sequence[str] = ("ACME",),
) -> Account:
    return spool.create_account(
        name or f"account{next(_names)}", Decimal(credits), Decimal(price), sender_ids
    )


def new_message(
    account: Account | int,
    *,
    cost: Decimal | str = "0.05",
    client_ref: str | None = None,
    accepted_at: datetime = NOW,
    due_in: float = 0.0,
    expires_at: datetime | None = None,
    priority: int = 0,
    recipient: str = "+27821234567",
    text: str = "hello",
    source: Source = Source.REST,
    batch_id: str | None = None,
    batch_line: int | None = None,
) -> NewMessage:
    """A priced message; `due_in` seconds after acceptance (0 = queued, > 0 = scheduled)."""
    account_id = account if isinstance(account, int) else account.id
    due_at = accepted_at + timedelta(seconds=due_in)
    return NewMessage(
        # The hub's own ids: in the order made, as intake's are (python-ulid's are random
        # within a millisecond, and a claim takes messages due at once in id order).
        id=new_id(),
        account_id=account_id,
        source=source,
        recipient=recipient,
        text=text,
        encoding=Encoding.GSM7,
        segments=1,
        cost=Decimal(cost),
        accepted_at=accepted_at,
        due_at=due_at,
        sender="ACME",
        client_ref=client_ref,
        batch_id=batch_id,
        message_class=MessageClass.TRANSACTIONAL,
        priority=priority,
        send_at=due_at if due_in else None,
        expires_at=expires_at,
        batch_line=batch_line,
    )


SA_TIME = ZoneInfo("Africa/Johannesburg")


def sa_minute_ahead(days: int = 30) -> datetime:
    """A whole minute `days` ahead in South African time (aware): a send time intake
    takes today and in years to come (it refuses one more than 366 days ahead)."""
    return (datetime.now(SA_TIME) + timedelta(days=days)).replace(second=0, microsecond=0)


def nested_multipart(depth: int, head: str) -> bytes:
    """A mail (`head`: its header lines, each ending in CRLF) whose text/plain part sits
    `depth` multipart/mixed levels deep, each level declaring its own boundary."""
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n'
                      for i in range(depth))
    closing = "".join(f"--b{i}--\r\n" for i in reversed(range(depth)))
    return (head + opening + "Content-Type: text/plain\r\n\r\nhello\r\n" + closing).encode()
