"""Idempotency keys and the JSON API's reads in the spool, on SQLite and PostgreSQL: a
key is claimed once, answered, replayed, refused for another request, taken over when
its holder died, sealed in intake's transaction, purged after its window; usage by day
and the message list's filters."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

import pytest

from hub.idempotency import LEASE, Answer, KeyLost, KeyRequest, KeyState
from hub.model import Status
from hub.ports import CommitSeal, Committed, MessageFilter
from spool import SqlSpool
from tests.factories import NOW, make_account, new_message

DAY = timedelta(days=1)
ANSWER = Answer(202, b'{"ok": true}', "application/json")


def request(account_id: int, key: str = "k1", body: str = "a", at: timedelta = timedelta(0)
            ) -> KeyRequest:
    return KeyRequest(account_id, key, body * 64, NOW + at, DAY)


def test_a_key_is_claimed_once_answered_and_replayed(spool: SqlSpool) -> None:
    account = make_account(spool)
    first = spool.claim_key(request(account.id))
    assert first.state is KeyState.NEW and first.token
    assert spool.claim_key(request(account.id)).state is KeyState.RUNNING
    assert spool.claim_key(request(account.id, body="b")).state is KeyState.MISMATCH
    assert spool.finish_key(account.id, "k1", first.token, ANSWER)
    replay = spool.claim_key(request(account.id))
    assert replay.state is KeyState.REPLAY and replay.answer == ANSWER
    # Scoped per account: another account's same key is its own.
    other = make_account(spool)
    assert spool.claim_key(request(other.id)).state is KeyState.NEW


def test_a_key_whose_holder_died_is_taken_over_and_the_old_holder_cannot_answer(
    spool: SqlSpool,
) -> None:
    account = make_account(spool)
    dead = spool.claim_key(request(account.id))
    later = spool.claim_key(request(account.id, at=LEASE + timedelta(seconds=1)))
    assert later.state is KeyState.NEW and later.token != dead.token
    assert not spool.finish_key(account.id, "k1", dead.token, ANSWER)
    spool.release_key(account.id, "k1", dead.token)  # not its key any more: no effect
    assert spool.claim_key(request(account.id, at=LEASE)).state is KeyState.RUNNING


def test_a_released_key_may_run_again_and_an_expired_one_is_purged(spool: SqlSpool) -> None:
    account = make_account(spool)
    held = spool.claim_key(request(account.id))
    spool.release_key(account.id, "k1", held.token)
    again = spool.claim_key(request(account.id, body="b"))
    assert again.state is KeyState.NEW
    spool.finish_key(account.id, "k1", again.token, ANSWER)
    assert spool.purge_keys(NOW + DAY - timedelta(seconds=1)) == 0
    assert spool.purge_keys(NOW + DAY) == 1
    assert spool.claim_key(request(account.id, at=DAY)).state is KeyState.NEW


def _seal(account_id: int, token: str, count: int) -> CommitSeal:
    def answer(done: Sequence[Committed]) -> Answer:
        return Answer(202, b"%d stored" % sum(c.message is not None for c in done),
                      "application/json")
    return CommitSeal(account_id, "k1", token, count, answer)


def test_a_seal_keeps_the_answer_in_the_messages_transaction(spool: SqlSpool) -> None:
    account = make_account(spool)
    claim = spool.claim_key(request(account.id))
    group = [new_message(account), new_message(account)]
    spool.accept(group, [(0, _seal(account.id, claim.token, 2))])
    replay = spool.claim_key(request(account.id))
    assert replay.answer is not None and replay.answer.body == b"2 stored"


def test_a_seal_whose_key_was_taken_over_rolls_its_messages_back(spool: SqlSpool) -> None:
    account = make_account(spool)
    dead = spool.claim_key(request(account.id))
    spool.claim_key(request(account.id, at=LEASE + timedelta(seconds=1)))
    message = new_message(account)
    with pytest.raises(KeyLost):
        spool.accept([message], [(0, _seal(account.id, dead.token, 1))])
    assert spool.get_message(message.id) is None
    assert spool.get_account_by_id(account.id).balance == Decimal("100")


def test_usage_by_day_counts_messages_segments_and_credit_net_of_refunds(
    spool: SqlSpool,
) -> None:
    account = make_account(spool)
    late = NOW.replace(hour=22, minute=30)  # 00:30 the next day at UTC+2
    kept = new_message(account, accepted_at=NOW)
    cancelled = new_message(account, accepted_at=NOW, due_in=3600)
    spool.accept([kept, cancelled, new_message(account, accepted_at=late)])
    spool.cancel([cancelled.id], None, NOW)
    days = spool.usage_by_day(account.id, NOW - DAY, NOW + 2 * DAY, timedelta(hours=2))
    assert [(d.day, d.messages, d.segments, d.credits) for d in days] == [
        ("2025-03-01", 2, 2, Decimal("0.05")), ("2025-03-02", 1, 1, Decimal("0.05"))]
    assert spool.usage_by_day(account.id, NOW + DAY, NOW + 2 * DAY, timedelta(0)) == []


def test_message_list_filters_and_pages_by_id(spool: SqlSpool) -> None:
    account = make_account(spool)
    group = [new_message(account, accepted_at=NOW + timedelta(seconds=i), client_ref=f"r{i}",
                         recipient=f"+2782123456{i}", batch_id="B1" if i < 2 else None)
             for i in range(5)]
    spool.accept(group)
    ids = [m.id for m in group]

    def listed(**kwargs: object) -> list[str]:
        query = MessageFilter(account.id, **kwargs)  # type: ignore[arg-type]
        return [m.id for m in spool.list_messages(query)]

    assert listed() == ids[::-1]
    assert listed(limit=2, before_id=ids[3]) == [ids[2], ids[1]]
    assert listed(batch_id="B1") == [ids[1], ids[0]]
    assert listed(client_ref="r3") == [ids[3]]
    assert listed(recipient="+27821234564") == [ids[4]]
    assert listed(since=NOW + timedelta(seconds=1), until=NOW + timedelta(seconds=3)) == [
        ids[2], ids[1]]
    assert listed(statuses=(Status.DELIVERED,)) == []
