"""Plain-data views of records, shared by every output that speaks JSON (the REST API,
`smshub ... --json`), so they cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from hub import cpa
from hub.consents import Consent
from hub.model import Event, Inbound, Message, Status, WebhookEndpoint
from hub.optouts import OptOut


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
        "held": held_view(message),
        "events": [{"at": _iso(e.at), "status": e.status.value, "detail": e.detail}
                   for e in events],
    }


def held_view(message: Message) -> dict[str, Any] | None:
    """Why a marketing message waits (CPA regulation 4) and until when; None otherwise."""
    if message.status is not Status.SCHEDULED or message.error is None \
            or message.error.code != cpa.HELD:
        return None
    return {"code": message.error.code, "reason": message.error.text,
            "until": _iso(message.due_at)}


def inbound_view(message: Inbound) -> dict[str, Any]:
    """An inbound message: `in_reply_to` is the hub's message it answers, if linked."""
    return {
        "id": message.id,
        "from": message.sender,
        "to": message.recipient,
        "text": message.text,
        "received_at": _iso(message.received_at),
        "kind": message.kind.value,
        "in_reply_to": message.in_reply_to,
    }


def optout_view(optout: OptOut) -> dict[str, Any]:
    """A number on an opt-out list: when, how (reply, api, cli, import), why, and the
    inbound message that carried it."""
    return {
        "number": optout.number,
        "created_at": _iso(optout.created_at),
        "method": optout.method.value,
        "reason": optout.reason,
        "inbound_id": optout.inbound_id,
    }


def consent_view(consent: Consent) -> dict[str, Any]:
    """A recipient's consent to marketing outside CPA hours, as the account recorded it."""
    return {"number": consent.number, "created_at": _iso(consent.created_at),
            "note": consent.note}


def webhook_view(endpoint: WebhookEndpoint, with_secret: bool = False) -> dict[str, Any]:
    """An endpoint as its owner sees it; the secret only where it was just made."""
    view: dict[str, Any] = {
        "id": endpoint.id,
        "url": endpoint.url,
        "events": sorted(endpoint.events),
        "enabled": endpoint.enabled,
        "disabled_reason": endpoint.disabled_reason,
        "kind": endpoint.kind,
        "description": endpoint.description,
        "created_at": _iso(endpoint.created_at),
    }
    if with_secret:
        view["secret"] = endpoint.secret
        view["previous_secret_valid_until"] = _iso(endpoint.previous_until)
    return view


def delivery_view(row: dict[str, Any]) -> dict[str, Any]:
    """One event owed to or sent to an endpoint (the outbox item's id is its webhook-id)."""
    return {
        "event_id": row["id"],
        "type": row["event_type"],
        "status": row["status"],
        "attempts": row["attempts"],
        "error": None if row["error_code"] is None
        else {"code": row["error_code"], "message": row["error_text"] or ""},
        "created_at": _iso(row["created_at"]),
        "updated_at": _iso(row["updated_at"]),
    }
