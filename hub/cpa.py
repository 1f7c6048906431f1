"""CPA regulation 4 (GN R293 of 2011): when direct marketing may be dispatched in South
Africa. A pure rule on aware times: never on Sundays or public holidays (observed days
included), Saturdays 09:00-13:00, other days 08:00-20:00, Africa/Johannesburg."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from hub.model import ErrorInfo, Message, Status, SubmitResult, Verdict

ZONE = ZoneInfo("Africa/Johannesburg")
SATURDAY = (time(9), time(13))
OTHER_DAYS = (time(8), time(20))
# The error code a held message carries while it waits, and the one it expires with.
HELD = "cpa_hours"
REGULATION = "CPA regulation 4"
_SUNDAY, _SATURDAY = 6, 5
# A holiday next to a Sunday, a Saturday evening, at most a few closed days in a row:
# far more than any calendar needs, and a bound on the search all the same.
_SEARCH_DAYS = 14


@lru_cache(maxsize=16)
def _holidays(year: int) -> holidays.HolidayBase:
    # The package counts a holiday falling on a Sunday again on the Monday ("observed"),
    # as the Public Holidays Act does.
    return holidays.country_holidays("ZA", years=year, observed=True)


def holiday(day: date) -> str | None:
    """The public holiday's name on `day`, or None."""
    name: str | None = _holidays(day.year).get(day)
    return name


def _window(day: date) -> tuple[time, time] | None:
    if day.weekday() == _SUNDAY or holiday(day) is not None:
        return None
    return SATURDAY if day.weekday() == _SATURDAY else OTHER_DAYS


def allowed(at: datetime) -> bool:
    """Whether a marketing message may be dispatched at `at` (opening time included,
    closing time excluded: 20:00 is already too late)."""
    local = at.astimezone(ZONE)
    window = _window(local.date())
    return window is not None and window[0] <= local.time() < window[1]


def closes(at: datetime) -> datetime:
    """The end of the window `at` is in (in `at`'s zone); `at` must be allowed."""
    local = at.astimezone(ZONE)
    window = _window(local.date())
    assert window is not None and allowed(at), f"{at} is outside the hours"
    return datetime.combine(local.date(), window[1], ZONE).astimezone(at.tzinfo)


def too_late(message: Message, now: datetime) -> SubmitResult | None:
    """What a carrier answers, without sending, for a message whose `send_by` has passed
    when its turn comes (after the carrier's own waits: rate, window, throttling): the
    hours closed between the claim and now. None: send it."""
    if message.send_by is None or now < message.send_by:
        return None
    return SubmitResult(message.id, Verdict.RETRY, error=ErrorInfo(
        HELD, f"direct-marketing hours closed at {local_text(message.send_by)} before "
              f"the carrier could send it ({REGULATION})"))


def next_allowed(at: datetime) -> datetime:
    """`at` itself if allowed, else the next moment the window opens (in UTC)."""
    if allowed(at):
        return at
    local = at.astimezone(ZONE)
    day = local.date()
    for _ in range(_SEARCH_DAYS):
        window = _window(day)
        if window is not None:
            opens = datetime.combine(day, window[0], ZONE)
            if local < opens:
                return opens.astimezone(at.tzinfo)
        day += timedelta(days=1)
    raise AssertionError(f"no marketing window within {_SEARCH_DAYS} days of {at}")


def reason(at: datetime) -> str | None:
    """Why `at` is outside the window, in words (None when it is inside)."""
    if allowed(at):
        return None
    local = at.astimezone(ZONE)
    day = local.date()
    if day.weekday() == _SUNDAY:
        return "on a Sunday"
    name = holiday(day)
    if name is not None:
        return f"on a public holiday ({name})"
    start, end = _window(day) or OTHER_DAYS
    which = "on a Saturday " if day.weekday() == _SATURDAY else ""
    if local.time() < start:
        return f"{which}before {start:%H:%M}"
    return f"{which}after {end:%H:%M}"


def hold(at: datetime) -> tuple[datetime, ErrorInfo] | None:
    """For a marketing message due at `at`: None if it may go, else the moment it may
    and the reason it waits, as its status answers show it."""
    why = reason(at)
    if why is None:
        return None
    until = next_allowed(at)
    return until, ErrorInfo(HELD, f"held: no direct marketing {why} ({REGULATION}); "
                                  f"next allowed moment {local_text(until)}")


# What a held message whose validity ran out while it waited ends with.
HELD_EXPIRED = ErrorInfo("expired", f"validity ended while held outside direct-marketing "
                                    f"hours ({REGULATION})")


def expired_before(until: datetime) -> ErrorInfo:
    """The reason of a held marketing message whose validity ends before `until`."""
    return ErrorInfo("expired", f"validity ended while held outside direct-marketing hours "
                                f"({REGULATION}); next allowed moment was {local_text(until)}")


def held(message: Message) -> tuple[str, datetime] | None:
    """A message this rule holds: the reason it waits (with the next allowed moment in
    words) and that moment; None for any other message. What every status answer shows."""
    if message.status is not Status.SCHEDULED or message.error is None \
            or message.error.code != HELD:
        return None
    return message.error.text, message.due_at


def local_text(at: datetime) -> str:
    return at.astimezone(ZONE).isoformat(timespec="minutes")
