"""Message ids are ULIDs that python-ulid reads back, unique, and sorted by time."""

from __future__ import annotations

import time

from ulid import ULID

from hub.ids import IdMaker, new_id


def test_ids_are_ulids_with_the_current_time() -> None:
    before = time.time()
    made = [new_id() for _ in range(5000)]
    after = time.time()
    for text in made:
        parsed = ULID.from_str(text)
        assert str(parsed) == text
        assert before - 0.002 <= parsed.timestamp <= after + 0.002


def test_ids_are_unique_and_increase_even_within_one_millisecond() -> None:
    made = [new_id() for _ in range(50_000)]
    assert len(set(made)) == len(made)
    assert made == sorted(made)


def test_each_millisecond_draws_new_random_bits() -> None:
    maker = IdMaker()
    first = maker.new()
    time.sleep(0.003)
    second = maker.new()
    assert first[:10] < second[:10]  # the time part moved on
    assert first[10:22] != second[10:22]  # and the random part was drawn again


def test_the_counter_rolls_over_into_a_fresh_random_head() -> None:
    maker = IdMaker()
    first = maker.new()
    maker._count = (1 << 20) - 1  # as if a million ids were made in this millisecond
    later = maker.new()
    assert later[-4:] == "0000" and later != first
