"""CPA regulation 4's marketing hours (hub/cpa.py) at every boundary, in the hub's zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hub import cpa

SAST = cpa.ZONE


def sa(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SAST)


@pytest.mark.parametrize(("moment", "ok"), [
    ("2026-12-05T08:59", False),  # Saturday before 09:00
    ("2026-12-05T09:00", True),
    ("2026-12-05T12:59", True),
    ("2026-12-05T13:00", False),  # Saturday from 13:00
    ("2026-12-04T07:59", False),  # Friday before 08:00
    ("2026-12-04T08:00", True),
    ("2026-12-04T19:59", True),
    ("2026-12-04T19:59:59.999999", True),
    ("2026-12-04T20:00", False),
    ("2026-12-06T12:00", False),  # Sunday
    ("2026-04-27T12:00", False),  # Freedom Day, a Monday
    ("2026-04-28T12:00", True),  # the day after
    ("2026-08-09T12:00", False),  # Women's Day on a Sunday
    ("2026-08-10T12:00", False),  # ... observed on the Monday
    ("2026-08-11T08:00", True),
    ("2026-12-26T10:00", False),  # Day of Goodwill on a Saturday
])
def test_allowed_at_each_boundary(moment: str, ok: bool) -> None:
    assert cpa.allowed(sa(moment)) is ok
    assert cpa.allowed(sa(moment).astimezone(UTC)) is ok  # the zone is the hub's, not the caller's


@pytest.mark.parametrize(("moment", "opens"), [
    ("2026-12-05T12:59", "2026-12-05T12:59"),  # allowed: itself
    ("2026-12-05T13:00", "2026-12-07T08:00"),  # Saturday afternoon -> Monday
    ("2026-12-05T07:00", "2026-12-05T09:00"),  # Saturday morning -> 09:00
    ("2026-12-04T20:00", "2026-12-05T09:00"),  # Friday evening -> Saturday 09:00
    ("2026-12-06T23:59", "2026-12-07T08:00"),  # Sunday -> Monday
    ("2026-12-03T02:00", "2026-12-03T08:00"),  # night -> morning
    ("2026-04-26T10:00", "2026-04-28T08:00"),  # Sunday before Freedom Day (Monday)
    ("2026-04-27T09:00", "2026-04-28T08:00"),  # the holiday -> the day after
    ("2026-08-08T14:00", "2026-08-11T08:00"),  # Sat pm, Women's Day, observed Monday
    ("2026-04-02T21:00", "2026-04-04T09:00"),  # Good Friday -> Saturday
    ("2026-04-04T13:00", "2026-04-07T08:00"),  # Sat pm, Sunday, Family Day -> Tuesday
    ("2026-12-24T20:00", "2026-12-28T08:00"),  # Christmas, Goodwill (Sat), Sunday
])
def test_next_allowed_is_the_next_opening(moment: str, opens: str) -> None:
    assert cpa.next_allowed(sa(moment)) == sa(opens)
    utc = cpa.next_allowed(sa(moment).astimezone(UTC))
    assert utc == sa(opens) and utc.tzinfo is UTC


@pytest.mark.parametrize(("moment", "why"), [
    ("2026-12-05T13:00", "on a Saturday after 13:00"),
    ("2026-12-05T08:00", "on a Saturday before 09:00"),
    ("2026-12-04T20:00", "after 20:00"),
    ("2026-12-04T06:00", "before 08:00"),
    ("2026-12-06T10:00", "on a Sunday"),
    ("2026-04-27T10:00", "on a public holiday (Freedom Day)"),
    ("2026-08-10T10:00", "on a public holiday (National Women's Day (observed))"),
])
def test_reason_names_the_rule(moment: str, why: str) -> None:
    assert cpa.reason(sa(moment)) == why


def test_hold_gives_the_opening_and_a_reason_naming_both() -> None:
    assert cpa.hold(sa("2026-12-04T19:59")) is None
    found = cpa.hold(sa("2026-12-04T20:00"))
    assert found is not None
    until, why = found
    assert until == sa("2026-12-05T09:00")
    assert why.code == "cpa_hours"
    assert "after 20:00" in why.text and "2026-12-05T09:00+02:00" in why.text
