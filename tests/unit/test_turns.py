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
