"""Group commit: concurrent callers share flushes and get back their own results."""

from __future__ import annotations

import asyncio

import pytest

from hub.errors import TemporaryFailure
from hub.groupcommit import GroupCommitter


async def test_concurrent_callers_share_one_flush_and_get_their_own_results() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()  # hold the first flush while others queue up
        return [i * 10 for i in items]

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([1]))
    await asyncio.sleep(0)
    others = [asyncio.create_task(committer.submit([n, n + 1])) for n in range(2, 12, 2)]
    await asyncio.sleep(0)
    gate.set()
    assert await first == [10]
    assert [await t for t in others] == [[n * 10, (n + 1) * 10] for n in range(2, 12, 2)]
    assert len(flushes) == 2  # five callers, one shared flush


async def test_a_group_never_exceeds_the_cap_but_always_takes_one_caller() -> None:
    sizes: list[int] = []

    async def flush(items: list[int]) -> list[int]:
        sizes.append(len(items))
        await asyncio.sleep(0)
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=5)
    results = await asyncio.gather(*(committer.submit([i] * 3) for i in range(4)),
                                   committer.submit(list(range(9))))
    assert results[-1] == list(range(9))
    assert max(sizes) == 9 and all(s <= 5 for s in sizes if s != 9)


async def test_a_failed_flush_fails_every_caller_in_its_group_only() -> None:
    calls = 0

    async def flush(items: list[int]) -> list[int]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("disk full")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    with pytest.raises(RuntimeError, match="disk full"):
        await committer.submit([1])
    assert await committer.submit([2]) == [2]


async def test_one_callers_bad_item_fails_that_caller_alone() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()
        if -1 in items:  # like a driver's encoding error: the whole transaction fails
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return items

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([0]))
    await asyncio.sleep(0)
    good = [asyncio.create_task(committer.submit([n])) for n in range(1, 6)]
    bad = asyncio.create_task(committer.submit([7, -1]))
    await asyncio.sleep(0)
    gate.set()
    assert await first == [0]
    assert [await t for t in good] == [[n] for n in range(1, 6)]
    with pytest.raises(UnicodeEncodeError):
        await bad
    # The shared flush, then each of its six callers again on its own.
    assert flushes[1] == [1, 2, 3, 4, 5, 7, -1] and flushes[2:] == [[1], [2], [3], [4], [5],
                                                                     [7, -1]]


async def test_a_temporary_failure_fails_the_group_without_a_flush_per_caller() -> None:
    flushes: list[list[int]] = []
    gate = asyncio.Event()

    async def flush(items: list[int]) -> list[int]:
        flushes.append(items)
        if len(flushes) == 1:
            await gate.wait()
            return items
        raise TemporaryFailure("spool unavailable: database is locked")

    committer: GroupCommitter[int, int] = GroupCommitter(flush, max_items=100)
    first = asyncio.create_task(committer.submit([0]))
    await asyncio.sleep(0)
    waiting = [asyncio.create_task(committer.submit([n])) for n in range(1, 4)]
    await asyncio.sleep(0)
    gate.set()
    await first
    for task in waiting:
        with pytest.raises(TemporaryFailure):
            await task
    assert len(flushes) == 2
