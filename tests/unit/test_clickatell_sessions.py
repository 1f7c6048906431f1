"""Clickatell session ids: valid until 15 idle minutes have passed, kept alive by use,
and kept in the spool, so that a session opened by one process or node is known to every
other sharing it (a client behind a load balancer)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy

from adapters.xml.clickatell import Sessions
from hub.model import Account
from hub.spoolcall import SpoolThreads
from spool import SqlSpool

START = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def at(self, seconds: float) -> None:
        self.now = START + timedelta(seconds=seconds)


class Counting:
    """The spool, counting the session writes made through it."""

    def __init__(self, spool: SqlSpool) -> None:
        self.spool = spool
        self.extends = 0
        self.reads = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.spool, name)

    def dialect_session(self, *args: Any) -> Any:
        self.reads += 1
        return self.spool.dialect_session(*args)

    def extend_dialect_session(self, *args: Any) -> bool:
        self.extends += 1
        return self.spool.extend_dialect_session(*args)


@pytest.fixture
def runner(spool: SqlSpool) -> Iterator[SpoolThreads[Any]]:
    threads: SpoolThreads[Any] = SpoolThreads(Counting(spool), threads=1)
    yield threads
    threads.shutdown()


@pytest.fixture
def account(make_account: Callable[..., Account]) -> Account:
    return make_account("sessions")


async def test_a_session_lives_while_used_and_expires_after_idle_time(
        runner: SpoolThreads[Any], account: Account) -> None:
    clock = Clock()
    sessions = Sessions(runner, idle=900, clock=clock)
    token = await sessions.open(account.id)
    clock.at(800)
    assert await sessions.account_id(token) == account.id  # use extends it to 1700
    clock.at(1600)
    assert await sessions.account_id(token) == account.id
    clock.at(2600)
    assert await sessions.account_id(token) is None
    assert await sessions.account_id(token) is None  # and it is gone for good


async def test_sessions_are_unguessable_hex_and_unknown_ones_are_refused(
        runner: SpoolThreads[Any], account: Account) -> None:
    sessions = Sessions(runner)
    tokens = {await sessions.open(account.id) for _ in range(20)}
    assert len(tokens) == 20 and all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    assert await sessions.account_id("0" * 32) is None
    assert runner.spool.reads == 1  # unknown here: the spool says it is unknown anywhere
    for other in ("", "0" * 31, "0" * 33, "G" * 32, "ABCDEF" + "0" * 26, "\udc80" * 32,
                  "' OR 1=1 --"):
        assert await sessions.account_id(other) is None  # not an id `auth` gives
    assert runner.spool.reads == 1


async def test_a_session_opened_here_is_known_to_another_process_sharing_the_spool(
        spool: SqlSpool, runner: SpoolThreads[Any], account: Account) -> None:
    clock = Clock()
    here = Sessions(runner, idle=900, clock=clock)
    there = Sessions(runner, idle=900, clock=clock)  # another process or node: no memory
    token = await here.open(account.id)
    clock.at(600)
    assert await there.account_id(token) == account.id  # extends it to 1500, in the spool
    clock.at(1400)  # past the expiry `here` saw (900): it asks the spool again
    assert await here.account_id(token) == account.id
    clock.at(2400)  # 1,000 s idle everywhere
    assert await there.account_id(token) is None
    assert await here.account_id(token) is None


async def test_the_spool_keeps_a_digest_never_the_session_id(
        spool: SqlSpool, runner: SpoolThreads[Any], account: Account) -> None:
    token = await Sessions(runner).open(account.id)
    with spool.db.read() as conn:
        stored = conn.execute(sqlalchemy.text("SELECT digest FROM dialect_sessions")).scalars()
        assert list(stored) == [hashlib.sha256(token.encode()).hexdigest()]


async def test_uses_within_a_minute_write_nothing_and_expired_sessions_are_dropped(
        spool: SqlSpool, runner: SpoolThreads[Any], account: Account) -> None:
    counting = runner.spool
    clock = Clock()
    sessions = Sessions(runner, idle=900, clock=clock, refresh=60)
    token = await sessions.open(account.id)
    for second in range(0, 60, 5):  # a client sending every 5 s for a minute
        clock.at(second)
        assert await sessions.account_id(token) == account.id
    assert counting.extends == 0
    clock.at(61)
    assert await sessions.account_id(token) == account.id
    assert counting.extends == 1  # the expiry it moved: 961 s
    clock.at(961 + 1)  # past it: the next open drops it
    await sessions.open(account.id)
    with spool.db.read() as conn:
        count = conn.execute(sqlalchemy.text("SELECT count(*) FROM dialect_sessions"))
        assert count.scalar_one() == 1


def test_extending_never_moves_an_expiry_earlier_and_fails_for_an_expired_session(
        spool: SqlSpool, account: Account) -> None:
    later, earlier = START + timedelta(seconds=900), START + timedelta(seconds=300)
    spool.open_dialect_session("d", account.id, later, START)
    assert spool.extend_dialect_session("d", earlier, START)  # live: True, left at 900 s
    assert spool.dialect_session("d", START) == (account.id, later)
    past = later + timedelta(seconds=1)
    assert not spool.extend_dialect_session("d", past + timedelta(seconds=900), past)
    assert spool.dialect_session("d", past) is None
    assert not spool.extend_dialect_session("unknown", later, START)
