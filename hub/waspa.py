"""WASPA's opt-out instruction: whether a marketing text tells the recipient how to stop
messages ("Reply STOP to opt out"), and what intake does with one that does not (append
the configured instruction, or refuse it), per account. The one place the check lives."""

from __future__ import annotations

import re
from enum import StrEnum

from hub.errors import Rejected

NO_OPT_OUT = "no_opt_out"  # the refusal code every protocol reports
DEFAULT_INSTRUCTION = " Reply STOP to opt out"

# Wording that already tells the recipient how to stop: STOP (the word WASPA names, in
# any case), "opt out"/"opt-out"/"optout", "unsubscribe". A word, not a substring:
# "stopover" or "nonstop" tell nobody how to stop anything.
_INSTRUCTION = re.compile(r"(?i)\b(?:stop|opt[\s-]?out|unsubscribe)\b")


class MarketingOptOut(StrEnum):
    """What intake does with a marketing text that has no opt-out instruction."""

    APPEND = "append"  # the default: the configured instruction is added, and charged
    REFUSE = "refuse"  # refused with `no_opt_out`; the customer words it themselves


def has_instruction(text: str) -> bool:
    """Whether `text` already says how to opt out."""
    return _INSTRUCTION.search(text) is not None


def instructed(text: str, rule: str, instruction: str = DEFAULT_INSTRUCTION) -> str:
    """A marketing text as it is sent: unchanged if it says how to opt out (or is blank,
    which intake refuses as empty), else with `instruction` appended, or Rejected
    (`no_opt_out`) when the account's rule is `refuse`."""
    if not text.strip() or has_instruction(text):
        return text
    if rule == MarketingOptOut.REFUSE:
        raise Rejected(
            NO_OPT_OUT,
            "a marketing message must tell the recipient how to opt out (for example "
            "'Reply STOP to opt out'); this account does not have it added",
        )
    return text + instruction
