"""Clickatell session ids: valid until 15 idle minutes have passed, kept alive by use."""

from __future__ import annotations

from adapters.xml.clickatell import Sessions


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_session_lives_while_used_and_expires_after_idle_time() -> None:
    clock = Clock()
    sessions = Sessions(idle=900, clock=clock)
    token = sessions.open(7)
    clock.now = 800
    assert sessions.account_id(token) == 7  # use extends it to 1700
    clock.now = 1600
    assert sessions.account_id(token) == 7
    clock.now = 2600
    assert sessions.account_id(token) is None
    assert sessions.account_id(token) is None  # and it is gone for good


def test_sessions_are_unguessable_hex_and_unknown_ones_are_refused() -> None:
    sessions = Sessions()
    tokens = {sessions.open(1) for _ in range(100)}
    assert len(tokens) == 100 and all(len(t) == 32 and int(t, 16) >= 0 for t in tokens)
    assert sessions.account_id("0" * 32) is None
