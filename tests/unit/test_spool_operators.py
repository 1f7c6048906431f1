"""The operators' spool side on SQLite and PostgreSQL: logins kept hashed and unique,
credit changed with its ledger line in one transaction (or not at all), portal sessions
signed out kept until they would have expired, and the queue's minutes counted from the
events of a window found by a search on the event ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert

from hub.errors import Conflict, NotFound, Rejected
from hub.operators import Minute, depth_by_minute
from spool.store import SqlSpool
from spool.tables import message_events
from tests.factories import make_account

NOW = datetime(2026, 3, 2, 10, 30, 20, tzinfo=UTC)


def test_operators_are_unique_and_their_logins_read_back(spool: SqlSpool) -> None:
    olga = spool.add_operator("olga", "hash-1", NOW)
    with pytest.raises(Conflict):
        spool.add_operator("olga", "hash-2", NOW)
    spool.add_operator("ann", "hash-3", NOW)
    assert [o.name for o in spool.list_operators()] == ["ann", "olga"]
    assert spool.operator_login("olga") == (olga, "hash-1")
    assert spool.get_operator(olga.id) == olga
    spool.set_operator_password("olga", "hash-4")
    changed, stored = spool.operator_login("olga") or (None, "")
    assert stored == "hash-4" and changed is not None
    # The same operator, but its stamp moved with the password (sessions end), and the
    # stamp is no part of the hash.
    assert (changed.id, changed.name) == (olga.id, "olga") and changed.stamp != olga.stamp
    assert spool.get_operator(olga.id) == changed and "hash" not in changed.stamp
    spool.remove_operator("olga")
    assert spool.get_operator(olga.id) is None and spool.operator_login("olga") is None
    for change in (
        lambda: spool.remove_operator("olga"),
        lambda: spool.set_operator_password("olga", "x"),
    ):
        with pytest.raises(NotFound):
            change()


def test_credit_and_its_ledger_line_are_written_together(spool: SqlSpool) -> None:
    account = make_account(spool, "acme", credits="10")
    spool.credit_account("acme", Decimal("2.5"), "goodwill", "cli", NOW)
    spool.credit_account(
        "acme", Decimal(-12), "refund, ticket 4", "operator olga", NOW + timedelta(seconds=1)
    )
    with pytest.raises(Rejected):  # more than it has: neither balance nor ledger changes
        spool.credit_account("acme", Decimal("-0.6"), "too much", "cli", NOW)
    assert spool.get_account("acme").balance == Decimal("0.5")
    ledger = spool.credit_changes(account.id, 10)
    assert [(c.amount, c.balance, c.reason, c.actor) for c in ledger] == [
        (Decimal(-12), Decimal("0.5"), "refund, ticket 4", "operator olga"),
        (Decimal("2.5"), Decimal("12.5"), "goodwill", "cli"),
    ]
    assert ledger[1].at == NOW
    spool.delete_account("acme", False, NOW)
    with pytest.raises(Conflict):  # a tombstone gets no credit
        spool.credit_account("acme", Decimal(1), "x", "cli", NOW)


def test_the_queues_minutes_count_only_the_windows_events(spool: SqlSpool) -> None:
    since = NOW.replace(second=0) - timedelta(minutes=59)
    rows = [
        ("M0", since - timedelta(seconds=1), "accepted"),  # before the window
        ("M1", since, "accepted"),
        ("M1", since + timedelta(seconds=5), "sending"),
        ("M1", since + timedelta(seconds=59), "submitted"),
        ("M2", since + timedelta(minutes=3), "accepted"),
        ("M2", since + timedelta(minutes=3, seconds=1), "sending"),
        ("M2", since + timedelta(minutes=3, seconds=2), "queued"),
        ("M2", since + timedelta(minutes=3, seconds=3), "sending"),
        ("M2", since + timedelta(minutes=3, seconds=4), "submitted"),
        ("M2", since + timedelta(minutes=4), "delivered"),
        ("M3", NOW + timedelta(seconds=1), "accepted"),
    ]  # after it
    filler = [("F", since - timedelta(hours=2, seconds=n), "delivered") for n in range(40)]
    with spool.db.write() as conn:
        conn.execute(
            insert(message_events),
            [
                {"message_id": m, "at": at, "status": s, "detail": ""}
                for m, at, s in [*reversed(filler), *rows]
            ],
        )
    minutes = spool.queue_minutes(since, NOW)
    assert minutes == [
        Minute(since, entered=1, claimed=1, submitted=1),
        Minute(since + timedelta(minutes=3), entered=2, claimed=2, submitted=1),
        Minute(since + timedelta(minutes=4)),
    ]
    assert spool.queue_minutes(NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)) == []


def test_the_depth_is_worked_back_from_the_depth_now() -> None:
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    starts = [start + timedelta(minutes=k) for k in range(4)]
    minutes = [
        Minute(starts[1], entered=5),
        Minute(starts[2], entered=1, claimed=4),
        Minute(starts[3], claimed=2),
    ]
    # 0 before, 5 after minute 1, 2 after minute 2, 0 after minute 3 (now).
    assert depth_by_minute(minutes, starts, 0) == [0, 5, 2, 0]
    assert depth_by_minute([], starts, 3) == [3, 3, 3, 3]


def test_signed_out_sessions_are_kept_until_they_would_have_expired(spool: SqlSpool) -> None:
    assert not spool.session_ended("a")
    spool.end_session("a", NOW + timedelta(hours=12), NOW)
    spool.end_session("a", NOW + timedelta(hours=12), NOW)  # twice (two tabs): still one
    spool.end_session("b", NOW + timedelta(hours=1), NOW)
    assert spool.session_ended("a") and spool.session_ended("b")
    assert not spool.session_ended("c")
    # A later sign-out forgets those already past their expiry: they open nothing anyway.
    spool.end_session("c", NOW + timedelta(hours=14), NOW + timedelta(hours=2))
    assert spool.session_ended("a") and not spool.session_ended("b")
    assert spool.session_ended("c")
