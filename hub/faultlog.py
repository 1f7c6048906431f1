"""A failure that repeats (a read-only spool, an unreachable database) logged once, then
at most once a `every` seconds with how often it recurred, and once when it clears: a
loop that retries every 250 ms must not write a line each time."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class FaultLog:
    """`failed(detail)` on each failure, `cleared()` on each success; logs the first
    failure at once, a changed failure at once, the same one again after `every`
    seconds (saying how many times it happened meanwhile), and the recovery once."""

    def __init__(self, logger: logging.Logger, what: str, action: str, every: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = logger
        self._what = what
        self._action = action
        self._every = every
        self._clock = clock
        self._detail: str | None = None
        self._next = 0.0
        self._repeats = 0

    @property
    def failing(self) -> bool:
        return self._detail is not None

    def failed(self, detail: str, level: int = logging.WARNING) -> None:
        now = self._clock()
        if detail == self._detail and now < self._next:
            self._repeats += 1
            return
        again = (f" (again {self._repeats} times in the last {self._every:.0f} s)"
                 if detail == self._detail and self._repeats else "")
        self._log.log(level, "%s: %s%s", self._what, detail, again,
                      extra={"action": self._action})
        self._detail, self._next, self._repeats = detail, now + self._every, 0

    def cleared(self) -> None:
        if self._detail is None:
            return
        self._log.warning("%s: recovered", self._what, extra={"action": self._action})
        self._detail, self._repeats = None, 0
