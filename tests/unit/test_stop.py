"""A stop always ends: `smshub serve` exits once [hub] stop_timeout has passed even if a
service never finishes stopping."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub import app


class StuckHub:
    """A hub whose stop waits for ever (a service wedged on a worker thread, say)."""

    stopped = False

    async def stop(self) -> None:
        await asyncio.Event().wait()


class QuickHub:
    stopped = False

    async def stop(self) -> None:
        self.stopped = True


class Exited(Exception):
    pass


def _exit(code: int) -> None:
    raise Exited(code)


async def test_a_stop_that_hangs_exits_the_process_after_the_timeout(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(app.os, "_exit", _exit)  # the real one would end pytest
    with caplog.at_level(logging.ERROR, "hub.app"), pytest.raises(Exited) as exited:
        await app.stop_within(StuckHub(), 0.05)  # type: ignore[arg-type]
    assert exited.value.args == (3,)
    assert "did not finish within 0.05 s ([hub] stop_timeout)" in caplog.text


async def test_a_stop_that_finishes_does_not_exit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(app.os, "_exit", _exit)
    hub = QuickHub()
    await app.stop_within(hub, 5)  # type: ignore[arg-type]
    assert hub.stopped
