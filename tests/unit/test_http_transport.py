"""The transport uvicorn writes through (adapters/http/guards.py): a response's head and
body leave in one write, a head alone is still sent, and nothing is held past a close."""

from __future__ import annotations

import asyncio
from typing import Any

from adapters.http.guards import _Lingering


class Recorder(asyncio.Transport):
    """A transport that records what is written to it (what the socket would send)."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0


class Protocol:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def sending(self) -> bool:
        return False


HEAD = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n"


async def test_head_and_body_written_in_one_turn_leave_in_one_write() -> None:
    real = Recorder()
    transport = _Lingering(real, Protocol(asyncio.get_running_loop()))  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.write(b"{}")
    await asyncio.sleep(0)
    assert real.writes == [HEAD + b"{}"]


async def test_a_head_whose_body_comes_later_is_sent_at_the_next_turn() -> None:
    real = Recorder()
    transport = _Lingering(real, Protocol(asyncio.get_running_loop()))  # type: ignore[arg-type]
    transport.write(HEAD)
    assert transport.get_write_buffer_size() == len(HEAD)
    await asyncio.sleep(0)
    assert real.writes == [HEAD]
    transport.write(b"{}")
    assert real.writes == [HEAD, b"{}"]


async def test_close_sends_a_held_head_first() -> None:
    real = Recorder()
    transport = _Lingering(real, Protocol(asyncio.get_running_loop()))  # type: ignore[arg-type]
    transport.write(HEAD)
    transport.close()
    assert real.writes == [HEAD] and real.closed
    await asyncio.sleep(0)
    assert real.writes == [HEAD]  # not twice
