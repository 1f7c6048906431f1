"""Fixtures for tests that run `smshub serve` as a process: `servers`, the list a test
starts them into, each killed (if still running) and its pipe closed at the end."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_cli_and_crash import Server


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)
        if server.proc.stderr is not None:
            server.proc.stderr.close()
