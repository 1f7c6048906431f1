"""The events the hub pushes to customers (webhooks): their types, which message status
raises which, and the JSON body each carries, one stable shape documented in
docs/webhooks.md and schemas/webhook-event.schema.json."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hub.batches import Batch
from hub.model import Inbound, Status
from hub.optouts import OptOut


class EventType(StrEnum):
    MESSAGE_SUBMITTED = "message.submitted"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_EXPIRED = "message.expired"
    INBOUND_RECEIVED = "inbound.received"
    OPTOUT_CREATED = "optout.created"
    BATCH_COMPLETED = "batch.completed"


ALL_EVENTS = frozenset(EventType)

# The status a message enters -> the event it raises; the others raise none (accepted,
# scheduled, queued and sending are the hub's own business until something happens).
STATUS_EVENTS: dict[Status, EventType] = {
    Status.SUBMITTED: EventType.MESSAGE_SUBMITTED,
    Status.DELIVERED: EventType.MESSAGE_DELIVERED,
    Status.UNDELIVERED: EventType.MESSAGE_FAILED,
    Status.REJECTED: EventType.MESSAGE_FAILED,
    Status.FAILED: EventType.MESSAGE_FAILED,
    Status.CANCELLED: EventType.MESSAGE_FAILED,
    Status.EXPIRED: EventType.MESSAGE_EXPIRED,
}


def parse_event_types(names: Iterable[str]) -> frozenset[EventType]:
    """Subscriptions as customers write them: event names, or `*` for all. Raises
    ValueError naming what is not an event."""
    wanted = [n.strip() for n in names if n.strip()]
    if not wanted:
        raise ValueError("subscribe to at least one event (or '*' for all)")
    if "*" in wanted:
        return ALL_EVENTS
    unknown = sorted(set(wanted) - {e.value for e in EventType})
    if unknown:
        raise ValueError(f"unknown event {', '.join(unknown)}; events are "
                         f"{', '.join(e.value for e in EventType)}")
    return frozenset(EventType(n) for n in wanted)


def stamp(at: datetime) -> str:
    """RFC 3339 in UTC with a Z, the way every event writes times."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def envelope(event: EventType, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    """The body every event has: Standard Webhooks' `type`, `timestamp`, `data`."""
    return {"type": event.value, "timestamp": stamp(at), "data": data}


def message_data(*, message_id: str, status: Status, to: str, sender: str | None,
                 client_ref: str | None, batch_id: str | None, segments: int,
                 error_code: str | None, error_text: str | None, carrier: str | None,
                 at: datetime) -> dict[str, Any]:
    """A message event's `data`: what happened to which message, never its text."""
    return {
        "id": message_id,
        "status": status.value,
        "state": status.public.value,
        "to": to,
        "from": sender,
        "client_ref": client_ref,
        "batch_id": batch_id,
        "segments": segments,
        "carrier": carrier,
        "error": None if error_code is None else {"code": error_code,
                                                  "message": error_text or ""},
        "at": stamp(at),
    }


def inbound_data(message: Inbound) -> dict[str, Any]:
    """An inbound message's `data`: a reply (with the message it answers), an opt-out
    word, or a message out of the blue; the text is the point of it, so it is there."""
    return {
        "id": message.id,
        "kind": message.kind.value,
        "from": message.sender,
        "to": message.recipient,
        "text": message.text,
        "in_reply_to": message.in_reply_to,
        "received_at": stamp(message.received_at),
    }


def batch_data(batch: Batch) -> dict[str, Any]:
    """A batch file's `data` once every row is read and its result file written."""
    return {
        "id": batch.id,
        "file_name": batch.file_name,
        "state": batch.state.value,
        "rows": batch.rows,
        "accepted": batch.accepted,
        "rejected": batch.rejected,
        "received_at": stamp(batch.received_at),
        "finished_at": None if batch.finished_at is None else stamp(batch.finished_at),
    }


def optout_data(optout: OptOut) -> dict[str, Any]:
    """A new opt-out's `data`: the number, how and why, and the reply that carried it."""
    return {
        "number": optout.number,
        "method": optout.method.value,
        "reason": optout.reason,
        "inbound_id": optout.inbound_id,
        "created_at": stamp(optout.created_at),
    }
