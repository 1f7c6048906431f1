"""WASPA's opt-out instruction, the rule alone (hub/waspa.py) and in intake's preparation:
what counts as an instruction, what is appended, and that segments and cost count it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hub import waspa
from hub.clock import utcnow
from hub.errors import Rejected
from hub.intake import Intake, IntakeRules
from hub.model import Account, MessageClass, NewMessage, Refused, Source, Submission


@pytest.mark.parametrize("text", [
    "Sale! Reply STOP to opt out", "sale, stop: 31337", "Opt-out: sms NO", "to optout sms X",
    "Unsubscribe at example.com", "opt out anytime"])
def test_wording_that_says_how_to_stop_is_an_instruction(text: str) -> None:
    assert waspa.has_instruction(text)
    assert waspa.instructed(text, "refuse") == text


@pytest.mark.parametrize("text", ["Sale on stopovers!", "Nonstop deals", "Big sale today"])
def test_other_wording_is_not_an_instruction(text: str) -> None:
    assert not waspa.has_instruction(text)


def test_the_rule_appends_the_configured_text_or_refuses() -> None:
    assert waspa.instructed("Sale", "append") == "Sale Reply STOP to opt out"
    assert waspa.instructed("Sale", "append", " SMS STOP to 31337") == "Sale SMS STOP to 31337"
    with pytest.raises(Rejected) as refused:
        waspa.instructed("Sale", "refuse")
    assert refused.value.code == waspa.NO_OPT_OUT


def _prepare(text: str, message_class: MessageClass, rule: str = "append") -> NewMessage | Refused:
    account = Account(1, "acme", Decimal(10), Decimal("0.25"), (), utcnow(),
                      marketing_optout=rule)
    intake = Intake(None, IntakeRules(optout_instruction=" Reply STOP to opt out"))  # type: ignore[arg-type]
    return intake.prepare(account, Source.REST, Submission("0821234567", text,
                                                           message_class=message_class),
                          utcnow())


def test_intake_counts_the_appended_instruction_in_segments_and_cost() -> None:
    prepared = _prepare("x" * 150, MessageClass.MARKETING)
    assert isinstance(prepared, NewMessage)
    assert prepared.text == "x" * 150 + " Reply STOP to opt out"
    assert (prepared.segments, prepared.cost) == (2, Decimal("0.50"))
    plain = _prepare("x" * 150, MessageClass.TRANSACTIONAL)
    assert isinstance(plain, NewMessage) and (plain.text, plain.segments) == ("x" * 150, 1)


def test_intake_refuses_with_no_opt_out_and_still_refuses_blank_text_as_empty() -> None:
    refused = _prepare("Sale", MessageClass.MARKETING, "refuse")
    assert isinstance(refused, Refused) and refused.code == waspa.NO_OPT_OUT
    blank = _prepare("  ", MessageClass.MARKETING)
    assert isinstance(blank, Refused) and blank.code == "empty_text"
