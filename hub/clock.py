"""Time in one place: aware UTC now, and parsing of the times people type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.errors import Rejected

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_time(text: str, local_zone: str) -> datetime:
    """ISO 8601 (`2026-12-01T08:00:00+02:00`, `...Z`); a time without an offset is taken in
    the hub's local zone (Africa/Johannesburg by default), as local clients expect."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise Rejected(
            "invalid_time", f"'{text}' is not an ISO 8601 time such as 2026-12-01T08:00:00+02:00"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(local_zone))
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+14:00 lies before the first UTC moment
        raise Rejected("invalid_time", f"'{text}' is out of range") from None


def after(start: datetime, seconds: float) -> datetime:
    """`start` plus a validity in seconds; Rejected('invalid_validity') when the sum
    leaves the calendar (a 23-digit validity, or any validity after 9999-12-31)."""
    try:
        return start + timedelta(seconds=seconds)
    except OverflowError:
        raise Rejected("invalid_validity", f"a validity of {seconds} seconds from "
                       f"{start.isoformat()} is out of range") from None


def seconds(value: float) -> timedelta:
    return timedelta(seconds=value)
