"""Message ids: ULIDs (48-bit millisecond time, then 80 bits that are random per
millisecond and counted within it: the spec's monotonic mode), 26 characters of
Crockford base32, so ids sort by acceptance and the spool's key grows at its end."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_COUNTER_BITS = 20  # the last 4 characters count ids within one millisecond
_COUNTER_LIMIT = 1 << _COUNTER_BITS


def _encode(value: int) -> str:
    return "".join(_ALPHABET[(value >> shift) & 31] for shift in range(125, -1, -5))


# Random bytes are drawn from the kernel this many milliseconds' worth at a time: one
# getrandom(2) per millisecond let an event loop's thread go of the interpreter lock for
# every new millisecond, and it then waited for a spool thread to hand it back.
_DRAWS = 512
_DRAW_BYTES = 8  # 64 bits drawn, the top 60 used


class IdMaker:
    """Makes ULIDs about five times faster than encoding each one from scratch: the
    first 22 characters are encoded once per millisecond, the last 4 are a counter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ms = -1
        self._head = ""
        self._count = 0
        self._random = b""
        self._used = 0
        # A forked child must not go on with its parent's millisecond, counter or drawn
        # bytes: the two would make the same ids.
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._ms, self._random, self._used = -1, b"", 0

    def new(self) -> str:
        ms = time.time_ns() // 1_000_000
        with self._lock:
            if ms != self._ms or self._count >= _COUNTER_LIMIT - 1:
                self._restart(ms)
            else:
                self._count += 1
            n = self._count
            head = self._head
        a = _ALPHABET
        return head + a[n >> 15] + a[(n >> 10) & 31] + a[(n >> 5) & 31] + a[n & 31]

    def _restart(self, ms: int) -> None:
        # 60 fresh random bits per millisecond keep ids of several hub nodes apart.
        if self._used >= len(self._random):
            self._random, self._used = os.urandom(_DRAWS * _DRAW_BYTES), 0
        start, self._used = self._used, self._used + _DRAW_BYTES
        random_bits = int.from_bytes(self._random[start:self._used], "big") >> 4 << _COUNTER_BITS
        self._ms = ms
        self._head = _encode((ms << 80) | random_bits)[:22]
        self._count = 0


new_id = IdMaker().new
