"""Operators (the hub's staff, apart from customers' accounts): who they are, the stamp
of a password that portal sessions are bound to, credit changes with a reason, and the
queue's last hour by minute."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from hub.model import Account

MIN_PASSWORD = 8  # characters, as an account's password


def password_stamp(password_hash: str | None) -> str:
    """A short digest of a stored password hash, signed into the portal sessions opened
    with that password (operators' and customers'): a new password makes a new stamp,
    and the sessions of the old one end. Empty for no password: no session matches it."""
    if not password_hash:
        return ""
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Operator:
    id: int
    name: str
    created_at: datetime
    # Changes with the password (a digest of its hash, never the hash): a session made
    # before `smshub operator passwd` carries the old one and ends.
    stamp: str = ""


@dataclass(frozen=True, slots=True)
class CreditChange:
    """One line of an account's credit ledger: what was added (or taken), the balance
    after it, why, and by whom (`cli` or `operator NAME`)."""

    account_id: int
    amount: Decimal
    balance: Decimal
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute of the queue's traffic, from the messages' events: entries into the
    queue (accepted, or queued again for another attempt), claims by a dispatcher and
    hand-overs a carrier took (submitted)."""

    start: datetime
    entered: int = 0
    claimed: int = 0
    submitted: int = 0


class AdminStore(Protocol):
    """The spool's side of operators: their logins, the credit ledger, the portal's
    signed-out sessions and the queue's recent minutes."""

    def add_operator(self, name: str, password_hash: str, now: datetime) -> Operator:
        """Conflict if the name is taken."""
        ...

    def list_operators(self) -> list[Operator]: ...
    def remove_operator(self, name: str) -> None:
        """NotFound if there is no such operator."""
        ...

    def set_operator_password(self, name: str, password_hash: str) -> None: ...
    def operator_login(self, name: str) -> tuple[Operator, str] | None:
        """The operator and its password hash, or None."""
        ...

    def get_operator(self, operator_id: int) -> Operator | None: ...
    def end_session(self, key: str, until: datetime, now: datetime) -> None:
        """Remember a portal session (customer's or operator's, named by `key`) as signed
        out until `until`, when it would have expired anyway; forget those past theirs."""
        ...

    def session_ended(self, key: str) -> bool: ...
    def credit_account(
        self, name: str, amount: Decimal, reason: str, actor: str, now: datetime
    ) -> Account:
        """Add (or, negative, take) credit and write the ledger line, at once."""
        ...

    def credit_changes(self, account_id: int, limit: int) -> list[CreditChange]:
        """The account's ledger, newest first."""
        ...

    def queue_minutes(self, since: datetime, until: datetime) -> list[Minute]:
        """The minutes in [since, until) that had any traffic, oldest first."""
        ...


def depth_by_minute(
    minutes: Sequence[Minute], starts: Sequence[datetime], due_now: int
) -> list[int]:
    """The queue's depth at the end of each minute in `starts`, worked back from the
    depth now: each later minute's claims put back, its entries taken off. Scheduled
    messages fall due without an event, so a minute where many did reads a little high."""
    by_start = {m.start: m for m in minutes}
    depths, depth = [], due_now
    for start in reversed(starts):
        depths.append(max(depth, 0))
        minute = by_start.get(start)
        if minute is not None:
            depth += minute.claimed - minute.entered
    return list(reversed(depths))
