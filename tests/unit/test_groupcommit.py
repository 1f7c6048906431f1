"""Group commit: concurrent callers share flushes and get back their own results."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub.errors import TemporaryFailure
from hub.groupcommit import GroupCommitter


class _Spool:
    """Threads to flush on and a writer's turn that the test can hold, as another
    writer (the dispatcher) holds the database."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.turn_lock = threading.RLock()
        self.flushes: list[list[int]] = []

    def start(self, fn: Callable[[], None]) -> None:
        self.pool.submit(fn)

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self.turn_lock:
            yield


async def _until(predicate: Callable[[], bool]) -> None:
    for _ in range(500):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_callers_arriving_while_another_writer_holds_the_turn_share_a_flush(
) -> None:
    spool = _Spool()

    def flush(items: list[int]) -> list[int]:
        assert spool.turn_lock._is_owned()  # type: ignore[attr-defined]
        spool.flushes.append(items)
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(
        flush, 100, spool.start, spool.turn)
    spool.turn_lock.acquire()  # another writer's transaction
    try:
        tasks = [asyncio.create_task(committer.submit([n, n + 1])) for n in range(0, 10, 2)]
        await asyncio.sleep(0.05)
        assert spool.flushes == []  # the group waits for the turn, not taken before it
    finally:
        spool.turn_lock.release()
    assert [await t for t in tasks] == [[n * 10, (n + 1) * 10] for n in range(0, 10, 2)]
    # Taken once the turn came: every caller that arrived meanwhile, in one flush.
    assert spool.flushes == [list(range(10))]
    assert await committer.submit([7]) == [70]
    spool.pool.shutdown()


async def test_one_callers_bad_item_fails_that_caller_alone() -> None:
    spool = _Spool()

    def flush(items: list[int]) -> list[int]:
        spool.flushes.append(items)
        if -1 in items:
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(
        flush, 100, spool.start, spool.turn)
    with spool.turn_lock:
        good = [asyncio.create_task(committer.submit([n])) for n in range(1, 4)]
        bad = asyncio.create_task(committer.submit([7, -1]))
        await asyncio.sleep(0.02)
    assert [await t for t in good] == [[1], [2], [3]]
    with pytest.raises(UnicodeEncodeError):
        await bad
    assert spool.flushes == [[1, 2, 3, 7, -1], [1], [2], [3], [7, -1]]
    spool.pool.shutdown()


async def test_a_temporary_failure_fails_the_group_and_the_next_flush_goes_on(
) -> None:
    spool = _Spool()
    failing = True

    def flush(items: list[int]) -> list[int]:
        spool.flushes.append(items)
        if failing:
            raise TemporaryFailure("spool unavailable: database is locked")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(
        flush, 100, spool.start, spool.turn)
    with spool.turn_lock:
        tasks = [asyncio.create_task(committer.submit([n])) for n in range(3)]
        await asyncio.sleep(0.02)
    for task in tasks:
        with pytest.raises(TemporaryFailure):
            await task
    assert spool.flushes == [[0, 1, 2]]  # not retried caller by caller
    failing = False
    assert await committer.submit([5]) == [5]
    spool.pool.shutdown()


async def test_a_cancelled_caller_leaves_the_others_their_results() -> None:
    spool = _Spool()
    committer: GroupCommitter[int, int] = GroupCommitter(
        lambda items: spool.flushes.append(items) or items, 100, spool.start, spool.turn)
    with spool.turn_lock:
        gone = asyncio.create_task(committer.submit([1]))
        stays = asyncio.create_task(committer.submit([2]))
        await asyncio.sleep(0.02)
        gone.cancel()
    assert await stays == [2]
    await _until(gone.done)
    assert gone.cancelled() and spool.flushes == [[1, 2]]  # committed all the same
    spool.pool.shutdown()


async def test_no_thread_to_flush_on_fails_the_caller_and_commits_nothing() -> None:
    spool = _Spool()
    spool.pool.shutdown()
    committer: GroupCommitter[int, int] = GroupCommitter(
        lambda items: spool.flushes.append(items) or items, 100, spool.start, spool.turn)
    with pytest.raises(RuntimeError, match="shutdown"):
        await committer.submit([1])
    spool.pool = ThreadPoolExecutor(max_workers=1)
    assert await committer.submit([2]) == [2]
    assert spool.flushes == [[2]]  # the refused caller's item was not flushed later
    spool.pool.shutdown()


async def test_a_group_never_exceeds_the_cap_but_always_takes_one_caller() -> None:
    spool = _Spool()
    sizes: list[int] = []

    def flush(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, 5, spool.start, spool.turn)
    with spool.turn_lock:  # all five callers wait together
        tasks = [asyncio.create_task(committer.submit([i] * 3)) for i in range(4)]
        tasks.append(asyncio.create_task(committer.submit(list(range(9)))))
        await asyncio.sleep(0.02)
    results = [await t for t in tasks]
    assert results[-1] == list(range(9))
    assert sizes == [3, 3, 3, 3, 9]  # 3 + 3 > 5: one caller a group; 9 alone past the cap
    spool.pool.shutdown()


async def test_a_failed_flush_fails_its_caller_only_and_the_next_flush_goes_on() -> None:
    spool = _Spool()
    calls = 0

    def flush(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, 100, spool.start, spool.turn)
    with pytest.raises(RuntimeError, match="disk full"):
        await committer.submit([1])
    assert await committer.submit([2]) == [2]
    spool.pool.shutdown()
