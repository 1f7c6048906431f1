"""Plain-data views of records, shared by every output that speaks JSON (the REST API,
`smshub ... --json`), so they cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from hub.model import Event, Message


def money(value: Decimal) -> str:
    return format(value, "f")


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def message_view(message: Message, events: list[Event]) -> dict[str, Any]:
    return {
        "id": message.id,
        "status": message.status.value,
        "state": message.status.public.value,
        "to": message.recipient,
        "from": message.sender,
        "text": message.text,
        "encoding": message.encoding.value,
        "segments": message.segments,
        "cost": money(message.cost),
        "class": message.message_class.value,
        "priority": message.priority,
        "client_ref": message.client_ref,
        "batch_id": message.batch_id,
        "source": message.source.value,
        "attempts": message.attempts,
        "carrier": message.carrier,
        "carrier_message_id": message.carrier_message_id,
        "error": None if message.error is None
        else {"code": message.error.code, "message": message.error.text},
        "send_at": _iso(message.send_at),
        "expires_at": _iso(message.expires_at),
        "accepted_at": _iso(message.accepted_at),
        "submitted_at": _iso(message.submitted_at),
        "completed_at": _iso(message.completed_at),
        "updated_at": _iso(message.updated_at),
        "events": [{"at": _iso(e.at), "status": e.status.value, "detail": e.detail}
                   for e in events],
    }
