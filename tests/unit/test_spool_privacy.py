"""POPIA in the spool (spool/privacy.py, hub/retention.py), on SQLite and PostgreSQL: texts
past the retention purged in bounded batches on a fake clock while status, cost, segments
and events stay; what is held about a number exported and erased, opt-outs kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from hub.ids import new_id
from hub.model import Account, InboundMessage, NewInbound, Status, WebhookEndpoint
from hub.optouts import NewOptOut, OptOutMethod
from hub.privacy import PURGED, pseudonym
from hub.retention import Retention
from hub.spoolcall import SpoolThreads
from spool import SqlSpool
from spool.tables import outbox
from tests.factories import NOW, new_message

NUMBER = "+27821234590"
OLD = NOW - timedelta(days=91)
YOUNG = NOW - timedelta(days=89)


def _finished(spool: SqlSpool, account: Account, at: datetime, text: str,
              recipient: str = NUMBER) -> str:
    """A message accepted at `at` that ended `expired` an hour later."""
    m = new_message(account, accepted_at=at, text=text, recipient=recipient,
                    expires_at=at + timedelta(hours=1))
    spool.accept([m])
    spool.expire_due(at + timedelta(hours=2))
    return m.id


def _reply(spool: SqlSpool, at: datetime, text: str, sender: str = NUMBER) -> str:
    mo = InboundMessage("simulator", sender, "31337", text, at, None)
    [stored] = spool.store_inbound([NewInbound(new_id(), mo, False)])
    return stored.id


def _retention(spool: SqlSpool, batch: int) -> tuple[Retention, SpoolThreads[SqlSpool]]:
    runner = SpoolThreads(spool, 1)
    return Retention(runner, 90, batch=batch, clock=lambda: NOW), runner


def test_purge_replaces_old_texts_in_batches_and_keeps_billing_rows(
        spool: SqlSpool, make_account: Callable[..., Account],
        monkeypatch: pytest.MonkeyPatch) -> None:
    account = make_account()
    old = [_finished(spool, account, OLD + timedelta(seconds=i), f"old secret {i}")
           for i in range(5)]
    young = _finished(spool, account, YOUNG, "young text")
    pending = new_message(account, accepted_at=OLD, text="still to send")
    spool.accept([pending])
    old_reply, young_reply = _reply(spool, OLD, "old reply"), _reply(spool, YOUNG, "new reply")
    before = {i: (spool.get_message(i), spool.events(i)) for i in old}
    steps: list[tuple[str, int]] = []
    purge_texts = spool.purge_texts

    def recorded(kind: str, *args: Any) -> tuple[int, str | None]:
        done = purge_texts(kind, *args)
        steps.append((kind, done[0]))
        return done

    monkeypatch.setattr(spool, "purge_texts", recorded)
    retention, runner = _retention(spool, batch=2)  # 5 old texts: three transactions
    try:
        assert asyncio.run(retention.purge()) == 6  # five messages and one reply
        assert [n for kind, n in steps if kind == "messages"] == [2, 2, 1]
        assert asyncio.run(retention.purge()) == 0  # nothing left; not recorded again
    finally:
        runner.shutdown()
    for message_id, (was, events) in before.items():
        now = spool.get_message(message_id)
        assert was is not None and now is not None and now.text == PURGED
        assert (now.status, now.cost, now.segments) == (Status.EXPIRED, was.cost, was.segments)
        assert spool.events(message_id) == events
    assert spool.get_message(young).text == "young text"  # type: ignore[union-attr]
    assert spool.get_message(pending.id).text == "still to send"  # type: ignore[union-attr]
    assert spool.get_inbound(old_reply).text == PURGED  # type: ignore[union-attr]
    assert spool.get_inbound(young_reply).text == "new reply"  # type: ignore[union-attr]
    [entry] = spool.privacy_log(10)
    assert (entry.action, entry.actor, entry.subject) == ("purge", "maintenance", None)
    assert entry.detail["messages"] == 5 and entry.detail["replies"] == 1


def test_a_purge_waits_its_interval_on_the_monotonic_clock(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    _finished(spool, account, OLD, "old")
    ticks = [0.0]
    runner = SpoolThreads(spool, 1)
    retention = Retention(runner, 90, interval=3600, clock=lambda: NOW,
                          monotonic=lambda: ticks[0])
    try:
        assert asyncio.run(retention.run()) == 1
        _finished(spool, account, OLD + timedelta(minutes=5), "old too")
        ticks[0] = 3599.0
        assert asyncio.run(retention.run()) == 0
        ticks[0] = 3600.0
        assert asyncio.run(retention.run()) == 1
    finally:
        runner.shutdown()


def test_export_lists_messages_replies_and_optouts_of_a_number_only(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mine = _finished(spool, account, YOUNG, "to the number")
    _finished(spool, account, YOUNG, "to another", recipient="+27831234567")
    reply = _reply(spool, YOUNG, "STOP")
    spool.add_optout(NewOptOut(account.id, NUMBER, OptOutMethod.CLI, NOW, "asked"))
    held = spool.holdings(NUMBER)
    assert [m.id for m in held.messages] == [mine]
    assert [r.id for r in held.replies] == [reply]
    assert [(o.account_id, o.reason) for o in held.optouts] == [(account.id, "asked")]


def test_erase_removes_texts_keeps_optouts_and_billing_and_records_who(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mine = _finished(spool, account, YOUNG, "to the number")
    other = _finished(spool, account, YOUNG, "to another", recipient="+27831234567")
    reply = _reply(spool, YOUNG, "call me")
    spool.add_optout(NewOptOut(account.id, NUMBER, OptOutMethod.CLI, NOW))
    was = spool.get_message(mine)
    subject = pseudonym(NUMBER, b"k" * 32)
    done = spool.erase_number(NUMBER, NOW, subject, "cli:ops")
    assert done == {"messages": 1, "replies": 1, "payloads": 0}
    now = spool.get_message(mine)
    assert now is not None and was is not None and now.text == PURGED
    assert (now.status, now.cost) == (was.status, was.cost)
    assert spool.get_message(other).text == "to another"  # type: ignore[union-attr]
    assert spool.get_inbound(reply).text == PURGED  # type: ignore[union-attr]
    assert len(spool.holdings(NUMBER).optouts) == 1  # an opt-out must keep being honoured
    [entry] = spool.privacy_log(10)
    assert (entry.action, entry.subject, entry.actor) == ("erase", subject, "cli:ops")
    assert "821234590" not in subject


def test_purge_and_erase_rewrite_the_reply_text_in_webhook_bodies_only(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    spool.create_webhook(WebhookEndpoint(new_id(), account.id, "https://example.com/hook",
                                         frozenset({"inbound.received"}), "whsec_x", OLD))
    _finished(spool, account, OLD - timedelta(hours=3), "asked")
    _reply(spool, OLD, "my private answer")
    _finished(spool, account, YOUNG - timedelta(hours=3), "asked again")
    _reply(spool, YOUNG, "a young answer")
    retention, runner = _retention(spool, batch=10)
    try:
        asyncio.run(retention.purge())
    finally:
        runner.shutdown()
    old_body, young_body = _bodies(spool)
    assert old_body["data"]["text"] == PURGED and old_body["data"]["from"] == NUMBER
    assert young_body["data"]["text"] == "a young answer"
    assert spool.erase_number(NUMBER, NOW, "x", "cli:ops")["payloads"] == 2
    assert [b["data"]["text"] for b in _bodies(spool)] == [PURGED, PURGED]


def _bodies(spool: SqlSpool) -> list[dict[str, Any]]:
    with spool.db.read() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.payload.is_not(None))
                            .order_by(outbox.c.id)).scalars().all()
    return [json.loads(r) for r in rows]
