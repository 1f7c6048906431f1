"""Opt-out keyword detection on inbound messages."""

from __future__ import annotations

import pytest

from hub.inbound import is_opt_out


@pytest.mark.parametrize("text", ["STOP", "stop", " Stop. ", "opt out", "OPT-OUT", "Opt  Out!",
                                  "unsubscribe", "Quit", "END", "cancel", "STOPALL"])
def test_opt_out_words_alone_are_opt_outs(text: str) -> None:
    assert is_opt_out(text)


@pytest.mark.parametrize("text", ["please stop by at 5", "Don't stop", "stopped", "", "yes",
                                  "the end is near"])
def test_chat_that_contains_the_words_is_not_an_opt_out(text: str) -> None:
    assert not is_opt_out(text)


def test_configured_keywords_replace_the_defaults() -> None:
    assert is_opt_out("stopp", ["STOPP"]) and not is_opt_out("stop", ["STOPP"])
