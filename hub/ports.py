"""Ports: the interfaces the core needs from the world. Adapters and the spool implement
them; the core imports only these Protocols, never an implementation.

The spool port is synchronous (SQLAlchemy underneath); the core calls it through one
seam, `hub.spoolcall.SpoolRunner`, so blocking work never runs on the event loop.
Carriers and report sinks are asynchronous.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from hub.model import (
    Account,
    Claim,
    DeliveryReport,
    Event,
    Message,
    NewMessage,
    SubmitResult,
    Totals,
    Transition,
)


class SchemaState(StrEnum):
    EMPTY = "empty"  # no tables at all: a first start may create them
    OUTDATED = "outdated"  # tables from an older version: `smshub db upgrade`
    CURRENT = "current"
    NEWER = "newer"  # written by a newer smshub: refuse to touch it


@dataclass(frozen=True, slots=True)
class Committed:
    """The spool's answer for one NewMessage of an `accept` group."""

    message: NewMessage | None = None  # stored now
    duplicate_of: Message | None = None  # same account + client_ref already stored
    insufficient_credit: Decimal | None = None  # balance available when refused


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    account: Account
    digest: bytes


class Spool(Protocol):
    """Durable storage of accounts, messages and their history (spool/ implements it)."""

    # schema
    def schema_state(self) -> SchemaState: ...
    def upgrade(self) -> None: ...
    def ping(self) -> None: ...
    def close(self) -> None: ...

    # accounts
    def create_account(
        self,
        name: str,
        credits: Decimal,
        price_per_segment: Decimal,
        sender_ids: Sequence[str],
    ) -> Account: ...
    def get_account(self, name: str) -> Account: ...
    def get_account_by_id(self, account_id: int) -> Account: ...
    def list_accounts(self) -> list[Account]: ...
    def add_credits(self, name: str, amount: Decimal) -> Account: ...
    def set_password_hash(self, name: str, password_hash: str) -> None: ...
    def password_hash(self, name: str) -> tuple[Account, str] | None: ...
    def add_api_key(self, name: str, key_id: str, digest: bytes) -> None: ...
    def api_key(self, key_id: str) -> ApiKeyRecord | None: ...

    # intake: one transaction for the whole group, credits reserved atomically
    def accept(self, group: Sequence[NewMessage]) -> list[Committed]: ...

    # reading
    def get_message(self, message_id: str) -> Message | None: ...
    def events(self, message_id: str) -> list[Event]: ...
    def totals(self, now: datetime) -> Totals: ...

    # queue
    def claim(self, owner: str, limit: int, lease_seconds: float, now: datetime) -> Claim: ...
    def record(self, token: str, transitions: Sequence[Transition], now: datetime) -> list[str]:
        """Apply transitions of messages still leased under `token`; return applied ids."""
        ...

    def apply_reports(
        self, reports: Sequence[DeliveryReport], now: datetime
    ) -> list[DeliveryReport]:
        """Apply delivery reports; return those whose message is not (yet) known."""
        ...

    def release(self, owner: str, now: datetime) -> int:
        """Put every message leased by `owner` back in the queue (shutdown, restart)."""
        ...

    def recover_expired_leases(self, now: datetime) -> int: ...
    def expire_due(self, now: datetime) -> int:
        """Queued or scheduled messages past expires-at become expired (credit refunded)."""
        ...

    def dead_letter(self, older_than: datetime, now: datetime) -> int:
        """Queued messages accepted before `older_than` fail (credit refunded)."""
        ...


class Carrier(Protocol):
    """An outbound route to handsets: SMPP, an HTTP upstream, or the simulator."""

    name: str

    async def start(self, reports: ReportSink) -> None: ...
    async def stop(self) -> None: ...
    async def submit(self, messages: Sequence[Message]) -> list[SubmitResult]:
        """Submit a batch; one result per message, in order. Never raises for one message."""
        ...


class ReportSink(Protocol):
    """Where every carrier sends delivery reports; returns once they are committed."""

    async def report(self, reports: Sequence[DeliveryReport]) -> None: ...
