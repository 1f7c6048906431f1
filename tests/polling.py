"""Waiting for what the hub does in the background: `eventually` (blocking tests) and
`until` (async tests) poll a check until it holds and raise, saying what was last seen,
once a deadline generous enough for a loaded CI machine has passed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(check: Callable[[], T], timeout: float = 20, interval: float = 0.02,
               what: str = "the condition") -> T:
    """The first truthy value `check()` returns; AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s "
                                 f"(last seen: {value!r})")
        time.sleep(interval)


async def until(predicate: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
