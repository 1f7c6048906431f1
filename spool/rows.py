"""Conversions between table rows and the hub's model records."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from hub.model import (
    Account,
    Encoding,
    ErrorInfo,
    Event,
    Message,
    MessageClass,
    NewMessage,
    Source,
    Status,
)

T = TypeVar("T")
CHUNK = 500  # keeps IN lists and bind-parameter counts well inside every backend's limits


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def message_from_row(row: Mapping[Any, Any]) -> Message:
    code, text = row["error_code"], row["error_text"]
    return Message(
        id=row["id"],
        account_id=row["account_id"],
        source=Source(row["source"]),
        recipient=row["recipient"],
        text=row["text"],
        encoding=Encoding(row["encoding"]),
        segments=row["segments"],
        cost=row["cost"],
        status=Status(row["status"]),
        attempts=row["attempts"],
        message_class=MessageClass(row["message_class"]),
        priority=row["priority"],
        accepted_at=row["accepted_at"],
        updated_at=row["updated_at"],
        due_at=row["due_at"],
        sender=row["sender"],
        client_ref=row["client_ref"],
        batch_id=row["batch_id"],
        send_at=row["send_at"],
        expires_at=row["expires_at"],
        carrier=row["carrier"],
        carrier_message_id=row["carrier_message_id"],
        error=None if code is None else ErrorInfo(code, text or ""),
        submitted_at=row["submitted_at"],
        completed_at=row["completed_at"],
    )


def message_from_new(nm: NewMessage) -> Message:
    """The Message a NewMessage becomes the moment it is stored."""
    return Message(
        id=nm.id,
        account_id=nm.account_id,
        source=nm.source,
        recipient=nm.recipient,
        text=nm.text,
        encoding=nm.encoding,
        segments=nm.segments,
        cost=nm.cost,
        status=nm.initial_status,
        attempts=0,
        message_class=nm.message_class,
        priority=nm.priority,
        accepted_at=nm.accepted_at,
        updated_at=nm.accepted_at,
        due_at=nm.due_at,
        sender=nm.sender,
        client_ref=nm.client_ref,
        batch_id=nm.batch_id,
        send_at=nm.send_at,
        expires_at=nm.expires_at,
    )


MESSAGE_COLUMNS = (
    "id", "account_id", "source", "client_ref", "batch_id", "sender", "recipient", "text",
    "encoding", "segments", "cost", "message_class", "priority", "send_at", "expires_at",
    "due_at", "status", "attempts", "accepted_at", "updated_at", "batch_line",
)


def event_from_row(row: Mapping[Any, Any]) -> Event:
    return Event(row["message_id"], row["at"], Status(row["status"]), row["detail"])


def account_from_row(row: Mapping[Any, Any], sender_ids: Iterable[str]) -> Account:
    return Account(
        id=row["id"],
        name=row["name"],
        balance=row["balance"],
        price_per_segment=row["price_per_segment"],
        sender_ids=tuple(sorted(sender_ids)),
        created_at=row["created_at"],
        enabled=row["enabled"],
        has_password=row["password_hash"] is not None,
        deleted_at=row["deleted_at"],
        marketing_optout=row["marketing_optout"],
    )
