"""Message ids are ULIDs that python-ulid reads back, unique, and sorted by time."""

from __future__ import annotations

import os
import time

import pytest
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


def test_all_sixty_random_bits_of_a_millisecond_vary() -> None:
    # Each of the 12 characters between the time and the counter carries 5 random bits:
    # over a few hundred milliseconds' heads every one of them takes many values.
    maker = IdMaker()
    heads = []
    for ms in range(1, 400):
        maker._restart(ms)
        heads.append(maker._head[10:22])
    for position in range(12):
        assert len({head[position] for head in heads}) > 16, position


def test_a_forked_child_makes_ids_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    # One frozen millisecond for parent and child: had the child kept its parent's head
    # and counter, both would count on from the same place.
    monkeypatch.setattr(time, "time_ns", lambda: 1_700_000_000_000_000_000)
    maker = IdMaker()
    maker.new()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its ids in the same milliseconds as the parent's
        os.close(read)
        os.write(write, "".join(maker.new() for _ in range(200)).encode())
        os._exit(0)
    os.close(write)
    mine = {maker.new() for _ in range(200)}
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    theirs = {text[i:i + 26] for i in range(0, len(text), 26)}
    assert len(theirs) == 200 and not mine & theirs
