"""Failed logins counted per client address in a sliding window, for every protocol that
takes passwords from the network (SMTP AUTH, the HTTP dialects): past the limit an
address is refused without its credentials being checked."""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable

_MAX_TRACKED = 10_000  # addresses; beyond this, stale entries are dropped


class FailedLogins:
    """Failed logins per client address in a sliding window."""

    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: defaultdict[str, deque[float]] = defaultdict(deque)

    def locked_out(self, ip: str) -> bool:
        found = self._failures.get(ip)
        if found is None:
            return False
        self._expire(ip, found)
        return len(found) >= self._limit

    def record(self, ip: str) -> None:
        if len(self._failures) >= _MAX_TRACKED:
            for known in list(self._failures):
                self._expire(known, self._failures[known])
        self._failures[ip].append(self._clock())

    def _expire(self, ip: str, window: deque[float]) -> None:
        horizon = self._clock() - self._window
        while window and window[0] < horizon:
            window.popleft()
        if not window:
            del self._failures[ip]
