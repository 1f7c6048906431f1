"""POPIA in the spool (spool/privacy.py, hub/retention.py), on SQLite and PostgreSQL: texts
past the retention purged in bounded batches on a fake clock while status, cost, segments
and events stay; what is held about a number exported and erased, opt-outs kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from hub.ids import new_id
from hub.model import (
    Account,
    Callback,
    CallbackKind,
    InboundMessage,
    NewInbound,
    Source,
    Status,
    WebhookEndpoint,
)
from hub.optouts import NewOptOut, OptOutMethod
from hub.privacy import PURGED, pseudonym, written_forms
from hub.retention import Retention
from hub.spoolcall import SpoolThreads
from spool import SqlSpool
from spool.tables import mails, message_callbacks, outbox
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
    # Billing: the account's usage by day (messages, segments, credit) and balance.
    billed = (spool.usage_by_day(account.id, OLD - timedelta(days=1), NOW, timedelta()),
              spool.get_account(account.name).balance)
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
    assert (spool.usage_by_day(account.id, OLD - timedelta(days=1), NOW, timedelta()),
            spool.get_account(account.name).balance) == billed
    assert billed[0] and sum(day.messages for day in billed[0]) == 7
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
    assert done == {"cancelled": 0, "messages": 1, "in_flight": 0, "replies": 1,
                    "payloads": 0, "mail_subjects": 0, "callbacks": 0}
    now = spool.get_message(mine)
    assert now is not None and was is not None and now.text == PURGED
    assert (now.status, now.cost) == (was.status, was.cost)
    assert spool.get_message(other).text == "to another"  # type: ignore[union-attr]
    assert spool.get_inbound(reply).text == PURGED  # type: ignore[union-attr]
    assert len(spool.holdings(NUMBER).optouts) == 1  # an opt-out must keep being honoured
    [entry] = spool.privacy_log(10)
    assert (entry.action, entry.subject, entry.actor) == ("erase", subject, "cli:ops")
    assert "821234590" not in subject


def test_erase_cancels_what_is_unsent_so_no_purged_text_is_ever_sent(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account(credits="10")
    waiting = new_message(account, accepted_at=YOUNG, text="not sent yet", recipient=NUMBER)
    later = new_message(account, accepted_at=YOUNG, text="sent tomorrow", recipient=NUMBER,
                        due_in=86_400)
    in_flight = new_message(account, accepted_at=YOUNG, text="on its way", recipient=NUMBER)
    spool.accept([in_flight])
    claim = spool.claim("n", 10, 60, YOUNG)
    assert [x.id for x in claim.messages] == [in_flight.id]
    spool.accept([waiting, later])
    done = spool.erase_number(NUMBER, NOW, "x", "cli:ops")
    assert (done["cancelled"], done["messages"], done["in_flight"]) == (2, 2, 1)
    for m in (waiting, later):
        now = spool.get_message(m.id)
        assert now is not None and (now.status, now.text) == (Status.CANCELLED, PURGED)
        assert now.error is not None and now.error.code == "erased"
    # Refunded: the customer pays for nothing the erasure stopped.
    assert spool.get_account(account.name).balance == Decimal("10") - in_flight.cost
    # Nothing with the marker is left for a claim to send to the handset; the message
    # a dispatcher holds keeps its text (a retry would send the marker) until it ends.
    assert spool.claim("n", 10, 60, NOW + timedelta(days=2)).messages == ()
    assert spool.get_message(in_flight.id).text == "on its way"  # type: ignore[union-attr]


def test_export_lists_and_erase_purges_the_mails_about_the_number(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    mail, other, refusing = new_id(), new_id(), new_id()
    refused = {refusing: "0821234590@sms.example: opted_out\n0831234567@sms.example: blocked"}
    with spool.db.write() as conn:
        for mail_id in (mail, other, refusing):
            conn.execute(mails.insert().values(
                id=mail_id, account_id=account.id, sender="ops@acme.co.za",
                reply_to="ops@acme.co.za", message_id=f"<{mail_id}@acme>",
                subject="Your test results are ready", received_at=YOUNG, receipts=False,
                final_receipt=False, replies=False, attachments="",
                refused=refused.get(mail_id, "")))
    for mail_id, to in ((mail, NUMBER), (other, "+27831234567")):
        spool.accept([new_message(account, accepted_at=YOUNG, recipient=to,
                                  source=Source.SMTP, batch_id=mail_id,
                                  text="Your test results are ready: call us")])
    listed = spool.holdings(NUMBER).other["mails"]
    assert [(m["id"], m["refused"]) for m in listed] == sorted([
        (mail, []), (refusing, ["0821234590@sms.example: opted_out"])])
    assert listed[0]["subject"] == "Your test results are ready"
    # The subject of the mail its SMS came from is part of that SMS's text (prepend).
    assert spool.erase_number(NUMBER, NOW, "x", "cli:ops")["mail_subjects"] == 1
    with spool.db.read() as conn:
        subjects = dict(conn.execute(select(mails.c.id, mails.c.subject)).all())
    assert subjects == {mail: PURGED, other: "Your test results are ready",
                        refusing: "Your test results are ready"}


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
    # Export lists the events about its replies: where and when, not the bodies.
    listed = spool.holdings(NUMBER).other["outbox"]
    assert [(o["event_type"], o["address"]) for o in listed] == [
        ("inbound.received", "https://example.com/hook")] * 2
    assert "payload" not in listed[0]
    assert spool.holdings("+27831234567").other["outbox"] == []


def _bodies(spool: SqlSpool) -> list[dict[str, Any]]:
    with spool.db.read() as conn:
        rows = conn.execute(select(outbox.c.payload).where(outbox.c.payload.is_not(None))
                            .order_by(outbox.c.id)).scalars().all()
    return [json.loads(r) for r in rows]


# --- push URLs a client gave with its message (Kannel dlr-url, Clickatell callback) -----


def _with_callback(spool: SqlSpool, account: Account, at: datetime, url: str | None,
                   recipient: str = NUMBER, final: bool = True) -> str:
    kind = CallbackKind.KANNEL if url else CallbackKind.CLICKATELL
    m = replace(new_message(account, accepted_at=at, recipient=recipient,
                            expires_at=at + timedelta(hours=1) if final else None),
                callback=Callback(kind, url, 31 if url else 7, None if url else "3388480"))
    spool.accept([m])
    if final:
        spool.expire_due(at + timedelta(hours=2))
    return m.id


def _callbacks(spool: SqlSpool) -> set[str]:
    with spool.db.read() as conn:
        return set(conn.scalars(select(message_callbacks.c.message_id)))


def test_number_is_looked_for_in_push_urls_as_clients_write_it() -> None:
    assert written_forms("+27821234590") == ["27821234590", "0821234590"]
    assert written_forms("+12015550123") == ["12015550123"]  # national: found already


def test_export_and_erase_find_the_number_in_push_urls_only(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    national = _with_callback(spool, account, YOUNG, "http://crm.example/dlr?to=0821234590&s=%d")
    escaped = _with_callback(spool, account, YOUNG, "http://crm.example/dlr?to=%2B27821234590",
                             recipient="+27831234567", final=False)
    by_escape = _with_callback(spool, account, YOUNG, "http://crm.example/dlr?to=%p&s=%d")
    other = _with_callback(spool, account, YOUNG, "http://crm.example/dlr?to=27831234567",
                           recipient="+27831234567")
    held = spool.holdings(NUMBER).other["message_callbacks"]
    assert [row["message_id"] for row in held] == sorted([national, escaped])
    assert held[0]["url"].startswith("http://crm.example/dlr?to=")
    done = spool.erase_number(NUMBER, NOW, pseudonym(NUMBER, b"k" * 32), "cli:ops")
    assert done["callbacks"] == 2
    assert _callbacks(spool) == {by_escape, other}  # neither holds the number
    assert spool.holdings(NUMBER).other["message_callbacks"] == []
    [entry] = spool.privacy_log(10)
    assert entry.detail["callbacks"] == 2


def test_purge_deletes_push_urls_of_finished_messages_past_retention(
        spool: SqlSpool, make_account: Callable[..., Account]) -> None:
    account = make_account()
    old = [_with_callback(spool, account, OLD + timedelta(seconds=i), None) for i in range(3)]
    young = _with_callback(spool, account, YOUNG, None)
    unsent = _with_callback(spool, account, OLD, "http://crm.example/dlr?s=%d", final=False)
    was = {i: spool.get_message(i) for i in old}
    retention, runner = _retention(spool, batch=2)
    try:
        assert asyncio.run(retention.purge()) == 3 + 3  # texts (not the unsent one), URLs
    finally:
        runner.shutdown()
    assert _callbacks(spool) == {young, unsent}
    for message_id, before in was.items():  # billing stays
        now = spool.get_message(message_id)
        assert before is not None and now is not None
        assert (now.status, now.cost, now.segments) == (before.status, before.cost,
                                                        before.segments)
    [entry] = spool.privacy_log(10)
    assert entry.detail["callbacks"] == 3
