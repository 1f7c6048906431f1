"""Clickatell's numbers for what smshub says: error codes (`<fault>`) for refusals and the
001-014 message status codes for our statuses; the tables docs/xml.md publishes."""

from __future__ import annotations

from hub.model import Status

# Clickatell's error codes and texts, as its client libraries print them.
ERRORS = {
    "001": "Authentication failed",
    "003": "Session ID expired",
    "004": "Account frozen",
    "101": "Invalid or missing parameters",
    "103": "Unknown API message ID",
    "104": "Unknown client message ID",
    "105": "Invalid destination address",
    "107": "Empty message",
    "109": "Missing message ID",
    "113": "Maximum message parts exceeded",
    "116": "Invalid Unicode data",
    "120": "Invalid delivery time",
    "123": "Invalid sender ID",
    "301": "No credit left",
}

# Our refusal codes (hub.intake and the reader) as Clickatell error codes; others are 101.
REFUSALS = {
    "invalid_number": "105",
    "empty_text": "107",
    "too_long": "113",
    "invalid_unicode": "116",
    "invalid_time": "120",
    "sender_not_allowed": "123",
    "insufficient_credit": "301",
    "account_disabled": "004",
}

# Our statuses as Clickatell's message status codes.
STATUSES = {
    Status.ACCEPTED: "002",  # Message queued
    Status.QUEUED: "002",
    Status.SENDING: "002",
    Status.SCHEDULED: "011",  # Message queued for later delivery
    Status.SUBMITTED: "003",  # Delivered to gateway
    Status.DELIVERED: "004",  # Received by recipient
    Status.UNDELIVERED: "007",  # Error delivering message
    Status.REJECTED: "005",  # Error with message
    Status.FAILED: "009",  # Routing error
    Status.EXPIRED: "010",  # Message expired
    Status.CANCELLED: "006",  # User cancelled message delivery
}


def fault_text(code: str) -> str:
    """The `<fault>` text: "105, Invalid destination address"."""
    return f"{code}, {ERRORS[code]}"


def refusal_fault(refusal_code: str) -> str:
    return fault_text(REFUSALS.get(refusal_code, "101"))
