"""hub.turns.PerTurn: what is added in one turn of the event loop is sent in one call."""

from __future__ import annotations

import asyncio

import pytest

from hub.turns import PerTurn


async def test_items_added_in_one_turn_go_in_one_call_and_share_its_outcome() -> None:
    calls: list[list[int]] = []

    async def send(items: list[int]) -> None:
        calls.append(items)
        await asyncio.sleep(0)

    batch: PerTurn[int] = PerTurn(send)
    first = [batch.add(n) for n in range(3)]
    assert calls == []  # not before the turn ends
    await asyncio.gather(*first)
    later = batch.add(3)
    await later
    assert calls == [[0, 1, 2], [3]]
    assert len(set(map(id, first))) == 1 and later is not first[0]


async def test_a_failed_call_fails_each_item_of_its_turn_and_wait_flushes() -> None:
    async def send(items: list[str]) -> None:
        raise RuntimeError(f"spool away for {len(items)}")

    batch: PerTurn[str] = PerTurn(send)
    added = [batch.add("a"), batch.add("b")]
    await batch.wait()  # sends at once, waits, and does not raise
    for future in added:
        with pytest.raises(RuntimeError, match="spool away for 2"):
            await future


async def test_with_turns_two_what_is_added_one_turn_later_still_joins() -> None:
    calls: list[list[str]] = []

    async def send(items: list[str]) -> None:
        calls.append(items)

    loop = asyncio.get_running_loop()
    for turns, expected in ((1, [["read"], ["a turn later"]]), (2, [["read", "a turn later"]])):
        calls.clear()
        batch: PerTurn[str] = PerTurn(send, turns=turns)
        added = [batch.add("read")]
        # What the next turn of the loop adds (the answers read with the receipts, whose
        # coroutines resume a turn later):
        loop.call_soon(lambda b=batch: added.append(b.add("a turn later")))
        for _ in range(4):
            await asyncio.sleep(0)
        await asyncio.gather(*added)
        assert calls == expected, turns
    batch = PerTurn(send, turns=2)
    flushed = batch.add("now")
    batch.flush()  # sends at once: the deferred send finds nothing left to send
    for _ in range(4):
        await asyncio.sleep(0)
    await flushed
    assert calls[-1] == ["now"] and len(calls) == 2
