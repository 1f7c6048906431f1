"""Proof of when each message was accepted, held, submitted and finished, read from
the append-only event table, as the rows of `smshub audit export` (CPA regulation 4(3)
puts the onus of proof on the marketer)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from hub.cells import neutral
from hub.cpa import ZONE
from hub.model import Event, Message, Status

HEADER = ("message_id", "client_ref", "recipient", "class", "accepted_at", "accepted_status",
          "held_at", "held_reason", "submitted_at", "carrier", "final_at", "final_status",
          "final_reason", "status_now")


class AuditStore(Protocol):
    """The spool's read of an account's messages with their events, for the export."""

    def audit_trail(self, account_id: int, start: datetime, end: datetime, after_id: str,
                    limit: int) -> list[tuple[Message, list[Event]]]:
        """A page of the account's messages accepted in [start, end), by id after
        `after_id` ("" first), each with its events in the order they were written."""
        ...


def _at(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(ZONE).isoformat(timespec="seconds")


def row(message: Message, events: Sequence[Event]) -> list[str]:
    """One message's line: every time taken from its events, the first of each kind
    (a message held twice shows the first hold; its events say the rest)."""
    accepted = events[0] if events else None
    held = next((e for e in events if e.status is Status.SCHEDULED and HELD_MARK in e.detail),
                None)
    submitted = next((e for e in events if e.status is Status.SUBMITTED), None)
    final = next((e for e in reversed(events) if e.status.final), None)
    return [neutral(v) for v in (
        message.id, message.client_ref, message.recipient, message.message_class.value,
        _at(accepted.at if accepted else message.accepted_at),
        accepted.status.value if accepted else "",
        _at(held.at if held else None), _hold_reason(held.detail) if held else "",
        _at(submitted.at if submitted else None), message.carrier,
        _at(final.at if final else None), final.status.value if final else "",
        final.detail if final else "", message.status.value,
    )]


# How a hold reads in an event (hub.cpa.hold's text), before or after the intake detail.
HELD_MARK = "held: no direct marketing"


def _hold_reason(detail: str) -> str:
    start = detail.find(HELD_MARK)
    return detail[start:] if start >= 0 else detail
